"""Tests for raft/net_transport.py, raft/net_frames.py and raft/tcp_transport.py on real loopback TCP.

Mirrors: net_transport_test.go, transport_test.go and tcp_transport_test.go.
Beyond Go: bad input (malformed, truncated, oversized and unknown frames,
stalled peers, and hypothesis-generated garbage) costs the sender its
connection and nobody else anything; and a three-node cluster on TCP with
SQLite stores elects a leader, replicates, and installs a snapshot.

Everything listens on 127.0.0.1, port 0. Each test runs in a fresh event
loop (``asyncio.run``) in real time, under a deadline, so a hang fails the
test instead of the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_inmem_transport import CALLS, Responder, answer, append_request, snapshot_request

from raft.api import Raft, bootstrap_cluster, new_raft
from raft.commands import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    RequestVoteRequest,
    RPCHeader,
    encode_message,
)
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage
from raft.errors import (
    ConfigError,
    ErrPipelineReplicationNotSupported,
    ErrPipelineShutdown,
    ErrTransportShutdown,
    RaftError,
    TransportError,
)
from raft.file_snapshot import FileSnapshotStore
from raft.log import Log, LogType
from raft.log_cache import LogCache
from raft.net_frames import U32, encode_request
from raft.net_transport import (
    ACCEPT_BASE_DELAY,
    ACCEPT_MAX_DELAY,
    DEFAULT_MAX_RPCS_IN_FLIGHT,
    DEFAULT_TIMEOUT_SCALE,
    NetworkTransport,
    accept_backoff,
)
from raft.state import RaftState
from raft.stores.sqlite_store import SQLiteStore
from raft.tcp_transport import ErrNotAdvertisable, new_tcp_transport, split_host_port
from raft.testing import MockFSM
from raft.transport import RPC, Transport, WithClose, WithPreVote

TIMEOUT = 1.0  # Go's tests use time.Second
LOOPBACK = "127.0.0.1:0"


# -- helpers ----------------------------------------------------------------------------------------


def run(main: Callable[[], Coroutine[Any, Any, Any]], limit: float = 10.0) -> Any:
    """Run ``main`` in a fresh real-time event loop; fail instead of hanging after ``limit`` seconds."""
    async def guarded() -> Any:
        async with asyncio.timeout(limit):
            return await main()

    return asyncio.run(guarded())


@contextlib.asynccontextmanager
async def transports(count: int = 2, **options: Any) -> AsyncIterator[list[NetworkTransport]]:
    """``count`` transports on 127.0.0.1; closed, and their tasks finished, afterwards."""
    options.setdefault("timeout", TIMEOUT)
    made = [await new_tcp_transport(LOOPBACK, **options) for _ in range(count)]
    try:
        yield made
    finally:
        for trans in made:
            trans.close()
        for trans in made:
            await trans.wait_closed()


class FixedAddress:
    """A ServerAddressProvider that sends every ID to one address (Go: testAddrProvider)."""

    def __init__(self, addr: str) -> None:
        self.addr = addr

    def server_addr(self, id: str) -> str:
        return self.addr


class FailingProvider:
    """A ServerAddressProvider that always fails, so the transport falls back to the given address."""

    def server_addr(self, id: str) -> str:
        raise LookupError(f"no address for {id}")


DEAD_ADDR = "127.0.0.1:1"  # nothing listens on port 1 here; only reachable through an address provider


async def raw_exchange(addr: str, data: bytes, *, eof: bool = True, limit: float = 2.0) -> bytes:
    """Send ``data`` on a fresh connection and return everything the server sends until it closes."""
    host, port = split_host_port(addr)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        received = b""
        async with asyncio.timeout(limit):
            while True:
                try:
                    chunk = await reader.read(65536)
                except ConnectionResetError:  # closed with our bytes unread: also a close
                    return received
                if not chunk:
                    return received
                received += chunk
    finally:
        writer.close()


def closing_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "raft.net" and "closing connection" in r.getMessage()]


async def served(client: NetworkTransport, server: NetworkTransport) -> bool:
    """True if ``server`` answers a well-formed RequestVote from ``client``."""
    vote = RequestVoteRequest(RPCHeader(3, "id-b", "butters"), 20, 100, 19)
    out = await client.request_vote("id1", server.local_addr(), vote)
    return bool(out == answer(vote))


# -- the Transport interface (transport_test.go, net_transport_test.go) ------------------------------


def test_net_transport_impl() -> None:
    """NetworkTransport provides the Transport, WithPreVote and WithClose interfaces."""
    async def main() -> None:
        async with transports(1) as (trans,):
            assert isinstance(trans, Transport)
            assert isinstance(trans, WithPreVote)
            assert isinstance(trans, WithClose)

    run(main)


def test_start_stop() -> None:
    """A transport starts, reports its bound address, and stops: closing twice is harmless and frees the port."""
    async def main() -> None:
        trans = await new_tcp_transport(LOOPBACK, timeout=TIMEOUT)
        host, port = split_host_port(trans.local_addr())
        assert host == "127.0.0.1" and port > 0
        trans.close()
        trans.close()
        await trans.wait_closed()
        assert trans.is_shutdown()
        with pytest.raises(OSError):
            await asyncio.open_connection(host, port)

    run(main)


def test_encode_decode() -> None:
    """decode_peer(encode_peer(id, addr)) gives back the address."""
    async def main() -> None:
        async with transports(1) as (trans,):
            local = trans.local_addr()
            assert trans.decode_peer(trans.encode_peer("id1", local)) == local

    run(main)


def test_encode_decode_address_provider() -> None:
    """With an address provider, encode_peer records the provider's address."""
    async def main() -> None:
        async with transports(1, server_address_provider=FixedAddress("127.0.0.1:11111")) as (trans,):
            assert trans.decode_peer(trans.encode_peer("id1", trans.local_addr())) == "127.0.0.1:11111"

    run(main)


