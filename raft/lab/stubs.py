"""Cutting a function's body out of its source, and putting the reference back.

Mirrors: nothing in hashicorp/raft (see ``raft.lab``).

A stub keeps the ``def`` line(s) and the docstring, so the student still
reads the ``Paper:`` and ``Mirrors:`` lines of what to write, and its body
becomes one ``raise NotImplementedError(...)`` that names the lab and its
page. The surgery is done on lines located with ``ast``: everything outside
the function (comments included) stays exactly as it was.

Also here: making a workspace (``raft-lab start``) and the graded copy of a
workspace (``raft-lab check``), in which the functions of later labs that
are still stubs get the reference code back.
"""

from __future__ import annotations

import ast
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import raft
from raft.lab.checks import CHECKS, claim
from raft.lab.labs import LABS, Function, Lab, find_lab, functions_from

MARKER = ".raft-lab.toml"  # names a workspace's lab; `raft-lab check` looks for it in cwd and its parents
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


class StubError(Exception):
    """A function to stub or restore could not be found; the message says which and where."""


def reference_package() -> Path:
    """The folder of the ``raft`` package this code runs from: the reference solution."""
    return Path(raft.__file__).resolve().parent


def stub_message(lab: Lab, function: Function) -> str:
    return f"{lab.name}: implement {function.qualname} in raft/{function.file}; see {lab.page}"


