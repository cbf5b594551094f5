"""Tests for raft/inmem_transport.py and raft/sim/network.py.

Mirrors: transport_test.go and inmem_transport_test.go; the SimNetwork tests
cover the simulator's faults, which have no twin in hashicorp/raft.

Every test runs on a ``VirtualTimeLoop``: timeouts of half a second pass
instantly and always at the same virtual instant, and the simulated network
draws its delays and faults from a seeded ``random.Random``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from raft.commands import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestPreVoteRequest,
    RequestPreVoteResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    RPCHeader,
    TimeoutNowRequest,
    TimeoutNowResponse,
)
from raft.errors import ErrNotLeader, ErrPipelineShutdown, TransportError
from raft.events import Event, EventLog
from raft.inmem_transport import DEFAULT_TIMEOUT, InmemTransport, new_inmem_addr
from raft.log import Log, LogType
from raft.runtime import Chan, VirtualTimeLoop
from raft.sim.network import LinkFaults, SimNetwork
from raft.transport import RPC, Transport, WithClose, WithPeers, WithPreVote

TIMEOUT = DEFAULT_TIMEOUT  # 0.5 s, as Go's NewInmemTransport


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[VirtualTimeLoop]:
    """A fresh virtual-time loop; tasks a test leaves running are cancelled afterwards."""
    loop = VirtualTimeLoop()
    yield loop
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


def run(loop: VirtualTimeLoop, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return loop.run_until_complete(main())


def now() -> float:
    return asyncio.get_running_loop().time()


def append_request(term: int = 10, commit: int = 90) -> AppendEntriesRequest:
    return AppendEntriesRequest(
        header=RPCHeader(3, "id-b", "cartman"), term=term, prev_log_entry=100, prev_log_term=4,
        entries=[Log(101, 4, LogType.LogNoop, b"", b"", 0.0), Log(102, 4, LogType.LogCommand, b"cmd", b"", 1.0)],
        leader_commit_index=commit,
    )


def answer(command: Any) -> Any:
    """A fixed, recognisable response for each request type."""
    if isinstance(command, AppendEntriesRequest):
        return AppendEntriesResponse(RPCHeader(3, "id-a", "a"), term=4, last_log=command.leader_commit_index,
                                     success=True)
    if isinstance(command, RequestVoteRequest):
        return RequestVoteResponse(RPCHeader(3, "id-a", "a"), term=100, granted=False)
    if isinstance(command, RequestPreVoteRequest):
        return RequestPreVoteResponse(RPCHeader(3, "id-a", "a"), term=21, granted=True)
    if isinstance(command, InstallSnapshotRequest):
        return InstallSnapshotResponse(RPCHeader(3, "id-a", "a"), term=10, success=True)
    if isinstance(command, TimeoutNowRequest):
        return TimeoutNowResponse(RPCHeader(3, "id-a", "a"))
    raise AssertionError(f"unexpected command {command!r}")


class Responder:
    """A consumer task that answers every RPC arriving at a transport and remembers it."""

    def __init__(self, trans: InmemTransport, reply: Callable[[Any], Any] = answer) -> None:
        self.received: list[RPC] = []
        self.reply = reply
        self.task = asyncio.get_running_loop().create_task(self.serve(trans))

    async def serve(self, trans: InmemTransport) -> None:
        while True:
            rpc = await trans.consumer().recv()
            assert rpc is not None
            self.received.append(rpc)
            rpc.respond(self.reply(rpc.command), None)

    def stop(self) -> None:
        self.task.cancel()


def connected_pair(network: SimNetwork | None = None, timeout: float = TIMEOUT) -> tuple[InmemTransport,
                                                                                         InmemTransport]:
    """Transports "a" and "b", each connected to the other."""
    a = InmemTransport("a", timeout, network)
    b = InmemTransport("b", timeout, network)
    a.connect("b", b)
    b.connect("a", a)
    return a, b


def sim_network(loop: VirtualTimeLoop, seed: int = 1, **faults: Any) -> tuple[SimNetwork, EventLog]:
    """A seeded SimNetwork recording its events on the loop's virtual clock."""
    events = EventLog(loop.time)
    return SimNetwork(random.Random(seed), events, LinkFaults(**faults)), events


async def expect_transport_error(call: Coroutine[Any, Any, Any], message: str) -> float:
    """Await ``call``, which must raise TransportError containing ``message``; returns when it did."""
    with pytest.raises(TransportError, match=message):
        await call
    return now()


def kinds(events: EventLog, kind: str, **match: Any) -> list[Event]:
    return [e for e in events.of_kind(kind) if all(e.get(k) == v for k, v in match.items())]


# The four plain request/response calls of the Transport interface.
CALLS = [
    pytest.param("append_entries", append_request(), id="append_entries"),
    pytest.param("request_vote", RequestVoteRequest(RPCHeader(3, "id-b", "butters"), 20, 100, 19), id="request_vote"),
    pytest.param("request_pre_vote", RequestPreVoteRequest(RPCHeader(3, "id-b", "butters"), 21, 100, 19),
                 id="request_pre_vote"),
    pytest.param("timeout_now", TimeoutNowRequest(RPCHeader(3, "id-b", "stan")), id="timeout_now"),
]


def snapshot_request() -> InstallSnapshotRequest:
    return InstallSnapshotRequest(RPCHeader(3, "id-b", "kyle"), snapshot_version=1, term=10, last_log_index=100,
                                  last_log_term=9, configuration=b"blah blah", configuration_index=50, size=10)


