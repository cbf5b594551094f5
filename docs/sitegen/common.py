"""Paths, the build's logger and the small Markdown helpers that every part of the builder shares."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

# Warnings logged here fail `mkdocs build --strict`.
log = logging.getLogger("mkdocs.hooks.raft_docs")

ROOT = Path(__file__).resolve().parent.parent.parent  # the project: docs/sitegen/common.py -> .
DOCS = ROOT / "docs"
PACKAGE = ROOT / "raft"
TUTORIALS = ROOT / "tutorials"
PRESETS = ROOT / "visualizer" / "presets"
VISUALIZER_PAGE = ROOT / "visualizer" / "templates" / "index.html"
ELECTION_RESULTS = ROOT / "bench" / "results" / "election.json"
REALWORLD_RESULTS = ROOT / "bench" / "results" / "realworld.json"  # written by bench/realworld.py --json


def on_path() -> None:
    """Make the project importable (``raft``, ``bench``, ``visualizer``), for the parts that read its objects."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def cell(text: str) -> str:
    """Text that fits in one cell of a Markdown table."""
    return text.replace("|", "\\|").replace("\n", " ")


def code_words(text: str) -> str:
    """Render RST-style ``double backticks`` as Markdown code."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def fence_for(text: str, shortest: int = 3) -> str:
    """A run of backticks longer than any run inside ``text``, to fence it with."""
    return "`" * max(shortest, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))


CODE_SPAN = re.compile(r"^(?P<fence>`{3,}|~{3,}).*?^(?P=fence)[ \t]*$|`[^`\n]+`", re.MULTILINE | re.DOTALL)


def outside_code(markdown: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the Markdown outside fenced blocks and inline code.

    A page may show a marker or a ``code:`` link as an example, in backticks;
    those are left alone.
    """
    out, last = [], 0
    for match in CODE_SPAN.finditer(markdown):
        out.append(change(markdown[last:match.start()]))
        out.append(match[0])
        last = match.end()
    out.append(change(markdown[last:]))
    return "".join(out)
