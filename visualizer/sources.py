"""From an event's ``func`` to the code that produced it.

Every event names the function that emitted it (``run_follower``,
``SimNetwork.send``, ``Cluster.crash``). ``explain`` finds that function in
the ``raft`` package and returns where it lives, its first docstring line,
its ``Mirrors:`` line (the Go function it follows), its ``Paper:`` line (the
rule it applies), any ``Differs:`` line, and its source. Nothing is kept in
a second table: it is all read from the code, so it cannot go stale.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import raft

MAX_SOURCE_LINES = 80
_FIELD = re.compile(r"^\s*(Mirrors|Paper|Differs):\s*(.*)$")

# Modules that hold the protocol itself: when a bare name is ambiguous, these win.
_PREFERRED = ("raft.raft", "raft.replication", "raft.fsm", "raft.api", "raft.snapshot", "raft.observer")


@dataclass(frozen=True)
class FunctionInfo:
    """Where a function is and what its docstring says about its origins."""

    name: str
    qualname: str
    module: str
    file: str
    line: int
    summary: str
    mirrors: str
    paper: str
    differs: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "python": f"{self.file}:{self.line}", "qualname": self.qualname,
                "module": self.module, "summary": self.summary, "mirrors": self.mirrors, "paper": self.paper,
                "differs": self.differs, "source": self.source}


def _docstring_fields(doc: str) -> dict[str, str]:
    """The ``Mirrors:``/``Paper:``/``Differs:`` fields, each up to the blank line that ends it."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in doc.splitlines():
        match = _FIELD.match(line)
        if match:
            current = fields.setdefault(match.group(1).lower(), [])
            current.append(match.group(2).strip())
        elif current is not None and line.strip():
            current.append(line.strip())  # a field runs to the end of its paragraph
        else:
            current = None
    return {name: " ".join(parts) for name, parts in fields.items()}


def _mirrors_inline(summary: str) -> str:
    """``(Mirrors: raft.go setupLeaderState)`` written inside a one-line docstring."""
    match = re.search(r"\(Mirrors: ([^)]*)\)", summary)
    return match.group(1) if match else ""


def _info(name: str, obj: Any, module: str) -> FunctionInfo | None:
    function = inspect.unwrap(obj)
    try:
        lines, line = inspect.getsourcelines(function)
        path = inspect.getsourcefile(function) or ""
    except (OSError, TypeError):
        return None
    doc = inspect.getdoc(function) or ""
    summary = doc.splitlines()[0] if doc else ""
    fields = _docstring_fields(doc)
    root = Path(raft.__file__).resolve().parent.parent
    try:
        relative = str(Path(path).resolve().relative_to(root))
    except ValueError:
        relative = path
    source = "".join(lines[:MAX_SOURCE_LINES]) + ("    ...\n" if len(lines) > MAX_SOURCE_LINES else "")
    return FunctionInfo(name, function.__qualname__, module, relative, line, summary,
                        fields.get("mirrors") or _mirrors_inline(summary), fields.get("paper", ""),
                        fields.get("differs", ""), source)


class SourceIndex:
    """Every function and method of the ``raft`` package, by bare name and by ``Class.name``."""

    def __init__(self) -> None:
        self._by_name: dict[str, list[FunctionInfo]] = {}
        self._lock = threading.Lock()
        self._built = False

    def _build(self) -> None:
        for module_info in pkgutil.walk_packages(raft.__path__, "raft."):
            try:
                module = importlib.import_module(module_info.name)
            except Exception:  # a module being written by someone else must not break the page
                continue
            for obj_name, obj in vars(module).items():
                if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                    self._add(obj_name, obj_name, obj, module.__name__)
                elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                    for attr, member in vars(obj).items():
                        target = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                        if inspect.isfunction(target):
                            self._add(attr, f"{obj_name}.{attr}", target, module.__name__)

    def _add(self, name: str, dotted: str, obj: Any, module: str) -> None:
        info = _info(name, obj, module)
        if info is None:
            return
        self._by_name.setdefault(name, []).append(info)
        if dotted != name:
            self._by_name.setdefault(dotted, []).append(info)

    def build(self) -> None:
        """Read the ``raft`` package now (it takes a moment), so the first ``explain`` answers at once."""
        with self._lock:
            if not self._built:
                self._build()
                self._built = True

    def explain(self, func: str) -> dict[str, Any] | None:
        """What we know about the function an event names, or None if it is not in ``raft``."""
        self.build()
        candidates = self._by_name.get(func, [])
        if not candidates:
            return None
        best = sorted(candidates, key=lambda i: _PREFERRED.index(i.module) if i.module in _PREFERRED else 99)[0]
        data = best.to_dict()
        data["func"] = func
        data["others"] = [f"{i.module}.{i.qualname}" for i in candidates if i is not best]
        return data