# -- the Transport interface without a network ---------------------------------------------------


def test_inmem_transport_impl() -> None:
    """InmemTransport provides the Transport, WithPreVote, WithPeers and WithClose interfaces."""
    trans = InmemTransport("a")
    assert isinstance(trans, Transport)
    assert isinstance(trans, WithPreVote)
    assert isinstance(trans, WithPeers)
    assert isinstance(trans, WithClose)
    assert trans.local_addr() == "a"


def test_inmem_transport_needs_address() -> None:
    """A transport without an address is refused."""
    with pytest.raises(ValueError, match="address"):
        InmemTransport("")


def test_new_inmem_addr_is_seeded() -> None:
    """new_inmem_addr gives the same address for the same seed and different ones otherwise."""
    assert new_inmem_addr(random.Random(3)) == new_inmem_addr(random.Random(3))
    rng = random.Random(3)
    assert new_inmem_addr(rng) != new_inmem_addr(rng)


def test_transport_start_stop() -> None:
    """A transport can be closed, and closing it twice is harmless."""
    trans = InmemTransport("a")
    trans.close()
    trans.close()


def test_transport_encode_decode() -> None:
    """decode_peer(encode_peer(id, addr)) gives back the address."""
    trans = InmemTransport("a")
    assert trans.decode_peer(trans.encode_peer("id1", "addr1")) == "addr1"


def test_transport_append_entries(loop: VirtualTimeLoop) -> None:
    """AppendEntries reaches the peer's consumer with equal fields and the caller gets the peer's response."""
    args = append_request()

    async def main() -> None:
        a, b = connected_pair()
        responder = Responder(a)
        out = await b.append_entries("id1", a.local_addr(), args)
        assert len(responder.received) == 1
        assert responder.received[0].command == args
        assert out == answer(args)
        assert now() == 0.0  # without a network nothing takes time

    run(loop, main)


@pytest.mark.parametrize(("method", "args"), CALLS)
def test_transport_request_response(loop: VirtualTimeLoop, method: str, args: Any) -> None:
    """Each plain RPC arrives intact at the consumer and returns the consumer's response."""
    async def main() -> None:
        a, b = connected_pair()
        responder = Responder(a)
        out = await getattr(b, method)("id1", "a", args)
        assert [rpc.command for rpc in responder.received] == [args]
        assert responder.received[0].reader is None
        assert out == answer(args)

    run(loop, main)


def test_transport_install_snapshot(loop: VirtualTimeLoop) -> None:
    """InstallSnapshot delivers the request and its snapshot bytes as rpc.reader, and returns the response."""
    args = snapshot_request()

    async def main() -> None:
        a, b = connected_pair()
        responder = Responder(a)
        out = await b.install_snapshot("id1", "a", args, io.BytesIO(b"0123456789"))
        rpc = responder.received[0]
        assert rpc.command == args
        assert rpc.reader.read() == b"0123456789"
        assert out == answer(args)

    run(loop, main)


def test_transport_append_entries_pipeline(loop: VirtualTimeLoop) -> None:
    """Ten pipelined AppendEntries all arrive, and their futures come back on consumer() in the order sent."""
    async def main() -> None:
        a, b = connected_pair()
        responder = Responder(a)
        pipeline = await b.append_entries_pipeline("id1", "a")
        requests = [append_request(commit=90 + i) for i in range(10)]
        sent = [await pipeline.append_entries(req) for req in requests]
        for i in range(10):
            future = await pipeline.consumer().recv()
            assert future is sent[i]
            assert await future.error() is None
            assert future.request() is requests[i]
            assert future.response() == answer(requests[i])
        assert [rpc.command for rpc in responder.received] == requests
        pipeline.close()

    run(loop, main)


def test_pipeline_closed_refuses_requests(loop: VirtualTimeLoop) -> None:
    """append_entries on a closed pipeline raises ErrPipelineShutdown; closing twice is harmless."""
    async def main() -> None:
        _a, b = connected_pair()
        pipeline = await b.append_entries_pipeline("id1", "a")
        pipeline.close()
        pipeline.close()
        with pytest.raises(ErrPipelineShutdown):
            await pipeline.append_entries(append_request())

    run(loop, main)


def test_pipeline_unanswered_request_fails_its_future(loop: VirtualTimeLoop) -> None:
    """A pipelined request nobody answers yields a future whose error is 'command timed out' after the timeout."""
    async def main() -> None:
        _a, b = connected_pair()
        pipeline = await b.append_entries_pipeline("id1", "a")
        await pipeline.append_entries(append_request())
        future = await pipeline.consumer().recv()
        assert future is not None
        err = await future.error()
        assert isinstance(err, TransportError)
        assert str(err) == "command timed out"
        assert now() == pytest.approx(TIMEOUT)

    run(loop, main)