def locate(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The definition of ``Class.method`` or ``function`` at the top level of a module."""
    *classes, name = qualname.split(".")
    body: list[ast.stmt] = tree.body
    for class_name in classes:
        found = [n for n in body if isinstance(n, ast.ClassDef) and n.name == class_name]
        if not found:
            raise StubError(f"no class {class_name!r} (looking for {qualname})")
        body = found[0].body
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    raise StubError(f"no function {qualname!r}")


def _docstring_end(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int | None:
    """The last line of the function's docstring, or None if it has none."""
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno
    return None


def _body_start(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The first line of the body after the docstring (1-based)."""
    docstring_end = _docstring_end(node)
    if docstring_end is not None:
        if len(node.body) == 1:
            raise StubError(f"{node.name} has only a docstring")
        return node.body[1].lineno
    return node.body[0].lineno


def is_stub(source: str, qualname: str, filename: str = "<source>") -> bool:
    """Is the body (after the docstring) just ``raise NotImplementedError(...)``? (``filename`` names syntax errors.)"""
    node = locate(ast.parse(source, filename), qualname)
    body = node.body[1:] if _docstring_end(node) is not None else node.body
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc
    target = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(target, ast.Name) and target.id == "NotImplementedError"


def stub_source(source: str, qualname: str, message: str) -> str:
    """``source`` with the body of ``qualname`` replaced by ``raise NotImplementedError(message)``."""
    node = locate(ast.parse(source), qualname)
    lines = source.splitlines(keepends=True)
    start = _body_start(node)
    if start == node.lineno:
        raise StubError(f"{qualname}: the body starts on the def line; nothing to keep")
    assert node.end_lineno is not None, "ast gives end positions since Python 3.8"
    indent = " " * node.body[-1].col_offset
    # Comments between the docstring and the first statement belong to the body: they go too.
    docstring_end = _docstring_end(node)
    keep = docstring_end if docstring_end is not None else start - 1
    stub = f"{indent}raise NotImplementedError({message!r})\n"
    return "".join([*lines[:keep], stub, *lines[node.end_lineno:]])


def function_text(source: str, qualname: str) -> str:
    """The lines of ``qualname``, from its first decorator to its last line."""
    node = locate(ast.parse(source), qualname)
    assert node.end_lineno is not None
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return "".join(source.splitlines(keepends=True)[first - 1:node.end_lineno])


def replace_function(source: str, qualname: str, text: str) -> str:
    """``source`` with the lines of ``qualname`` replaced by ``text`` (a whole definition)."""
    node = locate(ast.parse(source), qualname)
    assert node.end_lineno is not None
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    lines = source.splitlines(keepends=True)
    return "".join([*lines[:first - 1], text, *lines[node.end_lineno:]])


# ---------------------------------------------------------------------------
# Workspaces
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """A student's copy of the package: ``root/raft`` and ``root/.raft-lab.toml``."""

    root: Path
    lab: Lab  # the lab it was started at

    @property
    def package(self) -> Path:
        return self.root / "raft"

    def stubs_left(self, upto: Lab) -> list[tuple[Lab, Function]]:
        """The functions of labs up to ``upto`` that are still stubs here."""
        left = []
        for lab in LABS:
            if lab.number > upto.number:
                break
            for function in lab.functions:
                path = self.package / function.file
                if is_stub(path.read_text(encoding="utf-8"), function.qualname, str(path)):
                    left.append((lab, function))
        return left


def start_workspace(lab: Lab, directory: Path) -> Workspace:
    """Copy the package into ``directory`` with the functions of ``lab`` and every later lab stubbed."""
    directory = directory.resolve()
    if (directory / "raft").exists() or (directory / MARKER).exists():
        raise FileExistsError(f"{directory} already holds a workspace; choose another directory or remove it")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(reference_package(), directory / "raft", ignore=_IGNORE)
    for owner, function in functions_from(lab):
        path = directory / "raft" / function.file
        path.write_text(stub_source(path.read_text(encoding="utf-8"), function.qualname,
                                    stub_message(owner, function)), encoding="utf-8")
    (directory / "LAB.md").write_text(lab_sheet(lab), encoding="utf-8")
    (directory / MARKER).write_text(
        "# A raft-lab workspace. `raft-lab check` grades the raft/ package next to this file.\n"
        f"lab = {lab.number}\n"
        f'title = "{lab.title}"\n', encoding="utf-8")
    return Workspace(directory, lab)


def lab_sheet(lab: Lab) -> str:
    """The workspace's ``LAB.md``: what to write and how it is graded, for a student without the docs at hand."""
    lines = [f"# Lab {lab.number}: {lab.title}", "", f"You write code to {lab.asks}.", "",
             f"Paper: {lab.paper}.", "", "## Your functions (stubs in raft/, docstrings kept)", ""]
    lines += [f"- `{f.qualname}` in `raft/{f.file}`" for f in lab.functions]
    lines += ["", f"## How `raft-lab check {lab.number}` grades them", "",
              "First these focused checks, in order:", ""]
    lines += [f"- `{check.__name__}`: {claim(check)}" for check in CHECKS[lab.number]]
    scenarios = ", ".join(f"{s.name} x {s.seeds}" for s in lab.scenarios)
    lines += ["", f"Then the fault simulator over {lab.seed_budget} seeds ({scenarios}), each run held to the",
              "invariant checker, identical logs and state machines, and the linearizability checker.", "",
              "Later labs:", ""]
    lines += [f"- lab {later.number} ({later.title}): {', '.join(f'`{f.qualname}`' for f in later.functions)}"
              for later in LABS if later.number > lab.number] or ["- none: this is the last lab"]
    lines += ["", f"Hints and typical pitfalls: {lab.page} in the project's documentation (the Labs section).", ""]
    return "\n".join(lines)


def find_workspace(start: Path) -> Workspace | None:
    """The workspace holding ``start`` (its marker is in ``start`` or a parent), if any."""
    for folder in [start.resolve(), *start.resolve().parents]:
        marker = folder / MARKER
        if marker.is_file():
            try:
                data = tomllib.loads(marker.read_text(encoding="utf-8"))
                lab = find_lab(data["lab"])
            except (tomllib.TOMLDecodeError, KeyError, ValueError) as err:
                raise StubError(f"{marker} is not a raft-lab marker ({err}); "
                                "remake the workspace with `raft-lab start`") from err
            if not (folder / "raft" / "__init__.py").is_file():
                raise StubError(f"{marker} has no raft/ package next to it")
            return Workspace(folder, lab)
    return None


def graded_copy(workspace: Workspace, lab: Lab, target: Path) -> Path:
    """Build in ``target`` the package that grading ``lab`` runs; return the folder to put on sys.path.

    The student's code for labs up to ``lab``; for the labs after it, the
    reference wherever the workspace still has a stub (a lab is graded on
    its own code, not on the ones not yet written); and the grader
    (``raft/lab``) from the reference, so a workspace cannot edit its own
    grading.
    """
    shutil.copytree(workspace.package, target / "raft", ignore=_IGNORE)
    shutil.rmtree(target / "raft" / "lab", ignore_errors=True)
    shutil.copytree(reference_package() / "lab", target / "raft" / "lab", ignore=_IGNORE)
    reference = reference_package()
    for later in LABS:
        if later.number <= lab.number:
            continue
        for function in later.functions:
            path = target / "raft" / function.file
            source = path.read_text(encoding="utf-8")
            if is_stub(source, function.qualname, str(workspace.package / function.file)):
                original = function_text((reference / function.file).read_text(encoding="utf-8"), function.qualname)
                path.write_text(replace_function(source, function.qualname, original), encoding="utf-8")
    return target
