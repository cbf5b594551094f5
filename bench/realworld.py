"""raft-textbook next to PySyncObj: three processes each on 127.0.0.1, same workload.

    python -m bench.realworld [--seconds 5] [--repeat 3] [--failovers 5] [--json results.json]

Measured for both, in the same run:

* throughput: a pipelined client inside the leader process, 16-byte
  commands, with an in-memory log and with a durable one (our SQLite store;
  PySyncObj's journal file);
* one-at-a-time latency (p50, p99) of a single command;
* time to a new leader after SIGKILL of the leader.

PySyncObj is installed into its own virtual environment (bench/.venv-pysyncobj,
created on first use from PyPI); it is never a dependency of the project. Its
batching is on for the throughput runs and off for the latency run, as the
project's goals ask; our side likewise turns on hashicorp's BatchApplyCh for
the throughput runs and otherwise uses hashicorp's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from raft.tcp_transport import free_loopback_ports

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-pysyncobj"


def pysyncobj_python() -> str:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "pysyncobj"], check=True)
    return str(python)


class Trio:
    """Three node processes of one implementation."""

    def __init__(self, kind: str, mode: str, extra: list[str], workdir: str) -> None:
        ports = free_loopback_ports(3)
        self.procs: list[subprocess.Popen[bytes]] = []
        addresses = [f"127.0.0.1:{p}" for p in ports]
        for k in range(3):
            if kind == "raft":
                peers = ",".join(f"n{i + 1}={a}" for i, a in enumerate(addresses))
                cmd = [sys.executable, str(HERE / "raft_node.py"), "--id", f"n{k + 1}", "--peers", peers,
                       "--mode", mode, "--data-dir", workdir, *extra]
            else:
                others = ",".join(a for i, a in enumerate(addresses) if i != k)
                cmd = [pysyncobj_python(), str(HERE / "pysyncobj_node.py"), "--self", addresses[k],
                       "--partners", others, "--mode", mode, *extra]
                if "--journal" in extra:
                    cmd[cmd.index("--journal") + 1] = os.path.join(workdir, f"journal{k}")
            env = dict(os.environ, PYTHONPATH=str(HERE.parent))
            self.procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env))
        for proc in self.procs:
            os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self.buffers = [""] * 3
        self.ended = [False] * 3

    def lines(self) -> list[tuple[int, dict[str, Any]]]:
        """New JSON lines from any process, with the process number."""
        found = []
        for k, proc in enumerate(self.procs):
            assert proc.stdout is not None
            if self.ended[k]:
                continue
            try:
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                self.ended[k] = not chunk  # end of file: the process has exited
            except BlockingIOError:
                chunk = b""
            if chunk:
                self.buffers[k] += chunk.decode()
            *complete, self.buffers[k] = self.buffers[k].split("\n")
            found += [(k, json.loads(line)) for line in complete if line.startswith("{")]
        return found

    def wait_for(self, predicate: Any, timeout: float) -> tuple[int, dict[str, Any]]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for k, line in self.lines():
                if predicate(line):
                    return k, line
            pipes = [proc.stdout for k, proc in enumerate(self.procs) if not self.ended[k]]
            if not pipes:
                break
            # Sleep until a node prints: polling would take CPU from the nodes being measured.
            select.select(pipes, [], [], max(0.0, deadline - time.time()))
        raise TimeoutError("benchmark processes did not report in time (or all of them exited)")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def measure(kind: str, mode: str, extra: list[str], seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        trio = Trio(kind, mode, [*extra, "--seconds", str(seconds)], workdir)
        try:
            _, result = trio.wait_for(lambda line: line.get("event") == "result", seconds + 60)
            if result.get("applied", result.get("ops", 0)) < result.get("ops", 0):
                raise AssertionError(f"{kind} acknowledged more commands than it applied: {result}")
        finally:
            trio.stop()
    return result


def failover(kind: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as workdir:
            trio = Trio(kind, "idle", [], workdir)
            try:
                # Wait until the cluster has a leader and has been stable for a moment.
                _, line = trio.wait_for(lambda line: line.get("event") == "leader" and line.get("leader"), 30)
                time.sleep(2.0)
                trio.lines()
                leader_proc = _leader_process(trio, kind, line["leader"])
                killed_at = time.time()
                trio.procs[leader_proc].send_signal(signal.SIGKILL)
                _, new = trio.wait_for(_new_leader_after(line["leader"], killed_at), 60)
                times.append(new["t"] - killed_at)
            finally:
                trio.stop()
    return times


def _new_leader_after(old: str, killed_at: float) -> Any:
    return lambda line: (line.get("event") == "leader" and line.get("leader") not in (None, old)
                         and line.get("t", 0) > killed_at)


def _leader_process(trio: Trio, kind: str, leader: str) -> int:
    for k, proc in enumerate(trio.procs):
        args = proc.args if isinstance(proc.args, list) else []
        if kind == "raft" and f"n{k + 1}" == leader:
            return k
        if kind == "pysyncobj" and leader in [str(a) for a in args]:
            index = [str(a) for a in args].index("--self")
            if str(args[index + 1]) == leader:
                return k
    raise AssertionError(f"no process is the leader {leader}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each throughput and latency run")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per side and measure, taking turns; the median is reported (default 3)")
    parser.add_argument("--failovers", type=int, default=5, help="leader kills per side (default 5)")
    parser.add_argument("--inflight", type=int, default=1000, help="commands the pipelined client keeps in flight")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE for bench/plots.py")
    args = parser.parse_args()
    if args.repeat < 1 or args.failovers < 1 or args.seconds <= 0:
        parser.error("--repeat and --failovers must be at least 1, --seconds positive")
    inflight = ["--inflight", str(args.inflight)]
    results: dict[str, Any] = {}
    rows = []

    def both(mode: str, ours_extra: list[str], theirs_extra: list[str]) -> tuple[list[Any], list[Any]]:
        """``--repeat`` runs of each side, taking turns, so that a slow moment of the machine hits both."""
        ours, theirs = [], []
        for _ in range(args.repeat):
            ours.append(measure("raft", mode, ours_extra, args.seconds))
            theirs.append(measure("pysyncobj", mode, theirs_extra, args.seconds))
        return ours, theirs

    # BatchApplyCh is hashicorp's switch for throughput (Config.batch_apply_ch), the
    # counterpart of PySyncObj's batching; both are on for throughput, off for latency.
    for name, store, journal in (("in-memory", "memory", []), ("durable", "sqlite", ["--journal", "x"])):
        ours, theirs = both("throughput", [*inflight, "--store", store, "--batch-apply-ch"],
                            [*inflight, "--batch", *journal])
        rows.append((f"throughput, {name} log (ops/s)",
                     statistics.median(r["rate"] for r in ours), statistics.median(r["rate"] for r in theirs)))
    ours, theirs = both("latency", ["--store", "memory"], [])
    for p in (50, 99):
        rows.append((f"latency p{p}, one at a time (ms)",
                     statistics.median(1000 * pct(r["latencies"], p) for r in ours),
                     statistics.median(1000 * pct(r["latencies"], p) for r in theirs)))
    ours_fail = failover("raft", args.failovers)
    theirs_fail = failover("pysyncobj", args.failovers)
    rows.append(("new leader after SIGKILL, median (s)", statistics.median(ours_fail), statistics.median(theirs_fail)))

    print(f"{'measure':42s} {'raft-textbook':>14s} {'PySyncObj':>12s} {'ratio':>7s}")
    for name, a, b in rows:
        print(f"{name:42s} {a:14,.2f} {b:12,.2f} {a / b if b else float('nan'):7.2f}")
        results[name] = {"raft_textbook": a, "pysyncobj": b}
    print("(ratio = raft-textbook / PySyncObj; for throughput higher is better, for times lower is better;")
    print(f" throughput and latency: median of {args.repeat} runs per side;"
          f" failover: median of {args.failovers} kills)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