def test_pipeline_answer_overtaken_by_a_later_one_is_presumed_lost(loop: VirtualTimeLoop) -> None:
    """A lost answer fails its future one later round trip after a later answer came, not after the timeout.

    Before: the decoder waited the whole transport timeout (0.5 s, the
    leader lease) for the lost answer while the answers behind it had
    already arrived, so the leader heard nothing from that follower.
    """
    async def main() -> None:
        net, events = sim_network(loop, delay=0.010, jitter=0.0)
        a, b = connected_pair(net)
        Responder(b)
        pipeline = await a.append_entries_pipeline("id2", "b")
        await pipeline.append_entries(append_request(commit=1))
        await asyncio.sleep(0.001)
        await pipeline.append_entries(append_request(commit=2))
        await asyncio.sleep(0.015)  # both requests have arrived; the answers are on their way
        first_answer = min(fid for fid, f in net.in_flight.items() if f.dir == "response")
        assert net.drop(first_answer)
        first = await pipeline.consumer().recv()
        assert first is not None
        err = await first.error()
        assert isinstance(err, TransportError) and "presumed lost" in str(err)
        # The second answer came at 0.021 after a 0.020 round trip: the first is given up at 0.041.
        assert now() == pytest.approx(0.041)
        second = await pipeline.consumer().recv()
        assert second is not None and await second.error() is None
        assert [e["dir"] for e in events.of_kind("rpc_drop")] == ["response"]

    run(loop, main)


def test_pipeline_answers_that_arrive_out_of_order_are_all_delivered(loop: VirtualTimeLoop) -> None:
    """A late answer that still comes within the grace is not presumed lost: reordering alone loses nothing."""
    async def main() -> None:
        net, _ = sim_network(loop, delay=0.010, jitter=0.0)
        a, b = connected_pair(net)
        Responder(b)
        pipeline = await a.append_entries_pipeline("id2", "b")
        await pipeline.append_entries(append_request(commit=1))
        await asyncio.sleep(0.001)
        await pipeline.append_entries(append_request(commit=2))  # answered at 0.021, after 0.020
        await asyncio.sleep(0.0105)  # the first answer is on its way, due at 0.020
        answer_flight = min(fid for fid, f in net.in_flight.items() if f.dir == "response")
        held = net.in_flight[answer_flight]  # hold it back to 0.035: overtaken, but within the grace (0.041)
        assert held.handle is not None
        held.handle.cancel()
        held.arrives_at += 0.015
        held.handle = loop.call_at(held.arrives_at, net._arrive, answer_flight)
        futures = [await pipeline.consumer().recv(), await pipeline.consumer().recv()]
        assert [await f.error() for f in futures if f is not None] == [None, None]
        assert now() == pytest.approx(0.035)

    run(loop, main)


@pytest.mark.parametrize(("method", "args"), [*CALLS, pytest.param("install_snapshot", snapshot_request(),
                                                                     id="install_snapshot")])
def test_inmem_transport_unconnected_peer(loop: VirtualTimeLoop, method: str, args: Any) -> None:
    """A request to an address that was never connected fails at once with 'failed to connect to peer'."""
    async def main() -> None:
        trans = InmemTransport("a")
        extra = [io.BytesIO(b"0123456789")] if method == "install_snapshot" else []
        failed_at = await expect_transport_error(getattr(trans, method)("id1", "c", args, *extra),
                                                 "failed to connect to peer: c")
        assert failed_at == 0.0

    run(loop, main)


def test_inmem_transport_unconnected_pipeline(loop: VirtualTimeLoop) -> None:
    """Opening a pipeline to an unconnected address fails with 'failed to connect to peer'."""
    async def main() -> None:
        trans = InmemTransport("a")
        with pytest.raises(TransportError, match="failed to connect to peer"):
            await trans.append_entries_pipeline("id1", "c")

    run(loop, main)


def test_inmem_transport_disconnect(loop: VirtualTimeLoop) -> None:
    """After disconnect(b) requests to b fail and b's pipelines are closed, while b can still reach us."""
    async def main() -> None:
        a, b = connected_pair()
        Responder(a)
        Responder(b)
        pipeline = await a.append_entries_pipeline("id2", "b")
        assert await a.append_entries("id2", "b", append_request()) == answer(append_request())
        a.disconnect("b")
        await expect_transport_error(a.append_entries("id2", "b", append_request()), "failed to connect to peer")
        with pytest.raises(ErrPipelineShutdown):
            await pipeline.append_entries(append_request())
        assert a.pipelines == []
        # Disconnecting is one-sided: b still has a route to a.
        assert await b.request_vote("id1", "a", RequestVoteRequest(term=1)) == answer(RequestVoteRequest())
        # Connecting again restores the route.
        a.connect("b", b)
        assert await a.append_entries("id2", "b", append_request()) == answer(append_request())

    run(loop, main)


def test_inmem_transport_disconnect_keeps_other_pipelines(loop: VirtualTimeLoop) -> None:
    """disconnect closes only the pipelines to that peer."""
    async def main() -> None:
        a, _b = connected_pair()
        c = InmemTransport("c")
        a.connect("c", c)
        Responder(c)
        to_b = await a.append_entries_pipeline("id2", "b")
        to_c = await a.append_entries_pipeline("id3", "c")
        a.disconnect("b")
        assert to_b.shutdown and not to_c.shutdown
        await to_c.append_entries(append_request())
        future = await to_c.consumer().recv()
        assert future is not None and await future.error() is None

    run(loop, main)


def test_inmem_transport_disconnect_all(loop: VirtualTimeLoop) -> None:
    """disconnect_all (and close) removes every route and closes every pipeline."""
    async def main() -> None:
        a, _b = connected_pair()
        c = InmemTransport("c")
        a.connect("c", c)
        pipelines = [await a.append_entries_pipeline("id2", "b"), await a.append_entries_pipeline("id3", "c")]
        a.close()
        assert all(p.shutdown for p in pipelines)
        for target in ("b", "c"):
            await expect_transport_error(a.request_vote("x", target, RequestVoteRequest()), "failed to connect")

    run(loop, main)


