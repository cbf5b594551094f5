"""The role a server plays, and the volatile variables every server keeps.

Paper:   Figure 2 ("Volatile state on all servers": commitIndex, lastApplied);
         Figure 4 (the three roles and how a server moves between them).
Mirrors: state.go.

In Go these variables are read with atomics from several goroutines. Here
one thread runs each node's tasks, so plain attributes are enough.
"""

from __future__ import annotations

import enum

from raft.runtime.tasks import TaskGroup


class RaftState(enum.IntEnum):
    """A server's role (Figure 4), plus Shutdown (Mirrors: RaftState)."""

    Follower = 0  # answers RPCs; starts an election if the leader goes quiet
    Candidate = 1  # asking for votes
    Leader = 2  # accepts client commands and replicates them
    Shutdown = 3  # stopped; not part of the paper

    def __str__(self) -> str:
        return self.name


class RaftStateVars:
    """The fields of Go's ``raftState``, embedded in ``Raft`` (Mirrors: state.go raftState).

    Differs: no atomics or locks; a node's tasks all run on one thread.
    """

    _current_term: int
    _commit_index: int
    _last_applied: int
    _last_snapshot_index: int
    _last_snapshot_term: int
    _last_log_index: int
    _last_log_term: int
    routines_group: TaskGroup
    _state: RaftState

    def __init__(self, task_group_name: str = "") -> None:
        self._current_term = 0  # Figure 2: currentTerm (persisted by Raft.set_current_term)
        self._commit_index = 0  # Figure 2: commitIndex
        self._last_applied = 0  # Figure 2: lastApplied (handed to the FSM task)
        self._last_snapshot_index = 0  # Figure 13: lastIncludedIndex of our newest snapshot
        self._last_snapshot_term = 0  # Figure 13: lastIncludedTerm
        self._last_log_index = 0  # cached from the log store
        self._last_log_term = 0
        self.routines_group = TaskGroup(task_group_name)
        self._state = RaftState.Follower

    def get_state(self) -> RaftState:
        return self._state

    def _set_state_var(self, state: RaftState) -> None:
        self._state = state

    def get_current_term(self) -> int:
        return self._current_term

    def get_last_log(self) -> tuple[int, int]:
        """(index, term) of the last entry in the log store."""
        return self._last_log_index, self._last_log_term

    def set_last_log(self, index: int, term: int) -> None:
        self._last_log_index = index
        self._last_log_term = term

    def get_last_snapshot(self) -> tuple[int, int]:
        return self._last_snapshot_index, self._last_snapshot_term

    def set_last_snapshot(self, index: int, term: int) -> None:
        self._last_snapshot_index = index
        self._last_snapshot_term = term

    def get_commit_index(self) -> int:
        return self._commit_index

    def get_last_applied(self) -> int:
        return self._last_applied

    def set_last_applied(self, index: int) -> None:
        self._last_applied = index

    def get_last_index(self) -> int:
        """The last index we know of, in the log or covered by a snapshot (Mirrors: getLastIndex)."""
        return max(self._last_log_index, self._last_snapshot_index)

    def get_last_entry(self) -> tuple[int, int]:
        """(index, term) of our last entry, from the log or the snapshot (Mirrors: getLastEntry).

        Paper: §5.4.1; this is what the election restriction compares.
        """
        if self._last_log_index >= self._last_snapshot_index:
            return self._last_log_index, self._last_log_term
        return self._last_snapshot_index, self._last_snapshot_term
