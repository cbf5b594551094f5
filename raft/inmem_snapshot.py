"""A snapshot store in memory that keeps only the newest snapshot.

Mirrors: inmem_snapshot.go.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import BinaryIO

from raft.configuration import Configuration
from raft.errors import StoreError
from raft.snapshot import SnapshotMeta


class InmemSnapshotSink:
    """Collects a snapshot's bytes (Mirrors: InmemSnapshotSink)."""

    def __init__(self, store: InmemSnapshotStore, meta: SnapshotMeta) -> None:
        self.store = store
        self.meta = meta
        self.contents = bytearray()
        self._finished = False

    def write(self, data: bytes) -> int:
        if self._finished:
            raise StoreError("write to a closed snapshot sink")
        self.contents += data
        self.meta.size += len(data)
        return len(data)

    def close(self) -> None:
        """Make this the store's snapshot (only the newest is kept)."""
        if self._finished:
            return
        self._finished = True
        self.store.latest = self
        self.store.has_snapshot = True

    def id(self) -> str:
        return self.meta.id

    def cancel(self) -> None:
        self._finished = True


class InmemSnapshotStore:
    """Keeps the most recent snapshot in memory (Mirrors: InmemSnapshotStore)."""

    def __init__(self) -> None:
        self.latest: InmemSnapshotSink | None = None
        self.has_snapshot = False

    def create(self, version: int, index: int, term: int, configuration: Configuration,
               configuration_index: int, trans: object = None) -> InmemSnapshotSink:
        if version != 1:
            raise StoreError(f"unsupported snapshot version {version}")
        name = f"{term}-{index}-inmem"
        meta = SnapshotMeta(version, name, index, term, configuration.clone(), configuration_index, 0)
        return InmemSnapshotSink(self, meta)

    def list(self) -> list[SnapshotMeta]:
        if not self.has_snapshot or self.latest is None:
            return []
        return [replace(self.latest.meta)]

    def open(self, id: str) -> tuple[SnapshotMeta, BinaryIO]:
        if self.latest is None or self.latest.meta.id != id:
            raise StoreError(f"[ERR] snapshot: failed to open snapshot id: {id}")
        # A copy, so that reading it twice (or concurrently) works.
        return replace(self.latest.meta), io.BytesIO(bytes(self.latest.contents))