def test_inmem_transport_write_timeout(loop: VirtualTimeLoop) -> None:
    """With an unbuffered inbox and no consumer left, a request fails with 'send timed out' after the timeout."""
    async def main() -> None:
        a, b = connected_pair(timeout=0.010)
        b.consumer_ch = Chan(0, name="b.unbuffered")  # as Go's test, so a send must meet a receiver
        answered: list[int] = []

        async def answer_once() -> None:
            rpc = await b.consumer().recv()
            assert rpc is not None
            answered.append(1)
            rpc.respond(AppendEntriesResponse(success=True, last_log=1), None)

        loop.create_task(answer_once())
        out = await a.append_entries("id1", "b", AppendEntriesRequest())
        assert out.last_log == 1 and answered == [1]

        start = now()
        failed_at = await expect_transport_error(a.append_entries("id1", "b", AppendEntriesRequest()),
                                                 "^send timed out$")
        assert failed_at - start == pytest.approx(0.010)

    run(loop, main)


def test_inmem_transport_full_inbox_send_timed_out(loop: VirtualTimeLoop) -> None:
    """When the peer's 16-slot inbox is full and nobody reads it, the next request fails with 'send timed out'."""
    async def main() -> None:
        a, b = connected_pair()
        waiting = [loop.create_task(a.append_entries("id1", "b", AppendEntriesRequest(term=i))) for i in range(16)]
        await asyncio.sleep(0)
        assert len(b.consumer()) == 16
        failed_at = await expect_transport_error(a.append_entries("id1", "b", AppendEntriesRequest()),
                                                 "^send timed out$")
        assert failed_at == pytest.approx(TIMEOUT)
        for task in waiting:  # the 16 that got in were never answered
            with pytest.raises(TransportError, match=r"^command timed out$"):
                await task

    run(loop, main)


@pytest.mark.parametrize(
    ("method", "args", "factor"),
    [*(pytest.param(p.values[0], p.values[1], 10 if p.values[0] == "timeout_now" else 1, id=p.id) for p in CALLS),
     pytest.param("install_snapshot", snapshot_request(), 1, id="install_snapshot")],
)
def test_inmem_transport_unanswered_command_timed_out(loop: VirtualTimeLoop, method: str, args: Any,
                                                      factor: int) -> None:
    """An unanswered request fails with 'command timed out' after its timeout (10× for TimeoutNow, as in Go).

    A small InstallSnapshot waits one timeout (Go's in-memory transport: ten; see install_snapshot).
    """
    async def main() -> None:
        a, b = connected_pair()
        extra = [io.BytesIO(b"0123456789")] if method == "install_snapshot" else []
        failed_at = await expect_transport_error(getattr(a, method)("id1", "b", args, *extra),
                                                 "^command timed out$")
        assert failed_at == pytest.approx(factor * TIMEOUT)
        assert len(b.consumer()) == 1  # it was delivered; nobody took it

    run(loop, main)


@pytest.mark.parametrize("with_network", [False, True], ids=["direct", "network"])
def test_inmem_transport_messages_are_copies(loop: VirtualTimeLoop, with_network: bool) -> None:
    """The receiver gets a copy of the request and the caller a copy of the response, never the objects built."""
    args = append_request()
    original = append_request()
    built: list[AppendEntriesResponse] = []

    def reply(command: Any) -> Any:
        command.entries[0].term = 999  # a handler scribbling on its request
        command.entries.append(Log(500, 9))
        command.header.id = "scribbled"
        response = answer(command)
        built.append(response)
        return response

    async def main() -> None:
        a, b = connected_pair(sim_network(loop)[0] if with_network else None)
        responder = Responder(a, reply)
        out = await b.append_entries("id1", "a", args)
        assert responder.received[0].command is not args
        assert responder.received[0].command.entries[0] is not args.entries[0]
        assert args == original
        assert out is not built[0]
        assert out == built[0]
        built[0].term = 1234
        assert out.term == 4

    run(loop, main)


def test_inmem_transport_error_response(loop: VirtualTimeLoop) -> None:
    """An RPC answered with an error raises TransportError carrying the error's text at the caller."""
    async def main() -> None:
        a, b = connected_pair()

        async def refuse() -> None:
            rpc = await a.consumer().recv()
            assert rpc is not None
            rpc.respond(None, ErrNotLeader())

        loop.create_task(refuse())
        await expect_transport_error(b.append_entries("id1", "a", append_request()), "^node is not the leader$")

    run(loop, main)


def test_inmem_transport_wrong_response_type(loop: VirtualTimeLoop) -> None:
    """A response of the wrong type for the request raises TransportError at the caller."""
    async def main() -> None:
        a, b = connected_pair()
        Responder(a, lambda command: RequestVoteResponse(term=1))
        await expect_transport_error(b.append_entries("id1", "a", append_request()), "unexpected response")

    run(loop, main)


