"""MkDocs hooks: the pages generated from the code, and the real output of the tutorials.

The site keeps one source of truth (CONTRIBUTING.md, rule 8). Nothing on it that the
code already says is typed a second time:

* **Maps.** The Go ↔ Python map, the paper map, the list of differences from
  hashicorp/raft and the event index are built at every build from the
  ``Mirrors:``, ``Paper:`` and ``Differs:`` lines of the docstrings (and from
  ``# Figure 2:`` and ``# Differs:`` comments), read with ``ast`` and
  ``tokenize``. A hand-written page asks for a generated part with a marker
  such as ``<!-- @go-python-map -->``.
* **Source pages.** Every module of ``raft/`` gets a page under ``source/``
  with its code and line numbers, so maps and tutorials can link to the line
  that does the work. In Markdown, write ``[text](code:run_follower)`` (or
  ``code:raft.raft.RaftLoops.run_follower``, or ``code:raft/raft.py``); the
  hook turns it into a link to that line and fails the build if the name is
  unknown or ambiguous.
* **Tutorial output.** Each ``tutorials/NN_*.py`` runs once per build (results
  are cached by a hash of the tutorial and of the whole ``raft/`` package, so
  an unchanged tutorial is not run twice). Its output is cut at the step
  headers printed by ``tutorial_helpers.step`` and written to
  ``tutorial-output/<tutorial>/<step>.txt`` in a cache folder that
  ``pymdownx.snippets`` reads, so a page shows exactly what the code printed.
  A tutorial that fails, or writes to stderr, fails the build.

* **Docstrings and commands.** ``<!-- @docstring-table raft/kv/service.py ... -->``
  and ``<!-- @docstring-block raft/net_frames.py 1 -->`` put a table or a
  literal block of a module docstring on a page (parsed by
  ``rst_docstrings.py``, which also renders the API pages);
  ``<!-- @cli-help raft-kv -->`` shows a command's ``--help`` from its parser.
* **Benchmarks.** ``<!-- @realworld -->`` shows the PySyncObj comparison once
  ``bench/results/realworld.json`` exists, and fails the build if its plot
  is missing or was drawn from other results.

Everything is plain MkDocs (1.6 or newer: ``File.generated``); no extra plugin.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import io
import json
import logging
import os
import posixpath
import re
import shlex
import subprocess
import sys
import tempfile
import time
import tokenize
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.raft_docs")  # warnings here fail `mkdocs build --strict`

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "raft"
TUTORIALS = ROOT / "tutorials"
PRESETS = ROOT / "visualizer" / "presets"
ELECTION_RESULTS = ROOT / "bench" / "results" / "election.json"
REALWORLD_RESULTS = ROOT / "bench" / "results" / "realworld.json"  # written by bench/realworld.py --json
REALWORLD_PLOT = "assets/throughput_vs_pysyncobj.png"  # drawn from it by bench/plots.py
HELP_COLUMNS = "100"  # argparse wraps --help to the terminal's width; the site's is fixed
SCREENSHOT = "assets/visualizer.png"  # refreshed by the browser test with RAFT_UPDATE_SCREENSHOT=1
TUTORIAL_TIMEOUT = 600  # seconds one tutorial may run
STEP_HEADER = re.compile(r"^=== \[(?P<name>[\w-]+)\] (?P<title>.*) ===$")
MARKER = re.compile(r"<!-- @(?P<name>[\w-]+)(?P<args>[^>]*?)\s*-->")
CODE_LINK = re.compile(r"\]\(code:(?P<target>[^)\s#]+)\)")
TAG_NAMES = ("Paper", "Mirrors", "Differs", "Read before", "Read next", "Used by", "Invariant")
TAG_LINE = re.compile(rf"^(?P<tag>{'|'.join(TAG_NAMES)}):\s*(?P<text>.*)$")


# ---------------------------------------------------------------------------
# Reading the code
# ---------------------------------------------------------------------------


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
    line: int
    end_line: int
    summary: str = ""
    tags: dict[str, list[str]] = field(default_factory=dict)  # tag -> texts
    paragraphs: list[str] = field(default_factory=list)  # the docstring's untagged paragraphs
    comments: list[Comment] = field(default_factory=list)  # comments in its own body

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
    inline = _inline_mirrors(summary)
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


def _inline_mirrors(summary: str) -> str:
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


def scan_code(package: Path = PACKAGE) -> CodeIndex:
    """Read every module of the package once and index what the docs need."""
    index = CodeIndex()
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        index.sources[relative] = source
        tree = ast.parse(source)
        module_name = relative[:-3].replace("/", ".").removesuffix(".__init__")
        docstring = ast.get_docstring(tree) or ""
        summary, tags = parse_tags(docstring)
        module = Definition(module_name, relative, "", 1, len(source.splitlines()), summary, tags,
                            paragraphs(docstring))
        index.modules[relative] = module
        index.definitions.append(module)
        owners: list[Definition] = [module]
        _visit(tree, module, "", owners, index)
        _attach_comments(source, owners, index)
        _find_emits_and_checks(tree, owners, index)
    return index


def _visit(node: ast.AST, module: Definition, prefix: str, owners: list[Definition], index: CodeIndex) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            docstring = ast.get_docstring(child) or ""
            summary, tags = parse_tags(docstring)
            qualname = f"{prefix}{child.name}"
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            definition = Definition(module.module, module.path, qualname, first, child.end_lineno or first,
                                    summary, tags, paragraphs(docstring))
            owners.append(definition)
            index.definitions.append(definition)
            _visit(child, module, qualname + ".", owners, index)


def _innermost(owners: list[Definition], line: int) -> Definition:
    containing = [d for d in owners if d.line <= line <= d.end_line]
    return max(containing, key=lambda d: d.line)


def _attach_comments(source: str, owners: list[Definition], index: CodeIndex) -> None:
    lines = source.splitlines()
    for comment in _comments(source):
        owner = _innermost(owners, comment.line)
        owner.comments.append(comment)
        match = FIELD_NOTE.match(comment.text)
        if match:
            name = _assigned_name(lines, comment.line)
            if name:
                note = match["note"].lstrip(",").strip()
                index.fields.append(FieldNote(match["figure"], match["name"], note, owner, name, comment.line))


# "# Figure 2: nextIndex[], the next entry to send": a paper name, then an optional note.
FIELD_NOTE = re.compile(r"(?P<figure>Figure (?:2|13)): (?P<name>[A-Za-z]\w*(?:\[\])?(?: and [A-Za-z]\w*)?)"
                        r"(?P<note>(?:[,.(: ].*)?)$")


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


def _find_emits_and_checks(tree: ast.AST, owners: list[Definition], index: CodeIndex) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        texts = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        where = _innermost(owners, node.lineno)
        if node.func.attr in ("emit", "_emit") and texts:
            # NodeEvents.emit(kind, func, ...) or EventLog.emit(node, kind, func, ...)
            if len(texts) >= 3 and texts[1] is not None and texts[2] is not None:
                kind, func = texts[1], texts[2]
            else:
                kind, func = texts[0], texts[1] if len(texts) > 1 else None
            if kind:
                index.emits.append(Emit(kind, func or "", where, node.lineno))
        elif node.func.attr == "_fail" and texts and texts[0]:
            index.checks.append(CheckSite(texts[0], where, node.lineno))


# ---------------------------------------------------------------------------
# Links to the code
# ---------------------------------------------------------------------------


def source_page(path: str) -> str:
    """``raft/raft.py`` -> ``source/raft/raft.md``."""
    return "source/" + path[:-3] + ".md"


def code_href(page_src: str, definition: Definition, line: int | None = None) -> str:
    """A relative link from the page ``page_src`` to a line of a source page."""
    target = source_page(definition.path)
    href = posixpath.relpath(target, posixpath.dirname(page_src) or ".")
    line = line or definition.line
    return f"{href}#__codelineno-0-{line}" if line > 1 else href


def code_link(page_src: str, definition: Definition, text: str | None = None, line: int | None = None) -> str:
    return f"[`{text or definition.name}`]({code_href(page_src, definition, line)})"


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


def resolve_code_links(markdown: str, page_src: str, index: CodeIndex) -> str:
    def replace(match: re.Match[str]) -> str:
        definition = index.resolve(match["target"])
        if definition is None:
            return match[0]
        return f"]({code_href(page_src, definition)})"

    return outside_code(markdown, lambda text: CODE_LINK.sub(replace, text))


# ---------------------------------------------------------------------------
# Generated tables
# ---------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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
        module_go = go_file_of(mirrors) or _code_words(re.split(r" \(|\. |, ", mirrors)[0].rstrip("."))
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
            out.append(f"| {_cell(_code_words(go))} | {code_link(page_src, definition)} | {_paper_short(definition)} |")
        out.append("")
    if own:
        out.append("### Not in hashicorp/raft\n")
        out.append("These modules have no Go twin; their docstrings say what they stand in for or follow.\n")
        for module in own:
            out.append(f"- {code_link(page_src, module, module.path)}: "
                       f"{_cell(_code_words(' '.join(module.tag('Mirrors'))))}")
        out.append("")
    return "\n".join(out)


def _paper_short(definition: Definition) -> str:
    """The sections and figures a definition cites, or the start of its ``Paper:`` text if it names none."""
    text = " ".join(definition.tag("Paper"))
    refs = list(dict.fromkeys(references(text)))
    if refs:
        return ", ".join(refs)
    return _cell(text.split(". ")[0])


def _code_words(text: str) -> str:
    """Render RST-style ``double backticks`` as Markdown code."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


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
                items.append(f"- {code_link(page_src, definition)}: {_code_words(text)}")
            for comment in definition.comments:
                if comment.text.startswith("Differs:"):
                    text = comment.text.removeprefix("Differs:").strip()
                    items.append(f"- {code_link(page_src, definition, line=comment.line)} "
                                 f"(line {comment.line}): {_code_words(text)}")
        if items:
            count += len(items)
            out.append(f"### {module.path}\n")
            out.extend(items)
            out.append("")
    return f"{count} differences are recorded in the code.\n\n" + "\n".join(out)


