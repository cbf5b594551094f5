"""The index of the ``raft`` package that every generated page reads: its definitions and what they say.

Griffe (the library mkdocstrings uses to read the API) loads the package, its
subpackages included, without importing it. From griffe we take the modules,
classes, functions and properties, their qualified names, first and last
lines, and docstrings. Griffe does not keep what lies inside a function, so two
small readers add it:

* the comments, read with ``tokenize`` and given to the innermost definition
  around them (``# Differs:`` and ``# Figure 2:`` comments feed the maps);
* the calls that emit an event of a fixed kind, or report a broken invariant,
  found with ``ast``.

A function nested inside another function is not a definition of its own here:
its comments belong to the function around it.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import griffe

from raft.events import SETTERS, Report

from .common import PACKAGE, ROOT, log
from .tags import paragraphs, parse_tags

# The event kind of each report class of raft/events.py (Raft.observe(VoteTallied(...)) emits "tally").
REPORT_KINDS = {cls.__name__: cls.kind for cls in Report.__subclasses__()}


@dataclass
class Comment:
    """One comment, or a block of consecutive comment lines, inside the code."""

    line: int
    text: str


@dataclass
class Definition:
    """A module, class or function of raft/, with what its docstring says about itself."""

    module: str  # raft.raft
    path: str  # raft/raft.py
    qualname: str  # RaftLoops.run_follower ("" for the module itself)
    line: int  # its first line: the first decorator's, if it has any
    end_line: int
    summary: str = ""
    tags: dict[str, list[str]] = field(default_factory=dict)  # tag -> texts
    paragraphs: list[str] = field(default_factory=list)  # the docstring's untagged paragraphs
    comments: list[Comment] = field(default_factory=list)  # comments in its own body
    docstring: str = ""

    @property
    def name(self) -> str:
        return self.qualname or self.module

    @property
    def full_name(self) -> str:
        return f"{self.module}.{self.qualname}" if self.qualname else self.module

    def tag(self, name: str) -> list[str]:
        return self.tags.get(name, [])


@dataclass
class FieldNote:
    """A ``# Figure 2: nextIndex[] ...`` comment and the Python name it explains."""

    figure: str  # "Figure 2"
    paper_name: str  # "nextIndex[]"
    note: str
    owner: Definition  # the class or module that holds the field
    python_name: str
    line: int


@dataclass
class Emit:
    """A place in the code that emits an event of a fixed kind."""

    kind: str
    func: str  # the "func" the event carries, when it is a literal
    where: Definition
    line: int


@dataclass
class CheckSite:
    """A place where the invariant checker reports a violated property."""

    rule: str
    where: Definition
    line: int