def test_rpc_respond_twice_is_a_bug(loop: VirtualTimeLoop) -> None:
    """Answering one RPC twice is refused."""
    async def main() -> None:
        a, b = connected_pair()
        call = loop.create_task(b.request_vote("id1", "a", RequestVoteRequest()))
        rpc = await a.consumer().recv()
        assert rpc is not None
        rpc.respond(RequestVoteResponse(), None)
        with pytest.raises(AssertionError):
            rpc.respond(RequestVoteResponse(), None)
        await call

    run(loop, main)


# -- with a SimNetwork -------------------------------------------------------------------------------


def transit_times(events: EventLog, direction: str) -> list[float]:
    """For each message sent in ``direction``, the time from rpc_send to its rpc_deliver."""
    sent = {e["id"]: e.t for e in kinds(events, "rpc_send", dir=direction)}
    return [e.t - sent[e["id"]] for e in kinds(events, "rpc_deliver", dir=direction)]


def test_network_round_trip(loop: VirtualTimeLoop) -> None:
    """Over a healthy network a request and its response each cross once, with send and deliver events."""
    async def main() -> None:
        net, events = sim_network(loop)
        a, b = connected_pair(net)
        responder = Responder(b)
        out = await a.append_entries("id2", "b", append_request())
        assert out == answer(append_request())
        assert [rpc.command for rpc in responder.received] == [append_request()]
        assert [(e.node, e["dir"]) for e in events.of_kind("rpc_send", "rpc_deliver")] == [
            ("a", "request"), ("b", "request"), ("b", "response"), ("a", "response")]
        assert events.of_kind("rpc_send")[0]["msg"]["term"] == 10
        assert net.in_flight == {}

    run(loop, main)


def test_network_install_snapshot_reader(loop: VirtualTimeLoop) -> None:
    """Through the network the snapshot bytes still arrive as rpc.reader."""
    async def main() -> None:
        net, _ = sim_network(loop)
        a, b = connected_pair(net)
        responder = Responder(b)
        await a.install_snapshot("id2", "b", snapshot_request(), io.BytesIO(b"0123456789"))
        assert responder.received[0].reader.read() == b"0123456789"

    run(loop, main)


def test_network_delay_within_jitter(loop: VirtualTimeLoop) -> None:
    """Every request and response takes between delay - jitter and delay + jitter, and the delays vary."""
    delay, jitter = 0.010, 0.004

    async def main() -> None:
        net, events = sim_network(loop, seed=5, delay=delay, jitter=jitter)
        a, b = connected_pair(net)
        Responder(b)
        for i in range(50):
            start = now()
            await a.request_vote("id2", "b", RequestVoteRequest(term=i))
            assert 2 * (delay - jitter) - 1e-9 <= now() - start <= 2 * (delay + jitter) + 1e-9
        for direction in ("request", "response"):
            times = transit_times(events, direction)
            assert len(times) == 50
            assert all(delay - jitter - 1e-9 <= t <= delay + jitter + 1e-9 for t in times)
            assert max(times) - min(times) > jitter  # jitter really spreads them

    run(loop, main)


def test_network_reorder_adds_reorder_delay(loop: VirtualTimeLoop) -> None:
    """With reorder=1.0 every message is held back by reorder_delay on top of delay ± jitter."""
    async def main() -> None:
        net, events = sim_network(loop, delay=0.002, jitter=0.001, reorder=1.0, reorder_delay=0.050)
        a, b = connected_pair(net)
        Responder(b)
        for _ in range(10):
            await a.request_vote("id2", "b", RequestVoteRequest())
        times = transit_times(events, "request") + transit_times(events, "response")
        assert len(times) == 20
        assert all(0.051 - 1e-9 <= t <= 0.053 + 1e-9 for t in times)

    run(loop, main)


def test_network_per_link_faults(loop: VirtualTimeLoop) -> None:
    """Faults set for the directed link a→b apply to a→b only; b→a keeps the network-wide faults."""
    async def main() -> None:
        net, events = sim_network(loop, delay=0.002, jitter=0.0)
        net.set_faults(LinkFaults(delay=0.100, jitter=0.0), "a", "b")
        a, b = connected_pair(net)
        Responder(b)
        await a.request_vote("id2", "b", RequestVoteRequest())
        assert transit_times(events, "request") == [pytest.approx(0.100)]
        assert transit_times(events, "response") == [pytest.approx(0.002)]
        with pytest.raises(ValueError, match="both src and dst"):
            net.set_faults(LinkFaults(), "a")

    run(loop, main)


def test_network_loss_drops_everything(loop: VirtualTimeLoop) -> None:
    """With loss=1.0 no request arrives, an rpc_drop event with reason 'loss' is emitted, and the caller times out."""
    async def main() -> None:
        net, events = sim_network(loop, loss=1.0)
        a, b = connected_pair(net)
        responder = Responder(b)
        failed_at = await expect_transport_error(a.append_entries("id2", "b", append_request()),
                                                 "^command timed out$")
        assert failed_at == pytest.approx(TIMEOUT)
        assert responder.received == []
        drops = events.of_kind("rpc_drop")
        assert [(e.node, e["dir"], e["to"], e["reason"], e["rpc"]) for e in drops] == [
            ("a", "request", "b", "loss", "append_entries")]
        assert events.of_kind("rpc_deliver") == []

    run(loop, main)


