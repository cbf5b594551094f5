"""``raft-kv``: the replicated key-value store as a real service, one node per process.

Read before: kv.py (the state machine and reads), api.py, tcp_transport.py,
sqlite_store.py, file_snapshot.py.

A node listens on two addresses: ``--bind`` for Raft traffic (TCP, msgpack
frames) and ``--http`` for clients. Its state lives in ``--data-dir``: the log
and the durable term and vote in SQLite (``raft.db``, every write fsynced),
snapshots in ``snapshots/``. Killed with ``kill -9`` and started again with the
same arguments, it recovers from there.

Starting a cluster::

    raft-kv --id n1 --bind 127.0.0.1:7001 --http 127.0.0.1:8001 --data-dir data/n1 \\
        --bootstrap n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 \\
        --http-peers n1=127.0.0.1:8001,n2=127.0.0.1:8002,n3=127.0.0.1:8003

(and the same for n2 and n3). ``--bootstrap`` only acts on an empty data
directory, so restarting with the same command is safe. A new node joins a
running cluster with ``--join http://127.0.0.1:8001`` instead.

HTTP API (JSON bodies; every answer is a JSON object):

==========================  ====================================================================
``GET  /kv/KEY``            linearizable read (read index); ``?log=1`` reads through the log
``POST /kv/KEY``            ``{"op": "put"|"append"|"cas", "value", "expected", "client", "seq"}``
``POST /join``              ``{"id", "address", "http"}``: add a voter (on the leader)
``POST /leave``             ``{"id"}``: remove a server
``GET  /status``            role, term, indexes, leader, configuration, health
``GET  /metrics``           the figures an operator watches, in the Prometheus text format
==========================  ====================================================================

A node that is not the leader answers a client request with ``307`` and the
leader's URL when it knows it (from ``--http-peers`` or from joins), otherwise
``503`` with ``{"error": "not leader", "leader": ID}``; clients retry. A
request whose outcome is unknown (the leader crashed mid-way) should be
retried with the same ``client`` and ``seq``: it then takes effect once.

Mirrors: nothing in hashicorp/raft (it is a library); this plays the role of
an application such as Consul's KV store, kept small.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, quote, unquote, urlsplit

from raft.api import Raft, bootstrap_cluster, has_existing_state, new_raft
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage, configuration_to_dict
from raft.errors import ErrCantBootstrap, ErrNotLeader, RaftError
from raft.events import Event, EventLog
from raft.file_snapshot import FileSnapshotStore
from raft.kv import Command, KVStore, Result, read
from raft.kv.metrics import MetricsCollector
from raft.log_cache import LogCache
from raft.state import RaftState
from raft.stores.sqlite_store import SQLiteStore
from raft.tcp_transport import new_tcp_transport, split_host_port

MAX_BODY = 1 << 20  # a client request body larger than this is refused
STREAM_LIMIT = 1 << 16  # asyncio's default line limit: a longer request line or header is refused
REQUEST_TIMEOUT = 10.0  # seconds a client request may wait for Raft
RETRY_AFTER = "1"  # seconds, in the Retry-After header of a 503 while there is no leader
SHUTDOWN_GRACE = 2.0  # seconds in-flight requests get to be answered after Raft has shut down
RESERVED_PREFIX = "raft-kv/"  # keys the service keeps for itself (HTTP addresses of members)


class UsageError(Exception):
    """A bad command-line argument; the message says how to fix it."""


def parse_members(text: str, option: str) -> dict[str, str]:
    """``id=host:port,id=host:port`` → {id: "host:port"}, validated."""
    members: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node_id, sep, address = item.partition("=")
        if not sep or not node_id or not address:
            raise UsageError(f"{option}: expected ID=HOST:PORT items separated by commas, got {item!r}")
        try:
            split_host_port(address)
        except (RaftError, ValueError) as err:
            raise UsageError(f"{option}: {item!r}: {err}") from None
        if node_id in members:
            raise UsageError(f"{option}: {node_id} is listed twice")
        members[node_id] = address
    if not members:
        raise UsageError(f"{option}: give at least one ID=HOST:PORT")
    return members


@dataclass
class HTTPRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class HTTPResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    text: bytes | None = None  # sent as is (text/plain) instead of ``body`` as JSON


REASONS = {200: "OK", 307: "Temporary Redirect", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large", 414: "URI Too Long",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


class KVService:
    """One raft-kv node: a Raft node, its stores, and an HTTP front end."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.raft: Raft | None = None
        self.http_peers: dict[str, str] = dict(args.http_peers or {})
        self.http_peers.setdefault(args.id, args.http)
        self.stopping = asyncio.Event()
        self.trace: TextIO | None = None
        self.stores: list[SQLiteStore] = []
        self.logger = logging.getLogger(f"raft-kv.{args.id}")
        self.handlers: set[asyncio.Task[Any]] = set()  # HTTP requests being served
        self.metrics = MetricsCollector(args.id)

    # -- start and stop ----------------------------------------------------------------

    async def start(self) -> None:
        args = self.args
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        events = EventLog(time.time, keep=False)  # listeners only: metrics, and the trace file if asked
        events.subscribe(self.metrics.on_event)
        if args.trace:
            self.trace = open(args.trace, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
            events.subscribe(self._write_trace)
        store = SQLiteStore(data_dir / "raft.db")
        self.stores.append(store)
        logs = LogCache(512, store)
        snapshots = FileSnapshotStore(str(data_dir), retain=2)
        # A short I/O timeout: a dead peer is noticed within two seconds.
        transport = await new_tcp_transport(args.bind, advertise=args.advertise, timeout=2.0)
        self.transport = transport
        config = Config(local_id=args.id, snapshot_threshold=args.snapshot_threshold,
                        trailing_logs=args.trailing_logs, snapshot_interval=args.snapshot_interval)
        if args.bootstrap and not has_existing_state(logs, store, snapshots):
            servers = [Server(ServerSuffrage.Voter, i, a) for i, a in args.bootstrap.items()]
            with contextlib.suppress(ErrCantBootstrap):
                bootstrap_cluster(config, logs, store, snapshots, transport, Configuration(servers))
        self.raft = new_raft(config, KVStore(), logs, store, snapshots, transport, events=events)
        self.metrics.attach(self.raft, transport)
        server = await asyncio.start_server(self._serve_http, *split_host_port(args.http))
        self.http_server = server
        print(f"raft-kv {args.id}: raft on {transport.local_addr()}, http on {args.http}, data in {data_dir}",
              flush=True)
        if args.join:
            asyncio.get_running_loop().create_task(self._join(args.join))

    async def stop(self) -> None:
        """Clean shutdown (SIGTERM): stop serving, shut Raft down, answer what is in flight, close the stores.

        Requests waiting for Raft when it shuts down are answered 503 (their
        futures fail with ErrRaftShutdown); a client still sending its
        request after a grace period is disconnected.
        """
        self.http_server.close()
        if self.raft is not None:
            await self.raft.shutdown().error()
            await self.transport.wait_closed()
        if self.handlers:
            _, late = await asyncio.wait(set(self.handlers), timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for store in self.stores:
            store.close()
        if self.trace is not None:
            self.trace.close()

    def _write_trace(self, event: Event) -> None:
        assert self.trace is not None
        self.trace.write(event.to_json() + "\n")
        self.trace.flush()

    async def _join(self, urls: list[str]) -> None:
        """Ask a member to add us as a voter; retry until one (the leader) accepts."""
        body = {"id": self.args.id, "address": self.raft.local_addr if self.raft else "", "http": self.args.http}
        while not self.stopping.is_set():
            for url in urls:
                try:
                    status, answer = await http_call("POST", url.rstrip("/") + "/join", body)
                except OSError:
                    continue
                if status == 200:
                    self.logger.info("joined the cluster through %s", url)
                    return
                self.logger.info("join through %s: %s %s", url, status, answer.get("error"))
            await asyncio.sleep(1.0)

    # -- HTTP ---------------------------------------------------------------------------

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.handlers.add(task)
            task.add_done_callback(self.handlers.discard)
        try:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    request = await read_http_request(reader)
            except HTTPError as err:
                response = HTTPResponse(err.status, {"error": str(err)})
            except TimeoutError:
                response = HTTPResponse(408, {"error": "request not received in time"})
            else:
                started = time.perf_counter()
                try:
                    response = await self._route(request)
                except Exception as err:  # a bug must not take the node down: report it to the client
                    self.logger.exception("error handling %s %s", request.method, request.path)
                    response = HTTPResponse(500, {"error": f"internal error: {err}"})
                self.metrics.requests.labels(request_kind(request)).observe(time.perf_counter() - started)
            self.metrics.responses.labels(str(response.status)).inc()
            await write_http_response(writer, response)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down: this client was still sending its request
        finally:
            writer.close()

    async def _route(self, request: HTTPRequest) -> HTTPResponse:
        path = request.path
        if path == "/status" and request.method == "GET":
            return HTTPResponse(200, self.status())
        if path == "/metrics" and request.method == "GET":
            return HTTPResponse(200, {}, text=self.metrics.render())
        assert self.raft is not None
        failure = self.raft.fsm_failure()
        if failure is not None:
            return HTTPResponse(503, {"error": f"this node has stopped: {failure}"})
        if path.startswith("/kv/"):
            try:
                key = unquote(path[len("/kv/"):], errors="strict")  # /kv/a%20b is the key "a b"
            except UnicodeDecodeError:
                return HTTPResponse(400, {"error": "a key must be valid UTF-8 once percent-decoded"})
            if not key or key.startswith(RESERVED_PREFIX):
                return HTTPResponse(400, {"error": f"invalid key {key!r}"})
            if request.method == "GET":
                return await self._get(key, request)
            if request.method == "POST":
                return await self._write(key, request.body)
            return HTTPResponse(405, {"error": "use GET to read a key and POST to change it"})
        if path == "/join" and request.method == "POST":
            return await self._membership(request.body, join=True)
        if path == "/leave" and request.method == "POST":
            return await self._membership(request.body, join=False)
        return HTTPResponse(404, {"error": f"no such endpoint: {request.method} {path}"})

    def _not_leader(self, path: str) -> HTTPResponse:
        """Send the client to the leader: 307 to a leader heard from lately, else 503 with Retry-After.

        A follower keeps its leader's ID until its own heartbeat timeout
        fires; redirecting to a leader silent for longer than the lease
        would send clients to a dead node again and again.
        """
        raft = self.raft
        assert raft is not None
        _, leader = raft.leader_with_id()
        contact = raft.last_contact()
        if leader and leader != self.args.id and (
                contact is None or raft.now() - contact > raft.config().leader_lease_timeout):
            leader = ""  # not heard from within the lease: probably gone
        url = self.http_peers.get(leader) if leader else None
        if url is not None and leader != self.args.id:
            return HTTPResponse(307, {"error": "not leader", "leader": leader},
                                {"Location": f"http://{url}{path}"})
        return HTTPResponse(503, {"error": "not leader", "leader": leader or None}, {"Retry-After": RETRY_AFTER})

    async def _get(self, key: str, request: HTTPRequest) -> HTTPResponse:
        assert self.raft is not None
        through_log = request.query.get("log", ["0"])[0] in ("1", "true")
        try:
            value = await read(self.raft, key, through_log=through_log, timeout=REQUEST_TIMEOUT)
        except ErrNotLeader:
            return self._not_leader("/kv/" + quote(key, safe=""))
        except RaftError as err:
            return HTTPResponse(503, {"error": str(err)})
        return HTTPResponse(200, {"key": key, "value": value})

    async def _write(self, key: str, body: Any) -> HTTPResponse:
        assert self.raft is not None
        try:
            command = command_from_body(key, body)
        except ValueError as invalid:
            return HTTPResponse(400, {"error": str(invalid)})
        if self.raft.state() != RaftState.Leader:
            return self._not_leader("/kv/" + quote(key, safe=""))
        future = self.raft.apply(command.encode(), timeout=REQUEST_TIMEOUT)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                err = await future.error()
        except TimeoutError:
            return HTTPResponse(503, {"error": "timed out: the outcome is unknown, retry with the same seq"})
        if isinstance(err, ErrNotLeader):
            return self._not_leader("/kv/" + quote(key, safe=""))
        if err is not None:
            return HTTPResponse(503, {"error": f"{err}: the outcome is unknown, retry with the same seq"})
        result = future.response()
        assert isinstance(result, Result)
        if result.error is not None:  # committed, refused by the state machine on every node, changed nothing
            return HTTPResponse(409, {"error": result.error, "key": key, "index": future.index()})
        return HTTPResponse(200, {"key": key, "index": future.index(), "swapped": result.swapped,
                                  "duplicate": result.duplicate})

    async def _membership(self, body: Any, join: bool) -> HTTPResponse:
        """Add (``/join``) or remove (``/leave``) a server, after checking the request against the configuration.

        Nothing reaches the log unless the request makes sense: a well-formed
        ID, host:port addresses, no second server on an address already in
        use, no removal of a server that is not a member. A join of a server
        already present with the same address is answered 200 at once.
        """
        assert self.raft is not None
        try:
            member = membership_from_body(body, join)
        except ValueError as invalid:
            return HTTPResponse(400, {"error": str(invalid)})
        if self.raft.state() != RaftState.Leader:
            return self._not_leader("/join" if join else "/leave")
        servers = {s.id: s.address for s in self.raft.get_configuration().configuration().servers}
        if join:
            taken = [i for i, address in servers.items() if address == member.address and i != member.id]
            if taken:
                return HTTPResponse(409, {"error": f"address {member.address} already belongs to {taken[0]}"})
            if servers.get(member.id) not in (None, member.address):
                return HTTPResponse(409, {"error": f"{member.id} is already a member at {servers[member.id]}; "
                                                   "remove it first to move it"})
            if servers.get(member.id) == member.address:
                if member.http:
                    self.http_peers[member.id] = member.http
                return HTTPResponse(200, {"index": None, "already": True})  # nothing to write
        elif member.id not in servers:
            return HTTPResponse(404, {"error": f"{member.id} is not a member of the cluster"})
        if join:
            if member.http:
                self.http_peers[member.id] = member.http
            future = self.raft.add_voter(member.id, member.address, timeout=REQUEST_TIMEOUT)
        else:
            future = self.raft.remove_server(member.id, timeout=REQUEST_TIMEOUT)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                err = await future.error()
        except TimeoutError:
            return HTTPResponse(503, {"error": "timed out waiting for the configuration change"})
        if err is not None:
            return HTTPResponse(503, {"error": str(err)})
        return HTTPResponse(200, {"index": future.index()})

    def status(self) -> dict[str, Any]:
        assert self.raft is not None
        raft = self.raft
        _, leader = raft.leader_with_id()
        return {
            "id": self.args.id, "state": str(raft.state()), "term": raft.current_term(), "leader": leader or None,
            "last_index": raft.last_index(), "commit_index": raft.commit_index(),
            # What the state machine has finished applying, not what was handed to it.
            "applied_index": raft.fsm_applied_index,
            "healthy": raft.fsm_failure() is None and raft.state() != RaftState.Shutdown,
            "fsm_error": raft.fsm_failure(),
            "configuration": configuration_to_dict(raft.get_configuration().configuration()),
        }


@dataclass(frozen=True)
class Member:
    """A validated ``/join`` or ``/leave`` request."""

    id: str
    address: str = ""  # Raft host:port (joins only)
    http: str = ""  # HTTP host:port, for redirects (optional)


MAX_ID = 64  # characters in a server ID


def membership_from_body(body: Any, join: bool) -> Member:
    """Validate a membership request body; raise ValueError with a message for the client."""
    if not isinstance(body, dict):
        raise ValueError('expected a JSON object with "id"' + (', "address" and "http"' if join else ""))
    server_id = body.get("id")
    if (not isinstance(server_id, str) or not server_id or len(server_id) > MAX_ID or not server_id.isprintable()
            or any(c.isspace() for c in server_id)):
        raise ValueError(f'"id" must be 1 to {MAX_ID} printable characters without spaces')
    if not join:
        return Member(server_id)
    address, http = body.get("address"), body.get("http", "")
    if not isinstance(address, str) or not isinstance(http, str):
        raise ValueError('a join needs "address" (host:port for Raft) and optionally "http" (host:port), as strings')
    for name, value in (("address", address), ("http", http)):
        if name == "http" and not value:
            continue
        try:
            host, port = split_host_port(value)
        except RaftError as err:
            raise ValueError(f'"{name}": {err}') from None
        if not host or not 0 < port < 65536:
            raise ValueError(f'"{name}" {value!r} needs a host and a port from 1 to 65535')
    return Member(server_id, address, http)


def request_kind(request: HTTPRequest) -> str:
    """How ``/metrics`` files a request: read, write, join, leave, status, metrics or other."""
    if request.path.startswith("/kv/"):
        return {"GET": "read", "POST": "write"}.get(request.method, "other")
    name = request.path.strip("/")
    return name if name in ("join", "leave", "status", "metrics") else "other"


def command_from_body(key: str, body: Any) -> Command:
    """Validate a write request body; raise ValueError with a message for the client."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    op = body.get("op")
    if op not in ("put", "append", "cas"):
        raise ValueError('"op" must be "put", "append" or "cas"')
    value, expected = body.get("value", ""), body.get("expected", "")
    client, seq = body.get("client", ""), body.get("seq", 0)
    if not isinstance(value, str) or not isinstance(expected, str):
        raise ValueError('"value" and "expected" must be strings')
    if not isinstance(client, str) or not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
        raise ValueError('"client" must be a string and "seq" an integer from 0 to 2**63 - 1')
    return Command(op, key, value, expected, client, seq)


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_line(reader: asyncio.StreamReader, status: int, what: str) -> str:
    """One CRLF-terminated line; HTTPError(status) if it is longer than the stream's limit (64 KiB)."""
    try:
        line = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):  # readline turns LimitOverrunError into ValueError
        raise HTTPError(status, f"{what} longer than {STREAM_LIMIT} bytes") from None
    return line.decode("latin-1").rstrip("\r\n")


async def read_http_request(reader: asyncio.StreamReader) -> HTTPRequest:
    """Parse one HTTP/1.x request; raise HTTPError for anything malformed."""
    line = await _read_line(reader, 414, "request line")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HTTPError(400, "malformed request line")
    method, target, _ = parts
    if not target.isascii():
        raise HTTPError(400, "the request target must be ASCII (percent-encode other characters)")
    headers: dict[str, str] = {}
    for _ in range(100):
        header = await _read_line(reader, 431, "header line")
        if not header:
            break
        name, sep, value = header.partition(":")
        if not sep:
            raise HTTPError(400, "malformed header")
        headers[name.strip().lower()] = value.strip()
    else:
        raise HTTPError(400, "too many headers")
    text = headers.get("content-length", "0")
    if not text.isdigit():  # also refuses a sign: "-5" is no length
        raise HTTPError(400, f"bad Content-Length {text[:20]!r}")
    length = int(text)
    if length > MAX_BODY:
        raise HTTPError(413, f"body larger than {MAX_BODY} bytes")
    raw = await reader.readexactly(length) if length else b""
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HTTPError(400, "the body is not valid JSON") from None
        except RecursionError:
            raise HTTPError(400, "the body's JSON is nested too deeply") from None
    url = urlsplit(target)
    return HTTPRequest(method, url.path, parse_qs(url.query), body)


async def write_http_response(writer: asyncio.StreamWriter, response: HTTPResponse) -> None:
    if response.text is not None:
        payload, kind = response.text, "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text format
    else:
        payload, kind = json.dumps(response.body).encode(), "application/json"
    head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
            f"Content-Type: {kind}", f"Content-Length: {len(payload)}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in response.headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()


async def http_call(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    """A tiny HTTP client for joins (and tests): one request, JSON in and out."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = json.dumps(body).encode() if body is not None else b""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            request = (f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
                       f"Host: {host}\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
            writer.write(request.encode("latin-1") + payload)
            await writer.drain()
            status_line = (await reader.readline()).decode("latin-1").split(" ")
            length = 0
            while True:
                header = (await reader.readline()).decode("latin-1").rstrip("\r\n")
                if not header:
                    break
                name, _, value = header.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            raw = await reader.readexactly(length) if length else b"{}"
        finally:
            writer.close()
    return int(status_line[1]), json.loads(raw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raft-kv", description="One node of the replicated key-value store.")
    parser.add_argument("--id", required=True, help="this node's server ID, e.g. n1")
    parser.add_argument("--bind", required=True, metavar="HOST:PORT", help="address for Raft traffic")
    parser.add_argument("--advertise", metavar="HOST:PORT", help="address peers should use, if not --bind")
    parser.add_argument("--http", required=True, metavar="HOST:PORT", help="address for clients")
    parser.add_argument("--data-dir", required=True, help="directory for the log, the vote and snapshots")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--bootstrap", metavar="ID=HOST:PORT,...",
                       help="the initial voters (only used when the data directory is empty)")
    group.add_argument("--join", metavar="URL,...", help="HTTP address(es) of members to ask to add us")
    parser.add_argument("--http-peers", metavar="ID=HOST:PORT,...",
                        help="HTTP addresses of the other members, for redirecting clients to the leader")
    parser.add_argument("--trace", metavar="FILE", help="append every event as JSON Lines (wall-clock times)")
    parser.add_argument("--snapshot-threshold", type=int, default=8192,
                        help="take a snapshot once this many entries follow the last one (default 8192)")
    parser.add_argument("--snapshot-interval", type=float, default=120.0,
                        help="seconds between checks whether a snapshot is due, jittered up to twice (default 120)")
    parser.add_argument("--trailing-logs", type=int, default=10240,
                        help="entries kept in the log after a snapshot, for slow followers (default 10240)")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        for option in ("bind", "http"):
            split_host_port(getattr(args, option))
        if args.bootstrap:
            args.bootstrap = parse_members(args.bootstrap, "--bootstrap")
            if args.id not in args.bootstrap:
                raise UsageError(f"--bootstrap must list this node ({args.id}) among the voters")
        if args.http_peers:
            args.http_peers = parse_members(args.http_peers, "--http-peers")
        if args.join:
            args.join = [url.strip() for url in args.join.split(",") if url.strip()]
            if not all(url.startswith("http://") for url in args.join):
                raise UsageError("--join expects http:// URLs of existing members")
        if args.snapshot_threshold < 1 or args.trailing_logs < 0:
            raise UsageError("--snapshot-threshold must be at least 1 and --trailing-logs not negative")
        if args.snapshot_interval < 0.005:
            raise UsageError("--snapshot-interval must be at least 0.005 seconds")
    except (UsageError, RaftError, ValueError) as err:
        parser.error(str(err))
    return args


async def serve(args: argparse.Namespace) -> int:
    service = KVService(args)
    try:
        await service.start()
    except (RaftError, OSError) as err:
        print(f"raft-kv: cannot start: {err}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stopping.set)
    await service.stopping.wait()
    await service.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    os.umask(0o077)  # the data directory holds the whole database: keep it private
    return asyncio.run(serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