@pytest.mark.parametrize("use_provider", [False, True], ids=["direct", "address-provider"])
@pytest.mark.parametrize(("method", "args"), CALLS)
def test_request_response(method: str, args: Any, use_provider: bool) -> None:
    """Each plain RPC arrives intact at the consumer and returns the consumer's response (with or without a provider).

    With the provider the call names an address where nothing listens: only
    the provider's address can reach the server.
    """
    async def main() -> None:
        async with transports(1) as (server,):
            options = {"server_address_provider": FixedAddress(server.local_addr())} if use_provider else {}
            async with transports(1, **options) as (client,):
                responder = Responder(server)  # type: ignore[arg-type]
                target = DEAD_ADDR if use_provider else server.local_addr()
                out = await getattr(client, method)("id1", target, args)
                assert [rpc.command for rpc in responder.received] == [args]
                assert responder.received[0].reader is None
                assert out == answer(args)
                responder.stop()

    run(main)


def test_failing_address_provider_falls_back() -> None:
    """When the address provider fails, the transport dials the address it was given and logs a warning."""
    async def main() -> None:
        async with transports(1) as (server,), transports(1, server_address_provider=FailingProvider()) as (client,):
            responder = Responder(server)  # type: ignore[arg-type]
            assert await served(client, server)
            responder.stop()

    run(main)


def test_remote_error_is_transport_error_and_keeps_connection() -> None:
    """An error the handler returns reaches the caller as TransportError, and the connection stays pooled."""
    async def main() -> None:
        async with transports(2) as (server, client):
            async def refuse() -> None:
                rpc = await server.consumer().recv()
                assert rpc is not None
                rpc.respond(None, RaftError("vote refused for a test"))

            task = asyncio.create_task(refuse())
            with pytest.raises(TransportError, match=r"^vote refused for a test$"):
                await client.request_vote("id1", server.local_addr(), RequestVoteRequest())
            await task
            assert len(client.conn_pool[server.local_addr()]) == 1

    run(main)


# -- InstallSnapshot -------------------------------------------------------------------------------


@pytest.mark.parametrize("use_provider", [False, True], ids=["direct", "address-provider"])
def test_install_snapshot(use_provider: bool) -> None:
    """InstallSnapshot delivers the request and exactly its snapshot bytes as rpc.reader, and returns the response."""
    args = snapshot_request()

    async def main() -> None:
        async with transports(1) as (server,):
            options = {"server_address_provider": FixedAddress(server.local_addr())} if use_provider else {}
            async with transports(1, **options) as (client,):
                got: list[bytes] = []

                async def handler() -> None:
                    rpc = await server.consumer().recv()
                    assert rpc is not None and rpc.command == args
                    got.append(rpc.reader.read())
                    rpc.respond(answer(rpc.command))

                task = asyncio.create_task(handler())
                source = io.BytesIO(b"0123456789 and some bytes past size that must not be sent")
                target = DEAD_ADDR if use_provider else server.local_addr()
                out = await client.install_snapshot("id1", target, args, source)
                await task
                assert got == [b"0123456789"]
                assert out == answer(args)
                assert source.tell() == 10, "exactly args.size bytes are read from the source"
                assert client.conn_pool.get(server.local_addr(), []) == [], "a snapshot connection is never pooled"

    run(main)