@dataclass
class CodeIndex:
    """Everything the pages need to know about raft/, read once per build."""

    package: griffe.Module | None = None  # what griffe loaded, for the pages that read more of it
    modules: dict[str, Definition] = field(default_factory=dict)  # path -> module definition
    definitions: list[Definition] = field(default_factory=list)  # modules, classes and functions
    fields: list[FieldNote] = field(default_factory=list)
    emits: list[Emit] = field(default_factory=list)
    checks: list[CheckSite] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # path -> text

    def resolve(self, target: str) -> Definition | None:
        """Find a definition by path, full name, ``Class.method`` or a unique short name."""
        if target.endswith(".py"):
            return self.modules.get(target)
        exact = [d for d in self.definitions if d.full_name == target]
        if exact:
            return exact[0]
        matches = [d for d in self.definitions if d.qualname == target or d.qualname.endswith("." + target)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(d.full_name for d in matches)
            log.warning("code:%s is ambiguous (%s); write the full name", target, names)
            return None
        log.warning("code:%s does not name anything in raft/", target)
        return None

    def griffe_object(self, full_name: str) -> griffe.Object | None:
        """The object griffe loaded under ``raft.x.y``, or None."""
        if self.package is None or not full_name.startswith(self.package.path + "."):
            return None
        try:
            found = self.package[full_name.removeprefix(self.package.path + ".")]
        except KeyError:
            return None
        return found if isinstance(found, griffe.Object) else None


def load_package(package: Path = PACKAGE) -> griffe.Module:
    """The package as griffe reads it: statically, without importing it, and without extensions.

    (Griffe's built-in extensions would add the ``__init__`` that ``@dataclass``
    writes; it is not in the source, so no page could link to it.)
    """
    loader = griffe.GriffeLoader(search_paths=[str(package.parent)], extensions=griffe.Extensions())
    loaded = loader.load(package.name)
    assert isinstance(loaded, griffe.Module)
    return loaded


def scan_code(package: Path = PACKAGE) -> CodeIndex:
    """Load the package with griffe and index what the docs need, module by module in path order."""
    root = load_package(package)
    index = CodeIndex(package=root)
    modules = sorted(_modules(root), key=lambda module: _relative(module))
    for module in modules:
        _index_module(module, index)
    missed = {path.relative_to(ROOT).as_posix() for path in package.rglob("*.py")} - set(index.modules)
    if missed:
        log.warning("griffe did not load %s (a folder without __init__.py?)", ", ".join(sorted(missed)))
    return index


def _modules(module: griffe.Module) -> list[griffe.Module]:
    """The module and every module and subpackage inside it."""
    found = [module]
    for member in module.members.values():
        if not member.is_alias and isinstance(member, griffe.Module):
            found.extend(_modules(member))
    return found


def _relative(module: griffe.Module) -> Path:
    assert isinstance(module.filepath, Path), f"{module.path} is a namespace package"
    return module.filepath.relative_to(ROOT)


def _index_module(module: griffe.Module, index: CodeIndex) -> None:
    relative = _relative(module).as_posix()
    source = (ROOT / relative).read_text(encoding="utf-8")
    index.sources[relative] = source
    lines = source.splitlines()
    docstring = module.docstring.value if module.docstring else ""
    summary, tags = parse_tags(docstring)
    definition = Definition(module.path, relative, "", 1, len(lines), summary, tags, paragraphs(docstring),
                            docstring=docstring)
    index.modules[relative] = definition
    owners = [definition]
    for member in sorted(_members(module), key=lambda m: (m.lineno or 0, m.path.count("."))):
        owners.append(_definition(member, module, relative, lines))
    index.definitions.extend(owners)
    _attach_comments(source, owners, index)
    _find_emits_and_checks(ast.parse(source), owners, index)


def _members(holder: griffe.Object) -> list[griffe.Object]:
    """The classes, functions and properties defined in a module or class, and in its classes, recursively."""
    found: list[griffe.Object] = []
    for member in holder.members.values():
        if member.is_alias or not isinstance(member, griffe.Object):
            continue  # an imported name
        if isinstance(member, griffe.Class):
            found.append(member)
            found.extend(_members(member))
        elif isinstance(member, griffe.Function) or (
                isinstance(member, griffe.Attribute) and "property" in member.labels):
            found.append(member)
    return found


def _definition(member: griffe.Object, module: griffe.Module, path: str, lines: list[str]) -> Definition:
    docstring = member.docstring.value if member.docstring else ""
    summary, tags = parse_tags(docstring)
    first = member.lineno or 1
    if isinstance(member, griffe.Attribute):
        # Griffe starts a property at its ``def``; functions and classes start at their first decorator.
        while first > 1 and lines[first - 2].lstrip().startswith("@"):
            first -= 1
    qualname = member.path.removeprefix(module.path + ".")
    return Definition(module.path, path, qualname, first, member.endlineno or first, summary, tags,
                      paragraphs(docstring), docstring=docstring)


def _comments(source: str) -> list[Comment]:
    """Every comment, with consecutive comment-only lines joined into one block."""
    blocks: list[Comment] = []
    previous_line = -2
    previous_own_line = False
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        text = token.string.lstrip("#").strip()
        own_line = token.line.strip().startswith("#")
        if own_line and previous_own_line and token.start[0] == previous_line + 1 and blocks:
            blocks[-1].text += " " + text
        else:
            blocks.append(Comment(token.start[0], text))
        previous_line, previous_own_line = token.start[0], own_line
    return blocks


def innermost(owners: list[Definition], line: int) -> Definition:
    """The definition that most closely encloses ``line`` (at worst, the module)."""
    containing = [d for d in owners if d.line <= line <= d.end_line]
    return max(containing, key=lambda d: d.line)


# "# Figure 2: nextIndex[], the next entry to send": a paper name, then an optional note.
FIELD_NOTE = re.compile(r"(?P<figure>Figure (?:2|13)): (?P<name>[A-Za-z]\w*(?:\[\])?(?: and [A-Za-z]\w*)?)"
                        r"(?P<note>(?:[,.(: ].*)?)$")


def _attach_comments(source: str, owners: list[Definition], index: CodeIndex) -> None:
    lines = source.splitlines()
    for comment in _comments(source):
        owner = innermost(owners, comment.line)
        owner.comments.append(comment)
        match = FIELD_NOTE.match(comment.text)
        if match:
            name = _assigned_name(lines, comment.line)
            if name:
                note = match["note"].lstrip(",").strip()
                index.fields.append(FieldNote(match["figure"], match["name"], note, owner, name, comment.line))


def _assigned_name(lines: list[str], line: int) -> str:
    """The name assigned on ``line``, or on the next code line when the comment stands alone."""
    pattern = re.compile(r"^\s*(?:self\.)?(?P<name>[A-Za-z_]\w*)\s*(?::[^=]+)?=|^\s*(?P<field>[a-z_]\w*)\s*:")
    text = lines[line - 1]
    if text.strip().startswith("#"):
        for following in lines[line:]:
            if following.strip() and not following.strip().startswith("#"):
                text = following
                break
    match = pattern.match(text)
    return (match["name"] or match["field"]) if match else ""


def _public_callers(tree: ast.AST, name: str, depth: int = 3) -> list[str]:
    """The public functions of this module that an event reported in ``name`` names (protocol_function).

    A public function names itself; a private helper reports for the public
    functions that call it, followed up to ``depth`` helpers deep.
    """
    if not name.startswith("_"):
        return [name]
    if depth == 0:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name == name:
            continue
        calls = any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == name
                    for c in ast.walk(node))
        if calls:
            found.extend(n for n in _public_callers(tree, node.name, depth - 1) if n not in found)
    return found