@dataclass(frozen=True)
class Rule:
    """One rule of a paper figure, and how to recognise the code's citations of it.

    ``context`` must match the citing definition's own ``Paper:`` text;
    ``text`` must match the citation (a ``Paper:`` line or a comment).
    """

    box: str
    number: str
    summary: str  # our own words
    text: str
    context: str = ""


FIGURE_2_RULES = [
    Rule("AppendEntries RPC, receiver", "1", "Refuse a leader whose term is older than ours.",
         r"^rule 1\b", r"appendentries rpc"),
    Rule("AppendEntries RPC, receiver", "2",
         "Refuse if our log has no entry at prevLogIndex with term prevLogTerm (the consistency check).",
         r"^rule 2\b|prevlogindex whose term matches", r"appendentries rpc"),
    Rule("AppendEntries RPC, receiver", "3",
         "If an entry we hold conflicts with a new one (same index, other term), delete it and all after it.",
         r"rule 3\b|existing entry conflicts"),
    Rule("AppendEntries RPC, receiver", "4", "Append the new entries we do not have yet.",
         r"rule 4\b|append any new entries"),
    Rule("AppendEntries RPC, receiver", "5", "Move commitIndex up to min(leaderCommit, index of the last new entry).",
         r"^rule 5\b|leadercommit > commitindex"),
    Rule("RequestVote RPC, receiver", "1", "Refuse a candidate whose term is older than ours.",
         r"^rule 1\b", r"requestvote rpc"),
    Rule("RequestVote RPC, receiver", "2",
         "Grant the vote only if we have not voted for someone else in this term and the candidate's log is "
         "at least as up-to-date as ours.",
         r"^rule 2\b|votedfor is null|at least as up-to-date", r"requestvote rpc"),
    Rule("Rules for Servers, all servers", "1", "While commitIndex > lastApplied, apply the next entry to the "
         "state machine.", r"commitindex > lastapplied|all servers, first rule|all servers: apply"),
    Rule("Rules for Servers, all servers", "2",
         "A request or response with a newer term T: set currentTerm = T and become a follower.",
         r"term t > currentterm|all servers: a newer term|newer term makes us a follower"),
    Rule("Rules for Servers, followers", "1", "Answer the RPCs of candidates and leaders.",
         r"followers: \"?respond to rpcs"),
    Rule("Rules for Servers, followers", "2",
         "If the election timeout passes without a leader's AppendEntries or a vote granted, become a "
         "candidate.", r"followers: \"if election timeout|rules for servers, followers"),
    Rule("Rules for Servers, candidates", "1",
         "On becoming a candidate: increment currentTerm, vote for yourself, reset the election timer, "
         "send RequestVote to all.", r"on conversion to candidate"),
    Rule("Rules for Servers, candidates", "2", "With votes from a majority, become leader.",
         r"votes received from majority"),
    Rule("Rules for Servers, candidates", "3", "On an AppendEntries from a new leader, become a follower.",
         r"appendentries rpc received from new leader|candidate that hears from a leader"),
    Rule("Rules for Servers, candidates", "4", "If the election timeout passes, start a new election.",
         r"candidates: \"if election timeout|start new election"),
    Rule("Rules for Servers, leaders", "1",
         "On election, and then whenever idle, send empty AppendEntries (heartbeats) to every server.",
         r"upon election|periodic heartbeats|idle periods"),
    Rule("Rules for Servers, leaders", "2",
         "On a client command: append it to the local log; answer after it has been applied.",
         r"command received from client"),
    Rule("Rules for Servers, leaders", "3",
         "If a follower lacks entries, send them from its nextIndex; on success update its nextIndex and "
         "matchIndex; on a log mismatch, decrement nextIndex and retry.",
         r"last log index >= nextindex|decrement nextindex|update nextindex and matchindex|nextindex starts"),
    Rule("Rules for Servers, leaders", "4",
         "Commit index N once a majority's matchIndex ≥ N and log[N].term is the current term.",
         r"exists an n such that|leaders, last rule|set commitindex = n"),
]