def test_install_snapshot_partly_read() -> None:
    """A handler that reads only part of a large snapshot still answers, and the server keeps serving (#212)."""
    size = 3 * 1024 * 1024  # larger than the socket buffers: a sender nobody drained would block
    args = snapshot_request()
    args.size = size

    async def main() -> None:
        async with transports(2) as (server, client):
            async def handler() -> None:
                rpc = await server.consumer().recv()
                assert rpc is not None
                assert rpc.reader.read(3) == b"\x00\x01\x02"
                rpc.respond(answer(rpc.command))

            task = asyncio.create_task(handler())
            data = bytes(i % 251 for i in range(size))
            out = await client.install_snapshot("id1", server.local_addr(), args, io.BytesIO(data))
            await task
            assert out == answer(args)
            responder = Responder(server)  # type: ignore[arg-type]
            assert await served(client, server)
            responder.stop()

    run(main)


def test_install_snapshot_short_source(caplog: pytest.LogCaptureFixture) -> None:
    """A source with fewer than args.size bytes fails the call, and the receiver never dispatches a half snapshot."""
    async def main() -> None:
        async with transports(2) as (server, client):
            responder = Responder(server)  # type: ignore[arg-type]
            with pytest.raises(TransportError, match="snapshot data ended after 4 of 10 bytes"):
                await client.install_snapshot("id1", server.local_addr(), snapshot_request(), io.BytesIO(b"0123"))
            for _ in range(50):
                if closing_reasons(caplog):
                    break
                await asyncio.sleep(0.01)
            assert responder.received == []
            responder.stop()

    run(main)
    assert any("truncated snapshot: connection closed after 4 of 10 bytes" in r for r in closing_reasons(caplog))


def test_snapshot_timeout_scales_with_size() -> None:
    """InstallSnapshot's deadline is timeout per TimeoutScale (256 KiB) of data, never less than timeout."""
    async def main() -> None:
        async with transports(1, timeout=2.0) as (trans,):
            assert trans.timeout_scale == DEFAULT_TIMEOUT_SCALE == 256 * 1024
            assert trans.snapshot_timeout(0) == 2.0
            assert trans.snapshot_timeout(DEFAULT_TIMEOUT_SCALE - 1) == 2.0
            assert trans.snapshot_timeout(10 * DEFAULT_TIMEOUT_SCALE) == 20.0

    run(main)


# -- pipelining -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_provider", [False, True], ids=["direct", "address-provider"])
def test_append_entries_pipeline(use_provider: bool) -> None:
    """Ten pipelined AppendEntries all arrive, and their futures come back on consumer() in the order sent."""
    async def main() -> None:
        async with transports(1) as (server,):
            options: dict[str, Any] = {"max_rpcs_in_flight": 130}  # as Go's makeTransport
            if use_provider:
                options["server_address_provider"] = FixedAddress(server.local_addr())
            async with transports(1, **options) as (client,):
                responder = Responder(server)  # type: ignore[arg-type]
                pipeline = await client.append_entries_pipeline("id1", DEAD_ADDR if use_provider
                                                                else server.local_addr())
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
                pipeline.close()
                with pytest.raises(ErrPipelineShutdown):
                    await pipeline.append_entries(requests[0])
                responder.stop()

    run(main)


def test_append_entries_pipeline_close_streams() -> None:
    """After the server closes its streams the pipeline fails; a new pipeline then works again."""
    async def main() -> None:
        async with transports(2, max_rpcs_in_flight=130) as (server, client):
            responder = Responder(server)  # type: ignore[arg-type]
            for cancel_streams in (True, False):
                pipeline = await client.append_entries_pipeline("id1", server.local_addr())
                send_failure: RaftError | None = None
                sent = 0
                for i in range(100):
                    if cancel_streams and i == 10:
                        server.close_streams()
                        await asyncio.sleep(0.01)
                    try:
                        await pipeline.append_entries(append_request())
                    except TransportError as err:  # the broken connection may show when sending...
                        send_failure = err
                        break
                    sent += 1
                answer_failure: RaftError | None = None
                for _ in range(sent):
                    future = await pipeline.consumer().recv()
                    assert future is not None
                    answer_failure = await future.error()  # ... or when reading an answer
                    if answer_failure is not None:
                        break
                    assert future.response() == answer(append_request())
                assert (send_failure is not None or answer_failure is not None) == cancel_streams
                pipeline.close()
            responder.stop()

    run(main)


