"""The Go ↔ Python map (docs/maps/go-python.md): one row for every Go function of hashicorp/raft v1.7.3.

The rows come from three places:

* the list of Go functions, docs/data/hashicorp-raft-v1.7.3.tsv (see
  ``go_functions``), which fixes what the map must cover, with each
  function's line, so that its name links to the Go source;
* the ``Mirrors:`` lines of the docstrings, which say which Go code a Python
  definition follows;
* docs/data/go-map-notes.toml, for what no docstring says: why a Go function
  was left out, and the Python home of a Go function whose module cannot name
  it yet.

How a ``Mirrors:`` line is read. Only its first sentence names Go code; what
follows is prose. In it, a Go name is a word in ``double backticks``, a word
with a capital letter (``runFollower``, ``Apply``), a word followed by ``(``,
or the word right after a file name (``util.go backoff``). A name with a
receiver (``(*FileSnapshotSink).Close``, ``netConn.Release``) is that method.
A bare name that several Go functions share is narrowed down by the Go type
that the Python class around the definition mirrors, then by the files the
line names, then by the files its module mirrors. The name of a Go type is a
type, even where a method has the same name (``ReloadableConfig``).

Two conventions fill in what a line would only repeat (house style, rule 4:
Go's names, in snake_case). A Python class that mirrors a Go type ``T`` also
mirrors ``T``'s constructor, ``NewT`` or ``newT``; and a method of that class
without a ``Mirrors:`` line of its own, whose name is a Go method of ``T`` in
snake_case (``InmemStore.store_logs``), mirrors that method.

A line that names no Go function (a type, an interface, a case of a
``select``) is listed with the other names of its Go file. One that follows
code outside hashicorp/raft's package (Go's runtime or standard library,
raft-boltdb, porcupine, the ``fuzzy/`` tests) is listed in a section of its
own, and so is every definition in a module that mirrors no file of the
package.
"""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import griffe

from .code_index import CodeIndex, Definition
from .common import DOCS, cell, code_words, log
from .go_functions import GO_FUNCTIONS, SOURCE_URL, VERSION, GoFunction, read_go_files, read_go_functions
from .links import code_link, relative_href, source_page
from .tags import references

NOTES = DOCS / "data" / "go-map-notes.toml"

GO_FILE = re.compile(r"[\w./-]+\.go\b")
QUALIFIED = re.compile(r"\(\*?(?P<paren>\w+)\)\.(?P<method>\w+)|\b(?P<type>[A-Za-z_]\w*)\.(?P<name>[A-Za-z_]\w*)")
WORD = re.compile(r"``(?P<quoted>\w+)(?:\(\))?``|\b(?P<word>[A-Za-z_]\w*)\b(?P<call>\()?")
# A line about code outside hashicorp/raft's package: Go itself, other repositories, the fuzzy/ tests.
OUTSIDE = re.compile(r"^Go\b|\bGo's\b|\bruntime/|raft-boltdb|porcupine|fuzzy/|go-metrics")
CONNECTIVES = {"and", "or"}


