"""Lists read from the code: the recorded differences from Go, the event kinds, the teaching bugs, the scenarios.

Each is asked for by a marker on a hand-written page (``<!-- @differs -->``,
``<!-- @events -->``, ``<!-- @teaching-bugs -->``, ``<!-- @scenarios -->``).
"""

from __future__ import annotations

import ast
from collections import defaultdict

import griffe

from .code_index import CodeIndex
from .common import cell, code_words, log
from .links import code_link


def differs_list(page_src: str, index: CodeIndex) -> str:
    """Every ``Differs:`` docstring line and ``# Differs:`` comment, module by module."""
    out = []
    count = 0
    for module in index.modules.values():
        items = []
        for definition in index.definitions:
            if definition.path != module.path:
                continue
            for text in definition.tag("Differs"):
                items.append(f"- {code_link(page_src, definition)}: {code_words(text)}")
            for comment in definition.comments:
                if comment.text.startswith("Differs:"):
                    text = comment.text.removeprefix("Differs:").strip()
                    items.append(f"- {code_link(page_src, definition, line=comment.line)} "
                                 f"(line {comment.line}): {code_words(text)}")
        if items:
            count += len(items)
            out.append(f"### {module.path}\n")
            out.extend(items)
            out.append("")
    return f"{count} differences are recorded in the code.\n\n" + "\n".join(out)


def events_table(page_src: str, index: CodeIndex) -> str:
    """Every event kind emitted with a literal kind, where, and the ``func`` the event names."""
    by_kind: dict[str, dict[str, str]] = defaultdict(dict)
    funcs: dict[str, dict[str, None]] = defaultdict(dict)
    for emit in index.emits:
        by_kind[emit.kind].setdefault(emit.where.full_name, code_link(page_src, emit.where, line=emit.line))
        if emit.func:
            funcs[emit.kind][f"`{emit.func}`"] = None
    out = ["| Kind | Emitted in | The event's `func` |", "|---|---|---|"]
    for kind in sorted(by_kind):
        # A setter (set_commit_index, set_current_term...) or a private helper reports for its caller:
        # the event names the public protocol function on the stack (raft.events.protocol_function).
        named = ', '.join(funcs[kind]) or "the public protocol function that called it"
        out.append(f"| `{kind}` | {', '.join(by_kind[kind].values())} | {named} |")
    return "\n".join(out) + "\n"


def teaching_bugs(page_src: str, index: CodeIndex) -> str:
    """The TeachingBugs switches with the comment above each, and the CLI name."""
    bugs = index.griffe_object("raft.sim.bugs.TeachingBugs")
    owner = index.resolve("raft.sim.bugs.TeachingBugs")
    if bugs is None or owner is None:
        log.warning("raft/sim/bugs.py has no TeachingBugs class to list the switches of")
        return ""
    lines = index.sources[owner.path].splitlines()
    out = ["| Switch | `raft-sim fuzz --bug` | What it breaks |", "|---|---|---|"]
    for name, member in bugs.members.items():
        if not isinstance(member, griffe.Attribute) or member.annotation is None or "property" in member.labels:
            continue  # only the switches: the class's annotated fields
        assert member.lineno is not None
        comment: list[str] = []
        above = member.lineno - 2
        while above >= 0 and lines[above].strip().startswith("#"):
            comment.insert(0, lines[above].strip().lstrip("#").strip())
            above -= 1
        link = code_link(page_src, owner, name, member.lineno)
        out.append(f"| {link} | `{name.replace('_', '-')}` | {cell(' '.join(comment))} |")
    return "\n".join(out) + "\n"


def scenarios(page_src: str, index: CodeIndex) -> str:
    """The fault simulator's scenarios, from the SCENARIOS table of fuzz.py and each function's docstring."""
    table = index.griffe_object("raft.sim.fuzz.SCENARIOS")
    value = table.value if isinstance(table, griffe.Attribute) else None
    if not isinstance(value, griffe.ExprDict):
        log.warning("raft/sim/fuzz.py has no SCENARIOS dictionary to list the scenarios of")
        return ""
    out = ["| Scenario | What it does |", "|---|---|"]
    for key, function in zip(value.keys, value.values, strict=True):
        if not isinstance(key, str) or not isinstance(function, griffe.ExprName):
            continue
        name = ast.literal_eval(key)  # griffe keeps the key as it is written: with its quotes
        definition = index.resolve(f"raft.sim.fuzz.{function.name}")
        summary = code_words(definition.summary) if definition else ""
        link = code_link(page_src, definition, name) if definition else name
        out.append(f"| {link} | {cell(summary)} |")
    return "\n".join(out) + "\n"
