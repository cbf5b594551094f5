"""Throughput of committed client commands.

(a) Five nodes in virtual time (the simulator, with its network delays), a
    client that keeps many commands in flight: committed applies per *wall*
    second, i.e. how fast the simulator can push work through Raft.
(b) Three nodes in real time on the ordinary asyncio event loop, connected by
    ``InmemTransport`` with no simulated network: committed applies per second.

    python -m bench.throughput [--seconds 5] [--inflight 256]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from raft.api import Raft, bootstrap_cluster, new_raft
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage
from raft.inmem_snapshot import InmemSnapshotStore
from raft.inmem_store import InmemStore
from raft.inmem_transport import InmemTransport
from raft.runtime.channels import select
from raft.runtime.timers import after
from raft.sim import Cluster
from raft.testing import MockFSM


async def pipelined_client(leader: Raft, inflight: int, stop_at: float, counter: list[int]) -> None:
    """Keep ``inflight`` commands outstanding until ``stop_at`` (loop time); count successes."""
    loop = asyncio.get_running_loop()
    payload = b"x" * 16
    pending: list[Any] = []
    while loop.time() < stop_at:
        while len(pending) < inflight:
            pending.append(leader.apply(payload))
        oldest = pending.pop(0)
        if await oldest.error() is None:
            counter[0] += 1


def virtual_time(seconds: float, inflight: int) -> tuple[float, float]:
    cluster = Cluster(5, seed=1)
    cluster.run_until(lambda c: c.leader() is not None)
    cluster.run_for(1)
    leader = cluster.node(cluster.leader() or "")
    counter = [0]
    wall = time.perf_counter()
    cluster.run_coro(pipelined_client(leader, inflight, cluster.now + seconds, counter), timeout=seconds + 60)
    elapsed = time.perf_counter() - wall
    cluster.close()
    return counter[0] / elapsed, counter[0] / seconds


async def real_time_cluster(seconds: float, inflight: int) -> float:
    ids = ["n1", "n2", "n3"]
    configuration = Configuration([Server(ServerSuffrage.Voter, i, i) for i in ids])
    transports = {i: InmemTransport(i) for i in ids}
    for a in ids:
        for b in ids:
            if a != b:
                transports[a].connect(b, transports[b])
    nodes = []
    for i in ids:
        store = InmemStore()
        conf = Config(local_id=i)
        bootstrap_cluster(conf, store, store, InmemSnapshotStore(), transports[i], configuration)
        nodes.append(new_raft(conf, MockFSM(), store, store, InmemSnapshotStore(), transports[i]))
    while not any(r.leader_id == r.local_id for r in nodes):
        await select([after(0.01)])
    leader = next(r for r in nodes if r.leader_id == r.local_id)
    await select([after(0.2)])
    counter = [0]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pipelined_client(leader, inflight, started + seconds, counter)
    rate = counter[0] / (loop.time() - started)
    for r in nodes:
        await r.shutdown().error()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inflight", type=int, default=256)
    args = parser.parse_args()
    per_wall, per_virtual = virtual_time(args.seconds, args.inflight)
    print(f"5 nodes, virtual time: {per_wall:,.0f} committed applies per wall second "
          f"({per_virtual:,.0f} per virtual second)")
    rate = asyncio.run(real_time_cluster(args.seconds, args.inflight))
    print(f"3 nodes, real time, asyncio loop + InmemTransport: {rate:,.0f} committed applies per second")


if __name__ == "__main__":
    main()
