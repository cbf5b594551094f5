"""Realistic wrong solutions to each lab, and the fault-simulator run that catches each.

Mirrors: nothing in hashicorp/raft (see ``raft.lab``).
Read before: labs.py, stubs.py; raft/sim/bugs.py (the teaching bugs, some of which appear here).

Each mistake is one a student plausibly makes: either a teaching bug of
``raft.sim.bugs`` or a small edit to the reference code of one of the lab's
functions. ``caught_by`` names a scenario and seed that fails with the mistake
in place (within the lab's seed budget) and the focused check that fails
first, if one does; the lab pages cite them as pitfalls, ``tests/test_lab.py`` checks
that each still fails (and that the reference passes the same run), and
``plant`` puts a mistake into a workspace, so an instructor can show what a
failing grade looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from raft.lab.labs import Function, find_lab
from raft.lab.stubs import StubError, Workspace, function_text, reference_package, replace_function


class Caught(NamedTuple):
    """What catches a mistake: a fuzz run (scenario and seed), and the focused check that fails first, if any."""

    scenario: str | None  # None: no seed of the lab's budget catches it; the check does
    seed: int | None
    check: str  # the name of a check in checks.py, or "" when only the fault simulator sees it


@dataclass(frozen=True)
class Mistake:
    """A wrong solution to one lab: a teaching bug, or an edit of the reference (``old`` becomes ``new``)."""

    lab: int
    name: str
    pitfall: str  # what the student got wrong, in one sentence
    caught_by: Caught
    bug: str = ""  # a teaching bug, as ``raft-sim fuzz --bug`` spells it
    function: Function | None = None
    old: str = ""
    new: str = ""


def _edit(lab: int, name: str, pitfall: str, caught_by: Caught, file: str, qualname: str,
          old: str, new: str) -> Mistake:
    return Mistake(lab, name, pitfall, caught_by, function=Function(file, qualname), old=old, new=new)


MISTAKES: tuple[Mistake, ...] = (
    # -- lab 1 -------------------------------------------------------------------------------------
    Mistake(1, "no-election-restriction",
            "the voter grants its vote without comparing the candidate's log with its own (§5.4.1)",
            Caught("LeaderPartitions", 0, "an_out_of_date_candidate_is_refused"), bug="vote-without-log-check"),
    _edit(1, "second-vote-in-a-term",
          "the voter forgets that it already voted in this term and votes for another candidate too",
          Caught("LeaderPartitions", 1, "one_vote_per_term"), "raft.py", "RaftLoops.request_vote",
          'reason = f"already voted for {last_vote_cand.decode()} in term {req.term}"\n                return',
          'reason = f"already voted for {last_vote_cand.decode()} in term {req.term}"'),
    _edit(1, "candidate-does-not-vote-for-itself-on-disk",
          "the candidate counts its own vote but does not record it, so it can still vote for a rival in the "
          "same term",
          Caught("LeaderPartitions", 1, "a_candidate_votes_for_itself_on_disk"), "raft.py", "RaftLoops.elect_self",
          "self.persist_vote(req.term, req.header.addr.encode())", "pass"),
    # -- lab 2 -------------------------------------------------------------------------------------
    Mistake(2, "commit-old-terms-by-counting",
            "the leader commits an entry of an earlier term as soon as a majority stores it (Figure 8)",
            Caught("LeaderPartitions", 2, ""), bug="commit-old-terms-by-counting"),
    _edit(2, "no-consistency-check",
          "the follower appends without checking the term of the entry at prevLogIndex (rule 2)",
          Caught("LeaderPartitions", 2, "a_mismatching_previous_entry_is_refused"), "raft.py",
          "RaftLoops.append_entries", "if a.prev_log_term != prev_log_term:", "if False:"),
    _edit(2, "truncate-without-conflict",
          "the follower deletes its log from the first entry the leader sends, even where the terms agree, so "
          "a late AppendEntries erases newer entries (rule 3)",
          Caught("LeaderPartitions", 0, ""), "raft.py", "RaftLoops.append_entries",
          "if entry.term != stored.term:", "if True:"),
    # -- lab 3 -------------------------------------------------------------------------------------
    Mistake(3, "vote-not-durable",
            "the vote lives only in memory: a voter that restarts votes again in the same term",
            Caught("RestartVoters", 5, "a_restarted_node_remembers_term_vote_and_log"),
            bug="forget-vote-on-restart"),
    _edit(3, "term-not-durable",
          "the current term is kept in memory only, so a restarted server starts from an old term",
          Caught("RestartVoters", 12, "the_term_is_on_disk"), "raft.py", "RaftLoops.set_current_term",
          "self.stable.set_uint64(KEY_CURRENT_TERM, term)", "pass"),
    _edit(3, "vote-without-candidate",
          "only the term of the vote is stored, not whom it went to, so a second candidate of the same term "
          "gets a vote too",
          Caught("RestartVoters", 1, ""), "raft.py", "RaftLoops.persist_vote",
          "self.stable.set(KEY_LAST_VOTE_CAND, candidate)", "pass"),
    # -- lab 4 -------------------------------------------------------------------------------------
    _edit(4, "install-late-snapshot",
          "a duplicated or long-delayed InstallSnapshot is installed although it ends at or below the commit "
          "index, moving the state machine back",
          Caught("SlowStateMachine", 0, "a_late_snapshot_is_ignored"), "raft.py", "RaftLoops.install_snapshot",
          "if req.last_log_index <= self.get_commit_index():", "if False:"),
    _edit(4, "discard-whole-log",
          "after installing a snapshot the whole log is dropped, even the entries after the snapshot that "
          "match the leader's (Figure 13 rule 6)",
          Caught(None, None, "the_entries_after_an_installed_snapshot_are_kept"), "raft.py",
          "RaftLoops._keep_or_discard_log",
          "if existing is not None and existing.term == term:", "if False:"),
    _edit(4, "commit-index-left-behind",
          "after installing a snapshot the commit index stays where it was, behind the entries the snapshot "
          "applied",
          Caught("SlowStateMachine", 1, ""), "raft.py", "RaftLoops.install_snapshot",
          "self.set_commit_index(req.last_log_index)", "pass"),
    # -- lab 5 -------------------------------------------------------------------------------------
    Mistake(5, "read-before-the-no-op",
            "a new leader serves reads (and keeps no no-op) before an entry of its own term has committed, so "
            "its commit index may be behind",
            Caught("LeaderPartitions", 8, "reads_see_the_last_write_and_only_on_the_leader"),
            bug="skip-leader-noop"),
    _edit(5, "no-sessions",
          "the store applies a retried command again instead of answering it from the client's session",
          Caught("LeaderPartitions", 0, "a_retried_command_takes_effect_once"), "kv/store.py", "KVStore.apply",
          "if last is not None and command.seq <= last[0]:", "if False:"),
    _edit(5, "read-without-verify-leader",
          "the leader reads its state machine without confirming with a quorum that it still leads",
          Caught(None, None, "a_cut_off_leader_serves_no_read"), "kv/store.py", "read",
          "err = await raft.verify_leader().error()  # (3)", "err = None"),
)


def mistakes_of(lab: int) -> list[Mistake]:
    return [m for m in MISTAKES if m.lab == lab]


def find_mistake(name: str) -> Mistake:
    for mistake in MISTAKES:
        if mistake.name == name:
            return mistake
    raise ValueError(f"unknown mistake {name!r}; choose from {', '.join(m.name for m in MISTAKES)}")


def plant(workspace: Workspace, mistake: Mistake) -> None:
    """Write the lab's functions into ``workspace`` from the reference, with ``mistake``'s edit in one of them.

    A teaching-bug mistake writes the functions unchanged: the bug is
    switched on at grading time (``raft-lab check --bug``).
    """
    lab = find_lab(mistake.lab)
    reference = reference_package()
    for function in lab.functions:
        text = function_text((reference / function.file).read_text(encoding="utf-8"), function.qualname)
        if function == mistake.function:
            if text.count(mistake.old) != 1:
                raise StubError(f"mistake {mistake.name}: {mistake.old!r} occurs {text.count(mistake.old)} times "
                                f"in {function}, expected once; the reference code changed, update the mistake")
            text = text.replace(mistake.old, mistake.new)
        path: Path = workspace.package / function.file
        path.write_text(replace_function(path.read_text(encoding="utf-8"), function.qualname, text),
                        encoding="utf-8")