def snake_case(go_name: str) -> str:
    """``GetRPCHeader`` -> ``get_rpc_header``, ``LeaderWithID`` -> ``leader_with_id``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", go_name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def first_sentence(text: str) -> str:
    """The part of a Mirrors line that names code; what follows the first full stop is prose."""
    return re.split(r"\.(?:\s|$)", text.strip(), maxsplit=1)[0].strip()


@dataclass
class Mirror:
    """A Python definition that mirrors some Go code, and what its ``Mirrors:`` line says of it."""

    definition: Definition
    text: str = ""  # the first sentence of its Mirrors line(s)
    functions: list[GoFunction] = field(default_factory=list)  # the Go functions it names
    types: set[str] = field(default_factory=set)  # the Go types it names (receivers of some function)
    files: list[str] = field(default_factory=list)  # the package's files it names
    note: str = ""  # the sentence, when it says more than names (e.g. "the commitCh case of leaderLoop")


@dataclass
class Row:
    """One Go function and its Python counterparts, or the reason it has none."""

    function: GoFunction
    counterparts: list[Mirror] = field(default_factory=list)
    left_out: str = ""


@dataclass
class GoMap:
    """The whole map: a row per Go function, and what the code mirrors besides functions."""

    rows: list[Row]
    other_names: dict[str, list[Mirror]]  # Go file -> definitions mirroring its types, interfaces, values
    outside: list[Mirror]  # definitions that follow code outside hashicorp/raft's package
    own: list[Definition]  # modules with no Go twin at all
    modules: dict[str, list[Definition]]  # Go file -> the Python modules that mirror it
    problems: list[str]  # what the map could not make sense of; each fails the build


class GoNames:
    """The Go functions of the list, looked up by name, receiver and file."""

    def __init__(self, functions: list[GoFunction], files: list[str]) -> None:
        self.functions = functions
        self.files = set(files)
        self.by_name: dict[str, list[GoFunction]] = defaultdict(list)
        self.methods: dict[str, list[GoFunction]] = defaultdict(list)  # receiver -> its methods
        for function in functions:
            self.by_name[function.name].append(function)
            if function.receiver:
                self.methods[function.receiver].append(function)
        self.by_key = {f"{f.file} {f.key}": f for f in functions}

    def is_type(self, name: str) -> bool:
        return name in self.methods

    def find(self, name: str, receivers: set[str], files: list[list[str]]) -> list[GoFunction]:
        """The Go functions a bare ``name`` may mean; exactly one if the context tells them apart.

        ``receivers`` are the types the context suggests ("" for a plain
        function), ``files`` the Go files it suggests, most telling first.
        Each narrows the candidates only if some are left.
        """
        candidates = self.by_name.get(name, [])
        if len(candidates) > 1 and any(c.receiver in receivers for c in candidates):
            candidates = [c for c in candidates if c.receiver in receivers]
        for hint in files:
            if len(candidates) > 1 and any(c.file in hint for c in candidates):
                candidates = [c for c in candidates if c.file in hint]
        return candidates

    def constructors(self, go_type: str) -> list[GoFunction]:
        """``NewT`` or ``newT``: the plain functions that build a ``T``."""
        wanted = {f"New{go_type[0].upper()}{go_type[1:]}", f"new{go_type[0].upper()}{go_type[1:]}"}
        return [f for name in wanted for f in self.by_name.get(name, []) if not f.receiver]


def read_mirror(definition: Definition, names: GoNames, receivers: set[str], module_files: list[str],
                problems: list[str]) -> Mirror:
    """What ``definition``'s Mirrors lines name, read in the context of its class and module."""
    texts = [first_sentence(text) for text in definition.tag("Mirrors")]
    mirror = Mirror(definition, "; ".join(texts))
    leftover = False  # words that are neither Go names nor file names
    for text in texts:
        text_files = [f for f in GO_FILE.findall(text) if f in names.files]
        mirror.files.extend(f for f in text_files if f not in mirror.files)
        places = [text_files, module_files]
        found: list[GoFunction] = []
        rest = GO_FILE.sub(" ", text)
        for match in QUALIFIED.finditer(rest):
            receiver, name = match["paren"] or match["type"], match["method"] or match["name"]
            candidates = [f for f in names.by_name.get(name, []) if f.receiver == receiver]
            if candidates:
                found.extend(candidates)
            elif names.is_type(receiver):
                problems.append(f"{definition.full_name}: Mirrors names {match[0]}, which is no Go method")
            else:
                leftover = True  # time.After, net.Listener: Go's library
        rest = QUALIFIED.sub(" ", rest)
        file_match = GO_FILE.search(text)  # "util.go backoff": the word after a file name is a Go name
        after_file = re.match(r"\s*(\w+)", text[file_match.end():]) if file_match else None
        for match in WORD.finditer(rest):
            name = match["quoted"] or match["word"]
            code_like = bool(match["quoted"] or match["call"] or re.search(r"[A-Z]", name)
                             or (after_file and after_file[1] == name) or rest.strip(" .,()") == name)
            if not code_like:
                leftover = leftover or name not in CONNECTIVES
            elif names.is_type(name):
                mirror.types.add(name)
            elif name in names.by_name:
                hints = receivers if "." in definition.qualname else {""}
                candidates = names.find(name, hints, places)
                if len(candidates) == 1:
                    found.append(candidates[0])
                else:
                    problems.append(f"{definition.full_name}: Mirrors names {name}, which may be any of "
                                    f"{', '.join(f'{c.file} {c.key}' for c in candidates)}")
            else:
                leftover = True  # a type that has no methods, a variable, a case of a select
        mirror.functions.extend(f for f in found if f not in mirror.functions)
    if leftover:
        mirror.note = mirror.text
    return mirror