def _find_emits_and_checks(tree: ast.AST, owners: list[Definition], index: CodeIndex) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        texts = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        where = innermost(owners, node.lineno)
        if node.func.attr in ("emit", "_emit") and texts:
            # NodeEvents.emit(kind, func, ...) or EventLog.emit(node, kind, func, ...)
            if len(texts) >= 3 and texts[1] is not None and texts[2] is not None:
                kind, func = texts[1], texts[2]
            else:
                kind, func = texts[0], texts[1] if len(texts) > 1 else None
            if kind:
                index.emits.append(Emit(kind, func or "", where, node.lineno))
        elif node.func.attr == "observe" and node.args and isinstance(node.args[0], ast.Call) \
                and isinstance(node.args[0].func, ast.Name) and node.args[0].func.id in REPORT_KINDS:
            # Raft.observe(SomeReport(...)): the report class names the kind; the event's
            # func is the public protocol function that called (events.protocol_function).
            short = where.qualname.rsplit(".", 1)[-1] if where is not None else ""
            kind = REPORT_KINDS[node.args[0].func.id]
            if short in SETTERS:
                index.emits.append(Emit(kind, "", where, node.lineno))
            else:
                for name in _public_callers(tree, short):
                    index.emits.append(Emit(kind, name, where, node.lineno))
        elif node.func.attr == "_fail" and texts and texts[0]:
            index.checks.append(CheckSite(texts[0], where, node.lineno))