@pytest.mark.parametrize("max_in_flight", [0, 1, 2, 10, 130])
def test_append_entries_pipeline_max_rpcs_in_flight(max_in_flight: int) -> None:
    """0 means 2; 1 turns pipelining off; otherwise the max-th append_entries blocks until an answer comes."""
    async def main() -> None:
        async with transports(2, max_pool=2, max_rpcs_in_flight=max_in_flight) as (server, client):
            if max_in_flight == 1:
                with pytest.raises(ErrPipelineReplicationNotSupported):
                    await client.append_entries_pipeline("id1", server.local_addr())
                return
            pipeline = await client.append_entries_pipeline("id1", server.local_addr())
            expected = max_in_flight or DEFAULT_MAX_RPCS_IN_FLIGHT
            args = append_request()
            for _ in range(expected - 1):  # these go out without anybody answering
                async with asyncio.timeout(1.0):
                    await pipeline.append_entries(args)
            last = asyncio.create_task(pipeline.append_entries(args))
            await asyncio.sleep(0.05)
            assert not last.done(), f"append_entries did not block with {expected} in flight"
            rpc = await server.consumer().recv()
            assert rpc is not None
            rpc.respond(answer(rpc.command))
            await pipeline.consumer().recv()
            async with asyncio.timeout(1.0):
                await last  # unblocked by the answer
            pipeline.close()

    run(main)


def test_pipeline_close_fails_queued_futures() -> None:
    """Closing a pipeline fails the futures still waiting for an answer; none is left pending."""
    async def main() -> None:
        async with transports(2, max_rpcs_in_flight=10) as (server, client):
            pipeline = await client.append_entries_pipeline("id1", server.local_addr())
            futures = [await pipeline.append_entries(append_request()) for _ in range(3)]
            pipeline.close()
            async with asyncio.timeout(1.0):
                errors = [await f.error() for f in futures]
            assert all(isinstance(e, (TransportError, ErrPipelineShutdown)) for e in errors)

    run(main)


def test_close_closes_pipelines() -> None:
    """Closing the transport closes its open pipelines, and later calls fail with ErrTransportShutdown."""
    async def main() -> None:
        async with transports(2) as (server, client):
            pipeline = await client.append_entries_pipeline("id1", server.local_addr())
            client.close()
            assert pipeline.shutdown
            with pytest.raises(ErrTransportShutdown):
                await client.request_vote("id1", server.local_addr(), RequestVoteRequest())

    run(main)


# -- the heartbeat fast path --------------------------------------------------------------------------


def heartbeat() -> AppendEntriesRequest:
    return AppendEntriesRequest(RPCHeader(3, "id-b", "cartman"), term=10)


def test_heartbeat_fast_path() -> None:
    """A heartbeat goes to the registered heartbeat handler, not to the consumer."""
    async def main() -> None:
        async with transports(2) as (server, client):
            invoked: list[RPC] = []

            async def fast_path(rpc: RPC) -> None:
                invoked.append(rpc)
                rpc.respond(AppendEntriesResponse(term=4, last_log=90, success=True))

            server.set_heartbeat_handler(fast_path)
            out = await client.append_entries("id1", server.local_addr(), heartbeat())
            assert out == AppendEntriesResponse(term=4, last_log=90, success=True)
            assert [rpc.command for rpc in invoked] == [heartbeat()]
            assert len(server.consumer()) == 0

    run(main)


def test_heartbeat_handler_skips_other_requests() -> None:
    """An AppendEntries carrying entries or a commit index goes to the consumer even with a heartbeat handler."""
    async def main() -> None:
        async with transports(2) as (server, client):
            invoked: list[RPC] = []
            server.set_heartbeat_handler(invoked.append)
            responder = Responder(server)  # type: ignore[arg-type]
            await client.append_entries("id1", server.local_addr(), append_request())
            assert invoked == []
            assert len(responder.received) == 1
            responder.stop()

    run(main)


def test_heartbeat_without_handler_uses_consumer() -> None:
    """Without a registered handler a heartbeat is an ordinary RPC on the consumer."""
    async def main() -> None:
        async with transports(2) as (server, client):
            responder = Responder(server)  # type: ignore[arg-type]
            await client.append_entries("id1", server.local_addr(), heartbeat())
            assert [rpc.command for rpc in responder.received] == [heartbeat()]
            responder.stop()

    run(main)


# -- the connection pool ----------------------------------------------------------------------------


def test_pooled_conn() -> None:
    """Five parallel calls with max_pool 3 leave exactly three idle connections to the target."""
    async def main() -> None:
        async with transports(1, max_pool=2) as (server,), transports(1, max_pool=3) as (client,):
            responder = Responder(server)  # type: ignore[arg-type]
            args = append_request()
            outs = await asyncio.gather(*[client.append_entries("id1", server.local_addr(), args)
                                          for _ in range(5)])
            assert outs == [answer(args)] * 5
            assert len(client.conn_pool[server.local_addr()]) == 3
            responder.stop()

    run(main)