FIGURE_13_RULES = [
    Rule("InstallSnapshot RPC, receiver", "1", "Refuse a leader whose term is older than ours.",
         r"^rule 1\b", r"figure 13"),
    Rule("InstallSnapshot RPC, receiver", "2–5", "Create the snapshot and write the data as it arrives.",
         r"^rules 2–5|^rule [2-5]\b", r"figure 13"),
    Rule("InstallSnapshot RPC, receiver", "6",
         "If our log holds the snapshot's last entry (same index and term), keep the entries after it.",
         r"rules 6 and 7|^rule 6\b"),
    Rule("InstallSnapshot RPC, receiver", "7", "Otherwise discard the entire log.",
         r"rules 6 and 7|rule 7\b"),
    Rule("InstallSnapshot RPC, receiver", "8",
         "Reset the state machine from the snapshot, and take its configuration.",
         r"^rule 8\b", r"figure 13"),
]


@dataclass
class Citation:
    definition: Definition
    text: str
    line: int


def citations(index: CodeIndex) -> list[tuple[Citation, str]]:
    """(citation, context) pairs: every ``Paper:`` text, docstring paragraph and comment of a definition.

    The context of a citation is the ``Paper:`` text of its definition. A
    private helper without one (``_decide_vote``) borrows it from the nearest
    definition before it in the same class or module that has one
    (``request_vote``): in this code a helper follows the function it serves.
    Failing that, the module's ``Paper:`` text is the context.
    """
    found = []
    borrowed: dict[tuple[str, str], str] = {}  # (path, parent) -> latest Paper text seen there
    for definition in index.definitions:
        parent = definition.qualname.rpartition(".")[0]
        own = " ".join(definition.tag("Paper"))
        if own:
            borrowed[(definition.path, parent)] = own
        elif definition.qualname.rpartition(".")[2].startswith("_"):
            own = borrowed.get((definition.path, parent), "")
        context = own or " ".join(index.modules[definition.path].tag("Paper"))
        for text in [*definition.tag("Paper"), *(definition.paragraphs if definition.qualname else [])]:
            found.append((Citation(definition, text, definition.line), context))
        for comment in definition.comments:
            found.append((Citation(definition, comment.text, comment.line), context))
    return found


