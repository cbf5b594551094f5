"""Log entries and the interface of the store that keeps them.

Paper:   Figure 2 ("State": log[]), Figure 6; §5.3.
Mirrors: log.go.
Read next: stable.py (term and vote), inmem_store.py (an implementation).

An *entry* is one record of the replicated log: its position (``index``),
the leader's term when it was created (``term``), what kind of record it is
(``type``) and the opaque bytes a client asked to apply (``data``). Indexes
start at 1; index 0 means "before the first entry".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from raft.errors import ErrLogNotFound


class LogType(enum.IntEnum):
    """What an entry is for. The numbers are stored on disk and must never change.

    Mirrors: log.go LogType.
    """

    LogCommand = 0  # a client command for the FSM
    LogNoop = 1  # a new leader's first entry of its term; never reaches the FSM
    LogAddPeerDeprecated = 2  # protocol < 3; kept so the numbers stay the same
    LogRemovePeerDeprecated = 3  # protocol < 3; kept so the numbers stay the same
    LogBarrier = 4  # resolves once every earlier entry has been applied
    LogConfiguration = 5  # a cluster membership, encoded by configuration.py

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class Log:
    """One log entry (Figure 2: an element of ``log[]``)."""

    index: int = 0  # position in the log, from 1
    term: int = 0  # the leader's term when the entry was created
    type: LogType = LogType.LogCommand
    data: bytes = b""  # the client's command, or an encoded configuration
    extensions: bytes = b""  # opaque bytes for the application, not interpreted by Raft
    appended_at: float = 0.0  # clock time the leader stored it; informational only

    def copy(self) -> Log:
        """An independent copy (cheaper than ``dataclasses.replace``, which stores call often)."""
        return Log(self.index, self.term, self.type, self.data, self.extensions, self.appended_at)


@runtime_checkable
class LogStore(Protocol):
    """Durable storage for log entries.

    Mirrors: log.go LogStore.

    Raft calls these synchronously and relies on them being durable when they
    return: a follower acknowledges entries only after ``store_logs`` returns.
    Indexes may have gaps after a snapshot restore. ``get_log`` raises
    ``ErrLogNotFound`` for a missing index.
    """

    def first_index(self) -> int:
        """Index of the first entry, or 0 when the log is empty."""
        ...

    def last_index(self) -> int:
        """Index of the last entry, or 0 when the log is empty."""
        ...

    def get_log(self, index: int) -> Log:
        """The entry at ``index``; raises ``ErrLogNotFound`` when there is none."""
        ...

    def store_log(self, log: Log) -> None:
        """Store one entry."""
        ...

    def store_logs(self, logs: list[Log]) -> None:
        """Store several entries, all or nothing."""
        ...

    def delete_range(self, min_index: int, max_index: int) -> None:
        """Delete the entries from ``min_index`` to ``max_index``, both included."""
        ...


@runtime_checkable
class MonotonicLogStore(Protocol):
    """A store whose indexes must stay contiguous (Mirrors: log.go MonotonicLogStore)."""

    def is_monotonic(self) -> bool:
        """True if the store cannot hold gaps, so Raft must clear it before a restore."""
        ...


def oldest_log(store: LogStore) -> Log:
    """The first entry still in ``store``.

    Mirrors: log.go oldestLog.

    A concurrent compaction can delete the first entry between our two calls,
    so we retry until ``first_index`` stops moving.
    """
    last_failed_index = -1
    last_error: Exception | None = None
    while True:
        first = store.first_index()
        if first == 0:
            raise ErrLogNotFound()
        if first == last_failed_index:
            assert last_error is not None
            raise last_error
        try:
            return store.get_log(first)
        except ErrLogNotFound as err:
            last_failed_index = first
            last_error = err


def first_index_of_term(store: LogStore, term: int, lowest: int, index: int) -> int:
    """The first index in ``lowest..index`` whose entry has ``term``, given that entry ``index`` has it.

    Terms never decrease along a log, so the entries of one term are one
    contiguous run and a binary search finds where it starts.

    Paper:   §5.3, last paragraphs (the follower's half of the faster backup).
    Differs: not in hashicorp, whose follower reports only its last index.
    """
    while lowest < index:
        middle = (lowest + index) // 2
        if store.get_log(middle).term < term:
            lowest = middle + 1
        else:
            index = middle
    return index


def last_index_of_term(store: LogStore, term: int, lowest: int, highest: int) -> int:
    """The last index in ``lowest..highest`` whose entry has ``term``, or 0 if none has.

    A binary search for the last entry of a term no later than ``term``,
    then a check.

    Paper:   §5.3, last paragraphs (the leader's half of the faster backup).
    Differs: not in hashicorp, whose leader steps back one entry at a time.
    """
    if lowest > highest:
        return 0
    low, high = lowest, highest
    while low < high:  # the last index whose term is <= term
        middle = (low + high + 1) // 2
        if store.get_log(middle).term <= term:
            low = middle
        else:
            high = middle - 1
    return low if store.get_log(low).term == term else 0


def term_runs(store: LogStore, first: int, last: int) -> list[list[int]]:
    """``[[index, term], ...]``: where each run of equal terms starts among entries ``first..last``.

    Not in hashicorp: the event stream uses it to say exactly what a
    truncation deleted, compactly (a log has few distinct terms). Entries
    the store does not hold are skipped.
    """
    runs: list[list[int]] = []
    for index in range(first, last + 1):
        try:
            term = store.get_log(index).term
        except ErrLogNotFound:
            continue
        if not runs or runs[-1][1] != term:
            runs.append([index, term])
    return runs
