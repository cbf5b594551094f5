"""raft-textbook next to PySyncObj and hashicorp/raft (Go): three processes each on 127.0.0.1, same workload.

    python -m bench.realworld [--seconds 5] [--repeat 3] [--failovers 5]
        [--inflight 1000,5000,20000,50000] [--pysyncobj-settings all] [--json results.json]

Measured for each side, in the same run, the sides taking turns:

* throughput: a pipelined client inside the leader process keeps ``--inflight``
  commands of 16 bytes outstanding. Swept over every in-flight value, and for
  PySyncObj over its settings that matter for throughput, with the log in
  memory; then with a durable log (our SQLite store; PySyncObj's journal
  file; raft-boltdb) at each side's best in-flight value and setting. Ours
  and raft-boltdb fsync each batch before acknowledging it; PySyncObj's
  journal is a memory-mapped file that is never fsynced;
* one-at-a-time latency (p50, p99) of a single command;
* time to a new leader after SIGKILL of the leader.

The ratios are best against best: each side at the in-flight value and
setting that gave it its highest in-memory throughput. A side that commits
nothing at some in-flight value is reported as 0 there: every wait is
bounded (a node reports what it acknowledged two seconds after its deadline,
and the harness gives up on a silent trio), so a collapse shows in the table
instead of hanging the run.

Settings swept:

* raft-textbook: hashicorp's defaults, with BatchApplyCh on for throughput
  (``Config.batch_apply_ch``, hashicorp's switch for it) and off for latency;
* PySyncObj: ``appendEntriesUseBatch`` on and off, and with batching, its
  ``appendEntriesPeriod`` (how often a batch goes out: 0.1 s by default, and
  0.02 s) and ``appendEntriesBatchSizeBytes`` (64 KiB by default, and 1 MiB);
  batching off for latency. Its election timeouts are 1-2 s, like
  hashicorp's, for the failover measurement;
* hashicorp (Go): ``raft.DefaultConfig()`` with only ``LocalID`` set (its
  version 1.1.2 has no BatchApplyCh), ``raft.NewTCPTransport``,
  ``raft.NewInmemStore`` or raft-boltdb.

The Go node (``bench/go/raftnode``) is built on each run, offline, in GOPATH
mode against Debian's packages (``golang-go``,
``golang-github-hashicorp-raft-dev``,
``golang-github-hashicorp-raft-boltdb-dev``, sources under
``/usr/share/gocode``), into ``~/.cache/raft-textbook-bench``; without them
its column says "not measured" and why. PySyncObj is installed into its own
virtual environment (``bench/.venv-pysyncobj``, created on first use from
PyPI); neither is ever a dependency of the project.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import realworld_report as report
from raft.tcp_transport import free_loopback_ports

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-pysyncobj"
GO_SOURCE = HERE / "go" / "raftnode"
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put their sources
GO_BUILD = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "raft-textbook-bench"
STARTUP_SECONDS = 30.0  # from starting three processes to the leader's client starting
DRAIN_SECONDS = 15.0  # after a run's deadline, for its result (the nodes report by deadline + 2 s)
DEFAULT_INFLIGHT = "1000,5000,20000,50000"


@dataclass(frozen=True)
class Setting:
    """One configuration of one side for the throughput runs."""

    name: str  # as the tables show it
    args: tuple[str, ...]  # the node's command-line arguments for it


PYSYNCOBJ_SETTINGS = {
    "batch": Setting("batching, 0.1 s, 64 KiB", ("--batch",)),
    "batch-1mib": Setting("batching, 0.1 s, 1 MiB", ("--batch", "--batch-bytes", str(1 << 20))),
    "batch-20ms": Setting("batching, 0.02 s, 64 KiB", ("--batch", "--append-period", "0.02")),
    "no-batch": Setting("no batching", ()),
}
FIXED_SETTINGS = {"raft_textbook": (Setting("BatchApplyCh", ("--batch-apply-ch",)),),
                  "hashicorp_go": (Setting("DefaultConfig", ()),)}
DURABLE_ARGS = {"raft_textbook": ("--store", "sqlite"), "pysyncobj": ("--journal", "x"),
                "hashicorp_go": ("--store", "bolt")}
LATENCY_ARGS: dict[str, tuple[str, ...]] = {"raft_textbook": ("--store", "memory"), "pysyncobj": (),
                                            "hashicorp_go": ()}


def pysyncobj_python() -> str:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "pysyncobj"], check=True)
    return str(python)


def go_sources_missing(*packages: str) -> str:
    """Which of the Go packages has no sources under GOPATH ("" if all are there)."""
    return " ".join(p for p in packages if not (GOPATH / "src" / p).is_dir())


def build_go_node() -> tuple[str | None, dict[str, str]]:
    """Build the Go node; its path (or None) and what cannot be measured with it, and why."""
    go = shutil.which("go")
    if go is None:
        return None, {"hashicorp_go": "No `go` on PATH (apt-get install golang-go)."}
    if missing := go_sources_missing("github.com/hashicorp/raft"):
        return None, {"hashicorp_go": f"No sources of {missing} under {GOPATH}/src "
                                      "(apt-get install golang-github-hashicorp-raft-dev)."}
    not_measured = {}
    tags = ["-tags", "bolt"]
    if missing := go_sources_missing("github.com/hashicorp/raft-boltdb", "github.com/boltdb/bolt"):
        tags = []
        not_measured["hashicorp_go durable"] = (f"No sources of {missing} under {GOPATH}/src "
                                                "(apt-get install golang-github-hashicorp-raft-boltdb-dev).")
    binary = GO_BUILD / "raftnode"
    env = dict(os.environ, GO111MODULE="off", GOPATH=str(GOPATH), GOFLAGS="")
    built = subprocess.run([go, "build", *tags, "-o", str(binary), "."], cwd=GO_SOURCE, env=env,
                           capture_output=True, text=True, check=False)
    if built.returncode:
        return None, {"hashicorp_go": f"`go build` failed: {built.stderr.strip()}"}
    return str(binary), not_measured


class Trio:
    """Three node processes of one side."""

    go_node = ""  # the built Go node, set by collect()

    def __init__(self, side: str, mode: str, extra: list[str], workdir: str) -> None:
        addresses = [f"127.0.0.1:{p}" for p in free_loopback_ports(3)]
        env = dict(os.environ, PYTHONPATH=str(HERE.parent))
        self.procs = [subprocess.Popen(self.command(side, k, addresses, mode, extra, workdir), env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for k in range(3)]
        for proc in self.procs:
            os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        self.buffers = [""] * 3
        self.ended = [False] * 3
        self.backlog: deque[tuple[int, dict[str, Any]]] = deque()  # read, not yet looked at

    def command(self, side: str, k: int, addresses: list[str], mode: str, extra: list[str],
                workdir: str) -> list[str]:
        peers = ",".join(f"n{i + 1}={a}" for i, a in enumerate(addresses))
        common = ["--id", f"n{k + 1}", "--peers", peers, "--mode", mode, "--data-dir", workdir, *extra]
        if side == "raft_textbook":
            return [sys.executable, str(HERE / "raft_node.py"), *common]
        if side == "hashicorp_go":
            return [self.go_node, *common]
        others = ",".join(a for i, a in enumerate(addresses) if i != k)
        cmd = [pysyncobj_python(), str(HERE / "pysyncobj_node.py"), "--self", addresses[k],
               "--partners", others, "--mode", mode, *extra]
        if "--journal" in extra:
            cmd[cmd.index("--journal") + 1] = os.path.join(workdir, f"journal{k}")
        return cmd

    def read(self) -> None:
        """Move every complete JSON line the processes printed into the backlog."""
        for k, proc in enumerate(self.procs):
            assert proc.stdout is not None
            if self.ended[k]:
                continue
            try:
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                self.ended[k] = not chunk  # end of file: the process has exited
            except BlockingIOError:
                chunk = b""
            self.buffers[k] += chunk.decode()
            *complete, self.buffers[k] = self.buffers[k].split("\n")
            self.backlog.extend((k, json.loads(line)) for line in complete if line.startswith("{"))

    def drain(self) -> None:
        """Forget what was printed so far."""
        self.read()
        self.backlog.clear()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> tuple[int, dict[str, Any]]:
        """The first line, in order, that satisfies predicate; later lines stay for the next wait."""
        deadline = time.time() + timeout
        while True:
            while self.backlog:
                k, line = self.backlog.popleft()
                if predicate(line):
                    return k, line
            pipes = [proc.stdout for k, proc in enumerate(self.procs) if not self.ended[k] and proc.stdout]
            if not pipes or time.time() >= deadline:
                raise TimeoutError(f"no answer within {timeout:g} s" if pipes else "all three processes exited")
            # Sleep until a node prints: polling would take CPU from the nodes being measured.
            select.select(pipes, [], [], max(0.0, deadline - time.time()))
            self.read()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def measure(side: str, mode: str, extra: list[str], seconds: float) -> dict[str, Any]:
    """One run; a run that gives no result in time is returned as 0 with the reason, never waited for."""
    with tempfile.TemporaryDirectory() as workdir:
        trio = Trio(side, mode, [*extra, "--seconds", str(seconds)], workdir)
        try:
            trio.wait_for(lambda line: line.get("event") == "start", STARTUP_SECONDS)
            _, result = trio.wait_for(lambda line: line.get("event") == "result", seconds + DRAIN_SECONDS)
        except TimeoutError as err:
            return {"ops": 0, "rate": 0.0, "latencies": [], "error": str(err)}
        finally:
            trio.stop()
    if result.get("applied", result.get("ops", 0)) < result.get("ops", 0):
        raise AssertionError(f"{side} acknowledged more commands than it applied: {result}")
    return result


def cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median rate of some runs, each run's rate, and what went wrong in any of them."""
    notes = [f"run {i + 1}: " + (run.get("error") or "stalled: the oldest command had not committed at the deadline")
             for i, run in enumerate(runs) if run.get("error") or run.get("stalled")]
    rates = [float(run.get("rate", 0.0)) for run in runs]
    return {"median": statistics.median(rates), "rates": rates, "notes": notes}


