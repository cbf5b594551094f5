"""Futures: how a caller waits for the main loop to finish something it asked for.

Mirrors: future.go.

A client calls ``r.apply(cmd)`` from outside the Raft loop; the request
travels on a channel to the main loop, which answers much later, after the
entry has been committed and applied. The caller holds a *future* for that
answer. As in Go, ``error()`` waits and returns the error (``None`` on
success) rather than raising it; ``response()`` and ``index()`` give the
rest once ``error()`` has returned.

Differs: ``error()`` is a coroutine (``await f.error()``). ``done`` tells
without waiting whether an answer is there, which the synchronous facade in
``raft.sim.Cluster`` uses to run a simulation until a future resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from raft.commands import AppendEntriesRequest, AppendEntriesResponse
from raft.configuration import Configuration, ConfigurationChangeRequest, Configurations
from raft.errors import ErrRaftShutdown, RaftError
from raft.log import Log
from raft.runtime.channels import Chan, Send, select

if TYPE_CHECKING:
    from raft.api import Raft  # only for annotations: api.py imports this module


class Future(Protocol):
    """Something that will have an error or success (Mirrors: Future)."""

    @property
    def done(self) -> bool: ...

    async def error(self) -> RaftError | None: ...


class ErrorFuture:
    """A future that failed before it started, e.g. ``ErrNotLeader`` (Mirrors: errorFuture)."""

    def __init__(self, err: RaftError) -> None:
        self.err = err

    @property
    def done(self) -> bool:
        return True

    async def error(self) -> RaftError | None:
        return self.err

    def error_now(self) -> RaftError | None:
        return self.err

    def response(self) -> Any:
        return None

    def index(self) -> int:
        return 0


class DeferError:
    """A one-shot answer delivered by the main loop (Mirrors: deferError).

    ``respond`` may be called more than once; only the first answer counts.
    ``error()`` also returns ``ErrRaftShutdown`` if the node shuts down
    before answering, so a caller can never wait forever.
    """

    # Slots, not a __dict__: a client may hold 100,000 of these at once. Subclasses
    # other than LogFuture keep a __dict__; there are only ever a few of them.
    __slots__ = ("_settled", "err", "err_ch", "responded", "shutdown_ch")

    def __init__(self, shutdown_ch: Chan[bool] | None = None) -> None:
        self.err: RaftError | None = None
        self.err_ch: Chan[RaftError | None] = Chan(1)
        self.responded = False
        self.shutdown_ch = shutdown_ch
        self._settled = False

    @property
    def done(self) -> bool:
        """True once an answer (or shutdown) is available without waiting."""
        return self._settled or self.responded or (self.shutdown_ch is not None and self.shutdown_ch.closed)

    async def error(self) -> RaftError | None:
        if self._settled:
            return self.err
        case, value = await select([self.err_ch, self.shutdown_ch])
        self.err = value if case is self.err_ch else ErrRaftShutdown()
        self._settled = True
        return self.err

    def error_now(self) -> RaftError | None:
        """The answer, for a future that is ``done``; for the synchronous facade."""
        if not self._settled:
            value, received = self.err_ch.try_recv()
            if received:
                self.err = value
            elif self.shutdown_ch is not None and self.shutdown_ch.closed:
                self.err = ErrRaftShutdown()
            else:
                raise RuntimeError("future has no answer yet; wait until it is done")
            self._settled = True
        return self.err

    def respond(self, err: RaftError | None) -> None:
        if self.responded:
            return
        self.err_ch.send_nowait(err)  # Go blocks; the one answer in a one-slot channel never waits
        self.err_ch.close()
        self.responded = True


class LogFuture(DeferError):
    """Waits for an entry to be committed and applied (Mirrors: logFuture).

    ``response()`` is what the FSM's ``apply`` returned; ``index()`` is the
    entry's log index once the leader has assigned one.
    """

    __slots__ = ("dispatch", "log", "response_value")

    def __init__(self, log: Log, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.log = log
        self.response_value: Any = None
        self.dispatch = 0.0  # clock time the leader stored it

    def response(self) -> Any:
        return self.response_value

    def index(self) -> int:
        return self.log.index


class ConfigurationChangeFuture(LogFuture):
    """A membership change travelling to the leader loop (Mirrors: configurationChangeFuture)."""

    def __init__(self, req: ConfigurationChangeRequest, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(Log(), shutdown_ch)
        self.req = req


class BootstrapFuture(DeferError):
    """A live bootstrap request for the follower loop (Mirrors: bootstrapFuture)."""

    def __init__(self, configuration: Configuration, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.configuration = configuration


class ConfigurationsFuture(DeferError):
    """A copy of the committed and latest configurations (Mirrors: configurationsFuture)."""

    def __init__(self, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.configurations = Configurations()

    def configuration(self) -> Configuration:
        return self.configurations.latest

    def index(self) -> int:
        return self.configurations.latest_index


class ShutdownFuture:
    """Resolves once every task of a shut-down node has returned (Mirrors: shutdownFuture)."""

    def __init__(self, raft: Raft | None) -> None:
        self.raft = raft

    @property
    def done(self) -> bool:
        return self.raft is None or len(self.raft.routines_group) == 0

    async def error(self) -> RaftError | None:
        if self.raft is None:
            return None
        await self.raft.routines_group.wait()
        close = getattr(self.raft.trans, "close", None)
        if close is not None:
            close()
        return None

    def error_now(self) -> RaftError | None:
        return None


class VerifyFuture(DeferError):
    """Counts heartbeat acknowledgements to confirm leadership (Mirrors: verifyFuture)."""

    def __init__(self, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.notify_ch: Chan[VerifyFuture] | None = None
        self.quorum_size = 0
        self.votes = 0

    async def vote(self, leader: bool) -> None:
        """Record one follower's answer; report to the leader once the outcome is known.

        Mirrors: future.go (*verifyFuture).vote.
        Differs: the report also gives up at shutdown. Go's send waits for
        the main loop alone, and would hold its goroutine (and Shutdown)
        for ever once the main loop is gone.

        A single "no" settles it: some follower has a newer term, so we are
        no longer leader. The report is a blocking send, as in Go: with many
        verifications at once the channel fills, and the replicator waits for
        the leader loop rather than losing an answer.
        """
        if self.notify_ch is None:
            return
        if leader:
            self.votes += 1
            if self.votes < self.quorum_size:
                return
        notify_ch, self.notify_ch = self.notify_ch, None  # settled: later votes are ignored
        await select([Send(notify_ch, self), self.shutdown_ch])


class LeadershipTransferFuture(DeferError):
    """A request to hand leadership over (Mirrors: leadershipTransferFuture)."""

    def __init__(self, server_id: str | None, address: str | None, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.id = server_id
        self.address = address


@dataclass(eq=False)
class AppendFuture(DeferError):
    """One pipelined AppendEntries in flight (Mirrors: appendFuture)."""

    start: float = 0.0
    args: AppendEntriesRequest = field(default_factory=AppendEntriesRequest)
    resp: AppendEntriesResponse = field(default_factory=AppendEntriesResponse)

    def __post_init__(self) -> None:
        DeferError.__init__(self)

    def request(self) -> AppendEntriesRequest:
        return self.args

    def response(self) -> AppendEntriesResponse:
        return self.resp


class RestoreFuture(DeferError):
    """Asks the FSM task to restore snapshot ``id`` (Mirrors: restoreFuture)."""

    def __init__(self, snapshot_id: str, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.id = snapshot_id


class ReqSnapshotFuture(DeferError):
    """Asks the FSM task for a snapshot of its current state (Mirrors: reqSnapshotFuture)."""

    def __init__(self, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.index = 0
        self.term = 0
        self.snapshot: Any = None  # an FSMSnapshot


class UserSnapshotFuture(DeferError):
    """Answers a user's snapshot request; ``open()`` then reads the snapshot (Mirrors: userSnapshotFuture)."""

    def __init__(self, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.opener: Any = None  # set by run_snapshots: a callable returning (meta, reader)

    def open(self) -> Any:
        """(SnapshotMeta, reader) of the snapshot taken; usable once, after ``error()`` is None."""
        if self.opener is None:
            raise RaftError("no snapshot available")
        opener, self.opener = self.opener, None
        return opener()


class UserRestoreFuture(DeferError):
    """A user's request to restore an external snapshot on the leader (Mirrors: userRestoreFuture)."""

    def __init__(self, meta: Any, reader: Any, shutdown_ch: Chan[bool] | None = None) -> None:
        super().__init__(shutdown_ch)
        self.meta = meta
        self.reader = reader