def test_close_streams() -> None:
    """close_streams empties the pool; the next calls dial again and fill it back to max_pool."""
    async def main() -> None:
        async with transports(1) as (server,), transports(1, max_pool=3) as (client,):
            responder = Responder(server)  # type: ignore[arg-type]
            args = append_request()
            for round_ in range(2):
                await asyncio.gather(*[client.append_entries("id1", server.local_addr(), args) for _ in range(5)])
                assert len(client.conn_pool[server.local_addr()]) == 3
                if round_ == 0:
                    client.close_streams()
                    assert client.conn_pool.get(server.local_addr(), []) == []
            responder.stop()

    run(main)


def test_pooled_connection_closed_by_peer_is_not_reused() -> None:
    """After the server drops its connections, the next call dials afresh instead of failing on a dead one."""
    async def main() -> None:
        async with transports(2) as (server, client):
            responder = Responder(server)  # type: ignore[arg-type]
            assert await served(client, server)
            server.close_streams()
            await asyncio.sleep(0.05)  # let the client see the connection close
            assert await served(client, server)
            responder.stop()

    run(main)


# -- failures and timeouts ---------------------------------------------------------------------------


def test_dead_port_fails_quickly() -> None:
    """A call to a port where nothing listens fails with TransportError at once, not after the timeout."""
    async def main() -> None:
        async with transports(1, timeout=5.0) as (client,):
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TransportError, match=r"failed to dial 127\.0\.0\.1:1"):
                await client.request_vote("id1", DEAD_ADDR, RequestVoteRequest())
            assert loop.time() - started < 0.5

    run(main)


def test_unanswered_request_times_out() -> None:
    """A request nobody answers fails with 'i/o timeout' after the timeout, and its connection is not pooled."""
    async def main() -> None:
        async with transports(2, timeout=0.2) as (server, client):
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TransportError, match="i/o timeout"):
                await client.request_vote("id1", server.local_addr(), RequestVoteRequest())
            assert 0.15 < loop.time() - started < 1.0
            assert client.conn_pool.get(server.local_addr(), []) == []

    run(main)


def test_cancelled_call_releases_connection() -> None:
    """A call cancelled half-way closes its connection rather than pooling one that is out of step."""
    async def main() -> None:
        async with transports(2) as (server, client):
            call = asyncio.create_task(client.request_vote("id1", server.local_addr(), RequestVoteRequest()))
            rpc = await server.consumer().recv()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert rpc is not None
            rpc.respond(answer(rpc.command))  # a late answer goes nowhere and harms nothing
            assert client.conn_pool.get(server.local_addr(), []) == []

    run(main)


def test_oversized_request_is_refused_before_sending() -> None:
    """A request larger than max_frame_size fails locally with TransportError; nothing reaches the server."""
    async def main() -> None:
        async with transports(2, max_frame_size=4096) as (server, client):
            responder = Responder(server)  # type: ignore[arg-type]
            big = AppendEntriesRequest(term=1, entries=[Log(1, 1, LogType.LogCommand, b"x" * 10_000)])
            with pytest.raises(TransportError, match="exceeds the frame size limit of 4096"):
                await client.append_entries("id1", server.local_addr(), big)
            assert await served(client, server)
            assert len(responder.received) == 1
            responder.stop()

    run(main)


# -- bad input: one connection pays, the node keeps serving --------------------------------------------


def frame(type_byte: int, body: bytes, length: int | None = None) -> bytes:
    return bytes([type_byte]) + U32.pack(len(body) if length is None else length) + body


VOTE_BODY = encode_message(RequestVoteRequest(RPCHeader(3, "x", "y"), 1, 2, 3))

