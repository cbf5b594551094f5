"""A snapshot store that accepts every snapshot and keeps none.

Paper:   §7 (log compaction), taken to the limit: the log is trimmed but
         nothing replaces it, so this is only fit for tests.
Mirrors: discard_snapshot.go.
Read before: snapshot.py. Read next: file_snapshot.py (a store that keeps them).

With this store a node can exercise the snapshot *path* (the FSM is asked for
a snapshot, the log is compacted) without paying for storage. It can never
restore after a restart or help a lagging follower, which is why Go's
documentation warns against it outside tests, and so do we.
"""

from __future__ import annotations

from typing import BinaryIO

from raft.configuration import Configuration
from raft.errors import StoreError
from raft.snapshot import SnapshotMeta


class DiscardSnapshotSink:
    """Swallows whatever the FSM writes (Mirrors: DiscardSnapshotSink)."""

    def write(self, data: bytes) -> int:
        """Report every byte as written (Mirrors: Write)."""
        return len(data)

    def close(self) -> None:
        """Nothing to finish (Mirrors: Close)."""

    def id(self) -> str:
        """Always ``"discard"`` (Mirrors: ID)."""
        return "discard"

    def cancel(self) -> None:
        """Nothing to undo (Mirrors: Cancel)."""


class DiscardSnapshotStore:
    """Hands out sinks that throw the data away (Mirrors: DiscardSnapshotStore)."""

    def create(self, version: int, index: int, term: int, configuration: Configuration,
               configuration_index: int, trans: object = None) -> DiscardSnapshotSink:
        """A sink for a snapshot that will never be listed (Mirrors: Create).

        As in Go, no argument is checked, not even ``version``: nothing is kept
        that could later be misread.
        """
        return DiscardSnapshotSink()

    def list(self) -> list[SnapshotMeta]:
        """Always empty (Mirrors: List)."""
        return []

    def open(self, id: str) -> tuple[SnapshotMeta, BinaryIO]:
        """Always fails: there is nothing to open (Mirrors: Open)."""
        raise StoreError(f"open is not supported by the discard snapshot store (id {id!r})")
