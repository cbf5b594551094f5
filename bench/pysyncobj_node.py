"""One PySyncObj node for the side-by-side benchmark (runs in its own virtual environment).

Started by bench/realworld.py; not imported by the project. Prints one JSON
object per line on stdout: {"event": "ready"}, {"event": "leader", ...},
{"event": "start"} when the client begins, {"event": "result", ...}. Modes:

* ``throughput``: the leader keeps ``--inflight`` commands of 16 bytes
  outstanding for ``--seconds`` and counts those acknowledged.
* ``latency``: the leader sends one command at a time and records each latency.
* ``idle``: just run (used for the failover measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from pysyncobj import SyncObj, SyncObjConf, replicated


class Log(SyncObj):
    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, partners, conf)
        self.count = 0

    @replicated
    def append(self, data: bytes) -> int:
        self.count += 1
        return self.count


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", dest="self_addr", required=True)
    parser.add_argument("--partners", required=True)
    parser.add_argument("--mode", choices=["throughput", "latency", "idle"], required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--batch", action="store_true", help="appendEntriesUseBatch (off unless given)")
    parser.add_argument("--append-period", type=float, default=0.1,
                        help="appendEntriesPeriod in seconds: how often a batch goes out (default 0.1, as PySyncObj's)")
    parser.add_argument("--batch-bytes", type=int, default=2 ** 16,
                        help="appendEntriesBatchSizeBytes (default 65536, as PySyncObj's)")
    parser.add_argument("--journal")
    args = parser.parse_args()
    # Election timeouts of 1-2 s, like hashicorp's defaults, so that failover compares like with like.
    conf = SyncObjConf(appendEntriesUseBatch=args.batch, journalFile=args.journal,
                       raftMinTimeout=1.0, raftMaxTimeout=2.0, appendEntriesPeriod=args.append_period,
                       appendEntriesBatchSizeBytes=args.batch_bytes)
    node = Log(args.self_addr, args.partners.split(","), conf)
    emit(event="ready", node=args.self_addr)
    leader = None
    while True:
        current = node._getLeader()
        current_name = str(current) if current is not None else None
        if current_name != leader:
            leader = current_name
            emit(event="leader", node=args.self_addr, leader=leader, t=time.time())
        if leader == args.self_addr and args.mode != "idle":
            break
        time.sleep(0.005)
    time.sleep(0.5)
    payload = b"x" * 16
    if args.mode == "throughput":
        done = [0]
        lock = threading.Condition()
        outstanding = [0]

        def callback(result: object, error: int) -> None:
            with lock:
                outstanding[0] -= 1
                if error == 0:
                    done[0] += 1
                lock.notify()

        emit(event="start", node=args.self_addr, t=time.time())
        start = time.perf_counter()
        deadline = start + args.seconds
        while time.perf_counter() < deadline:
            with lock:
                # Bounded by the deadline: if nothing commits, report 0 rather than wait for ever.
                while outstanding[0] >= args.inflight and time.perf_counter() < deadline:
                    lock.wait(0.01)
                if outstanding[0] >= args.inflight:
                    break
                outstanding[0] += 1
            node.append(payload, callback=callback)
        elapsed = time.perf_counter() - start
        with lock:
            acknowledged = done[0]
        emit(event="result", mode="throughput", ops=acknowledged, applied=node.count, seconds=elapsed,
             rate=acknowledged / elapsed)
    elif args.mode == "latency":
        emit(event="start", node=args.self_addr, t=time.time())
        latencies = []
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            t = time.perf_counter()
            node.append(payload, sync=True, timeout=5)
            latencies.append(time.perf_counter() - t)
        emit(event="result", mode="latency", latencies=latencies)
    else:
        while True:
            time.sleep(1)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
