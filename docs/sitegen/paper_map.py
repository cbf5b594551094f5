"""The paper ↔ code map (docs/maps/paper.md): which code enforces each rule of Figures 2, 3 and 13.

The rules of a figure are listed here in our own words, each with a pattern
that recognises the code's citations of it (a ``Paper:`` line, a docstring
paragraph or a comment quoting the rule, CONTRIBUTING.md rule 2). The tables
link each rule to every definition that cites it. Figure 3's properties come
from the places where the invariant checker reports them; the field table from
``# Figure 2: nextIndex[]`` comments; the index from every ``Paper:`` line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from .code_index import CodeIndex, Definition
from .common import cell, code_words, log
from .links import code_link
from .tags import references


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
    """A text of a definition that may quote a rule: a ``Paper:`` line, a paragraph or a comment."""

    definition: Definition
    text: str
    line: int


def citations(index: CodeIndex) -> list[tuple[Citation, str]]:
    """(citation, context) pairs: every ``Paper:`` text, docstring paragraph and comment of a definition.

    The context of a citation is the ``Paper:`` text of its definition. A
    private helper without one (``_keep_or_discard_log``) borrows it from the
    nearest definition before it in the same class or module that has one
    (``install_snapshot``): in this code a helper follows the function it serves.
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


def rule_table(page_src: str, index: CodeIndex, rules: list[Rule]) -> str:
    """One table per box of the figure: each rule, in short, and the definitions that cite it.

    A rule no code cites yet is shown as such and noted in the build's log
    (as information: it does not fail the build).
    """
    found = citations(index)
    out = []
    missing = []
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
        enforced = ", ".join(where.values()) or "*not cited in the code yet*"
        out.append(f"| {rule.number} | {cell(rule.summary)} | {enforced} |")
    if missing:
        log.info("paper map: no code cites %s", "; ".join(missing))
    return "\n".join(out) + "\n"


def field_table(page_src: str, index: CodeIndex) -> str:
    """Each field named after the paper (``# Figure 2: nextIndex[]``), where it is held, and the note."""
    out = ["| Paper | Python | Where | Note |", "|---|---|---|---|"]
    for note in index.fields:
        owner = note.owner.qualname.removesuffix(".__init__")
        python = f"{owner}.{note.python_name}" if owner else note.python_name
        link = code_link(page_src, note.owner, python, note.line)
        note_text = cell(code_words(note.note))
        out.append(f"| {note.figure}: `{note.paper_name}` | {link} | {note.owner.path} | {note_text} |")
    return "\n".join(out) + "\n"


def figure_3_table(page_src: str, index: CodeIndex) -> str:
    """Each property of Figure 3, and the places where the invariant checker reports it broken."""
    by_rule: dict[str, dict[str, str]] = defaultdict(dict)
    for check in index.checks:
        by_rule[check.rule].setdefault(check.where.full_name, code_link(page_src, check.where, line=check.line))
    out = ["| Property | Checked in |", "|---|---|"]
    for rule, links in by_rule.items():
        out.append(f"| {rule} | {', '.join(links.values())} |")
    return "\n".join(out) + "\n"


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