def rule_table(page_src: str, index: CodeIndex, rules: list[Rule], missing: list[str]) -> str:
    found = citations(index)
    out = []
    box = ""
    for rule in rules:
        if rule.box != box:
            box = rule.box
            out += ["", f"#### {box}", "", "| Rule | In short | Enforced in |", "|---|---|---|"]
        where: dict[str, str] = {}
        for citation, context in found:
            if rule.context and not re.search(rule.context, context, re.IGNORECASE):
                continue
            if re.search(rule.text, citation.text, re.IGNORECASE):
                link = code_link(page_src, citation.definition, line=citation.line)
                where.setdefault(citation.definition.full_name, link)
        if not where:
            missing.append(f"{rule.box} {rule.number}")
        cell = ", ".join(where.values()) or "*not cited in the code yet*"
        out.append(f"| {rule.number} | {_cell(rule.summary)} | {cell} |")
    return "\n".join(out) + "\n"


def field_table(page_src: str, index: CodeIndex) -> str:
    out = ["| Paper | Python | Where | Note |", "|---|---|---|---|"]
    for note in index.fields:
        owner = note.owner.qualname.removesuffix(".__init__")
        python = f"{owner}.{note.python_name}" if owner else note.python_name
        link = code_link(page_src, note.owner, python, note.line)
        note_text = _cell(_code_words(note.note))
        out.append(f"| {note.figure}: `{note.paper_name}` | {link} | {note.owner.path} | {note_text} |")
    return "\n".join(out) + "\n"


def figure_3_table(page_src: str, index: CodeIndex) -> str:
    by_rule: dict[str, dict[str, str]] = defaultdict(dict)
    for check in index.checks:
        by_rule[check.rule].setdefault(check.where.full_name, code_link(page_src, check.where, line=check.line))
    out = ["| Property | Checked in |", "|---|---|"]
    for rule, links in by_rule.items():
        out.append(f"| {rule} | {', '.join(links.values())} |")
    return "\n".join(out) + "\n"


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


def paper_index(page_src: str, index: CodeIndex) -> str:
    """Every section and figure cited in a ``Paper:`` line, with the definitions that cite it."""
    cited: dict[str, dict[str, str]] = defaultdict(dict)
    for definition in index.definitions:
        for ref in references(" ".join(definition.tag("Paper"))):
            cited[ref][definition.full_name] = code_link(page_src, definition)

    def order(key: str) -> tuple[int, list[int]]:
        group = 2 if key.startswith("Thesis") else 0 if key.startswith("Fig") else 1
        return group, [int(n) for n in re.findall(r"\d+", key)]

    return "\n".join(f"- **{key}**: {', '.join(cited[key].values())}" for key in sorted(cited, key=order)) + "\n"


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
        # A setter (set_commit_index, set_current_term...) is told its caller's name, so the event names
        # the protocol function that made the change rather than the setter.
        named = ', '.join(funcs[kind]) or "the caller's name, passed to the setter"
        out.append(f"| `{kind}` | {', '.join(by_kind[kind].values())} | {named} |")
    return "\n".join(out) + "\n"


def teaching_bugs(page_src: str, index: CodeIndex) -> str:
    """The TeachingBugs switches with the comment above each, and the CLI name."""
    path = "raft/config.py"
    tree = ast.parse(index.sources[path])
    lines = index.sources[path].splitlines()
    owner = index.resolve("raft.config.TeachingBugs")
    out = ["| Switch | `raft-sim fuzz --bug` | What it breaks |", "|---|---|---|"]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "TeachingBugs":
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    comment = []
                    line = item.lineno - 2
                    while line >= 0 and lines[line].strip().startswith("#"):
                        comment.insert(0, lines[line].strip().lstrip("#").strip())
                        line -= 1
                    name = item.target.id
                    link = code_link(page_src, owner, name, item.lineno) if owner else f"`{name}`"
                    out.append(f"| {link} | `{name.replace('_', '-')}` | {_cell(' '.join(comment))} |")
    return "\n".join(out) + "\n"