BAD_FRAMES = [
    pytest.param(frame(1, b"\xc1\xff\x00garbage"), "malformed RequestVoteRequest", id="malformed"),
    pytest.param(frame(1, VOTE_BODY)[:-4], "connection closed after 70 of 74 bytes", id="truncated"),
    pytest.param(frame(0, b"", length=2**31), "exceeds the frame size limit", id="oversized"),
    pytest.param(frame(9, VOTE_BODY), "unknown rpc type 9", id="unknown-type"),
    pytest.param(frame(0, VOTE_BODY), "expected AppendEntriesRequest, got RequestVoteRequest", id="type-mismatch"),
    pytest.param(b"\x01\x00", "connection closed after 1 of 4 bytes", id="truncated-length"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_FRAMES)
def test_bad_frame_closes_only_that_connection(data: bytes, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    """A malformed, truncated, oversized or unknown frame closes its connection, with a logged reason; others go on."""
    async def main() -> None:
        async with transports(2) as (server, client):
            responder = Responder(server)  # type: ignore[arg-type]
            assert await served(client, server)  # a pooled connection that must survive the bad one
            assert await raw_exchange(server.local_addr(), data) == b""
            assert responder.received[1:] == []
            assert await served(client, server)
            assert len(client.conn_pool[server.local_addr()]) == 1
            responder.stop()

    run(main)
    reasons = closing_reasons(caplog)
    assert len(reasons) == 1 and reason in reasons[0], reasons


def test_valid_request_then_garbage_gets_its_answer(caplog: pytest.LogCaptureFixture) -> None:
    """A valid request followed by garbage on the same connection is answered before the connection is closed."""
    async def main() -> None:
        async with transports(1) as (server,):
            responder = Responder(server)  # type: ignore[arg-type]
            reply = await raw_exchange(server.local_addr(), frame(1, VOTE_BODY) + b"\xff\xff")
            (error_length,) = struct.unpack(">I", reply[:4])
            assert error_length == 0 and len(responder.received) == 1
            responder.stop()

    run(main)
    assert any("unknown rpc type 255" in r for r in closing_reasons(caplog))


def test_stalled_client_does_not_block_others(caplog: pytest.LogCaptureFixture) -> None:
    """A client that stops half-way through a frame is cut off after the timeout; others are served meanwhile."""
    async def main() -> None:
        async with transports(2, timeout=0.3) as (server, client):
            responder = Responder(server)  # type: ignore[arg-type]
            loop = asyncio.get_running_loop()
            stalled = asyncio.create_task(raw_exchange(server.local_addr(), b"\x01\x00\x00", eof=False))
            await asyncio.sleep(0.05)
            started = loop.time()
            assert await served(client, server)
            assert loop.time() - started < 0.2
            assert await stalled == b""  # the server hung up on the staller
            responder.stop()

    run(main)
    assert any("i/o timeout" in r for r in closing_reasons(caplog))


def test_close_while_request_waits_for_consumer() -> None:
    """Closing a server whose consumer never reads fails the waiting caller instead of hanging it."""
    async def main() -> None:
        async with transports(1) as (client,):
            server = await new_tcp_transport(LOOPBACK, timeout=TIMEOUT)
            call = asyncio.create_task(client.request_vote("id1", server.local_addr(), RequestVoteRequest()))
            await asyncio.sleep(0.05)
            server.close()
            await server.wait_closed()
            with pytest.raises(TransportError):
                await call

    run(main)


# -- hypothesis: random and mutated frames against a live transport -------------------------------------

VALID_FRAMES = [encode_request(param.values[1]) for param in CALLS] + [
    encode_request(snapshot_request()) + b"0123456789",
    encode_request(heartbeat()),
]

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.binary(max_size=16)
    | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=8,
)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid request frame with bytes flipped, cut, inserted, or its length field replaced."""
    data = bytearray(draw(st.sampled_from(VALID_FRAMES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif len(data) >= 5:
            data[1:5] = U32.pack(draw(st.integers(0, 2**32 - 1)))
    return bytes(data)


@st.composite
def msgpack_frames(draw: st.DrawFn) -> bytes:
    """A request frame whose body is arbitrary, well-formed msgpack."""
    import msgpack

    body = msgpack.packb(draw(msgpack_values), use_bin_type=True)
    return frame(draw(st.integers(0, 5)), body)


@st.composite
def field_mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid request frame with one field of its message replaced, removed or added: deep validation."""
    import msgpack

    valid = draw(st.sampled_from(VALID_FRAMES))
    code, body = msgpack.unpackb(valid[5:5 + U32.unpack(valid[1:5])[0]], raw=False)
    name = draw(st.sampled_from(sorted(body)))
    kind = draw(st.sampled_from(["replace", "remove", "add"]))
    if kind == "replace":
        body[name] = draw(msgpack_values)
    elif kind == "remove":
        del body[name]
    else:
        body[draw(st.text(max_size=12))] = draw(msgpack_values)
    return frame(valid[0], msgpack.packb([code, body], use_bin_type=True))


garbage = st.binary(max_size=64) | mutated_frames() | msgpack_frames() | field_mutated_frames()


def test_fuzz_live_transport(caplog: pytest.LogCaptureFixture) -> None:
    """Random and mutated frames never crash or hang the transport, and a well-formed client is served after each."""
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(new_tcp_transport(LOOPBACK, timeout=0.5))
    client = loop.run_until_complete(new_tcp_transport(LOOPBACK, timeout=0.5))

    async def start_responder() -> Responder:
        return Responder(server)  # type: ignore[arg-type]

    responder = loop.run_until_complete(start_responder())

    @settings(max_examples=150, deadline=2000, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(garbage)
    def one_connection(data: bytes) -> None:
        async def exchange() -> None:
            async with asyncio.timeout(5.0):
                await raw_exchange(server.local_addr(), data)
                assert await served(client, server)

        loop.run_until_complete(exchange())

    try:
        one_connection()
        assert not server.listen_task.done()
        unexpected = [r for r in caplog.records if r.name == "raft.net" and r.levelno >= logging.ERROR]
        assert unexpected == [], [r.getMessage() for r in unexpected]
    finally:
        responder.stop()
        server.close()
        client.close()
        loop.run_until_complete(server.wait_closed())
        loop.run_until_complete(client.wait_closed())
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


# -- the accept loop ---------------------------------------------------------------------------------


def test_accept_backoff_sequence() -> None:
    """After failed accepts the listener waits 5 ms, then twice as long each time, never more than 1 s."""
    delays = []
    delay = 0.0
    for _ in range(12):
        delay = accept_backoff(delay)
        delays.append(delay)
    assert delays[:9] == pytest.approx([0.005, 0.010, 0.020, 0.040, 0.080, 0.160, 0.320, 0.640, 1.0])
    assert delays[9:] == [ACCEPT_MAX_DELAY] * 3
    assert delays[0] == ACCEPT_BASE_DELAY


class FailingStreamLayer:
    """A stream layer whose accept always fails (Go: testCountingStreamLayer)."""

    def __init__(self) -> None:
        self.accepts = 0

    async def accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.accepts += 1
        raise OSError("intentional error in test")

    async def dial(self, address: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise OSError("not needed")

    def addr(self) -> str:
        return "127.0.0.1:0"

    def close(self) -> None:
        pass


def test_listen_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """Accept errors are logged and retried with back-off rather than in a tight loop, and close stops the loop."""
    stream = FailingStreamLayer()

    async def main() -> None:
        trans = NetworkTransport(stream, timeout=TIMEOUT)
        # Failures at 0, 5, 15, 35, 75, 155 and 315 ms; the next would be at 635 ms.
        await asyncio.sleep(0.5)
        trans.close()
        async with asyncio.timeout(0.25):
            await trans.wait_closed()

    run(main)
    assert 6 <= stream.accepts <= 8, stream.accepts
    logged = [r for r in caplog.records if "failed to accept connection" in r.getMessage()]
    assert len(logged) == stream.accepts


# -- tcp_transport.go ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bind", ["0.0.0.0:0", ":0", "[::]:0"])
def test_tcp_transport_not_advertisable(bind: str) -> None:
    """Binding an unspecified address without an advertise address is refused before anything is bound."""
    async def main() -> None:
        with pytest.raises(ErrNotAdvertisable, match="not advertisable"):
            await new_tcp_transport(bind, timeout=TIMEOUT)

    run(main)


def test_tcp_transport_unspecified_advertise() -> None:
    """An advertise address that is itself unspecified, or has port 0, is refused."""
    async def main() -> None:
        for advertise in ("0.0.0.0:7000", "127.0.0.1:0"):
            with pytest.raises(ErrNotAdvertisable):
                await new_tcp_transport(LOOPBACK, advertise, timeout=TIMEOUT)

    run(main)


def test_tcp_transport_with_advertise() -> None:
    """With an advertise address, local_addr reports it rather than the bound address."""
    async def main() -> None:
        async with transports(1) as (plain,):
            trans = await new_tcp_transport(LOOPBACK, "127.0.0.1:12345", timeout=TIMEOUT)
            try:
                assert trans.local_addr() == "127.0.0.1:12345"
                assert plain.local_addr() != "127.0.0.1:12345"
            finally:
                trans.close()
                await trans.wait_closed()

    run(main)


def test_tcp_transport_bad_addresses() -> None:
    """A malformed bind address is a ConfigError; a port already in use is a TransportError."""
    async def main() -> None:
        for bad in ("127.0.0.1", "127.0.0.1:http", "::1:7000", "127.0.0.1:70000"):
            with pytest.raises(ConfigError):
                await new_tcp_transport(bad, timeout=TIMEOUT)
        async with transports(1) as (taken,):
            with pytest.raises(TransportError, match="failed to bind"):
                await new_tcp_transport(taken.local_addr(), timeout=TIMEOUT)

    run(main)


# -- a real cluster: three nodes on TCP with SQLite stores ---------------------------------------------


def node_config(node_id: str, **changes: Any) -> Config:
    """Timeouts short enough for a test, yet long enough for fsyncs on a loaded machine.

    All three nodes share one event loop and their stores fsync on it, so a
    slow disk delays everyone's heartbeats; a tight lease would depose the leader.
    """
    base: dict[str, Any] = {"heartbeat_timeout": 0.5, "election_timeout": 0.5, "leader_lease_timeout": 0.25,
                            "commit_timeout": 0.01, **changes}
    return Config(local_id=node_id, **base)


class TCPNode:
    """One server: TCP transport, SQLite log and stable store behind a LogCache, file snapshots, MockFSM."""

    def __init__(self, node_id: str, trans: NetworkTransport, directory: Path) -> None:
        self.id = node_id
        self.trans = trans
        self.store = SQLiteStore(directory / f"{node_id}.db")
        self.logs = LogCache(128, self.store)
        self.snapshots = FileSnapshotStore(directory / node_id, retain=2)
        self.fsm = MockFSM()
        self.raft: Raft | None = None

    def start(self, config: Config) -> Raft:
        self.raft = new_raft(config, self.fsm, self.logs, self.store, self.snapshots, self.trans)
        return self.raft

    async def stop(self) -> None:
        if self.raft is not None:
            await self.raft.shutdown().error()
        self.trans.close()
        await self.trans.wait_closed()
        self.store.close()


async def wait_until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


async def leader_of(nodes: list[TCPNode]) -> Raft:
    await wait_until(lambda: any(n.raft is not None and n.raft.state() == RaftState.Leader for n in nodes))
    leader = next(n.raft for n in nodes if n.raft is not None and n.raft.state() == RaftState.Leader)
    assert leader is not None
    return leader


def test_three_nodes_over_tcp_with_sqlite(tmp_path: Path) -> None:
    """Three nodes on loopback TCP with SQLite stores elect a leader and apply 50 commands identically everywhere."""
    async def main() -> None:
        ids = ["n1", "n2", "n3"]
        nodes = [TCPNode(i, await new_tcp_transport(LOOPBACK, timeout=TIMEOUT), tmp_path) for i in ids]
        configuration = Configuration([Server(ServerSuffrage.Voter, n.id, n.trans.local_addr()) for n in nodes])
        try:
            for n in nodes:
                bootstrap_cluster(node_config(n.id), n.logs, n.store, n.snapshots, n.trans, configuration)
                n.start(node_config(n.id))
            leader = await leader_of(nodes)
            futures = [leader.apply(f"command {i}".encode()) for i in range(50)]
            for future in futures:
                assert await future.error() is None
            await wait_until(lambda: all(len(n.fsm.logs) == 50 for n in nodes))
            assert nodes[0].fsm.logs == nodes[1].fsm.logs == nodes[2].fsm.logs
            assert nodes[0].fsm.logs == [f"command {i}".encode() for i in range(50)]
            for n in nodes:  # everything applied is on disk too
                assert n.store.last_index() >= 51
        finally:
            for n in nodes:
                await n.stop()

    run(main, limit=30.0)


def test_new_server_gets_snapshot_over_tcp(tmp_path: Path) -> None:
    """A server added after the log was compacted receives the leader's snapshot over TCP and catches up."""
    async def main() -> None:
        nodes = [TCPNode(i, await new_tcp_transport(LOOPBACK, timeout=TIMEOUT), tmp_path) for i in ("n1", "n2")]
        configuration = Configuration([Server(ServerSuffrage.Voter, n.id, n.trans.local_addr()) for n in nodes])
        conf = {"trailing_logs": 2}
        late = TCPNode("n3", await new_tcp_transport(LOOPBACK, timeout=TIMEOUT), tmp_path)
        try:
            for n in nodes:
                bootstrap_cluster(node_config(n.id, **conf), n.logs, n.store, n.snapshots, n.trans, configuration)
                n.start(node_config(n.id, **conf))
            leader = await leader_of(nodes)
            for i in range(30):
                assert await leader.apply(f"command {i}".encode()).error() is None
            assert await leader.snapshot().error() is None
            late.start(node_config("n3", **conf))
            assert await leader.add_voter("n3", late.trans.local_addr()).error() is None
            await wait_until(lambda: len(late.fsm.logs) == 30)
            assert late.fsm.logs == [f"command {i}".encode() for i in range(30)]
            assert late.snapshots.list(), "n3 caught up through InstallSnapshot, not the log"
        finally:
            for n in [*nodes, late]:
                await n.stop()

    run(main, limit=30.0)