@dataclass
class _Claims:
    """Who mirrors what, as the modules are read.

    ``implicit`` holds what the two naming conventions find; a Go function
    gets those only if no ``Mirrors:`` line and no note names it.
    """

    functions: dict[GoFunction, list[Mirror]] = field(default_factory=lambda: defaultdict(list))
    by_modules: dict[GoFunction, list[Mirror]] = field(default_factory=lambda: defaultdict(list))
    implicit: dict[GoFunction, list[Mirror]] = field(default_factory=lambda: defaultdict(list))
    other_names: dict[str, list[Mirror]] = field(default_factory=lambda: defaultdict(list))
    outside: list[Mirror] = field(default_factory=list)
    classes: list[tuple[Definition, set[str]]] = field(default_factory=list)  # class -> Go types it mirrors

    def add(self, function: GoFunction, mirror: Mirror, table: dict[GoFunction, list[Mirror]] | None = None) -> None:
        claims = self.functions if table is None else table
        if all(m.definition.full_name != mirror.definition.full_name for m in claims[function]):
            claims[function].append(mirror)

    def of(self, function: GoFunction) -> list[Mirror]:
        return self.functions.get(function) or self.by_modules.get(function) or self.implicit.get(function, [])


def build_map(index: CodeIndex, go_list: Path = GO_FUNCTIONS, notes_path: Path = NOTES) -> GoMap:
    """Match every Go function with the definitions that mirror it, then apply the notes file."""
    names = GoNames(read_go_functions(go_list), read_go_files(go_list))
    notes = tomllib.loads(notes_path.read_text(encoding="utf-8"))
    problems: list[str] = []
    claims = _Claims()
    own: list[Definition] = []
    modules: dict[str, list[Definition]] = defaultdict(list)
    class_types = {name: {go_type} for name, go_type in notes.get("classes", {}).items()}
    meanings = {name: names.by_key.get(key) for name, key in notes.get("mirrors", {}).items()}
    for name, function in meanings.items():
        if function is None:
            problems.append(f"go-map-notes.toml: [mirrors] gives {name} a Go function that is not in the Go list")
    for module in index.modules.values():
        module_text = first_sentence(" ".join(module.tag("Mirrors")))
        if module_text.lower().startswith("nothing"):
            own.append(module)
            continue
        module_files = [f for f in GO_FILE.findall(module_text) if f in names.files]
        for go_file in module_files:
            modules[go_file].append(module)
        _read_module(module, index, names, module_files, class_types, meanings, claims, problems)
    _naming_conventions(index, names, claims)
    from_notes = _apply_counterparts(notes, index, names, claims, problems)
    rows = _rows(notes, names, claims, problems)
    other_names = {f: [m for m in ms if m.definition.full_name not in from_notes]
                   for f, ms in claims.other_names.items()}
    return GoMap(rows, {f: ms for f, ms in other_names.items() if ms}, claims.outside, own, dict(modules), problems)


def _read_module(module: Definition, index: CodeIndex, names: GoNames, module_files: list[str],
                 class_types: dict[str, set[str]], meanings: dict[str, GoFunction | None], claims: _Claims,
                 problems: list[str]) -> None:
    types_of: dict[str, set[str]] = {}  # qualname of a class -> the Go types it mirrors
    for definition in (d for d in index.definitions if d.path == module.path):
        parent = definition.qualname.rpartition(".")[0]
        receivers = types_of.get(parent, set()) if parent else set()  # for a method: its class's Go types
        own_types = class_types.get(definition.full_name, set())
        if not definition.tag("Mirrors"):
            types_of[definition.qualname] = own_types
            if own_types:
                claims.classes.append((definition, own_types))
            continue
        text = first_sentence(" ".join(definition.tag("Mirrors")))
        names_a_file = any(f in names.files for f in GO_FILE.findall(text))
        if not names_a_file and (not module_files or OUTSIDE.search(text)):
            claims.outside.append(Mirror(definition, text))
            continue
        if definition.full_name in meanings:  # the notes say what an ambiguous line means
            function = meanings[definition.full_name]
            mirror = Mirror(definition, text, [function] if function else [])
        else:
            mirror = read_mirror(definition, names, receivers, module_files, problems)
        types_of[definition.qualname] = mirror.types | own_types
        if definition.qualname and types_of[definition.qualname]:
            claims.classes.append((definition, types_of[definition.qualname]))
        if definition is module:
            for function in mirror.functions:
                claims.add(function, mirror, claims.by_modules)
            continue
        for function in mirror.functions:
            claims.add(function, mirror)
        if not mirror.functions or mirror.types - {f.receiver for f in mirror.functions}:
            claims.other_names[(mirror.files or module_files)[0]].append(mirror)


def python_names(go_name: str) -> set[str]:
    """The names a Python method may give a Go method: snake_case, private or not, and Go's two special ones."""
    special = {"String": {"__str__", "__repr__"}, "init": {"__init__"}}
    if go_name in special:
        return special[go_name]
    return {snake_case(go_name), "_" + snake_case(go_name)}