def scenarios(page_src: str, index: CodeIndex) -> str:
    """The fault simulator's scenarios, from the SCENARIOS table of fuzz.py and each function's docstring."""
    tree = ast.parse(index.sources["raft/sim/fuzz.py"])
    out = ["| Scenario | What it does |", "|---|---|"]
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if not any(isinstance(t, ast.Name) and t.id == "SCENARIOS" for t in targets):
                continue
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Name):
                    definition = index.resolve(f"raft.sim.fuzz.{value.id}")
                    summary = _code_words(definition.summary) if definition else ""
                    link = code_link(page_src, definition, key.value) if definition else key.value
                    out.append(f"| {link} | {_cell(summary)} |")
    return "\n".join(out) + "\n"


def presets() -> str:
    """Each visualizer preset, with an anchor (``#preset-<file name>``) that tutorials link to."""
    out = []
    def number(path: Path) -> tuple[int, str]:
        head = path.stem.split("-", 1)[0]
        return (int(head) if head.isdigit() else 10**6, path.stem)

    for path in sorted(PRESETS.glob("*.json"), key=number):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append(f"### {data.get('title', path.stem)} {{#preset-{path.stem}}}\n")
        out.append(f"{data.get('summary', '')}\n")
        cluster = data.get("cluster", {})
        out.append(f"*File `visualizer/presets/{path.name}`: {cluster.get('nodes', '?')} nodes, "
                   f"seed {cluster.get('seed', '?')}, {len(data.get('steps', []))} narrated steps.*\n")
    return "\n".join(out) if out else "*No presets have been written yet.*\n"


VISUALIZER_PAGE = ROOT / "visualizer" / "templates" / "index.html"


def visualizer_keys() -> str:
    """The keyboard shortcuts, read from the help dialog of the visualizer's page."""
    html = VISUALIZER_PAGE.read_text(encoding="utf-8")
    dialog = re.search(r'<dialog id="help">(.*?)</dialog>', html, re.DOTALL)
    if dialog is None:
        log.warning("visualizer/templates/index.html has no help dialog to read the shortcuts from")
        return ""
    out = ["| Keys | Action |", "|---|---|"]
    for keys, action in re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", dialog[1]):
        out.append(f"| {_cell(keys)} | {_cell(action)} |")
    return "\n".join(out) + "\n"


def visualizer_help() -> str:
    """``raft-visualizer --help``, from the command's own argument parser."""
    return cli_help("raft-visualizer")


def _on_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def command_parser(command: str) -> argparse.ArgumentParser | None:
    """The argument parser of a command of the project: ``raft-kv``, ``raft-sim fuzz``, ..."""
    _on_path()
    program, *sub = command.split()
    if program == "raft-kv" and not sub:
        from raft.kv.service import build_parser as kv_parser

        return kv_parser()
    if program == "raft-visualizer" and not sub:
        from visualizer.cli import build_parser as visualizer_parser

        return visualizer_parser()
    if program == "raft-sim" and len(sub) <= 1:
        from raft.sim.cli import build_parser as sim_parser

        parser = sim_parser()
        if not sub:
            return parser
        for action in parser._actions:  # argparse offers no public way to reach a subcommand's parser
            if isinstance(action, argparse._SubParsersAction) and sub[0] in action.choices:
                return action.choices[sub[0]]  # type: ignore[no-any-return]
    return None


def cli_help(command: str) -> str:
    """``COMMAND --help``, formatted by the command's own argument parser at a fixed width."""
    parser = command_parser(command)
    if parser is None:
        log.warning("no command %r to show the help of", command)
        return ""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        text = parser.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return f'```text title="{command} --help (read from its argument parser)"\n{text}```\n'


# ---------------------------------------------------------------------------
# Parts of module docstrings, shown on pages
# ---------------------------------------------------------------------------


