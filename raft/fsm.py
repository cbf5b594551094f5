"""The application's state machine, and the task that feeds it committed entries.

Paper:   Figure 1 (replicated state machines); Figure 2 ("Rules for Servers",
         All Servers: "If commitIndex > lastApplied: increment lastApplied,
         apply log[lastApplied] to state machine").
Mirrors: fsm.go.
Read before: raft.py ``process_logs``, which hands batches to ``run_fsm``.

The FSM is the application: a key-value store, a lock service, anything
deterministic. Raft guarantees every server applies the same commands in the
same order; the FSM must turn the same commands into the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast, runtime_checkable

from raft.configuration import Configuration, decode_configuration
from raft.errors import ErrNothingNewToSnapshot, ErrRaftShutdown, FSMError, RaftError, StoreError
from raft.events import Applied, FSMFailed, Restored
from raft.future import LogFuture, ReqSnapshotFuture, RestoreFuture
from raft.log import Log, LogType
from raft.runtime.channels import select
from raft.snapshot import SnapshotSink

if TYPE_CHECKING:
    from raft.api import Raft  # only for ``self: Raft``; api.py builds Raft from this module's mixin


_COMMAND = LogType.LogCommand  # looked up once: enum member access is slow in a hot loop
_CONFIGURATION = LogType.LogConfiguration


@runtime_checkable
class FSMSnapshot(Protocol):
    """A point-in-time copy of FSM state, written out later (Mirrors: FSMSnapshot)."""

    def persist(self, sink: SnapshotSink) -> None:
        """Write the state to ``sink`` and close it (or cancel it on error)."""
        ...

    def release(self) -> None:
        """Called once the snapshot is no longer needed."""
        ...


@runtime_checkable
class FSM(Protocol):
    """The replicated state machine (Mirrors: fsm.go FSM).

    ``apply`` must be deterministic. Its return value reaches the client
    through ``ApplyFuture.response()``.
    """

    def apply(self, log: Log) -> Any: ...

    def snapshot(self) -> FSMSnapshot: ...

    def restore(self, source: BinaryIO) -> None:
        """Replace all state with the snapshot read from ``source``."""
        ...


@runtime_checkable
class BatchingFSM(FSM, Protocol):
    """An FSM that applies many entries in one call (Mirrors: BatchingFSM).

    It receives only command and configuration entries and must return one
    response per entry.
    """

    def apply_batch(self, logs: list[Log]) -> list[Any]: ...


@runtime_checkable
class ConfigurationStore(FSM, Protocol):
    """An FSM that also wants every committed configuration (Mirrors: ConfigurationStore)."""

    def store_configuration(self, index: int, configuration: Configuration) -> None: ...


@dataclass
class CommitTuple:
    """A committed entry on its way to the FSM, and the future to answer (Mirrors: commitTuple)."""

    log: Log
    future: LogFuture | None


class FSMRunner:
    """The ``run_fsm`` task of ``Raft`` (Mirrors: fsm.go runFSM)."""

    fsm_error: str | None  # set once, by _fsm_fail

    async def run_fsm(self: Raft) -> None:
        """Apply committed entries, restore snapshots and take FSM snapshots, in order.

        Paper:   Figure 2, All Servers, first rule (apply committed entries in order).
        Mirrors: fsm.go runFSM.

        This is the only task that touches the user's FSM, so the FSM never
        sees two calls at once. Restores travel on the same channel as
        entries so that a restore cannot overtake entries queued before it.
        """
        state = _FSMProgress()
        # Checking a runtime Protocol is slow; the FSM's kind never changes, so ask once.
        state.batching = isinstance(self.fsm, BatchingFSM)
        state.config_store = isinstance(self.fsm, ConfigurationStore)
        while True:
            case, request = await select([self.fsm_mutate_ch, self.fsm_snapshot_ch, self.shutdown_ch], self.rng)
            if case is self.shutdown_ch:
                self._fsm_drain_on_shutdown(state)
                self._wake_applied(everyone=True)
                return
            if case is self.fsm_snapshot_ch:
                self._fsm_snapshot(state, request)
            elif isinstance(request, RestoreFuture):
                self._fsm_restore(state, request)
            else:
                try:
                    self._fsm_apply_batch(state, request)
                except FSMError as failure:
                    self._fsm_fail(request, failure)
                    self._wake_applied(everyone=True)
                    return
                self.fsm_applied_index = request[-1].log.index
                if self._applied_waiters:
                    self._wake_applied()

    def _fsm_drain_on_shutdown(self: Raft, state: _FSMProgress) -> None:
        """Apply the committed batches already queued, so their callers get answers.

        Differs: Go's runFSM returns at once and may leave such a future
        unanswered; a leader removing itself would then never learn that its
        own removal succeeded. Restores still queued are refused.
        """
        while True:
            request, received = self.fsm_mutate_ch.try_recv()
            if not received:
                return
            if isinstance(request, RestoreFuture):
                request.respond(ErrRaftShutdown())
            elif request is not None:
                self._fsm_apply_batch(state, request)

    def _fsm_apply_batch(self: Raft, state: _FSMProgress, batch: list[CommitTuple]) -> None:
        if state.batching:
            self._fsm_apply_batching(state, batch)
            return
        for item in batch:
            response: Any = None
            entry = item.log
            try:
                if entry.type == _COMMAND:
                    response = self.fsm.apply(entry)
                elif entry.type == _CONFIGURATION:
                    if not state.config_store:
                        # Nothing reached the FSM, so this entry does not move the
                        # index a snapshot would be labelled with (as in Go).
                        if item.future is not None:
                            item.future.respond(None)
                        continue
                    assert isinstance(self.fsm, ConfigurationStore)
                    self.fsm.store_configuration(entry.index, decode_configuration(entry.data))
            except Exception as err:  # the application's code: any exception at all
                raise FSMError(f"the state machine raised {type(err).__name__} applying entry {entry.index}: {err}",
                               entry.index) from err
            state.last_index, state.last_term = entry.index, entry.term
            if self.events.enabled:  # the hot path: build the report only for someone who reads it
                self.observe(Applied(entry.index, entry.term, entry.type.name))
            if item.future is not None:
                item.future.response_value = response
                item.future.respond(None)

    def _fsm_apply_batching(self: Raft, state: _FSMProgress, batch: list[CommitTuple]) -> None:
        fsm = cast(BatchingFSM, self.fsm)  # checked once in run_fsm
        sendable = [item.log for item in batch if _goes_to_batching_fsm(item.log)]
        try:
            responses = fsm.apply_batch(sendable) if sendable else []
        except Exception as err:  # the application's code: any exception at all
            first = batch[0].log.index
            raise FSMError(f"the state machine raised {type(err).__name__} applying entries {first}.."
                           f"{batch[-1].log.index}: {err}", first) from err
        assert len(responses) == len(sendable), "BatchingFSM.apply_batch must return one response per entry"
        answers = iter(responses)
        for item in batch:
            response = next(answers) if _goes_to_batching_fsm(item.log) else None
            state.last_index, state.last_term = item.log.index, item.log.term
            if self.events.enabled:
                self.observe(Applied(item.log.index, item.log.term, item.log.type.name))
            if item.future is not None:
                item.future.response_value = response
                item.future.respond(None)

    def _fsm_fail(self: Raft, batch: list[CommitTuple], failure: FSMError) -> None:
        """The state machine raised: say so loudly and stop this node.

        Paper:   Figure 2, All Servers, first rule: a server that cannot apply
                 log[lastApplied] cannot follow the log any further.
        Mirrors: the panic of a Go FSM inside fsm.go runFSM.
        Differs: in Go an FSM that panics in Apply takes the process down.
        Here the node records why (``Raft.fsm_failure``), logs the traceback,
        emits ``fsm_failed``, answers the callers of the entries it did not
        apply with the ``FSMError``, and shuts down: a state machine in an
        unknown state must not be fed further entries, nor answer reads.
        Restarting replays the same entries; an application must therefore
        answer a command it refuses (a result, not an exception).
        """
        self.fsm_error = str(failure)
        self.logger.error("%s; shutting this node down", failure, exc_info=failure.__cause__)
        self.observe(FSMFailed(failure.index, str(failure)))
        for item in batch:
            if item.log.index >= failure.index and item.future is not None:
                item.future.respond(failure)
        self.shutdown()

    def _fsm_restore(self: Raft, state: _FSMProgress, request: RestoreFuture) -> None:
        try:
            meta, source = self.snapshots.open(request.id)
        except RaftError as err:
            request.respond(StoreError(f"failed to open snapshot {request.id}: {err}"))
            return
        try:
            self.fsm.restore(source)
        except Exception as err:  # the application's restore failed; report, do not crash
            request.respond(StoreError(f"failed to restore snapshot {request.id}: {err}"))
            return
        finally:
            source.close()
        state.last_index, state.last_term = meta.index, meta.term
        self.fsm_applied_index = max(self.fsm_applied_index, meta.index)
        if self._applied_waiters:
            self._wake_applied()
        self.observe(Restored(meta.index, meta.term, request.id))
        request.respond(None)

    def _fsm_snapshot(self: Raft, state: _FSMProgress, request: ReqSnapshotFuture) -> None:
        if state.last_index == 0:
            request.respond(ErrNothingNewToSnapshot())
            return
        request.index, request.term = state.last_index, state.last_term
        try:
            request.snapshot = self.fsm.snapshot()
        except Exception as err:  # the application's snapshot failed
            request.respond(StoreError(f"FSM snapshot failed: {err}"))
            return
        request.respond(None)


class _FSMProgress:
    """The last entry the FSM has seen; snapshots are labelled with it."""

    def __init__(self) -> None:
        self.last_index = 0
        self.last_term = 0
        self.batching = False
        self.config_store = False


def _goes_to_batching_fsm(entry: Log) -> bool:
    return entry.type == _COMMAND or entry.type == _CONFIGURATION