def _naming_conventions(index: CodeIndex, names: GoNames, claims: _Claims) -> None:
    """A class that mirrors Go type ``T`` mirrors ``NewT``; its methods named like ``T``'s mirror those.

    A method with a ``Mirrors:`` line of its own says what it mirrors, so
    only the others are matched by name. A Go getter may also match an
    attribute of the class (``appendFuture.Start`` -> ``AppendFuture.start``).
    """
    for cls, go_types in claims.classes:
        members = {d.qualname.rpartition(".")[2]: d for d in index.definitions
                   if d.path == cls.path and d.qualname.rpartition(".")[0] == cls.qualname}
        found = index.griffe_object(cls.full_name)
        attributes = {name: member for name, member in (found.members.items() if found else [])
                      if isinstance(member, griffe.Attribute) and "property" not in member.labels}
        for go_type in sorted(go_types):
            for constructor in names.constructors(go_type):
                claims.add(constructor, Mirror(cls, go_type), claims.implicit)
            for method in names.methods.get(go_type, []):
                for name in sorted(python_names(method.name)):
                    if name in members and not members[name].tag("Mirrors"):
                        claims.add(method, Mirror(members[name], method.name), claims.implicit)
                    elif name in attributes and attributes[name].lineno:
                        line = attributes[name].lineno
                        attribute = Definition(cls.module, cls.path, f"{cls.qualname}.{name}", line, line)
                        claims.add(method, Mirror(attribute, method.name), claims.implicit)


def _apply_counterparts(notes: dict[str, object], index: CodeIndex, names: GoNames, claims: _Claims,
                        problems: list[str]) -> set[str]:
    """The notes' [counterparts]: Go function -> Python definitions. Returns the definitions' full names.

    A counterpart is a name (``"raft.raft.RaftLoops.set_state"``), a list of
    names, or a table with ``python`` (a name or a list) and a ``note``.
    """
    used: set[str] = set()
    table = notes.get("counterparts", {})
    assert isinstance(table, dict)
    for key, value in table.items():
        function = names.by_key.get(key)
        if function is None:
            problems.append(f"go-map-notes.toml: [counterparts] names {key!r}, which is not in the Go list")
            continue
        note = value.get("note", "") if isinstance(value, dict) else ""
        targets = value.get("python", []) if isinstance(value, dict) else value
        for target in [targets] if isinstance(targets, str) else targets:
            definition = _find(index, target)
            if definition is None:
                problems.append(f"go-map-notes.toml: [counterparts] {key!r} names {target!r}, which is not in raft/")
                continue
            claims.add(function, Mirror(definition, note, [function], note=note))
            used.add(definition.full_name)
    return used


def _find(index: CodeIndex, full_name: str) -> Definition | None:
    """A definition, or an attribute of a class, by its full name (``raft.api.Raft.leader_ch``)."""
    for definition in index.definitions:
        if definition.full_name == full_name:
            return definition
    owner_name, _, attribute = full_name.rpartition(".")
    owner = next((d for d in index.definitions if d.full_name == owner_name), None)
    found = index.griffe_object(full_name)
    if owner is None or not isinstance(found, griffe.Attribute) or not found.lineno:
        return None
    return Definition(owner.module, owner.path, f"{owner.qualname}.{attribute}", found.lineno, found.lineno)


def _rows(notes: dict[str, object], names: GoNames, claims: _Claims, problems: list[str]) -> list[Row]:
    reasons = notes.get("reasons", {})
    whole_files = notes.get("files", {})
    left_out = notes.get("left_out", {})
    assert isinstance(reasons, dict) and isinstance(whole_files, dict) and isinstance(left_out, dict)
    for key in left_out:
        if key not in names.by_key:
            problems.append(f"go-map-notes.toml: [left_out] names {key!r}, which is not in the Go list")
    rows = []
    for function in names.functions:
        key = f"{function.file} {function.key}"
        counterparts = claims.of(function)
        reason = left_out.get(key) or whole_files.get(function.file, "")
        if counterparts and key in left_out:
            problems.append(f"go-map-notes.toml: {key} is left out, but "
                            f"{counterparts[0].definition.full_name} mirrors it")
        rows.append(Row(function, counterparts, "" if counterparts else str(reasons.get(reason, reason))))
    return rows


# -- the page ----------------------------------------------------------------------------------


def go_link(function: GoFunction) -> str:
    return f"[`{function.key}`]({function.url})"