def _rst() -> ModuleType:
    """docs/rst_docstrings.py, which also turns docstrings into Markdown for mkdocstrings."""
    module = sys.modules.get("raft_docs_rst")
    if module is None:
        spec = importlib.util.spec_from_file_location("raft_docs_rst", Path(__file__).with_name("rst_docstrings.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["raft_docs_rst"] = module
        spec.loader.exec_module(module)
    return module


def module_docstring(path: str, index: CodeIndex) -> str:
    source = index.sources.get(path)
    if source is None:
        log.warning("no module %s in raft/", path)
        return ""
    return ast.get_docstring(ast.parse(source)) or ""


def _from_docstring(page_src: str, index: CodeIndex, path: str) -> str:
    module = index.modules[path]
    return f"*From the docstring of [`{path}`]({code_href(page_src, module)}).*\n"


def docstring_block(page_src: str, index: CodeIndex, args: str) -> str:
    """``<!-- @docstring-block raft/net_frames.py 1 -->``: the Nth literal block (``::``) of a module docstring."""
    path, number = [*shlex.split(args), "1"][:2]
    blocks = _rst().literal_blocks(module_docstring(path, index))
    if not number.isdigit() or not 1 <= int(number) <= len(blocks):
        log.warning("%s asks for literal block %s of %s's docstring, which has %d", page_src, number, path,
                    len(blocks))
        return ""
    block = blocks[int(number) - 1]
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", block)), default=0))
    return f'{fence}text title="{path}, from its docstring"\n{block}\n{fence}\n\n' + _from_docstring(
        page_src, index, path)


def docstring_table(page_src: str, index: CodeIndex, args: str) -> str:
    """``<!-- @docstring-table raft/kv/service.py "Request" "What it does" -->``: the first simple table
    of a module docstring, as a Markdown table with the given column headers."""
    path, *headers = shlex.split(args)
    rst = _rst()
    tables = rst.simple_tables(module_docstring(path, index))
    if not tables:
        log.warning("%s asks for a table from %s's docstring, which has none", page_src, path)
        return ""
    table = tables[0]
    if headers and len(headers) != len(table.rows[0]):
        log.warning("%s gives %d headers for a table of %d columns", page_src, len(headers), len(table.rows[0]))
    rows = [[_code_words(cell) for cell in row] for row in table.rows]
    return rst.markdown_table(headers or table.header, rows) + "\n\n" + _from_docstring(
        page_src, index, path)


# ---------------------------------------------------------------------------
# raft-textbook next to PySyncObj (bench/realworld.py)
# ---------------------------------------------------------------------------


def realworld(page_src: str, docs_dir: Path, results: Path = REALWORLD_RESULTS) -> str:
    """The PySyncObj comparison: a table and the plot, once ``bench/results/realworld.json`` exists.

    Until then, a note says the results are to come, and the strict build
    passes. Once it exists, the plot must exist too and must have been drawn
    from that very file (its PNG records the file's SHA-256), or the build fails.
    """
    if not results.is_file():
        return ('!!! note "Results coming"\n    The comparison has not been run on a quiet machine yet. When '
                f"`bench/results/{results.name}` exists, its table and its plot appear here.\n")
    _on_path()
    from bench.plots import SOURCE_KEY, higher_is_better, load_realworld, results_digest

    try:
        data = load_realworld(results)
    except ValueError as err:
        log.warning("%s: %s", results.relative_to(ROOT) if results.is_relative_to(ROOT) else results, err)
        return ""
    picture = docs_dir / REALWORLD_PLOT
    if not picture.is_file():
        log.warning("%s exists but %s does not: draw it with `python -m bench.plots`", results.name, picture)
    else:
        from PIL import Image

        with Image.open(picture) as image:
            recorded = image.text.get(SOURCE_KEY)
        if recorded != results_digest(results):
            log.warning("%s was not drawn from the current %s: redraw it with `python -m bench.plots`",
                        picture.name, results.name)
    out = ["| Measure | raft-textbook | PySyncObj | ratio | better |", "|---|---:|---:|---:|---|"]
    for name, pair in data.items():
        ours, theirs = pair["raft_textbook"], pair["pysyncobj"]
        ratio = f"{ours / theirs:.2f}" if theirs else "–"
        better = "higher" if higher_is_better(name) else "lower"
        out.append(f"| {_cell(name)} | {ours:,.2f} | {theirs:,.2f} | {ratio} | {better} |")
    href = posixpath.relpath(REALWORLD_PLOT, posixpath.dirname(page_src) or ".")
    return ("\n".join(out) + "\n\n*ratio = raft-textbook ÷ PySyncObj, from the same run.*\n\n"
            f"![raft-textbook next to PySyncObj, one panel per measure]({href})\n")


def screenshot(page_src: str, docs_dir: Path) -> str:
    if (docs_dir / SCREENSHOT).is_file():
        href = posixpath.relpath(SCREENSHOT, posixpath.dirname(page_src) or ".")
        return f"![The visualizer in a browser: a five-node ring, the event feed and the logs]({href})\n"
    return ('!!! note "Screenshot coming"\n    The screenshot is taken by the visualizer\'s browser test, which '
            f"writes `docs/{SCREENSHOT}`. It has not been generated in this checkout yet.\n")


def election_summary() -> str:
    """The re-election benchmark's numbers, computed from its JSON results as the benchmark computes them."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.election import percentile

    data = json.loads(ELECTION_RESULTS.read_text(encoding="utf-8"))
    times = sorted(data["failover_seconds"])

    def pct(p: float) -> float:
        return float(percentile(times, p))

    ranks = data["winner_rank"]
    share = {rank: ranks.count(rank) / len(ranks) for rank in sorted(set(ranks))}
    shares = ", ".join(f"{'unknown' if rank == 0 else f'#{rank}'}: {value:.0%}" for rank, value in share.items())
    return (f"| Runs | Median | 99th percentile | Fastest | Slowest |\n|---|---|---|---|---|\n"
            f"| {len(times)} | {pct(50):.3f} s | {pct(99):.3f} s | {times[0]:.3f} s | {times[-1]:.3f} s |\n\n"
            f"Which of the nodes that stood for election won, in the order they stood: {shares}. "
            f"An idle five-node cluster ran {data['idle_speed']:.1f} simulated seconds per wall-clock second "
            f"on the machine that produced these results.\n")


def excerpt(target: str, index: CodeIndex, page_src: str) -> str:
    """The source of one definition, as a code block titled with its file (shown, not run)."""
    definition = index.resolve(target)
    if definition is None:
        return ""
    lines = index.sources[definition.path].splitlines()[definition.line - 1:definition.end_line]
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    body = "\n".join(line[indent:] for line in lines)
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", body)), default=0))
    href = code_href(page_src, definition)
    return (f'{fence}python title="{definition.path}, lines {definition.line}–{definition.end_line} '
            f'(the library\'s own code, shown here, not run)"\n{body}\n{fence}\n\n'
            f"[Open `{definition.name}` in its file]({href})\n")


# ---------------------------------------------------------------------------
# Tutorials
# ---------------------------------------------------------------------------


def tutorial_scripts() -> list[Path]:
    return sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def _fingerprint(script: Path) -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path in [script, *sorted(TUTORIALS.glob("*helpers*.py")), *sorted(PACKAGE.rglob("*.py"))]:
        digest.update(path.as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def cache_dir() -> Path:
    """Where run outputs are kept: ``$RAFT_DOCS_CACHE`` if it names a folder, else the system's temp folder."""
    setting = os.environ.get("RAFT_DOCS_CACHE", "")
    base = setting if setting not in ("", "off") else tempfile.gettempdir()
    tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    return Path(base) / f"raft-textbook-docs-{tag}"


def run_tutorial(script: Path, cache: Path) -> tuple[str, str | None]:
    """Run one tutorial (or reuse its cached output); returns (output, error message or None)."""
    cached = cache / "runs" / f"{script.stem}-{_fingerprint(script)}.txt"
    if cached.is_file() and os.environ.get("RAFT_DOCS_CACHE") != "off":
        log.debug("tutorial %s: output cached", script.name)
        return cached.read_text(encoding="utf-8"), None
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PYTHONIOENCODING": "utf-8"}
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                              encoding="utf-8", timeout=TUTORIAL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return "", f"{script.name} did not finish within {TUTORIAL_TIMEOUT} s"
    if done.returncode != 0 or done.stderr.strip():
        return done.stdout, (f"{script.name} exited with status {done.returncode} and wrote to stderr:\n"
                             f"{done.stderr[-3000:]}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(done.stdout, encoding="utf-8")
    log.info("tutorial %s ran in %.1f s", script.name, time.perf_counter() - started)
    return done.stdout, None


def split_steps(output: str) -> dict[str, str]:
    """Cut a tutorial's output at its step headers: step name -> what that step printed."""
    steps: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        match = STEP_HEADER.match(line)
        if match:
            current = steps.setdefault(match["name"], [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") + "\n" for name, lines in steps.items()}


def produce_tutorial_output(cache: Path) -> dict[str, dict[str, str]]:
    """Run every tutorial (in parallel) and write each step's output where snippets can include it."""
    scripts = tutorial_scripts()
    with ThreadPoolExecutor(max_workers=max(1, min(len(scripts), os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda s: run_tutorial(s, cache), scripts))
    outputs: dict[str, dict[str, str]] = {}
    for script, (output, error) in zip(scripts, results, strict=True):
        if error:
            log.warning("tutorial %s", error)
        steps = split_steps(output)
        outputs[script.stem] = steps
        folder = cache / "tutorial-output" / script.stem
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.txt"):
            stale.unlink()
        for name, text in steps.items():
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return outputs


SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"\s*$', re.MULTILINE)


def check_tutorial_includes(markdown: str, page: Page, outputs: dict[str, dict[str, str]]) -> None:
    """Every snippet named in a page must exist, and every tutorial step shown must show its output too."""
    for match in SNIPPET.finditer(markdown):
        path, section = match["path"], match["section"]
        if path.startswith("tutorials/") and section:
            source = (ROOT / path).read_text(encoding="utf-8")
            if f"# --8<-- [start:{section}]" not in source:
                log.warning("%s includes %s:%s, but that file has no such section", page.file.src_uri, path, section)
            stem = Path(path).stem
            text = outputs.get(stem, {}).get(section, "")
            wanted = f"tutorial-output/{stem}/{section}.txt"
            if text.strip() and wanted not in markdown:
                log.warning("%s shows step %s of %s but not its output (%s)", page.file.src_uri, section, path,
                            wanted)
        elif path.startswith("tutorial-output/"):
            stem, name = Path(path).parent.name, Path(path).stem
            if name not in outputs.get(stem, {}):
                log.warning("%s includes output %s, but the tutorial printed no step %r", page.file.src_uri,
                            path, name)


# ---------------------------------------------------------------------------
# The hooks
# ---------------------------------------------------------------------------


@dataclass
class _State:
    """What one build has learned: the code index and the tutorials' output."""

    index: CodeIndex | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)


STATE = _State()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    STATE.index = scan_code()
    cache = cache_dir()
    STATE.outputs = produce_tutorial_output(cache)
    snippets = config.mdx_configs.setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(ROOT), str(cache)]
    snippets["check_paths"] = True
    _absolute_griffe_extensions(config)
    nav = config.nav or []
    pages = [{module.path: source_page(module.path)} for module in STATE.index.modules.values()]
    nav.append({"Source code": ["source/index.md", *pages]})
    config.nav = nav
    return config


def _absolute_griffe_extensions(config: MkDocsConfig) -> None:
    """Griffe finds an extension file relative to the working directory; make mkdocs.yml's paths absolute,
    so the site also builds from another directory (``mkdocs build -f path/to/mkdocs.yml``)."""
    plugin = config.plugins.get("mkdocstrings")
    if plugin is None:
        return
    options = plugin.config.get("handlers", {}).get("python", {}).get("options", {})
    extensions = options.get("extensions", [])
    for k, extension in enumerate(extensions):
        if isinstance(extension, str) and extension.endswith(".py") and not os.path.isabs(extension):
            extensions[k] = str(ROOT / extension)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    index = STATE.index
    assert index is not None
    listing = ["# Source code", "",
               "Every module of the `raft` package, with line numbers. The maps and the tutorials link "
               "straight to the lines they talk about.", ""]
    for module in index.modules.values():
        page = source_page(module.path)
        files.append(File.generated(config, page, content=_source_markdown(module, index)))
        listing.append(f"- [`{module.path}`]({page.removeprefix('source/')}): {module.summary}")
    files.append(File.generated(config, "source/index.md", content="\n".join(listing) + "\n"))
    return files


def _source_markdown(module: Definition, index: CodeIndex) -> str:
    source = index.sources[module.path]
    fence = "`" * max(4, 1 + max((len(m) for m in re.findall(r"`+", source)), default=0))
    tags = []
    for tag in ("Mirrors", "Paper", "Differs"):
        if module.tag(tag):
            tags.append(f"**{tag}:** {_code_words(' '.join(module.tag(tag)))}")
    depth = module.path.count("/") + 1
    back = "../" * depth
    # Left out of the search index: searching thousands of lines of code buries
    # the pages that explain it (and indexing them would double the build time).
    front = "---\nsearch:\n  exclude: true\n---\n\n"
    return (f"{front}# {module.path}\n\n{_code_words(module.summary)}\n\n" + "  \n".join(tags) +
            f"\n\n[Go ↔ Python map]({back}maps/go-python.md) · [Paper map]({back}maps/paper.md)\n\n"
            f'{fence}python linenums="1" title="{module.path}"\n{source}\n{fence}\n')


GENERATORS: dict[str, Callable[[str, CodeIndex, MkDocsConfig, str], str]] = {
    "go-python-map": lambda src, index, config, args: go_python_map(src, index),
    "paper-fields": lambda src, index, config, args: field_table(src, index),
    "paper-figure-3": lambda src, index, config, args: figure_3_table(src, index),
    "paper-index": lambda src, index, config, args: paper_index(src, index),
    "differs": lambda src, index, config, args: differs_list(src, index),
    "events": lambda src, index, config, args: events_table(src, index),
    "teaching-bugs": lambda src, index, config, args: teaching_bugs(src, index),
    "scenarios": lambda src, index, config, args: scenarios(src, index),
    "presets": lambda src, index, config, args: presets(),
    "visualizer-keys": lambda src, index, config, args: visualizer_keys(),
    "visualizer-help": lambda src, index, config, args: visualizer_help(),
    "visualizer-screenshot": lambda src, index, config, args: screenshot(src, Path(config.docs_dir)),
    "election-summary": lambda src, index, config, args: election_summary(),
    "excerpt": lambda src, index, config, args: excerpt(args.strip(), index, src),
    "cli-help": lambda src, index, config, args: cli_help(args.strip()),
    "docstring-block": lambda src, index, config, args: docstring_block(src, index, args),
    "docstring-table": lambda src, index, config, args: docstring_table(src, index, args),
    "realworld": lambda src, index, config, args: realworld(src, Path(config.docs_dir)),
}


def _rules(src: str, index: CodeIndex, rules: list[Rule]) -> str:
    missing: list[str] = []
    table = rule_table(src, index, rules, missing)
    if missing:
        log.info("paper map: no code cites %s", "; ".join(missing))
    return table


GENERATORS["paper-figure-2"] = lambda src, index, config, args: _rules(src, index, FIGURE_2_RULES)
GENERATORS["paper-figure-13"] = lambda src, index, config, args: _rules(src, index, FIGURE_13_RULES)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    index = STATE.index
    assert index is not None
    src = page.file.src_uri

    def replace(match: re.Match[str]) -> str:
        generator = GENERATORS.get(match["name"])
        if generator is None:
            log.warning("%s asks for an unknown generated part %r", src, match["name"])
            return match[0]
        return generator(src, index, config, match["args"])

    markdown = outside_code(markdown, lambda text: MARKER.sub(replace, text))
    markdown = resolve_code_links(markdown, src, index)
    check_tutorial_includes(markdown, page, STATE.outputs)
    return markdown



ANCHOR_ID = re.compile(r'\bid="([^"]+)"')


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Tell MkDocs about every id in the page, so that links to them can be checked.

    MkDocs finds the ids of headings and of raw HTML, but not those inside
    highlighted code, such as the line anchors (``__codelineno-0-216``) that
    the maps and tutorials link to. With ``validation: anchors: warn``, a
    link to a line or a heading that does not exist then fails the build.
    """
    if page.present_anchor_ids is not None:
        page.present_anchor_ids.update(ANCHOR_ID.findall(html))
    return html