def test_network_unconsumed_request_command_timed_out(loop: VirtualTimeLoop) -> None:
    """Over a network, a request the receiver never consumes fails with 'command timed out' after the timeout."""
    async def main() -> None:
        net, events = sim_network(loop)
        a, b = connected_pair(net)
        failed_at = await expect_transport_error(a.append_entries("id2", "b", append_request()),
                                                 "^command timed out$")
        assert failed_at == pytest.approx(TIMEOUT)
        assert len(kinds(events, "rpc_deliver", dir="request")) == 1
        assert len(b.consumer()) == 1

    run(loop, main)


def test_network_one_way_cut(loop: VirtualTimeLoop) -> None:
    """cut(a, b) makes a's requests to b fail at once, and b's requests to a time out because a's answer is lost."""
    async def main() -> None:
        net, events = sim_network(loop)
        a, b = connected_pair(net)
        at_a = Responder(a)
        at_b = Responder(b)
        net.cut("a", "b")
        assert net.is_blocked("a", "b") and not net.is_blocked("b", "a")

        # a → b: the request cannot leave, and the caller learns so at once.
        failed_at = await expect_transport_error(a.request_vote("id2", "b", RequestVoteRequest(term=1)),
                                                 "^failed to reach peer b: network partition$")
        assert failed_at == 0.0
        assert at_b.received == []
        assert [(e.node, e["dir"], e["to"], e["reason"]) for e in events.of_kind("rpc_drop")] == [
            ("a", "request", "b", "partition")]

        # b → a: the request crosses and is answered, but the answer travels a → b and is lost.
        start = now()
        failed_at = await expect_transport_error(b.request_vote("id1", "a", RequestVoteRequest(term=2)),
                                                 "^command timed out$")
        assert failed_at - start == pytest.approx(TIMEOUT)
        assert [rpc.command.term for rpc in at_a.received] == [2]
        assert [(e.node, e["dir"], e["to"], e["reason"]) for e in events.of_kind("rpc_drop")][1:] == [
            ("a", "response", "b", "partition")]
        assert kinds(events, "rpc_deliver", dir="response") == []

        net.restore("a", "b")
        assert await a.request_vote("id2", "b", RequestVoteRequest()) == answer(RequestVoteRequest())
        assert await b.request_vote("id1", "a", RequestVoteRequest()) == answer(RequestVoteRequest())

    run(loop, main)


def test_network_cut_while_in_flight(loop: VirtualTimeLoop) -> None:
    """A message already in flight when its link is cut is lost on arrival."""
    async def main() -> None:
        net, events = sim_network(loop, delay=0.010, jitter=0.0)
        a, b = connected_pair(net)
        responder = Responder(b)
        call = loop.create_task(a.request_vote("id2", "b", RequestVoteRequest()))
        await asyncio.sleep(0.005)
        assert len(net.in_flight) == 1
        net.cut("a", "b")
        await asyncio.sleep(0.010)
        assert responder.received == []
        drop = events.of_kind("rpc_drop")
        assert [(e.node, e["from"], e["dir"], e["reason"], e.func) for e in drop] == [
            ("b", "a", "request", "partition", "SimNetwork.arrive")]
        with pytest.raises(TransportError, match="command timed out"):
            await call

    run(loop, main)


def test_network_partition_and_heal(loop: VirtualTimeLoop) -> None:
    """partition cuts every link between groups both ways, keeps links inside a group, and heal restores all."""
    async def main() -> None:
        net, _ = sim_network(loop)
        a, b = connected_pair(net)
        c = InmemTransport("c", TIMEOUT, net)
        for x, y in ((a, c), (b, c)):
            x.connect(y.local_addr(), y)
            y.connect(x.local_addr(), x)
        for trans in (a, b, c):
            Responder(trans)
        vote = RequestVoteRequest()

        net.partition([["a", "b"], ["c"]])
        assert await a.request_vote("x", "b", vote) == answer(vote)
        assert await b.request_vote("x", "a", vote) == answer(vote)
        for src, dst in ((a, "c"), (c, "a"), (b, "c"), (c, "b")):
            await expect_transport_error(src.request_vote("x", dst, vote), "network partition")

        net.partition([["a"], ["b", "c"]])  # a new partition replaces the old one
        assert await b.request_vote("x", "c", vote) == answer(vote)
        await expect_transport_error(a.request_vote("x", "b", vote), "network partition")

        net.heal()
        for src, dst in ((a, "b"), (a, "c"), (b, "a"), (b, "c"), (c, "a"), (c, "b")):
            assert await src.request_vote("x", dst, vote) == answer(vote)

    run(loop, main)


def test_network_duplicate_everything(loop: VirtualTimeLoop) -> None:
    """With duplicate=1.0 the consumer receives the request twice but the caller gets exactly one response."""
    async def main() -> None:
        net, events = sim_network(loop, duplicate=1.0)
        a, b = connected_pair(net)
        responder = Responder(b)
        out = await a.append_entries("id2", "b", append_request())
        assert out == answer(append_request())
        await asyncio.sleep(1.0)  # let every copy land
        assert [rpc.command for rpc in responder.received] == [append_request(), append_request()]
        assert responder.received[0].command is not responder.received[1].command
        assert [e["copies"] for e in kinds(events, "rpc_send", dir="request")] == [2]
        assert len(kinds(events, "rpc_deliver", dir="response")) == 4  # two answers, each duplicated
        assert net.in_flight == {}

    run(loop, main)


def request_flight(net: SimNetwork) -> int:
    """The id of the only request in flight."""
    flights = [fid for fid, f in net.in_flight.items() if f.dir == "request"]
    assert len(flights) == 1
    return flights[0]


