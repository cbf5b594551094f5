"""How Raft talks to its peers: the transport interface.

Mirrors: transport.go.
Read next: inmem_transport.py (in-process, used by the simulator).

The main loop receives requests as ``RPC`` objects on ``consumer()`` and
answers each with ``rpc.respond(response, error)``. To send, it calls one
method per message type (``append_entries``, ``request_vote``, ...), which
returns the peer's response or raises ``TransportError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, runtime_checkable

from raft.commands import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestPreVoteRequest,
    RequestPreVoteResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNowRequest,
    TimeoutNowResponse,
)
from raft.errors import RaftError
from raft.future import AppendFuture
from raft.runtime.channels import Chan


@dataclass
class RPCResponse:
    """A handler's answer: a response message, or an error (Mirrors: RPCResponse)."""

    response: Any
    error: RaftError | None


# Raft's heartbeat fast path (``process_heartbeat``), called by a transport with the request.
HeartbeatHandler = Callable[["RPC"], Awaitable[None]]


class RPC:
    """One received request and the way to answer it (Mirrors: transport.go RPC).

    Differs: Go hands the handler a response channel; here the transport
    supplies a ``reply`` callback, which lets the simulated network carry
    the answer back with its own delay, loss and duplication.
    """

    __slots__ = ("_reply", "command", "reader", "responded")

    def __init__(self, command: Any, reply: Callable[[RPCResponse], None], reader: Any = None) -> None:
        self.command = command
        self.reader = reader  # the snapshot data stream, for InstallSnapshot only
        self._reply = reply
        self.responded = False

    def respond(self, response: Any, error: RaftError | None = None) -> None:
        """Send the answer back to the caller; a second call is a bug."""
        assert not self.responded, "an RPC must be answered exactly once"
        self.responded = True
        self._reply(RPCResponse(response, error))


@runtime_checkable
class Transport(Protocol):
    """What Raft needs from a network (Mirrors: transport.go Transport)."""

    def consumer(self) -> Chan[RPC]:
        """The channel on which incoming requests arrive."""
        ...

    def local_addr(self) -> str: ...

    async def append_entries_pipeline(self, id: str, target: str) -> AppendPipeline:
        """Open a pipeline; raises ``ErrPipelineReplicationNotSupported`` if there is none."""
        ...

    async def append_entries(self, id: str, target: str, args: AppendEntriesRequest) -> AppendEntriesResponse: ...

    async def request_vote(self, id: str, target: str, args: RequestVoteRequest) -> RequestVoteResponse: ...

    async def install_snapshot(
        self, id: str, target: str, args: InstallSnapshotRequest, data: BinaryIO
    ) -> InstallSnapshotResponse:
        """Send ``args`` followed by ``args.size`` bytes read from ``data``."""
        ...

    def encode_peer(self, id: str, addr: str) -> str: ...

    def decode_peer(self, buf: str) -> str: ...

    def set_heartbeat_handler(self, cb: HeartbeatHandler | None) -> None:
        """Register a fast path for heartbeats; transports may ignore it."""
        ...

    async def timeout_now(self, id: str, target: str, args: TimeoutNowRequest) -> TimeoutNowResponse: ...


@runtime_checkable
class WithPreVote(Protocol):
    """A transport that can carry pre-vote requests (Mirrors: WithPreVote)."""

    async def request_pre_vote(
        self, id: str, target: str, args: RequestPreVoteRequest
    ) -> RequestPreVoteResponse: ...


@runtime_checkable
class WithClose(Protocol):
    """A transport that holds resources to release (Mirrors: WithClose)."""

    def close(self) -> None: ...


@runtime_checkable
class WithPeers(Protocol):
    """A transport whose links tests can cut (Mirrors: WithPeers)."""

    def connect(self, peer: str, transport: Any) -> None: ...

    def disconnect(self, peer: str) -> None: ...

    def disconnect_all(self) -> None: ...


class AppendPipeline(Protocol):
    """Several AppendEntries in flight to one peer (Mirrors: AppendPipeline)."""

    async def append_entries(self, args: AppendEntriesRequest) -> AppendFuture: ...

    def consumer(self) -> Chan[AppendFuture]: ...

    def close(self) -> None: ...
