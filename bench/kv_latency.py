"""raft-kv under a mixed load: read and write latency, measured over HTTP against three processes.

    python -m bench.kv_latency [--seconds 10] [--clients 8] [--read-share 0.5] [--json results.json]

Starts three ``raft-kv`` processes on 127.0.0.1 (fresh data directories, the
same options as the test suite), waits for a leader, then runs ``--clients``
concurrent clients against the leader for ``--seconds``: each picks a read
(``GET /kv/KEY``: the read-index path) with probability ``--read-share``,
otherwise a write (``POST``, ``append`` with a client id and sequence
number), one request at a time. Prints p50, p90, p99 and max latency for each
kind, in milliseconds, and the number of operations. Errors (non-200) are
counted and left out of the latencies.

The goal this checks (issue: raft-kv under hostile clients): read p99 no
worse than write p99. A read costs a heartbeat round to confirm leadership
and then waits only for its own index to be applied.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from raft.kv.service import http_call
from raft.tcp_transport import free_loopback_ports


def start_cluster(data: Path) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    ports = free_loopback_ports(6)
    ids = ["n1", "n2", "n3"]
    bootstrap = ",".join(f"{i}=127.0.0.1:{ports[k]}" for k, i in enumerate(ids))
    peers = ",".join(f"{i}=127.0.0.1:{ports[3 + k]}" for k, i in enumerate(ids))
    procs, https = [], []
    for k, node_id in enumerate(ids):
        http = f"127.0.0.1:{ports[3 + k]}"
        args = [sys.executable, "-m", "raft.kv.service", "--id", node_id, "--bind", f"127.0.0.1:{ports[k]}",
                "--http", http, "--data-dir", str(data / node_id), "--bootstrap", bootstrap, "--http-peers", peers]
        log = open(data / f"{node_id}.log", "ab")  # noqa: SIM115 - lives as long as the process
        procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        https.append(http)
    return procs, https


async def find_leader(https: list[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for http in https:
            try:
                code, info = await http_call("GET", f"http://{http}/status", timeout=1)
            except (OSError, TimeoutError, ValueError, IndexError):
                continue
            if code == 200 and info.get("state") == "Leader":
                return http
        await asyncio.sleep(0.1)
    raise SystemExit("no leader was elected within 30 s")


async def client(number: int, leader: str, stop: float, read_share: float,
                 latencies: dict[str, list[float]], errors: dict[str, int]) -> None:
    rng = random.Random(number)
    seq = 0
    while time.monotonic() < stop:
        key = f"k{rng.randrange(16)}"
        if rng.random() < read_share:
            kind, method, body = "read", "GET", None
        else:
            seq += 1
            kind, method = "write", "POST"
            body = {"op": "append", "value": "x", "client": f"bench{number}", "seq": seq}
        started = time.perf_counter()
        try:
            code, _ = await http_call(method, f"http://{leader}/kv/{key}", body, timeout=15)
        except (OSError, TimeoutError, ValueError, IndexError):
            code = 0
        elapsed = (time.perf_counter() - started) * 1000
        if code == 200:
            latencies[kind].append(elapsed)
        else:
            errors[kind] += 1


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"ops": 0}
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else [ordered[0]] * 99
    return {"ops": len(ordered), "p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": ordered[-1]}


async def run(seconds: float, clients: int, read_share: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kv-latency-") as tmp:
        procs, https = start_cluster(Path(tmp))
        try:
            leader = await find_leader(https)
            await asyncio.sleep(1.0)  # let the no-op commit and the followers settle
            latencies: dict[str, list[float]] = {"read": [], "write": []}
            errors = {"read": 0, "write": 0}
            stop = time.monotonic() + seconds
            await asyncio.gather(*(client(i, leader, stop, read_share, latencies, errors) for i in range(clients)))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=15)
    return {kind: {**summary(values), "errors": errors[kind]} for kind, values in latencies.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--read-share", type=float, default=0.5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    result = asyncio.run(run(args.seconds, args.clients, args.read_share))
    print(f"raft-kv, 3 processes, {args.clients} clients, {args.read_share:.0%} reads, {args.seconds:g} s")
    print(f"{'kind':6} {'ops':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}")
    for kind, figures in result.items():
        if figures["ops"]:
            print(f"{kind:6} {figures['ops']:7d} {figures['p50']:8.2f} {figures['p90']:8.2f} {figures['p99']:8.2f} "
                  f"{figures['max']:8.2f} {figures['errors']:7d}")
        else:
            print(f"{kind:6} {0:7d} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {figures['errors']:7d}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
