"""An in-process transport: nodes in one process talk over channels.

Mirrors: inmem_transport.go.
Read next: sim/network.py (the faults a simulation adds on top).

Each transport has a consumer channel on which its node receives requests,
and a table of the peers it can reach. ``connect`` and ``disconnect`` edit
that table, as hashicorp's tests do: a request to a peer that is not in the
table fails at once with "failed to connect to peer".

With a ``SimNetwork`` attached, a request and its response each cross the
network, where they may be delayed, duplicated, reordered or lost; a lost
message leaves the caller waiting until its timeout. Without one, messages
are handed over at once. Either way every message is encoded and decoded
(commands.py), so sender and receiver never share an object.

A request that arrives over the network waits in the receiver's
``arrivals`` queue (think of it as the socket's buffer) until the
receiver's own task, ``receive``, hands it to the node with a blocking send
on the consumer channel. When the node falls behind, requests wait there in
order; one that waits longer than the transport's timeout is dropped, as in
Go, where the sender gives up its blocking send after the timeout.
"""

from __future__ import annotations

import asyncio
import functools
import io
import random
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

from raft.commands import (
    RPC_NAMES,
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
    decode_message,
    encode_message,
    summarize,
)
from raft.errors import ErrPipelineShutdown, RaftError, TransportError
from raft.future import AppendFuture
from raft.runtime.channels import Chan, Send, select
from raft.runtime.timers import Timer
from raft.transport import RPC, HeartbeatHandler, RPCResponse
from raft.util import async_notify_ch, generate_uuid


class Network(Protocol):
    """What the transport needs of a simulated network (``raft.sim.SimNetwork`` is one).

    Differs: hashicorp's in-memory transport hands messages straight to the
    peer. Named here as an interface so that this module, like the rest of
    the protocol, does not import the simulator that may sit under it.
    """

    def new_rpc_id(self) -> int:
        """A fresh number that names one request and its answer in the event stream."""
        ...

    def send(self, rpc_id: int, src: str, dst: str, rpc: str, dir: str, payload: bytes,
             deliver: Callable[[bytes], None], summary: dict[str, Any] | None = None) -> str | None:
        """Put a message on the wire; return why it was dropped at once, or None."""
        ...

DEFAULT_TIMEOUT = 0.5  # Go: NewInmemTransport uses 500ms
SNAPSHOT_TIMEOUT_SCALE = 256 * 1024  # InstallSnapshot waits one more timeout per this many bytes (as NetworkTransport)


def new_inmem_addr(rng: random.Random) -> str:
    """A fresh random address (Mirrors: NewInmemAddr)."""
    return generate_uuid(rng)


