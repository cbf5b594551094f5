"""The Go ↔ Python map (docs/maps/go-python.md), built from the ``Mirrors:`` lines of the docstrings."""

from __future__ import annotations

import re
from collections import defaultdict

from .code_index import CodeIndex, Definition
from .common import cell, code_words
from .links import code_link
from .tags import references


def go_file_of(text: str) -> str:
    match = re.search(r"\b([\w/]+\.go)\b", text)
    return match[1] if match else ""


def go_python_map(page_src: str, index: CodeIndex) -> str:
    """One table per Go file: every Python definition that says which Go code it mirrors.

    A module whose ``Mirrors:`` line starts with "nothing" has no Go twin; it
    and everything in it are listed at the end instead.
    """
    by_file: dict[str, list[tuple[str, Definition]]] = defaultdict(list)
    own: list[Definition] = []
    for module in index.modules.values():
        mirrors = " ".join(module.tag("Mirrors"))
        if mirrors.lower().startswith("nothing"):
            own.append(module)
            continue
        # Group under the Go file; a module that mirrors something else (Go's
        # runtime, the fuzzy/ tests) is grouped under the start of its Mirrors line.
        module_go = go_file_of(mirrors) or code_words(re.split(r" \(|\. |, ", mirrors)[0].rstrip("."))
        for definition in index.definitions:
            if definition.path != module.path:
                continue
            for text in definition.tag("Mirrors"):
                go_file = go_file_of(text) or module_go
                if not go_file:
                    continue
                rest = text.removeprefix(go_file).strip().rstrip(".") if text.startswith(go_file) else ""
                shown = rest if rest and not rest.startswith("(") else text.rstrip(".")
                by_file[go_file].append((shown, definition))
    out = []
    for go_file in sorted(by_file, key=lambda f: (not f.endswith(".go"), f)):
        out.append(f"### {go_file}\n")
        out.append("| Go (hashicorp/raft) | Python | Paper |")
        out.append("|---|---|---|")
        for go, definition in by_file[go_file]:
            out.append(f"| {cell(code_words(go))} | {code_link(page_src, definition)} | {paper_short(definition)} |")
        out.append("")
    if own:
        out.append("### Not in hashicorp/raft\n")
        out.append("These modules have no Go twin; their docstrings say what they stand in for or follow.\n")
        for module in own:
            out.append(f"- {code_link(page_src, module, module.path)}: "
                       f"{cell(code_words(' '.join(module.tag('Mirrors'))))}")
        out.append("")
    return "\n".join(out)


def paper_short(definition: Definition) -> str:
    """The sections and figures a definition cites, or the start of its ``Paper:`` text if it names none."""
    text = " ".join(definition.tag("Paper"))
    refs = list(dict.fromkeys(references(text)))
    if refs:
        return ", ".join(refs)
    return cell(text.split(". ")[0])
