"""One raft-textbook node for the side-by-side benchmark with PySyncObj.

Started by bench/realworld.py, one process per node, on 127.0.0.1. Prints one
JSON object per line: {"event": "ready"}, {"event": "leader", ...} and, on the
leader, {"event": "start"} when its client begins and {"event": "result", ...}.
Modes as in pysyncobj_node.py:

* ``throughput``: the leader keeps ``--inflight`` commands of 16 bytes
  outstanding for ``--seconds`` and counts the acknowledged ones;
* ``latency``: the leader sends one command at a time;
* ``idle``: just run (for the failover measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from raft.api import bootstrap_cluster, new_raft
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage
from raft.inmem_snapshot import InmemSnapshotStore
from raft.inmem_store import InmemStore
from raft.log import Log
from raft.log_cache import LogCache
from raft.state import RaftState
from raft.stores.sqlite_store import SQLiteStore
from raft.tcp_transport import new_tcp_transport


class Counter:
    """The same trivial state machine as the PySyncObj side: count applied commands."""

    def __init__(self) -> None:
        self.count = 0

    def apply(self, log: Log) -> int:
        self.count += 1
        return self.count

    def snapshot(self) -> Any:
        raise NotImplementedError("the benchmark never snapshots")

    def restore(self, source: Any) -> None:
        raise NotImplementedError("the benchmark never snapshots")


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def report_and_exit(done: int, applied: int, elapsed: float) -> None:
    """The throughput result of a run whose oldest command is still waiting at the deadline."""
    emit(event="result", mode="throughput", ops=done, applied=applied, seconds=elapsed, rate=done / elapsed,
         stalled=True)
    os._exit(0)  # the stuck wait would never return; nothing else is left to do


async def run(args: argparse.Namespace) -> None:
    peers = dict(item.split("=", 1) for item in args.peers.split(","))
    transport = await new_tcp_transport(peers[args.id], timeout=2.0)
    if args.store == "sqlite":
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
        stable = SQLiteStore(Path(args.data_dir) / f"{args.id}.db")
        logs: Any = LogCache(1024, stable)
    else:
        stable = InmemStore()  # type: ignore[assignment]
        logs = stable
    config = Config(local_id=args.id, snapshot_threshold=1 << 40, batch_apply_ch=args.batch_apply_ch)
    snapshots = InmemSnapshotStore()
    configuration = Configuration([Server(ServerSuffrage.Voter, i, a) for i, a in peers.items()])
    bootstrap_cluster(config, logs, stable, snapshots, transport, configuration)
    fsm = Counter()
    node = new_raft(config, fsm, logs, stable, snapshots, transport)
    emit(event="ready", node=args.id)
    leader = None
    while True:
        _, current = node.leader_with_id()
        if current != leader:
            leader = current
            emit(event="leader", node=args.id, leader=leader or None, t=time.time())
        if node.state() == RaftState.Leader and args.mode != "idle":
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)
    payload = b"x" * 16
    if args.mode == "throughput":
        pending: deque[Any] = deque()
        done = 0
        emit(event="start", node=args.id, t=time.time())
        start = time.perf_counter()
        deadline = start + args.seconds
        # A command that never commits must not stall the report: two seconds
        # after the deadline, the watchdog reports what was acknowledged so far.
        watchdog = asyncio.get_running_loop().call_later(
            args.seconds + 2.0, lambda: report_and_exit(done, fsm.count, time.perf_counter() - start))
        issued = 0
        while time.perf_counter() < deadline:
            while len(pending) < args.inflight:
                pending.append(node.apply(payload))
                issued += 1
                if issued % 1000 == 0:
                    # Go's Apply blocks its caller; ours returns at once, so one task
                    # could queue 100,000 commands (~0.4 s) without letting the node
                    # run, and the leader would miss its lease. Yield every thousand
                    # commands issued (not whenever the queue is at a multiple of a
                    # thousand: at 1,000 in flight that would be after every answer).
                    await asyncio.sleep(0)
            if await pending.popleft().error() is None:
                done += 1
        watchdog.cancel()
        elapsed = time.perf_counter() - start
        # The state machine's own count checks the acknowledgements: each one
        # was applied, so it can only be higher (commands still in flight).
        emit(event="result", mode="throughput", ops=done, applied=fsm.count, seconds=elapsed, rate=done / elapsed,
             stalled=False)
    elif args.mode == "latency":
        emit(event="start", node=args.id, t=time.time())
        latencies = []
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            t = time.perf_counter()
            err = await node.apply(payload).error()
            if err is None:
                latencies.append(time.perf_counter() - t)
        emit(event="result", mode="latency", latencies=latencies)
    else:
        while True:
            await asyncio.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--peers", required=True, help="id=host:port,...")
    parser.add_argument("--mode", choices=["throughput", "latency", "idle"], required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--data-dir", default=".")
    parser.add_argument("--batch-apply-ch", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