class InmemTransport:
    """Transport for nodes in one process (Mirrors: InmemTransport).

    Mirrors: NewInmemTransport and NewInmemTransportWithTimeout.

    Differs: ``set_heartbeat_handler`` is ignored, as in Go. The optional
    ``network`` adds the simulator's faults; the network's ``down`` table
    marks a crashed node, and ``reopen`` gives it an empty inbox on restart.
    """

    def __init__(self, addr: str, timeout: float = DEFAULT_TIMEOUT, network: Network | None = None) -> None:
        if not addr:
            raise ValueError("an InmemTransport needs an address")
        self.consumer_ch: Chan[RPC] = Chan(16, name=f"{addr}.consumer")
        self._local_addr = addr
        self.peers: dict[str, InmemTransport] = {}
        self.pipelines: list[InmemPipeline] = []
        self.timeout = timeout
        self.network = network
        # Requests the network has delivered and the node has not taken yet,
        # each with the moment it is given up on; ``receive`` drains them.
        self.arrivals: deque[tuple[RPC, float]] = deque()
        self.arrival_ch: Chan[bool] = Chan(1, name=f"{addr}.arrivals")
        self.receiver: asyncio.Task[None] | None = None

    # -- Transport interface ----------------------------------------------------

    def set_heartbeat_handler(self, cb: HeartbeatHandler | None) -> None:
        """No fast path in memory: heartbeats go through the consumer like any RPC."""

    def consumer(self) -> Chan[RPC]:
        return self.consumer_ch

    def local_addr(self) -> str:
        return self._local_addr

    async def append_entries_pipeline(self, id: str, target: str) -> InmemPipeline:
        peer = self.peers.get(target)
        if peer is None:
            raise TransportError(f"failed to connect to peer: {target}")
        pipeline = InmemPipeline(self, peer, target)
        self.pipelines.append(pipeline)
        return pipeline

    async def append_entries(self, id: str, target: str, args: AppendEntriesRequest) -> AppendEntriesResponse:
        resp = await self.make_rpc(target, args, None, self.timeout)
        assert isinstance(resp, AppendEntriesResponse)
        return resp

    async def request_vote(self, id: str, target: str, args: RequestVoteRequest) -> RequestVoteResponse:
        resp = await self.make_rpc(target, args, None, self.timeout)
        assert isinstance(resp, RequestVoteResponse)
        return resp

    async def request_pre_vote(self, id: str, target: str, args: RequestPreVoteRequest) -> RequestPreVoteResponse:
        resp = await self.make_rpc(target, args, None, self.timeout)
        assert isinstance(resp, RequestPreVoteResponse)
        return resp

    async def install_snapshot(self, id: str, target: str, args: InstallSnapshotRequest,
                               data: BinaryIO) -> InstallSnapshotResponse:
        """Send a snapshot: ``args.size`` bytes are read from ``data`` and streamed after the request.

        Differs: Go's in-memory transport waits ten times its timeout,
        whatever the size; on a lossy simulated network one lost request or
        answer then costs 5 s with the default timeout. We wait as the
        network transport does: one timeout per 256 KiB, at least one.
        """
        payload = data.read(args.size)
        timeout = max(self.timeout, self.timeout * (args.size // SNAPSHOT_TIMEOUT_SCALE))
        resp = await self.make_rpc(target, args, payload, timeout)
        assert isinstance(resp, InstallSnapshotResponse)
        return resp

    async def timeout_now(self, id: str, target: str, args: TimeoutNowRequest) -> TimeoutNowResponse:
        resp = await self.make_rpc(target, args, None, 10 * self.timeout)
        assert isinstance(resp, TimeoutNowResponse)
        return resp

    def encode_peer(self, id: str, addr: str) -> str:
        return addr

    def decode_peer(self, buf: str) -> str:
        return buf

    # -- WithPeers / WithClose ---------------------------------------------------------

    def connect(self, peer: str, transport: Any) -> None:
        assert isinstance(transport, InmemTransport)
        self.peers[peer] = transport

    def disconnect(self, peer: str) -> None:
        self.peers.pop(peer, None)
        keep = []
        for pipeline in self.pipelines:
            if pipeline.peer_addr == peer:
                pipeline.close()
            else:
                keep.append(pipeline)
        self.pipelines = keep

    def disconnect_all(self) -> None:
        self.peers = {}
        for pipeline in self.pipelines:
            pipeline.close()
        self.pipelines = []

    def close(self) -> None:
        self.disconnect_all()

    # -- the simulator's crash fault -------------------------------------------------

    def reopen(self) -> None:
        """Give a restarted node an empty inbox; requests to the dead node are gone."""
        self.consumer_ch = Chan(16, name=f"{self._local_addr}.consumer")
        self.arrivals.clear()

    def arrive(self, rpc: RPC) -> None:
        """The network delivered a request: queue it for ``receive``, which never loses one."""
        loop = asyncio.get_running_loop()
        self.arrivals.append((rpc, loop.time() + self.timeout))
        if self.receiver is None or self.receiver.done():
            self.receiver = loop.create_task(self.receive(), name=f"{self._local_addr}:receive")
        async_notify_ch(self.arrival_ch)

    async def receive(self) -> None:
        """Hand arrived requests to the node in order, waiting while its inbox is full.

        Mirrors: the blocking ``consumerCh <- rpc`` of inmem_transport.go
        makeRPC (and of net_transport.go handleCommand), with its timeout.
        """
        loop = asyncio.get_running_loop()
        while True:
            while self.arrivals:
                rpc, give_up_at = self.arrivals[0]
                consumer = self.consumer_ch
                case, _ = await select([Send(consumer, rpc)], default=True)  # room now?
                if case is None:
                    timer = Timer(give_up_at - loop.time())
                    await select([Send(consumer, rpc), timer.c])  # else wait, up to the deadline
                    timer.stop()
                if self.arrivals and self.arrivals[0][0] is rpc:  # reopen() may have emptied the queue
                    self.arrivals.popleft()
            await self.arrival_ch.recv()

    # -- one request and its response ------------------------------------------------

    async def make_rpc(self, target: str, args: Any, reader: bytes | None, timeout: float) -> Any:
        """Send ``args`` to ``target`` and wait up to ``timeout`` for the response.

        Mirrors: inmem_transport.go makeRPC.
        """
        peer = self.peers.get(target)
        if peer is None:
            raise TransportError(f"failed to connect to peer: {target}")
        resp_ch: Chan[RPCResponse] = Chan(1, name="resp")
        rpc_id = self.network.new_rpc_id() if self.network is not None else 0
        request = encode_message(args)
        rpc_name = RPC_NAMES[type(args)]
        response_type = type(args).TYPE + 64

        def reply(resp: RPCResponse) -> None:
            # Runs on the receiver: encode the answer and send it back.
            error = str(resp.error) if resp.error is not None else None
            payload = encode_message(resp.response) if resp.response is not None else b""

            def deliver_response(data: bytes) -> None:
                # A duplicated answer finds the slot taken and is dropped, like a
                # duplicate TCP segment (Go: a select with a default).
                resp_ch.try_send(_decode_response(data, error, response_type))

            if self.network is None:
                deliver_response(payload)
            else:
                self.network.send(rpc_id, target, self._local_addr, rpc_name, "response", payload,
                                  deliver_response)

        def deliver_request(data: bytes) -> None:
            peer.arrive(RPC(decode_message(data), reply, io.BytesIO(reader) if reader is not None else None))

        if self.network is None:
            rpc = RPC(decode_message(request), reply, io.BytesIO(reader) if reader is not None else None)
            timer = Timer(timeout)
            case, _ = await select([Send(peer.consumer_ch, rpc), timer.c])
            timer.stop()
            if case is timer.c:
                raise TransportError("send timed out")
        else:
            dropped = self.network.send(rpc_id, self._local_addr, target, rpc_name, "request", request,
                                        deliver_request, summarize(args))
            if dropped == "partition":
                raise TransportError(f"failed to reach peer {target}: network partition")
            if dropped == "receiver crashed":
                raise TransportError(f"failed to reach peer {target}: connection refused (it is down)")

        timer = Timer(timeout)
        case, value = await select([resp_ch, timer.c])
        timer.stop()
        if case is timer.c:
            raise TransportError("command timed out")
        assert isinstance(value, RPCResponse)
        if value.error is not None:
            raise value.error
        return value.response


def _decode_response(data: bytes, error: str | None, response_type: int) -> RPCResponse:
    if error is not None:
        return RPCResponse(None, TransportError(error))
    response = decode_message(data)
    if response_type != response.TYPE:
        return RPCResponse(None, TransportError(f"unexpected response {type(response).__name__}"))
    return RPCResponse(response, None)


def _ignore_result(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()



class InmemPipeline:
    """Pipelined AppendEntries to one peer (Mirrors: inmemPipeline).

    Requests are sent without waiting for earlier answers; a task collects
    the answers in order and hands each finished ``AppendFuture`` to
    ``consumer()``.

    Differs: an answer is presumed lost once an answer to a *later* request
    has arrived and the earlier one is still missing after a grace as long
    as that later round trip took. Go's pipeline runs over one TCP
    connection, where answers arrive in order and a lost one breaks the
    connection at once. Over the simulator's lossy network each request
    travels alone, and a lost answer would hold every answer behind it for
    the transport's whole timeout (0.5 s, the leader lease): the leader
    hears nothing from that follower for a lease although the follower
    answers. Presumed lost, it ends the pipeline like any failed answer,
    and replication starts again from the follower's real position.
    """

    def __init__(self, trans: InmemTransport, peer: InmemTransport, peer_addr: str) -> None:
        self.trans = trans
        self.peer = peer
        self.peer_addr = peer_addr
        self.done_ch: Chan[AppendFuture] = Chan(16, name="pipeline.done")
        self.inprogress_ch: Chan[tuple[AppendFuture, asyncio.Task[Any]]] = Chan(16, name="pipeline.inprogress")
        self.shutdown = False
        self.shutdown_ch: Chan[bool] = Chan(0, name="pipeline.shutdown")
        # The latest-sent request answered so far: (when it was sent, when its answer came).
        self._latest_answer: tuple[float, float] | None = None
        self._answer_came: asyncio.Future[None] | None = None  # wakes the decoder when any answer comes
        self._decoder = asyncio.get_running_loop().create_task(self.decode_responses(),
                                                               name=f"{trans.local_addr()}:pipeline:{peer_addr}")

    async def decode_responses(self) -> None:
        """Hand back answers in the order the requests were sent (Mirrors: decodeResponses)."""
        while True:
            case, item = await select([self.inprogress_ch, self.shutdown_ch])
            if case is self.shutdown_ch:
                return
            future, call = item
            try:
                # make_rpc always finishes within the transport timeout.
                future.resp = await self._answer(call, future.start)
                future.respond(None)
            except RaftError as err:
                future.respond(err)
            case, _ = await select([Send(self.done_ch, future), self.shutdown_ch])
            if case is self.shutdown_ch:
                return

    async def _answer(self, call: asyncio.Task[Any], started: float) -> Any:
        """The answer of ``call``, sent at ``started``; TransportError once a later answer overtook it."""
        loop = asyncio.get_running_loop()
        while not call.done():
            latest = self._latest_answer
            if latest is not None and latest[0] > started:
                # Overtaken: wait as long again as that later round trip took.
                sent, answered = latest
                remaining = answered + (answered - sent) - loop.time()
                if remaining <= 0:
                    call.cancel()
                    raise TransportError("answer presumed lost: the answer to a later request came first")
                await asyncio.wait([call], timeout=remaining)
                continue
            self._answer_came = loop.create_future()
            try:
                await asyncio.wait([call, self._answer_came], return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not self._answer_came.done():
                    self._answer_came.cancel()
                self._answer_came = None
        return call.result()

    def _answered(self, call: asyncio.Task[Any], started: float) -> None:
        """A call finished with an answer: remember it if it was sent last so far, and wake the decoder."""
        if call.cancelled() or call.exception() is not None:
            return
        if self._latest_answer is None or started > self._latest_answer[0]:
            self._latest_answer = (started, asyncio.get_running_loop().time())
        if self._answer_came is not None and not self._answer_came.done():
            self._answer_came.set_result(None)

    async def append_entries(self, args: AppendEntriesRequest) -> AppendFuture:
        if self.shutdown:
            raise ErrPipelineShutdown()
        loop = asyncio.get_running_loop()
        future = AppendFuture(start=loop.time(), args=args)
        call = loop.create_task(self.trans.make_rpc(self.peer_addr, args, None, self.trans.timeout))
        # A failed call whose answer nobody collects (the pipeline closed) is not a bug.
        call.add_done_callback(_ignore_result)
        call.add_done_callback(functools.partial(self._answered, started=future.start))
        case, _ = await select([Send(self.inprogress_ch, (future, call)), self.shutdown_ch])
        if case is self.shutdown_ch:
            call.cancel()
            raise ErrPipelineShutdown()
        return future

    def consumer(self) -> Chan[AppendFuture]:
        return self.done_ch

    def close(self) -> None:
        if self.shutdown:
            return
        self.shutdown = True
        self.shutdown_ch.close()
