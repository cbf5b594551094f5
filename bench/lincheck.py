"""The linearizability checker on every reference history: its verdict, its time and its peak memory.

    python -m bench.lincheck [--json FILE] [--seeds N] [--data DIR] [--kv FILE ...]

Checks, each in a fresh child process so that its peak memory is its own:

- every history of the reference data (``../shared/data/linearizability``, found as
  ``tests/conftest.py`` finds it, or ``--data``): Jepsen's etcd logs and porcupine's kv logs,
  with the verdicts of their ``expected.csv``. Without the data it says so and goes on;
- ``N`` generated 50-client kv histories of each kind (``--seeds``, 3 by default): ``gen-c50-ok-sK``
  is linearizable by construction, and ``gen-c50-bad-sK`` is the same run with a few stale reads,
  which makes it not linearizable (see ``fifty_client_history``);
- any other kv log given with ``--kv``, such as porcupine's own ``c50-ok.txt`` and ``c50-bad.txt``
  (``test_data/kv`` in its repository); the expected verdict is read from the name, ``-ok`` or
  ``-bad``.

Each child runs ``check_operations`` with its default budgets, as ``raft-sim lincheck`` does,
and never more than 3 GB of address space. One line per history: the verdict (``unknown``
with the budget that ran out), the expected verdict, the seconds spent checking (parsing not
included), the child's peak RSS (``VmHWM``: the interpreter, the history and the search), the
search steps and the memo's peak estimated size. A last line gives the largest time and memory.
``--json FILE`` writes the rows as a list of objects.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from raft.checkers.linearizability import (
    Model,
    Operation,
    check_operations,
    kv_model,
    parse_etcd_log,
    parse_kv_log,
    register_model,
)

ROOT = Path(__file__).resolve().parents[1]
ADDRESS_SPACE_LIMIT = 3 * 2**30  # a child that would need more fails alone, not the machine
CHILD_TIMEOUT = 600  # seconds; the default memory budget stops a search long before this


def shared_data_dir() -> Path:
    """Where the reference data lives: the same places, in the same order, as tests/conftest.py."""
    candidates = [os.environ.get("RAFT_SHARED_DATA", ""), str(ROOT.parent / "shared" / "data"), "/work/shared/data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path(candidates[1])


def fifty_client_history(seed: int, bad: bool = False, clients: int = 50, keys: int = 10,
                         ops_per_client: int = 34) -> str:
    """A kv log of the shape of porcupine's ``c50-ok.txt``, from a correct store; ``bad`` adds stale reads.

    Shape, measured on porcupine's pair: 50 clients on 10 keys, about 1,700 operations, 45% get,
    50% append and 5% put, each value ``x CLIENT N y``. Most calls take a few log lines and one
    in seven is slow (the median is about 13 lines, the 99th percentile about 1,000). Each
    operation takes effect at a random instant of its interval, so the history is linearizable.
    ``bad`` then makes one get in fifty (at least one) return the value its key held just before
    the latest write that had already returned when the get was called. Every value is unique,
    and a key's value after that write always holds the write's value or a later put's, so no
    order explains the get: the history is not linearizable.
    """
    rng = random.Random(seed)
    # [instant of effect, call, return, client, kind, key, value, value read]
    planned: list[list[Any]] = []
    for client in range(clients):
        clock = rng.uniform(0, 1)
        for n in range(ops_per_client):
            kind = rng.choices(("get", "append", "put"), (45, 50, 5))[0]
            key = str(rng.randrange(keys))
            duration = rng.expovariate(1 / (6.0 if rng.random() < 0.15 else 0.2))
            call, ret = clock, clock + duration
            planned.append([rng.uniform(call, ret), call, ret, client, kind, key, f"x {client} {n} y", None])
            clock = ret + rng.expovariate(1 / 0.1)
    planned.sort()
    store: dict[str, str] = {}
    writes: dict[str, list[tuple[float, float, str]]] = {}  # key -> (instant, return, value before)
    for op in planned:
        instant, _, ret, _, kind, key, value, _ = op
        before = store.get(key, "")
        if kind == "get":
            op[7] = before
        else:
            writes.setdefault(key, []).append((instant, ret, before))
            store[key] = value if kind == "put" else before + value
    if bad:
        gets = [op for op in planned if op[4] == "get"]
        for op in rng.sample(gets, max(1, len(gets) // 50)):
            done = [write for write in writes.get(op[5], []) if write[1] < op[1]]
            if done:
                op[7] = max(done)[2]
    lines: list[tuple[float, int, str]] = []  # (time, 0 for a call or 1 for a return, the line)
    for _, call, ret, client, kind, key, value, read in planned:
        asked = "nil" if kind == "get" else f'"{value}"'
        answered = f'"{read}"' if kind == "get" else f'"{value}"'
        lines.append((call, 0, f'{{:process {client}, :type :invoke, :f :{kind}, :key "{key}", :value {asked}}}'))
        lines.append((ret, 1, f'{{:process {client}, :type :ok, :f :{kind}, :key "{key}", :value {answered}}}'))
    return "".join(text + "\n" for _, _, text in sorted(lines))


# ---------------------------------------------------------------------------------------------
# One history, in the child
# ---------------------------------------------------------------------------------------------


def check_one(source: str) -> dict[str, Any]:
    """Check one history in this process: ``etcd:PATH``, ``kv:PATH`` or ``gen:SEED:ok|bad``."""
    kind, _, rest = source.partition(":")
    history: list[Operation]
    model: Model
    if kind == "gen":
        seed, _, which = rest.partition(":")
        history, model = parse_kv_log(fifty_client_history(int(seed), bad=which == "bad")), kv_model
    elif kind == "etcd":
        history, model = parse_etcd_log(Path(rest).read_text()), register_model
    else:
        history, model = parse_kv_log(Path(rest).read_text()), kv_model
    started = time.perf_counter()
    result = check_operations(model, history)
    seconds = time.perf_counter() - started
    verdict = {True: "linearizable", False: "not linearizable", None: f"unknown ({result.exhausted})"}
    return {"verdict": verdict[result.linearizable], "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
            "operations": len(history), "steps": result.steps, "memo_mb": result.peak_memory / 2**20}


def peak_rss_mb() -> float:
    """This process's peak resident memory, from /proc (VmHWM), else from getrusage."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def run_child(source: str) -> dict[str, Any]:
    """``check_one(source)`` in a fresh interpreter; a child that dies is reported, not raised."""
    try:
        done = subprocess.run([sys.executable, "-m", "bench.lincheck", "--one", source], cwd=ROOT,
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT, preexec_fn=_limit_child)
    except subprocess.TimeoutExpired:
        return {"verdict": f"killed after {CHILD_TIMEOUT} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"verdict": f"crashed: {last[:60]}"}
    row: dict[str, Any] = json.loads(done.stdout)
    return row


# ---------------------------------------------------------------------------------------------
# The list of histories, and the table
# ---------------------------------------------------------------------------------------------


def reference_histories(data: Path) -> list[tuple[str, str, bool]]:
    """(name, source for check_one, expected verdict) for every row of every expected.csv."""
    found = []
    for folder, parser in (("etcd", "etcd"), ("kv", "kv")):
        table = data / "linearizability" / folder / "expected.csv"
        if not table.is_file():
            continue
        with table.open(newline="") as file:
            for row in csv.DictReader(file):
                path = table.parent / row["file"]
                found.append((f"{folder}/{row['file']}", f"{parser}:{path}", row["linearizable"] == "true"))
    return found


def histories(args: argparse.Namespace) -> list[tuple[str, str, bool]]:
    rows = reference_histories(args.data)
    if not rows:
        print(f"reference histories not found at {args.data / 'linearizability'}: "
              "checking the generated histories only")
    for seed in range(args.seeds):
        rows.append((f"gen-c50-ok-s{seed}", f"gen:{seed}:ok", True))
        rows.append((f"gen-c50-bad-s{seed}", f"gen:{seed}:bad", False))
    for path in args.kv:
        rows.append((Path(path).name, f"kv:{Path(path).resolve()}", "-bad" not in Path(path).name))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE")
    parser.add_argument("--seeds", type=int, default=3, help="generated 50-client histories of each kind")
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    parser.add_argument("--kv", action="append", default=[], metavar="FILE", help="another kv log to check")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child's entry point
    args = parser.parse_args()
    if args.one:
        print(json.dumps(check_one(args.one)))
        return
    print(f"{'history':<24} {'verdict':<26} {'expected':<17} {'seconds':>8} {'peak MB':>8} "
          f"{'steps':>11} {'memo MB':>8}")
    results = []
    for name, source, expected in histories(args):
        row = {"history": name, "expected": "linearizable" if expected else "not linearizable",
               **run_child(source)}
        results.append(row)
        print(f"{name:<24} {row['verdict']:<26} {row['expected']:<17} {row.get('seconds', float('nan')):>8.2f} "
              f"{row.get('peak_rss_mb', float('nan')):>8.0f} {row.get('steps', 0):>11,} "
              f"{row.get('memo_mb', float('nan')):>8.1f}", flush=True)
    wrong = [row["history"] for row in results if row["verdict"] != row["expected"]]
    slowest = max(results, key=lambda row: row.get("seconds", 0.0), default=None)
    largest = max(results, key=lambda row: row.get("peak_rss_mb", 0.0), default=None)
    if slowest is not None and largest is not None:
        print(f"{len(results)} histories; max time {slowest.get('seconds', 0.0):.2f} s ({slowest['history']}); "
              f"max peak RSS {largest.get('peak_rss_mb', 0.0):.0f} MB ({largest['history']}); "
              f"not as expected: {', '.join(wrong) or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