def python_cell(page_src: str, row: Row) -> str:
    if not row.counterparts:
        return f"*left out:* {cell(code_words(row.left_out))}" if row.left_out else "**no counterpart recorded**"
    links = []
    for mirror in row.counterparts:
        link = code_link(page_src, mirror.definition)
        if mirror.note:
            link += f" ({cell(code_words(mirror.note))})"
        links.append(link)
    return "<br>".join(dict.fromkeys(links))


def counts(go_map: GoMap) -> tuple[int, int, int]:
    """(mapped, left out, total) Go functions."""
    mapped = sum(1 for row in go_map.rows if row.counterparts)
    left = sum(1 for row in go_map.rows if not row.counterparts and row.left_out)
    return mapped, left, len(go_map.rows)


def go_python_map(page_src: str, index: CodeIndex) -> str:
    """One table per Go file, one row per Go function; then the other names, what lies outside, our own modules."""
    go_map = build_map(index)
    for problem in go_map.problems:
        log.warning("Go ↔ Python map: %s", problem)
    mapped, left, total = counts(go_map)
    for row in go_map.rows:
        if not row.counterparts and not row.left_out:
            log.info("Go ↔ Python map: %s %s has no row", row.function.file, row.function.key)
    out = [f"**{total}** functions and methods of hashicorp/raft {VERSION}: **{mapped}** have a Python "
           f"counterpart, **{left}** were left out, each with its reason.\n"]
    by_file: dict[str, list[Row]] = defaultdict(list)
    for row in go_map.rows:
        by_file[row.function.file].append(row)
    for go_file in sorted(set(by_file) | set(go_map.other_names)):
        out.extend(_file_section(page_src, go_file, by_file.get(go_file, []), go_map))
    if go_map.outside:
        out.append("### Outside hashicorp/raft's package\n")
        out.append("Code that follows Go's runtime or standard library, hashicorp's other repositories, the "
                   "`fuzzy/` tests, or other projects.\n")
        out.append("| Follows | Python |")
        out.append("|---|---|")
        for mirror in go_map.outside:
            out.append(f"| {cell(code_words(mirror.text))} | {code_link(page_src, mirror.definition)} |")
        out.append("")
    if go_map.own:
        out.append("### Not in hashicorp/raft\n")
        out.append("These modules have no Go twin; their docstrings say what they stand in for or follow.\n")
        for module in go_map.own:
            out.append(f"- {code_link(page_src, module, module.path)}: "
                       f"{cell(code_words(' '.join(module.tag('Mirrors'))))}")
        out.append("")
    return "\n".join(out)


def _file_section(page_src: str, go_file: str, rows: list[Row], go_map: GoMap) -> list[str]:
    python = [f"[`{m.path}`]({relative_href(page_src, source_page(m.path))})" for m in go_map.modules.get(go_file, [])]
    out = [f"### {go_file}\n",
           f"[`{go_file}` at {VERSION}]({SOURCE_URL}/{go_file})" + (f" · Python: {', '.join(python)}" if python else "")
           + "\n"]
    if rows:
        out += [f"| Go (hashicorp/raft {VERSION}) | Python | Paper |", "|---|---|---|"]
        for row in rows:
            paper = ", ".join(dict.fromkeys(p for m in row.counterparts if (p := paper_short(m.definition))))
            out.append(f"| {go_link(row.function)} | {python_cell(page_src, row)} | {paper} |")
        out.append("")
    if go_file in go_map.other_names:
        out += [f"Types, interfaces and other parts of `{go_file}`:\n", "| Go | Python |", "|---|---|"]
        for mirror in go_map.other_names[go_file]:
            go = cell(code_words(_other_name(mirror, go_file)))
            out.append(f"| {go} | {code_link(page_src, mirror.definition)} |")
        out.append("")
    return out


def _other_name(mirror: Mirror, go_file: str) -> str:
    """What a definition mirrors besides functions: the Go types it names, or else its line without the file."""
    if mirror.functions:
        return ", ".join(f"`{t}`" for t in sorted(mirror.types - {f.receiver for f in mirror.functions}))
    text = re.sub(rf"^{re.escape(go_file)}\s*", "", mirror.text).strip() or "the file"
    return f"`{text}`" if re.fullmatch(r"\w+", text) else text


def paper_short(definition: Definition) -> str:
    """The sections and figures a definition cites, or the start of its ``Paper:`` text if it names none."""
    text = " ".join(definition.tag("Paper"))
    refs = list(dict.fromkeys(references(text)))
    if refs:
        return ", ".join(refs)
    return cell(text.split(". ")[0])
