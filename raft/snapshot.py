"""Snapshots: the interfaces of the store that keeps them, and their metadata.

Paper:   §7 and Figures 12–13 (log compaction, InstallSnapshot).
Mirrors: snapshot.go (the types; taking snapshots arrives with Core III).
Read next: inmem_snapshot.py.

A snapshot is the FSM's state as of some log index, written by the FSM into
a *sink* and read back through ``open``. With it the log before that index
can be thrown away, and a follower too far behind can be sent the snapshot
instead of entries it no longer has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

from raft.configuration import Configuration


@dataclass
class SnapshotMeta:
    """What a snapshot covers (Mirrors: SnapshotMeta)."""

    version: int = 1
    id: str = ""  # the store's name for it, e.g. "3-1042-5000"
    index: int = 0  # Figure 13: lastIncludedIndex
    term: int = 0  # Figure 13: lastIncludedTerm
    # The membership as of ``index`` and the log index it came from.
    configuration: Configuration = field(default_factory=Configuration)
    configuration_index: int = 0
    size: int = 0  # bytes of snapshot data


@runtime_checkable
class SnapshotSink(Protocol):
    """Where an FSM writes a snapshot (Mirrors: SnapshotSink).

    The writer calls ``close`` when done, or ``cancel`` to throw it away.
    """

    def write(self, data: bytes) -> int: ...

    def close(self) -> None: ...

    def id(self) -> str: ...

    def cancel(self) -> None: ...


@runtime_checkable
class SnapshotStore(Protocol):
    """Keeps snapshots (Mirrors: SnapshotStore)."""

    def create(self, version: int, index: int, term: int, configuration: Configuration,
               configuration_index: int, trans: object) -> SnapshotSink:
        """Start a new snapshot; it is listed only once its sink is closed."""
        ...

    def list(self) -> list[SnapshotMeta]:
        """Usable snapshots, newest first."""
        ...

    def open(self, id: str) -> tuple[SnapshotMeta, BinaryIO]:
        """The metadata and a reader for snapshot ``id``."""
        ...
