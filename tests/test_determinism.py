"""A run is a pure function of its inputs: same seed, byte-identical trace, whatever the hash seed.

Architecture decision 2. Python randomizes ``str`` hashing per process
(PYTHONHASHSEED), which changes the iteration order of sets; protocol code
must never depend on it. We run the same simulation in two fresh processes
with different hash seeds and compare the trace files byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from raft.sim import Cluster

ARGS = ["run", "--nodes", "5", "--seed", "7", "--duration", "20", "--loss", "0.1", "--apply-rate", "10",
        "--crash", "n1:5", "--restart", "n1:9", "--crash", "n2:12"]


def run_cli(tmp_path: Path, hash_seed: str) -> tuple[bytes, str]:
    trace = tmp_path / f"trace-{hash_seed}.jsonl"
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    result = subprocess.run([sys.executable, "-m", "raft.sim.cli", *ARGS, "--trace", str(trace)],
                            capture_output=True, text=True, env=env, timeout=300, check=True)
    return trace.read_bytes(), result.stdout.replace(str(trace), "TRACE")


def test_same_seed_gives_byte_identical_traces_across_hash_seeds(tmp_path: Path) -> None:
    """Two processes with PYTHONHASHSEED 1 and 2 write the same trace and print the same story."""
    trace1, out1 = run_cli(tmp_path, "1")
    trace2, out2 = run_cli(tmp_path, "2")
    assert len(trace1) > 10_000
    assert trace1 == trace2
    assert out1 == out2


def test_different_seeds_give_different_runs() -> None:
    """The seed matters: two seeds elect at different moments (the trace is not a constant)."""
    times = []
    for seed in (1, 2):
        c = Cluster(5, seed)
        c.run_until(lambda c: c.leader() is not None)
        times.append(c.now)
        c.close()
    assert times[0] != times[1]


def test_pausing_does_not_change_the_run() -> None:
    """Stepping event by event gives exactly the trace of running straight through."""
    straight = Cluster(3, seed=5)
    straight.run_for(3)
    stepped = Cluster(3, seed=5)
    steps = 0
    while stepped.now < 3:
        stepped.step()
        steps += 1
    assert steps > 100, "the stepped run must really have paused many times"
    before = [e.to_json() for e in straight.events if e.t < 3]
    assert before == [e.to_json() for e in stepped.events if e.t < 3]
    straight.close()
    stepped.close()