class Bench:
    """One benchmark run: its options, the sides measured, and the progress printed as it goes."""

    def __init__(self, args: argparse.Namespace, settings: dict[str, tuple[Setting, ...]]) -> None:
        self.args = args
        self.settings = settings  # side -> settings of its throughput runs
        self.sides = list(settings)
        self.planned = args.repeat * (len(args.inflight) * sum(map(len, settings.values())) + 2 * len(settings))
        self.done = 0

    def run(self, side: str, mode: str, extra: list[str], what: str) -> dict[str, Any]:
        started = time.time()
        result = measure(side, mode, extra, self.args.seconds)
        self.done += 1
        figure = f"{result['rate']:,.0f} ops/s" if mode == "throughput" else f"{len(result['latencies'])} commands"
        trouble = result.get("error") or ("stalled" if result.get("stalled") else "")
        print(f"[{self.done}/{self.planned}] {side} {what}: {figure}{', ' + trouble if trouble else ''}"
              f" ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
        return result

    def in_memory(self) -> dict[str, Any]:
        """Every side, every setting, every in-flight value, ``--repeat`` times, taking turns."""
        runs: dict[str, dict[str, dict[str, list[Any]]]] = {
            side: {s.name: {str(n): [] for n in self.args.inflight} for s in settings}
            for side, settings in self.settings.items()}
        for _ in range(self.args.repeat):
            for n in self.args.inflight:
                for side, settings in self.settings.items():
                    for setting in settings:
                        result = self.run(side, "throughput", [*setting.args, "--inflight", str(n)],
                                          f"in memory, {setting.name}, {n:,} in flight")
                        runs[side][setting.name][str(n)].append(result)
        return {side: {name: {n: cell(r) for n, r in by_n.items()} for name, by_n in by_setting.items()}
                for side, by_setting in runs.items()}

    def durable(self, best: dict[str, dict[str, Any]], sides: list[str]) -> dict[str, Any]:
        """Each side with a durable log, at its best in-memory setting and in-flight value."""
        runs: dict[str, list[Any]] = {side: [] for side in sides}
        for _ in range(self.args.repeat):
            for side in sides:
                setting = next(s for s in self.settings[side] if s.name == best[side]["setting"])
                n = best[side]["inflight"]
                runs[side].append(self.run(side, "throughput",
                                           [*setting.args, "--inflight", str(n), *DURABLE_ARGS[side]],
                                           f"durable, {setting.name}, {n:,} in flight"))
        return {side: {"setting": best[side]["setting"], "inflight": best[side]["inflight"], **cell(r)}
                for side, r in runs.items()}

    def latency(self) -> dict[str, Any]:
        """One command at a time: each run's p50 and p99, in milliseconds."""
        found: dict[str, Any] = {side: {"p50_ms": [], "p99_ms": [], "commands": [], "notes": []}
                                 for side in self.sides}
        for _ in range(self.args.repeat):
            for side in self.sides:
                result = self.run(side, "latency", list(LATENCY_ARGS[side]), "latency")
                if not result["latencies"]:
                    found[side]["notes"].append(result.get("error", "no command completed"))
                    continue
                for p in (50, 99):
                    found[side][f"p{p}_ms"].append(1000 * pct(result["latencies"], p))
                found[side]["commands"].append(len(result["latencies"]))
        return found


def best_of(sweep: dict[str, Any]) -> dict[str, Any]:
    """A side's highest median in-memory throughput, with its setting and in-flight value."""
    candidates = [(by_n[n]["median"], name, int(n)) for name, by_n in sweep.items() for n in by_n]
    rate, name, n = max(candidates, key=lambda c: c[0])  # the first of equals: the smaller in-flight value
    return {"setting": name, "inflight": n, "rate": rate}


def failover(side: str, rounds: int) -> tuple[list[float], list[str]]:
    """Seconds from SIGKILL of a settled leader to the next leader, and why any round failed."""
    times, notes = [], []
    for round_ in range(rounds):
        with tempfile.TemporaryDirectory() as workdir:
            trio = Trio(side, "idle", [], workdir)
            try:
                # Wait until the cluster has a leader and has been stable for a moment.
                _, line = trio.wait_for(lambda line: line.get("event") == "leader" and bool(line.get("leader")), 30)
                time.sleep(2.0)
                trio.drain()
                leader_proc = _leader_process(trio, side, line["leader"])
                killed_at = time.time()
                trio.procs[leader_proc].send_signal(signal.SIGKILL)
                _, new = trio.wait_for(_new_leader_after(line["leader"], killed_at), 60)
                times.append(new["t"] - killed_at)
                outcome = f"{times[-1]:.2f} s"
            except TimeoutError as err:
                notes.append(f"round {round_ + 1}: {err}")
                outcome = str(err)
            finally:
                trio.stop()
        print(f"{side} failover {round_ + 1}/{rounds}: {outcome}", file=sys.stderr, flush=True)
    return times, notes


def _new_leader_after(old: str, killed_at: float) -> Callable[[dict[str, Any]], bool]:
    return lambda line: (line.get("event") == "leader" and line.get("leader") not in (None, old)
                         and line.get("t", 0) > killed_at)


def _leader_process(trio: Trio, side: str, leader: str) -> int:
    for k, proc in enumerate(trio.procs):
        args = [str(a) for a in proc.args] if isinstance(proc.args, list) else []
        if side != "pysyncobj" and f"n{k + 1}" == leader:
            return k
        if side == "pysyncobj" and args[args.index("--self") + 1] == leader:
            return k
    raise AssertionError(f"no process is the leader {leader}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def output(command: list[str], timeout: float = 30) -> str:
    """What a command prints, or "" if it cannot be run."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    """Where and against what the figures were measured."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    root = str(HERE.parent)
    return {
        "cores": os.cpu_count(), "cpu": model, "platform": platform.platform(),
        "python": platform.python_version(),
        "pysyncobj": output([pysyncobj_python(), "-c",
                             "import importlib.metadata as m; print(m.version('pysyncobj'))"]),
        "go": output(["go", "env", "GOVERSION"]),
        "hashicorp_raft": output(["dpkg-query", "-W", "-f=${Version}", "golang-github-hashicorp-raft-dev"]),
        "hashicorp_raft_boltdb": output(["dpkg-query", "-W", "-f=${Version}",
                                         "golang-github-hashicorp-raft-boltdb-dev"]),
        "commit": output(["git", "-C", root, "rev-parse", "HEAD"]),
        "raft_uncommitted_changes": bool(output(["git", "-C", root, "status", "--porcelain", "raft"])),
        "temp_filesystem": output(["stat", "-f", "-c", "%T", tempfile.gettempdir()]),  # where the durable logs go
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def inflight_list(text: str) -> list[int]:
    """``--inflight 1000`` or ``--inflight 1000,5000,20000``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("each in-flight value must be at least 1")
    return sorted(set(values))


def settings_list(text: str) -> list[str]:
    names = list(PYSYNCOBJ_SETTINGS) if text == "all" else [part for part in text.split(",") if part]
    unknown = [name for name in names if name not in PYSYNCOBJ_SETTINGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(PYSYNCOBJ_SETTINGS)} or all")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each throughput and latency run")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per side and measure, taking turns; the median is reported (default 3)")
    parser.add_argument("--failovers", type=int, default=5, help="leader kills per side (default 5)")
    parser.add_argument("--inflight", type=inflight_list, default=inflight_list(DEFAULT_INFLIGHT),
                        help="commands the pipelined client keeps in flight: one number, or a comma-separated "
                             f"list to sweep (default {DEFAULT_INFLIGHT})")
    parser.add_argument("--pysyncobj-settings", type=settings_list, default=list(PYSYNCOBJ_SETTINGS),
                        metavar="NAMES", help="PySyncObj settings to sweep, comma-separated, from "
                                              f"{', '.join(PYSYNCOBJ_SETTINGS)} (default: all)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE for bench/plots.py")
    return parser


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measure; the results as ``--json`` writes them."""
    go_node, not_measured = build_go_node()
    if go_node is None:
        print(f"hashicorp (Go): not measured. {not_measured['hashicorp_go']}", file=sys.stderr)
    Trio.go_node = go_node or ""
    settings = {"raft_textbook": FIXED_SETTINGS["raft_textbook"],
                "pysyncobj": tuple(PYSYNCOBJ_SETTINGS[name] for name in args.pysyncobj_settings),
                **({"hashicorp_go": FIXED_SETTINGS["hashicorp_go"]} if go_node else {})}
    started, where = time.time(), machine()
    bench = Bench(args, settings)
    in_memory = bench.in_memory()
    best = {side: best_of(sweep) for side, sweep in in_memory.items()}
    durable = bench.durable(best, [s for s in bench.sides if f"{s} durable" not in not_measured])
    latency = bench.latency()
    failovers = {side: failover(side, args.failovers) for side in bench.sides}

    def by_side(figure: Callable[[str], float | None]) -> dict[str, float | None]:
        return {side: figure(side) if side in settings else None for side, _ in report.SIDES}

    measures = {
        report.BEST_IN_MEMORY: by_side(lambda s: best[s]["rate"]),
        report.DURABLE: by_side(lambda s: durable[s]["median"] if s in durable else None),
        "latency p50, one at a time (ms)": by_side(lambda s: median_or_none(latency[s]["p50_ms"])),
        "latency p99, one at a time (ms)": by_side(lambda s: median_or_none(latency[s]["p99_ms"])),
        "new leader after SIGKILL, median (s)": by_side(lambda s: median_or_none(failovers[s][0])),
    }
    return {
        "measures": measures,
        "throughput": {"in-memory": in_memory, "durable": durable},
        "best": best,
        "latency": latency,
        "failover_s": {side: {"times": t, "notes": n} for side, (t, n) in failovers.items()},
        "settings": {side: [{"name": s.name, "args": list(s.args)} for s in ss] for side, ss in settings.items()},
        "not_measured": not_measured,
        "run": {"command": "python -m bench.realworld " + " ".join(sys.argv[1:]), "seconds": args.seconds,
                "repeat": args.repeat, "failovers": args.failovers, "inflight": args.inflight,
                "minutes": round((time.time() - started) / 60, 1), "machine": where},
    }


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.repeat < 1 or args.failovers < 1 or args.seconds <= 0:
        parser.error("--repeat and --failovers must be at least 1, --seconds positive")
    results = collect(args)
    print(report.as_text(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