def test_network_drop_in_flight(loop: VirtualTimeLoop) -> None:
    """SimNetwork.drop loses a request in flight: the consumer never sees it and the caller times out."""
    async def main() -> None:
        net, events = sim_network(loop, delay=0.010, jitter=0.0)
        a, b = connected_pair(net)
        responder = Responder(b)
        call = loop.create_task(a.append_entries("id2", "b", append_request()))
        await asyncio.sleep(0)
        flight = request_flight(net)
        assert net.drop(flight) is True
        assert net.drop(flight) is False  # already gone
        with pytest.raises(TransportError, match=r"^command timed out$"):
            await call
        assert responder.received == []
        assert [(e["dir"], e["reason"]) for e in events.of_kind("rpc_drop")] == [("request", "dropped by user")]

    run(loop, main)


def test_network_drop_after_arrival(loop: VirtualTimeLoop) -> None:
    """SimNetwork.drop of a message that has already arrived returns False and changes nothing."""
    async def main() -> None:
        net, _ = sim_network(loop)
        a, b = connected_pair(net)
        Responder(b)
        call = loop.create_task(a.request_vote("id2", "b", RequestVoteRequest()))
        await asyncio.sleep(0)
        flight = request_flight(net)
        assert await call == answer(RequestVoteRequest())
        assert net.drop(flight) is False
        assert net.duplicate(flight) is None

    run(loop, main)


def test_network_duplicate_in_flight(loop: VirtualTimeLoop) -> None:
    """SimNetwork.duplicate sends another copy of a request in flight: two deliveries, one response to the caller."""
    async def main() -> None:
        net, _ = sim_network(loop, delay=0.010, jitter=0.002)
        a, b = connected_pair(net)
        responder = Responder(b)
        call = loop.create_task(a.append_entries("id2", "b", append_request()))
        await asyncio.sleep(0)
        flight = request_flight(net)
        copy = net.duplicate(flight)
        assert copy is not None and copy != flight
        assert net.in_flight[copy].payload == net.in_flight[flight].payload
        assert await call == answer(append_request())
        await asyncio.sleep(1.0)
        assert [rpc.command for rpc in responder.received] == [append_request(), append_request()]
        assert net.in_flight == {}

    run(loop, main)


def test_network_pipeline_keeps_order(loop: VirtualTimeLoop) -> None:
    """Over a jittery, reordering network the pipeline still hands back futures in the order sent."""
    async def main() -> None:
        net, events = sim_network(loop, seed=3, delay=0.010, jitter=0.009, reorder=0.3)
        a, b = connected_pair(net)
        Responder(b)
        pipeline = await a.append_entries_pipeline("id2", "b")
        requests = [append_request(commit=i) for i in range(12)]
        for req in requests:
            await pipeline.append_entries(req)
        results = []
        for _ in requests:
            future = await pipeline.consumer().recv()
            assert future is not None and await future.error() is None
            results.append(future.response().last_log)
        assert results == list(range(12))
        # The network really did deliver some requests out of order.
        delivered = [e["id"] for e in kinds(events, "rpc_deliver", dir="request")]
        assert delivered != sorted(delivered)

    run(loop, main)


def test_network_pipeline_lost_request_fails_future(loop: VirtualTimeLoop) -> None:
    """A pipelined request lost by the network yields a future that fails with 'command timed out'."""
    async def main() -> None:
        net, _ = sim_network(loop, loss=1.0)
        a, _b = connected_pair(net)
        pipeline = await a.append_entries_pipeline("id2", "b")
        await pipeline.append_entries(append_request())
        future = await pipeline.consumer().recv()
        assert future is not None
        err = await future.error()
        assert isinstance(err, TransportError) and str(err) == "command timed out"

    run(loop, main)


def test_network_full_inbox_waits_for_room(loop: VirtualTimeLoop) -> None:
    """A request arriving at a full inbox waits for room: it is delivered if the consumer catches up in time."""
    async def main() -> None:
        net, _ = sim_network(loop)
        a, b = connected_pair(net)
        calls = [loop.create_task(a.request_vote("id2", "b", RequestVoteRequest(term=i))) for i in range(17)]
        await asyncio.sleep(0.1)
        assert len(b.consumer()) == 16  # the 17th is waiting outside the full inbox
        responder = Responder(b)
        results = await asyncio.gather(*calls)
        assert results == [answer(RequestVoteRequest())] * 17
        assert sorted(rpc.command.term for rpc in responder.received) == list(range(17))

    run(loop, main)


def test_network_full_inbox_loses_late_request(loop: VirtualTimeLoop) -> None:
    """A request that finds the inbox full for longer than the timeout is lost; the other sixteen stay queued."""
    async def main() -> None:
        net, _ = sim_network(loop)
        a, b = connected_pair(net)
        calls = [loop.create_task(a.request_vote("id2", "b", RequestVoteRequest(term=i))) for i in range(17)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(o, TransportError) and str(o) == "command timed out" for o in outcomes)
        await asyncio.sleep(1.0)
        responder = Responder(b)
        await asyncio.sleep(0)
        terms = {rpc.command.term for rpc in responder.received}
        assert len(responder.received) == len(terms) == 16  # sixteen distinct requests; the last to arrive is gone
        assert terms < set(range(17))

    run(loop, main)


