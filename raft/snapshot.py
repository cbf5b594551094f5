"""Snapshots: taking them, compacting the log, and the interfaces of the store that keeps them.

Paper:   §7 and Figures 12–13 (log compaction, InstallSnapshot).
Mirrors: snapshot.go.
Read next: inmem_snapshot.py and file_snapshot.py (stores); raft.py
``install_snapshot`` (a follower receiving one); replication.py
``send_latest_snapshot`` (a leader sending one).

A snapshot is the FSM's state as of some log index, written by the FSM into
a *sink* and read back through ``open``. With it the log before that index
can be thrown away, and a follower too far behind can be sent the snapshot
instead of entries it no longer has.

The ``run_snapshots`` task wakes every SnapshotInterval (jittered) and takes a
snapshot when SnapshotThreshold entries have accumulated since the last one;
users can also ask for one. Taking it is split between tasks: the FSM task
captures the state (``FSM.snapshot``, which must be quick), this task writes it
out (``FSMSnapshot.persist``, which may be slow) while the FSM keeps applying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from raft.configuration import Configuration
from raft.errors import ErrNothingNewToSnapshot, ErrRaftShutdown, RaftError, StoreError
from raft.events import Compacted, SnapshotTaken
from raft.future import ConfigurationsFuture, ReqSnapshotFuture, UserSnapshotFuture
from raft.runtime.channels import Send, select
from raft.util import random_timeout

if TYPE_CHECKING:
    from raft.api import Raft  # only for ``self: Raft``; api.py builds Raft from this module's mixin


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


class SnapshotRunner:
    """The snapshot methods of ``Raft`` (Mirrors: snapshot.go)."""

    async def run_snapshots(self: Raft) -> None:
        """Take snapshots when the log has grown enough, or when a user asks.

        Paper:   §7 ("Servers take snapshots independently").
        Mirrors: snapshot.go runSnapshots.
        """
        while True:
            timer = random_timeout(self.config().snapshot_interval, self.rng)
            case, future = await select([timer, self.user_snapshot_ch, self.shutdown_ch], self.rng)
            if case is self.shutdown_ch:
                return
            if case is timer:
                if not self.should_snapshot():
                    continue
                try:
                    await self.take_snapshot()
                except RaftError as err:
                    self.logger.error("failed to take snapshot: %s", err)
                continue
            assert isinstance(future, UserSnapshotFuture)
            try:
                snapshot_id = await self.take_snapshot()
            except RaftError as err:
                self.logger.error("failed to take snapshot: %s", err)
                future.respond(err)
                continue
            future.opener = lambda snapshot_id=snapshot_id: self.snapshots.open(snapshot_id)
            future.respond(None)

    def should_snapshot(self: Raft) -> bool:
        """Have SnapshotThreshold entries piled up since the last snapshot? (Mirrors: shouldSnapshot)."""
        last_snapshot, _ = self.get_last_snapshot()
        return self.logs.last_index() - last_snapshot >= self.config().snapshot_threshold

    async def take_snapshot(self: Raft) -> str:
        """Snapshot the FSM, store it, then compact the log; return the snapshot's ID.

        Paper:   §7, Figure 12.
        Mirrors: snapshot.go takeSnapshot.
        Differs: a snapshot that ends at or below the one we already have is
        dropped. While this task waited for the state machine, an
        InstallSnapshot may have given us a newer snapshot; recording ours
        after it would move the last snapshot back, and a restart would then
        restore the older one on top of a log that no longer holds what
        comes after it. hashicorp has the same race.

        The snapshot records the *committed* configuration. A snapshot taken
        while a newer configuration is still uncommitted would have to pick
        one, and either could be wrong after a crash, so we refuse (#617).
        """
        request = ReqSnapshotFuture(self.shutdown_ch)
        case, _ = await select([Send(self.fsm_snapshot_ch, request), self.shutdown_ch], self.rng)
        if case is self.shutdown_ch:
            raise ErrRaftShutdown()
        err = await request.error()
        if err is not None:
            if isinstance(err, ErrNothingNewToSnapshot):
                raise err
            raise StoreError(f"failed to start snapshot: {err}")
        try:
            configurations = ConfigurationsFuture(self.shutdown_ch)
            await self._enqueue(self.configurations_ch, configurations, 0)
            err = await configurations.error()
            if err is not None:
                raise err
            committed = configurations.configurations.committed
            committed_index = configurations.configurations.committed_index
            if request.index <= self.get_last_snapshot()[0]:
                raise ErrNothingNewToSnapshot()  # a newer snapshot was installed meanwhile
            if request.index < committed_index:
                raise StoreError(f"cannot take snapshot now, wait until the configuration entry at "
                                 f"{committed_index} has been applied (have applied {request.index})")
            sink = self.snapshots.create(1, request.index, request.term, committed, committed_index, self.trans)
            try:
                request.snapshot.persist(sink)
            except Exception as error:  # the application failed to write its state
                sink.cancel()
                raise StoreError(f"failed to persist snapshot: {error}") from error
            sink.close()
        finally:
            request.snapshot.release()
        self.set_last_snapshot(request.index, request.term)
        self.observe(SnapshotTaken(request.index, request.term, sink.id()))
        self.compact_logs(request.index)
        return sink.id()

    def compact_logs_with_trailing(self: Raft, snapshot_index: int, last_log_index: int, trailing_logs: int) -> None:
        """Delete entries up to ``snapshot_index`` but keep the last ``trailing_logs``.

        Mirrors: snapshot.go compactLogsWithTrailing.

        Keeping a tail lets a follower that is only a little behind catch up
        from the log instead of needing the whole snapshot.
        """
        first = self.logs.first_index()
        if last_log_index <= trailing_logs:
            return
        last_to_delete = min(snapshot_index, last_log_index - trailing_logs)
        if first == 0 or first > last_to_delete:
            return
        self.logs.delete_range(first, last_to_delete)
        self.observe(Compacted(first, last_to_delete))

    def compact_logs(self: Raft, snapshot_index: int) -> None:
        """Compact after a snapshot at ``snapshot_index`` (Mirrors: compactLogs)."""
        last_log_index, _ = self.get_last_log()
        self.compact_logs_with_trailing(snapshot_index, last_log_index, self.config().trailing_logs)

    def remove_old_logs(self: Raft) -> None:
        """Delete the whole log, for stores that cannot hold gaps (Mirrors: removeOldLogs)."""
        last = self.logs.last_index()
        self.compact_logs_with_trailing(last, last, 0)
