"""The house-style tags of a docstring: ``Mirrors:``, ``Paper:``, ``Differs:`` and the rest.

A docstring in this project says what a definition is, then, on lines of their
own, which Go code it mirrors, which part of the paper it implements and where
it departs from Go (CONTRIBUTING.md, rule 1). This module reads those lines
back; it knows nothing about where the docstring came from.
"""

from __future__ import annotations

import re
from collections import defaultdict

TAG_NAMES = ("Paper", "Mirrors", "Differs", "Read before", "Read next", "Used by", "Invariant")
TAG_LINE = re.compile(rf"^(?P<tag>{'|'.join(TAG_NAMES)}):\s*(?P<text>.*)$")


def parse_tags(docstring: str) -> tuple[str, dict[str, list[str]]]:
    """The summary line and the ``Tag: text`` blocks of a docstring.

    (``paragraphs`` returns the rest.)

    A block runs from its tag to the next blank line or the next tag, so a
    ``Paper:`` reference may wrap onto several lines. A summary line may also
    carry an inline ``(Mirrors: setLeader)``.
    """
    lines = docstring.splitlines()
    summary = lines[0].strip() if lines else ""
    tags: dict[str, list[str]] = defaultdict(list)
    inline = inline_mirrors(summary)
    if inline:
        tags["Mirrors"].append(inline)
    current: list[str] | None = None
    tag = ""
    for raw in [*lines, ""]:
        line = raw.strip()
        match = TAG_LINE.match(line)
        if match or not line:
            if current is not None:
                tags[tag].append(" ".join(current).strip())
                current = None
            if match:
                tag, current = match["tag"], [match["text"]]
        elif current is not None:
            current.append(line)
    return summary, dict(tags)


def paragraphs(docstring: str) -> list[str]:
    """The docstring's paragraphs that are not ``Tag:`` blocks, each joined into one line."""
    found = []
    for block in re.split(r"\n\s*\n", docstring):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and not TAG_LINE.match(lines[0]):
            found.append(" ".join(lines))
    return found


def inline_mirrors(summary: str) -> str:
    """The text of ``(Mirrors: ...)`` in a summary line, allowing nested parentheses."""
    start = summary.find("(Mirrors:")
    if start < 0:
        return ""
    depth = 0
    for i in range(start, len(summary)):
        if summary[i] == "(":
            depth += 1
        elif summary[i] == ")":
            depth -= 1
            if depth == 0:
                return summary[start + len("(Mirrors:"):i].strip()
    return summary[start + len("(Mirrors:"):].strip()


REFERENCE = re.compile(r"(Thesis )?(§\s?\d+(?:\.\d+)*|Figures? \d+(?:[–-]\d+)?)( of the thesis)?")


def references(text: str) -> list[str]:
    """The sections and figures a ``Paper:`` text cites, e.g. ``§5.4.2``, ``Figure 8``, ``Thesis §9.6``.

    A bare ``§`` that follows a thesis section in the same clause (up to the
    next ``;``) is a thesis section too: "Thesis §9.6 (pre-vote), §3.10".
    """
    found = []
    for clause in text.split(";"):
        thesis = False
        for match in REFERENCE.finditer(clause):
            ref = match[2].replace("§ ", "§")
            if match[1] or match[3]:
                thesis = True
            if ref.startswith("§") and thesis:
                ref = "Thesis " + ref
            found.append(ref)
    return found