def test_network_drop_events_have_documented_fields(loop: VirtualTimeLoop) -> None:
    """Every rpc_drop event carries the fields events.py documents for it: id, rpc, from, to, dir and reason."""
    async def main() -> None:
        net, events = sim_network(loop, delay=0.010, jitter=0.0)
        a, b = connected_pair(net)
        # Dropped when sent (loss), dropped on arrival (cut in flight), dropped by the user.
        net.set_faults(LinkFaults(loss=1.0), "a", "b")
        lost = loop.create_task(a.request_vote("id2", "b", RequestVoteRequest()))
        await asyncio.sleep(0)
        net.set_faults(LinkFaults(delay=0.010, jitter=0.0))
        in_flight = loop.create_task(a.request_vote("id2", "b", RequestVoteRequest()))
        by_user = loop.create_task(b.request_vote("id1", "a", RequestVoteRequest()))
        await asyncio.sleep(0)
        user_flight = next(fid for fid, f in net.in_flight.items() if f.src == "b")
        net.drop(user_flight)
        net.cut("a", "b")
        await asyncio.gather(lost, in_flight, by_user, return_exceptions=True)
        drops = events.of_kind("rpc_drop")
        assert sorted(e.func for e in drops) == ["SimNetwork.arrive", "SimNetwork.drop", "SimNetwork.send"]
        documented = {"id", "rpc", "from", "to", "dir", "reason"}
        missing = {e.func: sorted(documented - set(e.fields)) for e in drops if documented - set(e.fields)}
        assert missing == {}

    run(loop, main)


def trace(seed: int) -> list[dict[str, Any]]:
    """The events of a fixed lossy, duplicating, reordering exchange on a fresh loop."""
    loop = VirtualTimeLoop()

    async def main() -> EventLog:
        net, events = sim_network(loop, seed=seed, delay=0.005, jitter=0.004, loss=0.2, duplicate=0.2, reorder=0.2)
        a, b = connected_pair(net)
        responder = Responder(b)
        for i in range(20):
            with contextlib.suppress(TransportError):
                await a.request_vote("id2", "b", RequestVoteRequest(term=i))
        await asyncio.sleep(1.0)
        responder.stop()
        return events

    try:
        return [e.to_dict() for e in loop.run_until_complete(main())]
    finally:
        loop.close()


def test_network_is_deterministic() -> None:
    """The same seed gives an identical event trace; another seed gives a different one."""
    first = trace(11)
    assert first == trace(11)
    assert first != trace(12)
    assert {e["kind"] for e in first} >= {"rpc_send", "rpc_deliver", "rpc_drop"}


# -- LinkFaults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"loss": -0.1}, id="loss-negative"),
        pytest.param({"loss": 1.1}, id="loss-above-one"),
        pytest.param({"duplicate": -0.5}, id="duplicate-negative"),
        pytest.param({"duplicate": 2.0}, id="duplicate-above-one"),
        pytest.param({"reorder": -1.0}, id="reorder-negative"),
        pytest.param({"reorder": 1.5}, id="reorder-above-one"),
        pytest.param({"delay": -0.001, "jitter": 0.0}, id="delay-negative"),
        pytest.param({"jitter": -0.001}, id="jitter-negative"),
        pytest.param({"reorder_delay": -0.05}, id="reorder-delay-negative"),
        pytest.param({"delay": 0.001, "jitter": 0.002}, id="jitter-above-delay"),
    ],
)
def test_link_faults_validate_rejects(changes: dict[str, Any]) -> None:
    """Probabilities outside [0, 1], negative delays and jitter larger than delay are rejected."""
    faults = LinkFaults(**changes)
    with pytest.raises(ValueError):
        faults.validate()
    with pytest.raises(ValueError):
        SimNetwork(random.Random(1), faults=faults)
    net = SimNetwork(random.Random(1))
    with pytest.raises(ValueError):
        net.set_faults(faults)
    with pytest.raises(ValueError):
        net.set_faults(faults, "a", "b")
    with pytest.raises(ValueError):
        net.update_faults(**changes)


def test_link_faults_validate_accepts_bounds() -> None:
    """Probabilities of exactly 0 and 1 and delays of 0 are valid."""
    LinkFaults(delay=0.0, jitter=0.0, loss=0.0, duplicate=0.0, reorder=0.0, reorder_delay=0.0).validate()
    LinkFaults(delay=0.001, jitter=0.001, loss=1.0, duplicate=1.0, reorder=1.0).validate()
    LinkFaults().validate()


def test_update_faults_changes_only_given_fields() -> None:
    """update_faults replaces the named fields of the network-wide faults and keeps the rest."""
    net = SimNetwork(random.Random(1), faults=LinkFaults(delay=0.02, jitter=0.01))
    net.update_faults(loss=0.25)
    assert net.faults == LinkFaults(delay=0.02, jitter=0.01, loss=0.25)


def test_inmem_transport_snapshot_timeout_grows_with_its_size(loop: VirtualTimeLoop) -> None:
    """An unanswered InstallSnapshot of 3 x 256 KiB fails after three timeouts, as on the network transport."""
    size = 3 * 256 * 1024

    async def main() -> None:
        a, _ = connected_pair()
        args = snapshot_request()
        args.size = size
        failed_at = await expect_transport_error(a.install_snapshot("id1", "b", args, io.BytesIO(b"x" * size)),
                                                 "^command timed out$")
        assert failed_at == pytest.approx(3 * TIMEOUT)

    run(loop, main)
