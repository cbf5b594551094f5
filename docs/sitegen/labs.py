"""The lab track's tables, read from ``raft.lab``: the labs (``<!-- @labs -->``) and one lab (``<!-- @lab N -->``).

A lab's functions, checks, seed budget and known mistakes live in the code
(``raft/lab/labs.py``, ``checks.py``, ``mistakes.py``), which the grader and
the tests use; the pages show them from there, so they cannot drift apart.
"""

from __future__ import annotations

import posixpath

from .code_index import CodeIndex
from .common import cell, code_words, log, on_path
from .links import code_link


def _module(file: str) -> str:
    """``kv/store.py`` -> ``raft.kv.store``."""
    return "raft." + file[:-3].replace("/", ".")


def _function_link(page: str, index: CodeIndex, file: str, qualname: str) -> str:
    definition = index.resolve(f"{_module(file)}.{qualname}")
    if definition is None:
        log.warning("%s: the lab function %s in raft/%s is not in the code index", page, qualname, file)
        return f"`{qualname}`"
    return code_link(page, definition, qualname)


def _page_link(page: str, target: str) -> str:
    """A link from ``page`` to a lab page given relative to the repository (``docs/labs/01-x.md``)."""
    return posixpath.relpath(target.removeprefix("docs/"), posixpath.dirname(page) or ".")


def labs_table(page: str, index: CodeIndex) -> str:
    """Every lab: what it asks for, its paper sections, the functions it stubs, its seed budget."""
    on_path()
    from raft.lab.checks import CHECKS
    from raft.lab.labs import LABS

    out = ["| Lab | You write | Paper | Graded by |", "|---|---|---|---|"]
    for lab in LABS:
        title = f"[{lab.number}. {lab.title.capitalize()}]({_page_link(page, lab.page)})"
        functions = ", ".join(_function_link(page, index, f.file, f.qualname) for f in lab.functions)
        graded = f"{len(CHECKS[lab.number])} checks, {lab.seed_budget} seeds"
        out.append(f"| {title}: {cell(lab.asks)} | {functions} | {cell(lab.paper)} | {graded} |")
    return "\n".join(out) + "\n"


def lab_card(page: str, index: CodeIndex, args: str) -> str:
    """One lab: its functions, its checks, its seed budget, and the mistakes the grader is known to catch."""
    on_path()
    from raft.lab.checks import CHECKS, claim
    from raft.lab.labs import find_lab
    from raft.lab.mistakes import mistakes_of

    try:
        lab = find_lab(args.strip())
    except ValueError as err:
        log.warning("%s: %s", page, err)
        return ""
    out = ["**You write** (each is a stub in your workspace, with its docstring):", ""]
    out += [f"- {_function_link(page, index, f.file, f.qualname)} in `raft/{f.file}`" for f in lab.functions]
    out += ["", f"**Focused checks** (`raft-lab check {lab.number}` runs them first, in this order):", ""]
    for check in CHECKS[lab.number]:
        definition = index.resolve(f"raft.lab.checks.{check.__name__}")
        name = code_link(page, definition, check.__name__) if definition else f"`{check.__name__}`"
        out.append(f"- {name}: {code_words(claim(check))}")
    scenarios = ", ".join(f"{s.name} × {s.seeds}" for s in lab.scenarios)
    out += ["", f"**Fault simulator**: {lab.seed_budget} seeds ({scenarios}), seeds counted from 0.", ""]
    out += ["**Wrong solutions the grader catches** (from `raft/lab/mistakes.py`; the tests check each):", "",
            "| Mistake | What is wrong | Caught by (check) | Caught by (fuzz run) |", "|---|---|---|---|"]
    for mistake in mistakes_of(lab.number):
        how = f"teaching bug `{mistake.bug}`" if mistake.bug else f"edit in `{mistake.function.qualname}`" \
            if mistake.function else ""
        caught = mistake.caught_by
        check = f"`{caught.check}`" if caught.check else "none: the checks pass"
        run = f"{caught.scenario}, seed {caught.seed}" if caught.scenario else "none in the budget"
        out.append(f"| `{mistake.name}` ({how}) | {cell(mistake.pitfall)} | {check} | {run} |")
    return "\n".join(out) + "\n"
