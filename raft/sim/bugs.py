"""Deliberate protocol bugs, for classes: switch one on and watch the checkers catch it.

Differs: not in hashicorp. The protocol modules know nothing of these bugs;
they are injected from here, by a ``Raft`` subclass that only the simulator
builds (``Cluster(bugs=TeachingBugs(...))``, ``raft-sim fuzz --bug NAME``).
Read before: raft.py (``request_vote``, ``run_leader``), commitment.py.
Used by: sim/cluster.py, sim/fuzz.py, sim/cli.py, tutorials 4, 9 and 10.

Each switch breaks exactly one rule of the paper, in the smallest way that
still lets the cluster run:

==============================  ====================================================
switch                          the rule it breaks
==============================  ====================================================
``commit_old_terms_by_counting``  §5.4.2 and Figure 8: a leader counts replicas of
                                  entries from earlier terms
``vote_without_log_check``        §5.4.1, the election restriction: a voter does not
                                  compare the candidate's log with its own
``forget_vote_on_restart``        Figure 2, persistent state: ``votedFor`` is lost in a
                                  crash (done by ``Cluster.restart``)
``forget_term_on_restart``        Figure 2, persistent state: ``currentTerm`` is lost in
                                  a crash (done by ``Cluster.restart``)
``skip_leader_noop``              §8: a new leader appends no no-op, and a read does
                                  not wait for an entry of its term to commit
==============================  ====================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from raft.api import Raft
from raft.commands import RequestPreVoteRequest, RequestVoteRequest
from raft.commitment import Commitment
from raft.events import CommitIndexChanged, VoteDecided, reset_started_by, started_by
from raft.future import LogFuture
from raft.log import LogType
from raft.transport import RPC
from raft.util import async_notify_ch


@dataclass(frozen=True)
class TeachingBugs:
    """Which deliberate bugs to switch on. All are off by default.

    Differs: not in hashicorp (see the module docstring).
    """

    # Commit an entry from an earlier term as soon as a majority stores it,
    # ignoring §5.4.2 and Figure 8.
    commit_old_terms_by_counting: bool = False
    # Grant votes (and pre-votes) without the election restriction of §5.4.1 (log up-to-date check).
    vote_without_log_check: bool = False
    # Lose the vote on restart, as if votedFor were not persisted (Figure 2).
    forget_vote_on_restart: bool = False
    # Lose the term on restart, as if currentTerm were not persisted (Figure 2):
    # the server comes back in term 0 and may vote again in a term it has left.
    forget_term_on_restart: bool = False
    # Skip the new leader's no-op, and with it the read index's wait for it (§8).
    skip_leader_noop: bool = False

    def any(self) -> bool:
        """Is at least one bug switched on?"""
        return any(getattr(self, f.name) for f in fields(self))

    def cli_names(self) -> list[str]:
        """The switched-on bugs as ``raft-sim fuzz --bug`` spells them."""
        return [f.name.replace("_", "-") for f in fields(self) if getattr(self, f.name)]

    @classmethod
    def from_cli_names(cls, names: Iterable[str]) -> TeachingBugs:
        """The inverse of ``cli_names``; raises ``ValueError`` for an unknown name."""
        switches = {}
        for name in names:
            if name not in BUG_NAMES:
                raise ValueError(f"unknown teaching bug {name!r}; choose from {', '.join(BUG_NAMES)}")
            switches[name.replace("-", "_")] = True
        return cls(**switches)


BUG_NAMES = [f.name.replace("_", "-") for f in fields(TeachingBugs)]  # as ``--bug`` spells them




class CountingEveryTerm(Commitment):
    """A commitment that forgets Figure 8: a majority of replicas commits any entry.

    Differs: teaching bug ``commit_old_terms_by_counting``; the real rule is
    in ``Commitment.recalculate``.
    """

    def recalculate(self) -> None:
        if not self.match_indexes:
            return
        matched = sorted(self.match_indexes.values())
        quorum_match_index = matched[(len(matched) - 1) // 2]
        # The correct code also requires quorum_match_index >= start_index.
        if quorum_match_index > self.commit_index:
            self.commit_index = quorum_match_index
            async_notify_ch(self.commit_ch)


class BuggyRaft(Raft):
    """A ``Raft`` with some of the ``TeachingBugs`` switched on.

    Differs: not in hashicorp. Each override calls the real method and bends
    one thing around it, so the correct code stays the only code.
    """

    def __init__(self, bugs: TeachingBugs, *args: Any, **kwargs: Any) -> None:
        self.bugs = bugs
        self._skip_next_noop = False
        self._ignore_own_log = False
        # Built here rather than by new_raft: name new_raft as the function
        # behind the start-up events and tasks, as for a plain Raft.
        token = started_by("new_raft")
        try:
            super().__init__(*args, **kwargs)
        finally:
            reset_started_by(token)

    # -- commit_old_terms_by_counting -------------------------------------------------

    def setup_leader_state(self) -> None:
        super().setup_leader_state()
        state = self.leader_state
        if self.bugs.commit_old_terms_by_counting:
            state.commitment = CountingEveryTerm(state.commit_ch, self.configurations.latest,
                                                 state.commitment.start_index)
        # run_leader dispatches its no-op right after this call.
        self._skip_next_noop = self.bugs.skip_leader_noop

    def set_commit_index(self, index: int) -> None:
        # Without the start-index rule, a new leader's commitment (which, as
        # in Go, starts from 0) can report an index below the one we already
        # knew: commitIndex moves back. Raft.set_commit_index asserts that
        # never happens and would stop the node; here the move is let through
        # so that the invariant checker sees it and reports it.
        if self.bugs.commit_old_terms_by_counting and index < self._commit_index:
            previous, self._commit_index = self._commit_index, index
            self.observe(CommitIndexChanged(index, previous))
            return
        super().set_commit_index(index)

    # -- skip_leader_noop -------------------------------------------------------------

    def dispatch_logs(self, apply_logs: list[LogFuture]) -> None:
        if self._skip_next_noop and len(apply_logs) == 1 and apply_logs[0].log.type == LogType.LogNoop:
            self._skip_next_noop = False
            return
        super().dispatch_logs(apply_logs)

    def committed_in_current_term(self) -> bool:
        if self.bugs.skip_leader_noop:
            return True  # a read no longer waits for the leader's first commit
        return super().committed_in_current_term()

    # -- vote_without_log_check -------------------------------------------------------

    def get_last_entry(self) -> tuple[int, int]:
        if self._ignore_own_log:
            return 0, 0  # every candidate's log is at least as up-to-date as an empty one
        return super().get_last_entry()

    def request_vote(self, rpc: RPC, req: RequestVoteRequest) -> None:
        self._ignore_own_log = self.bugs.vote_without_log_check
        try:
            super().request_vote(rpc, req)
        finally:
            self._ignore_own_log = False

    def request_pre_vote(self, rpc: RPC, req: RequestPreVoteRequest) -> None:
        self._ignore_own_log = self.bugs.vote_without_log_check
        try:
            super().request_pre_vote(rpc, req)
        finally:
            self._ignore_own_log = False

    def observe(self, data: Any) -> None:
        if self._ignore_own_log and isinstance(data, VoteDecided) and data.granted:
            data = replace(data, reason=f"{data.reason} (TEACHING BUG: logs not compared)")
        super().observe(data)

