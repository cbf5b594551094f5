"""A transport over byte streams: framing, a connection pool, pipelining, the heartbeat fast path.

Mirrors: net_transport.go (NetworkTransport, netConn, netPipeline).
Read before: transport.py (the interface), net_frames.py (the bytes on the wire).
Read next: tcp_transport.py (the TCP stream layer and ``new_tcp_transport``).

Theory of operation
-------------------
*Client side.* Every call (``append_entries``, ``request_vote``, ...) takes a
connection to the target from a small pool, or dials a new one, writes one
request frame, reads one response frame, and puts the connection back, so a
connection carries one conversation at a time. Up to ``max_pool`` idle
connections per target are kept; more are closed. A pipeline owns its own
connection: ``append_entries`` writes requests without waiting for answers and
a task (``decode_responses``) reads the answers, which arrive in order.

*Server side.* ``listen`` accepts connections and starts one task per
connection (``handle_conn``), which reads requests one after another. Each
request becomes an ``RPC`` on ``consumer()``, where Raft's main loop picks it
up; the task waits for the answer and writes it back. A heartbeat skips the
queue (below). A connection that sends bytes we cannot understand is closed
with a logged reason; each connection has its own task, so one bad or stalled
peer never holds up the others.

*Heartbeat fast path.* A leader's heartbeat carries no entries and costs the
follower almost nothing, but in the consumer queue it may wait behind an
AppendEntries that is writing to disk. If it waits too long the follower
starts an election. So a request that ``commands.is_heartbeat`` recognises is
handed straight to the handler registered with ``set_heartbeat_handler``
(Raft's ``process_heartbeat``), on the connection's task.

Frames
------
The bytes of a request and a response are described, and encoded, in
net_frames.py. In short: a type byte, then length-prefixed msgpack; bad
frames, frames above ``max_frame_size`` and frames that stall for longer
than ``timeout`` close the connection they came on, and only that one.

Timeouts follow Go: every exchange has a deadline of ``timeout`` seconds, and
InstallSnapshot's deadline grows by ``timeout`` for every ``timeout_scale``
(256 KiB) of snapshot. ``timeout = 0`` means no deadline.

Differs: not wire-compatible with Go (see net_frames.py). InstallSnapshot's
bytes are received in full by the connection task, into a temporary file that
spills to disk past 1 MiB, before the RPC is dispatched: Raft's handler reads
``rpc.reader`` synchronously, and a synchronous read from a socket would
stall the event loop. Because the transport reads the whole stream itself, a
handler that stops reading early cannot leave the sender stuck (hashicorp
#212), and a snapshot whose sender dies half-way never reaches the handler.
``close`` also closes pooled connections, pipelines and connection handlers,
which Go leaves to run out.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from typing import IO, Any, BinaryIO, Protocol

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
    is_heartbeat,
)
from raft.errors import (
    CodecError,
    ErrPipelineReplicationNotSupported,
    ErrPipelineShutdown,
    ErrTransportShutdown,
    RaftError,
    TransportError,
)
from raft.future import AppendFuture
from raft.net_frames import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameError,
    encode_request,
    encode_response,
    read_request,
    read_response,
)
from raft.runtime.channels import Chan, Send, select
from raft.runtime.tasks import TaskGroup
from raft.runtime.timers import Timer
from raft.transport import RPC, HeartbeatHandler, RPCResponse

DEFAULT_TIMEOUT = 10.0  # seconds; what Consul and Nomad pass to Go's NewTCPTransport
DEFAULT_MAX_POOL = 3  # idle connections kept per target
DEFAULT_TIMEOUT_SCALE = 256 * 1024  # InstallSnapshot gets one more `timeout` per this many bytes
DEFAULT_MAX_RPCS_IN_FLIGHT = 2  # hashicorp #541: more in flight hurts commit latency under batching
MIN_IN_FLIGHT_FOR_PIPELINING = 2  # below this a pipeline is one RPC at a time: no pipeline at all
CONN_BUFFER_SIZE = 256 * 1024  # Go: connReceiveBufferSize and connSendBufferSize
SNAPSHOT_CHUNK = 256 * 1024  # snapshot bytes are copied this many at a time
SNAPSHOT_SPOOL_MEMORY = 1024 * 1024  # a received snapshot stays in memory up to this size, then goes to disk
ACCEPT_BASE_DELAY = 0.005  # Go: listen's baseDelay
ACCEPT_MAX_DELAY = 1.0  # Go: listen's maxDelay


class ServerAddressProvider(Protocol):
    """Maps a server ID to the address to dial (Mirrors: ServerAddressProvider).

    Lets a deployment move a server without a configuration change: the
    provider answers with the current address, and the one stored in the
    configuration is used only when the provider fails.
    """

    def server_addr(self, id: str) -> str: ...


class StreamLayer(Protocol):
    """Where connections come from (Mirrors: StreamLayer, a ``net.Listener`` that can also dial)."""

    async def accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Wait for the next incoming connection."""
        ...

    async def dial(self, address: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a connection to ``address``, giving up after ``timeout`` seconds (0: never)."""
        ...

    def addr(self) -> str:
        """The address peers should use to reach us."""
        ...

    def close(self) -> None:
        """Stop listening."""
        ...


def deadline(seconds: float) -> float | None:
    """``asyncio.timeout``'s argument for a Go-style timeout, where 0 means none."""
    return seconds if seconds > 0 else None


def accept_backoff(delay: float) -> float:
    """The wait after a failed accept, given the previous one (0 after a success).

    Mirrors: the loopDelay arithmetic in (*NetworkTransport).listen. A listener
    whose accept keeps failing (out of file descriptors, say) must neither spin
    nor flood the log: 5 ms, then doubling, at most 1 s.
    """
    return min(ACCEPT_BASE_DELAY if delay == 0 else 2 * delay, ACCEPT_MAX_DELAY)


def describe(err: BaseException) -> str:
    """A readable reason for a failed exchange (some exceptions print as an empty string)."""
    if isinstance(err, TimeoutError):
        return "i/o timeout"
    if isinstance(err, asyncio.IncompleteReadError):
        return f"connection closed after {len(err.partial)} of {err.expected} bytes"
    return str(err) or type(err).__name__


# -- receiving InstallSnapshot data ------------------------------------------------------------


class SnapshotReader:
    """``rpc.reader`` of an InstallSnapshot: the snapshot's bytes, never more than ``size``.

    Mirrors: the io.LimitReader that handleCommand puts on the connection.
    Differs: reads a temporary file the connection task has already filled,
    not the socket (see the module docstring).
    """

    def __init__(self, spool: IO[bytes], size: int) -> None:
        self._spool = spool
        self.remaining = size

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that remain if ``n`` < 0); b"" at the end."""
        if n < 0 or n > self.remaining:
            n = self.remaining
        data = self._spool.read(n)
        self.remaining -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._spool.close()


# -- one outgoing connection ------------------------------------------------------------------


class NetConn:
    """One connection we dialed, with its stream ends (Mirrors: netConn)."""

    def __init__(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.target = target  # the pool key: the address we dialed
        self.reader = reader
        self.writer = writer

    def release(self) -> None:
        """Close the connection (Mirrors: netConn.Release)."""
        self.writer.close()

    def usable(self) -> bool:
        """False once we closed it or the peer did; such a connection is never handed out again."""
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def send(self, frame: bytes, timeout: float) -> None:
        """Write a frame and wait until the socket has taken it (Mirrors: sendRPC).

        Waits at most ``timeout`` seconds (0: no limit) for a peer that does
        not read.
        """
        if self.writer.is_closing():  # asyncio would drop the bytes silently
            raise ConnectionResetError("connection already closed")
        await write_frame(self.writer, frame, timeout)


async def write_frame(writer: asyncio.StreamWriter, frame: bytes, timeout: float) -> None:
    """Write ``frame``; if the socket could not take it all at once, wait for it to drain.

    Usually the kernel takes the whole frame during ``write``, and then
    there is nothing to wait for: we skip the timer that a timed ``drain``
    would cost, which on a busy leader is one per frame.

    Mirrors: the write half of sendRPC (and of handleCommand's reply).
    Differs: Go sets a write deadline on the connection before every write;
    here only a write that has to wait for the socket is timed.
    """
    writer.write(frame)
    if writer.transport.get_write_buffer_size():
        async with asyncio.timeout(deadline(timeout)):
            await writer.drain()


# -- the transport ----------------------------------------------------------------------------


class NetworkTransport:
    """Raft's Transport over a StreamLayer (Mirrors: NetworkTransport, NewNetworkTransportWithConfig).

    Mirrors: NewNetworkTransport and NewNetworkTransportWithLogger.

    Create it inside a running event loop: it starts listening at once.
    ``max_rpcs_in_flight`` 0 means the default of 2; 1 turns pipelining off.

    Differs: fields that Go guards with mutexes are plain attributes; every
    task of the transport runs on one event loop thread.
    """

    def __init__(self, stream: StreamLayer, *, max_pool: int = DEFAULT_MAX_POOL, timeout: float = DEFAULT_TIMEOUT,
                 max_rpcs_in_flight: int = 0, server_address_provider: ServerAddressProvider | None = None,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, logger: logging.Logger | None = None) -> None:
        if max_pool < 0 or max_rpcs_in_flight < 0 or timeout < 0:
            raise ValueError("max_pool, max_rpcs_in_flight and timeout cannot be negative")
        if max_frame_size < 1024:
            raise ValueError("max_frame_size must be at least 1 KiB")
        self.stream = stream
        self.conn_pool: dict[str, list[NetConn]] = {}  # idle connections by target, newest last
        self.consume_ch: Chan[RPC] = Chan(0, name="net.consumer")  # unbuffered, as Go's consumeCh
        self.heartbeat_fn: HeartbeatHandler | None = None
        self.logger = logger if logger is not None else logging.getLogger("raft.net")
        self.max_pool = max_pool
        self.max_in_flight = max_rpcs_in_flight or DEFAULT_MAX_RPCS_IN_FLIGHT
        self.server_address_provider = server_address_provider
        self.timeout = timeout
        self.timeout_scale = DEFAULT_TIMEOUT_SCALE
        self.max_frame_size = max_frame_size
        self.shutdown = False
        self.shutdown_ch: Chan[bool] = Chan(0, name="net.shutdown")
        self.routines = TaskGroup("net")
        # Connections peers opened to us, and their handler tasks; close_streams ends them.
        self.handlers: dict[int, tuple[asyncio.Task[Any], asyncio.StreamWriter]] = {}
        self.pipelines: list[NetPipeline] = []  # open pipelines, closed by close
        self._next_handler = 0
        # RPC counts by request type, for an operator's metrics (raft-kv's /metrics).
        # Differs: Go's transport keeps none; hashicorp times each RPC in raft.go.
        self.rpcs_received: dict[str, int] = {}
        self.rpcs_sent: dict[str, int] = {}
        self.rpcs_failed: dict[str, int] = {}
        self.listen_task = self.routines.go(self.listen(), "listen")
        # Close the listener only once the accept loop is gone, so no accept is
        # ever left waiting on a closed socket.
        self.listen_task.add_done_callback(lambda _: stream.close())

    # -- Transport interface: local side --------------------------------------------------------

    def consumer(self) -> Chan[RPC]:
        return self.consume_ch

    def local_addr(self) -> str:
        return self.stream.addr()

    def set_heartbeat_handler(self, cb: HeartbeatHandler | None) -> None:
        """Register Raft's heartbeat handler, called instead of the consumer for heartbeats."""
        self.heartbeat_fn = cb

    def encode_peer(self, id: str, addr: str) -> str:
        return self.get_provider_address_or_fallback(id, addr)

    def decode_peer(self, buf: str) -> str:
        return buf

    def is_shutdown(self) -> bool:
        return self.shutdown

    def close(self) -> None:
        """Stop listening and drop every connection; harmless when repeated (Mirrors: Close)."""
        if self.shutdown:
            return
        self.shutdown = True
        self.shutdown_ch.close()
        self.listen_task.cancel()
        for pipeline in list(self.pipelines):
            pipeline.close()
        self.close_streams()

    async def wait_closed(self) -> None:
        """After ``close``: return once every task of the transport has finished."""
        await self.routines.wait()

    def close_streams(self) -> None:
        """Close pooled connections and the connections peers opened to us (Mirrors: CloseStreams).

        Differs: Go's handlers notice only before their next request; we cancel them at once.
        """
        for conns in self.conn_pool.values():
            for conn in conns:
                conn.release()
        self.conn_pool = {}
        for task, writer in list(self.handlers.values()):
            # Close the socket here, not only in the task: a task cancelled
            # before its first step never runs its cleanup.
            writer.close()
            task.cancel()

    # -- the connection pool --------------------------------------------------------------------

    def get_provider_address_or_fallback(self, id: str, target: str) -> str:
        """The provider's address for ``id``, or ``target`` if there is no provider or it fails."""
        if self.server_address_provider is not None:
            try:
                return self.server_address_provider.server_addr(id)
            except Exception as err:  # a user-supplied provider may fail in any way
                self.logger.warning("unable to get address for server %s, using fallback address %s: %s",
                                    id, target, err)
        return target

    def get_pooled_conn(self, target: str) -> NetConn | None:
        """The most recently returned idle connection to ``target`` that is still open."""
        conns = self.conn_pool.get(target, [])
        while conns:
            conn = conns.pop()
            if conn.usable():
                return conn
            # Differs: Go hands out a connection the peer has closed and the next
            # RPC fails; after a peer restarts that costs every pooled connection one error.
            conn.release()
        return None

    async def get_conn(self, target: str) -> NetConn:
        """A pooled connection to ``target``, or a new one (Mirrors: getConn)."""
        if self.shutdown:
            raise ErrTransportShutdown()
        conn = self.get_pooled_conn(target)
        if conn is not None:
            return conn
        try:
            reader, writer = await self.stream.dial(target, self.timeout)
        except (OSError, EOFError, ValueError) as err:
            raise TransportError(f"failed to dial {target}: {describe(err)}") from err
        return NetConn(target, reader, writer)

    def return_conn(self, conn: NetConn) -> None:
        """Keep an idle connection for reuse, unless the pool is full (Mirrors: returnConn)."""
        conns = self.conn_pool.setdefault(conn.target, [])
        if not self.shutdown and len(conns) < self.max_pool and conn.usable():
            conns.append(conn)
        else:
            conn.release()

    # -- Transport interface: sending -----------------------------------------------------------

    async def append_entries_pipeline(self, id: str, target: str) -> NetPipeline:
        """A pipeline to ``target`` on a connection of its own (Mirrors: AppendEntriesPipeline)."""
        if self.max_in_flight < MIN_IN_FLIGHT_FOR_PIPELINING:
            raise ErrPipelineReplicationNotSupported()
        conn = await self.get_conn(self.get_provider_address_or_fallback(id, target))
        pipeline = NetPipeline(self, conn, self.max_in_flight)
        self.pipelines.append(pipeline)
        return pipeline

    async def append_entries(self, id: str, target: str, args: AppendEntriesRequest) -> AppendEntriesResponse:
        resp = await self.generic_rpc(id, target, args, AppendEntriesResponse)
        assert isinstance(resp, AppendEntriesResponse)
        return resp

    async def request_vote(self, id: str, target: str, args: RequestVoteRequest) -> RequestVoteResponse:
        resp = await self.generic_rpc(id, target, args, RequestVoteResponse)
        assert isinstance(resp, RequestVoteResponse)
        return resp

    async def request_pre_vote(self, id: str, target: str, args: RequestPreVoteRequest) -> RequestPreVoteResponse:
        resp = await self.generic_rpc(id, target, args, RequestPreVoteResponse)
        assert isinstance(resp, RequestPreVoteResponse)
        return resp

    async def timeout_now(self, id: str, target: str, args: TimeoutNowRequest) -> TimeoutNowResponse:
        resp = await self.generic_rpc(id, target, args, TimeoutNowResponse)
        assert isinstance(resp, TimeoutNowResponse)
        return resp

    async def generic_rpc(self, id: str, target: str, args: Any, response_type: type[Any]) -> Any:
        """One request and its response on a pooled connection (Mirrors: genericRPC).

        A connection whose exchange failed half-way is closed: we cannot know
        what is still in it. One whose peer answered, even with an error, is
        in step and goes back to the pool.
        """
        kind = type(args).__name__
        self.rpcs_sent[kind] = self.rpcs_sent.get(kind, 0) + 1
        frame = encode_request(args, self.max_frame_size)
        try:
            conn = await self.get_conn(self.get_provider_address_or_fallback(id, target))
        except RaftError:
            self.rpcs_failed[kind] = self.rpcs_failed.get(kind, 0) + 1
            raise
        try:
            async with asyncio.timeout(deadline(self.timeout)):  # one deadline for the whole exchange
                await conn.send(frame, 0)
                error, resp = await read_response(conn.reader, response_type, self.max_frame_size)
        except (OSError, EOFError, CodecError) as err:
            conn.release()
            self.rpcs_failed[kind] = self.rpcs_failed.get(kind, 0) + 1
            raise TransportError(f"{kind} to {conn.target} failed: {describe(err)}") from err
        except BaseException:  # cancelled half-way: the connection is out of step
            conn.release()
            raise
        self.return_conn(conn)
        if error:
            raise TransportError(error)
        return resp

    async def install_snapshot(self, id: str, target: str, args: InstallSnapshotRequest,
                               data: BinaryIO) -> InstallSnapshotResponse:
        """Send ``args``, then exactly ``args.size`` bytes read from ``data`` (Mirrors: InstallSnapshot).

        The connection is always closed afterwards, never pooled: if anything
        went wrong we would not know how much of the stream the peer consumed.
        """
        kind = type(args).__name__
        self.rpcs_sent[kind] = self.rpcs_sent.get(kind, 0) + 1
        frame = encode_request(args, self.max_frame_size)
        try:
            conn = await self.get_conn(self.get_provider_address_or_fallback(id, target))
        except RaftError:
            self.rpcs_failed[kind] = self.rpcs_failed.get(kind, 0) + 1
            raise
        try:
            async with asyncio.timeout(deadline(self.snapshot_timeout(args.size))):
                await conn.send(frame, 0)  # the whole exchange has one deadline, set here
                await self.send_snapshot_data(conn, data, args.size)
                error, resp = await read_response(conn.reader, InstallSnapshotResponse, self.max_frame_size)
        except (OSError, EOFError, CodecError) as err:
            self.rpcs_failed[kind] = self.rpcs_failed.get(kind, 0) + 1
            raise TransportError(f"InstallSnapshot to {conn.target} failed: {describe(err)}") from err
        finally:
            conn.release()
        if error:
            raise TransportError(error)
        assert isinstance(resp, InstallSnapshotResponse)
        return resp

    def snapshot_timeout(self, size: int) -> float:
        """``timeout`` once per ``timeout_scale`` bytes, and never less than ``timeout``."""
        return max(self.timeout, self.timeout * (size // self.timeout_scale))

    async def send_snapshot_data(self, conn: NetConn, data: BinaryIO, size: int) -> None:
        """Copy exactly ``size`` bytes of ``data`` to the connection.

        Go copies all of ``data``; a source longer than ``size`` then corrupts the
        stream (hashicorp #651), so we stop at ``size``, and fail if it is shorter.
        """
        sent = 0
        while sent < size:
            chunk = data.read(min(SNAPSHOT_CHUNK, size - sent))
            if not chunk:
                raise TransportError(f"snapshot data ended after {sent} of {size} bytes")
            await conn.send(chunk, 0)
            sent += len(chunk)

    # -- receiving ------------------------------------------------------------------------------

    async def listen(self) -> None:
        """Accept connections until closed, backing off while accept fails (Mirrors: listen)."""
        delay = 0.0
        while True:
            try:
                reader, writer = await self.stream.accept()
            except Exception as err:  # any accept failure, as Go's: log it and retry later
                delay = accept_backoff(delay)
                if not self.shutdown:
                    self.logger.error("failed to accept connection: %s", describe(err))
                timer = Timer(delay)
                case, _ = await select([self.shutdown_ch, timer.c])
                timer.stop()
                if case is self.shutdown_ch:
                    return
                continue
            delay = 0.0
            if self.shutdown:  # accepted just as we closed
                writer.close()
                return
            self.logger.debug("accepted connection from %s", writer.get_extra_info("peername"))
            handler_id = self._next_handler
            self._next_handler += 1
            task = self.routines.go(self.handle_conn(reader, writer), f"conn{handler_id}")
            self.handlers[handler_id] = (task, writer)
            task.add_done_callback(functools.partial(self._forget_handler, handler_id))

    def _forget_handler(self, handler_id: int, _task: asyncio.Task[Any]) -> None:
        self.handlers.pop(handler_id, None)

    async def handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one peer's requests until it hangs up or misbehaves (Mirrors: handleConn)."""
        peer = writer.get_extra_info("peername")
        try:
            while await self.handle_command(reader, writer):
                pass
        except (FrameError, EOFError, TimeoutError) as err:
            self.logger.warning("closing connection from %s: %s", peer, describe(err))
        except ErrTransportShutdown:
            pass
        except OSError as err:
            self.logger.warning("connection from %s failed: %s", peer, describe(err))
        except Exception:  # a bug; it must cost this connection only, not the node
            self.logger.exception("closing connection from %s after an unexpected error", peer)
        finally:
            writer.close()

    async def handle_command(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request, get Raft's answer, write it back; False at a clean end of stream.

        Mirrors: handleCommand.
        """
        command = await read_request(reader, self.max_frame_size, deadline(self.timeout))
        if command is None:
            return False
        kind = type(command).__name__
        self.rpcs_received[kind] = self.rpcs_received.get(kind, 0) + 1
        snapshot = None
        if isinstance(command, InstallSnapshotRequest):
            snapshot = await self.receive_snapshot_data(reader, command.size)
        resp_ch: Chan[RPCResponse] = Chan(1, name="net.resp")

        def reply(resp: RPCResponse) -> None:
            resp_ch.send_nowait(resp)  # Go blocks; the one answer in a one-slot channel never waits

        rpc = RPC(command, reply, snapshot)
        try:
            if self.heartbeat_fn is not None and is_heartbeat(command):
                await self.heartbeat_fn(rpc)  # the fast path: no queueing behind the main loop
            else:
                case, _ = await select([Send(self.consume_ch, rpc), self.shutdown_ch])
                if case is self.shutdown_ch:
                    raise ErrTransportShutdown()
            case, resp = await select([resp_ch, self.shutdown_ch])
            if case is self.shutdown_ch:
                raise ErrTransportShutdown()
        finally:
            if snapshot is not None:
                snapshot.close()  # whatever the handler left unread is discarded with the file
        assert isinstance(resp, RPCResponse)
        error = "" if resp.error is None else (str(resp.error) or type(resp.error).__name__)
        # A peer that does not read its answers times out here.
        await write_frame(writer, encode_response(error, resp.response), self.timeout)
        return True

    async def receive_snapshot_data(self, reader: asyncio.StreamReader, size: int) -> SnapshotReader:
        """Read the ``size`` snapshot bytes that follow an InstallSnapshot into a temporary file.

        Each chunk must arrive within ``timeout``: a sender that stalls loses
        its connection however large it said the snapshot was.
        """
        spool = tempfile.SpooledTemporaryFile(max_size=SNAPSHOT_SPOOL_MEMORY)  # noqa: SIM115 - closed by the reader
        try:
            received = 0
            while received < size:
                async with asyncio.timeout(deadline(self.timeout)):
                    chunk = await reader.read(min(SNAPSHOT_CHUNK, size - received))
                if not chunk:
                    raise FrameError(f"truncated snapshot: connection closed after {received} of {size} bytes")
                spool.write(chunk)
                received += len(chunk)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return SnapshotReader(spool, size)


# -- pipelining -------------------------------------------------------------------------------


class NetPipeline:
    """AppendEntries to one peer without waiting for each answer (Mirrors: netPipeline).

    In flight are the request being decoded, those queued in ``inprogress_ch``
    and the one whose sender waits to queue it: with a buffer of
    ``max_in_flight - 2`` that makes ``max_in_flight`` requests on the wire
    before ``append_entries`` blocks, which is the back-pressure Raft wants.
    """

    def __init__(self, trans: NetworkTransport, conn: NetConn, max_in_flight: int) -> None:
        assert max_in_flight >= MIN_IN_FLIGHT_FOR_PIPELINING, "a pipeline needs at least 2 requests in flight"
        self.trans = trans
        self.conn = conn
        self.done_ch: Chan[AppendFuture] = Chan(max_in_flight - 2, name="pipeline.done")
        self.inprogress_ch: Chan[AppendFuture] = Chan(max_in_flight - 2, name="pipeline.inprogress")
        self.shutdown = False
        self.shutdown_ch: Chan[bool] = Chan(0, name="pipeline.shutdown")
        self.decoder = trans.routines.go(self.decode_responses(), f"pipeline:{conn.target}")

    async def decode_responses(self) -> None:
        """Read the answers in order and hand each finished future on (Mirrors: decodeResponses)."""
        try:
            while True:
                case, future = await select([self.inprogress_ch, self.shutdown_ch])
                if case is self.shutdown_ch:
                    return
                assert isinstance(future, AppendFuture)
                future.respond(await self.read_one(future))
                case, _ = await select([Send(self.done_ch, future), self.shutdown_ch])
                if case is self.shutdown_ch:
                    return
        finally:
            # Nobody will read answers to what is still queued: fail those futures
            # so that no one can wait on them forever.
            while True:
                left, ok = self.inprogress_ch.try_recv()
                if not ok or left is None:
                    break
                left.respond(ErrPipelineShutdown())

    async def read_one(self, future: AppendFuture) -> RaftError | None:
        """The answer to ``future``'s request: None, with ``future.resp`` set, or the error."""
        try:
            async with asyncio.timeout(deadline(self.trans.timeout)):
                error, resp = await read_response(self.conn.reader, AppendEntriesResponse, self.trans.max_frame_size)
        except (OSError, EOFError, CodecError) as err:
            self.conn.release()  # out of step: every later answer fails too
            return TransportError(f"pipelined AppendEntries to {self.conn.target} failed: {describe(err)}")
        if error:
            return TransportError(error)
        future.resp = resp
        return None

    async def append_entries(self, args: AppendEntriesRequest) -> AppendFuture:
        """Send ``args`` and return its future; blocks while too many are in flight (Mirrors: AppendEntries)."""
        if self.shutdown:
            raise ErrPipelineShutdown()
        future = AppendFuture(start=asyncio.get_running_loop().time(), args=args)
        frame = encode_request(args, self.trans.max_frame_size)
        sent, failed = self.trans.rpcs_sent, self.trans.rpcs_failed
        sent["AppendEntriesRequest"] = sent.get("AppendEntriesRequest", 0) + 1
        try:
            await self.conn.send(frame, self.trans.timeout)
        except OSError as err:
            self.conn.release()
            failed["AppendEntriesRequest"] = failed.get("AppendEntriesRequest", 0) + 1
            raise TransportError(f"pipelined AppendEntries to {self.conn.target} failed: {describe(err)}") from err
        case, _ = await select([Send(self.inprogress_ch, future), self.shutdown_ch])
        if case is self.shutdown_ch:
            raise ErrPipelineShutdown()
        return future

    def consumer(self) -> Chan[AppendFuture]:
        return self.done_ch

    def close(self) -> None:
        """Close the pipeline's connection; harmless when repeated (Mirrors: netPipeline.Close)."""
        if self.shutdown:
            return
        self.conn.release()
        self.shutdown = True
        self.shutdown_ch.close()
        if self in self.trans.pipelines:
            self.trans.pipelines.remove(self)
