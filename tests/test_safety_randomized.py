"""Randomized runs: with loss, partitions and crashes, Raft's safety properties always hold.

Paper: Figure 3 — Election Safety ("at most one leader can be elected in a given
term"), Log Matching, State Machine Safety ("if a server has applied a log entry
at a given index to its state machine, no other server will ever apply a
different log entry for the same index"). And liveness: once a majority can
talk again, a leader is elected (§5.2, §5.6).

Each seed is one test. A failure names its seed; re-run just that run with
the command printed in the failure message. ``RAFT_SAFETY_SEEDS`` sets how
many seeds run (default 200).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest

from raft.errors import ErrLeadershipLost, ErrNotLeader
from raft.events import Event
from raft.runtime.channels import select
from raft.runtime.timers import after
from raft.sim import Cluster
from raft.sim.network import LinkFaults
from raft.testing import inmem_config

SEEDS = int(os.environ.get("RAFT_SAFETY_SEEDS", "200"))
HT = 0.050  # inmem_config's timeouts: many elections per virtual second


@dataclass
class SafetyMonitor:
    """Checks Figure 3's properties on every event, as it happens."""

    leaders: dict[int, str] = field(default_factory=dict)  # term -> the one leader of that term
    applied: dict[int, int] = field(default_factory=dict)  # index -> term of the entry applied there
    terms: dict[str, int] = field(default_factory=dict)
    commits: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def __call__(self, e: Event) -> None:
        if e.kind == "state" and e["state"] == "leader":
            other = self.leaders.setdefault(e["term"], e.node)
            if other != e.node:
                self.violations.append(f"Election Safety: {other} and {e.node} both lead term {e['term']} ({e})")
        elif e.kind == "apply":
            term = self.applied.setdefault(e["index"], e["term"])
            if term != e["term"]:
                self.violations.append(f"State Machine Safety: index {e['index']} applied with terms {term} and "
                                       f"{e['term']} ({e})")
        elif e.kind == "term":
            if e["term"] < self.terms.get(e.node, 0):
                self.violations.append(f"term went backwards on {e.node}: {e}")
            self.terms[e.node] = e["term"]
        elif e.kind == "commit":
            if e["index"] < self.commits.get(e.node, 0):
                self.violations.append(f"commit index went backwards on {e.node}: {e}")
            self.commits[e.node] = e["index"]
        elif e.kind == "restart":
            self.commits.pop(e.node, None)  # volatile: a restarted node starts again from 0


async def client(c: Cluster, rng: random.Random) -> None:
    """Keep sending commands to whoever leads, as an application would."""
    sequence = 0
    while True:
        leader = c.leader()
        if leader is not None:
            sequence += 1
            c.node(leader).apply(f"c{sequence}".encode())
        await select([after(rng.uniform(0.2, 1.0) * HT)])


def random_fault(c: Cluster, rng: random.Random) -> None:
    crashed = [i for i in c.ids if not c.is_up(i)]
    roll = rng.random()
    if roll < 0.25:
        ids = c.ids
        rng.shuffle(ids)
        cut = rng.randint(1, len(ids) - 1)
        c.partition(ids[:cut], ids[cut:])
    elif roll < 0.45:
        c.heal()
    elif roll < 0.65 and len(crashed) < (len(c.ids) - 1) // 2:
        victim = c.leader() if rng.random() < 0.5 and c.leader() else rng.choice([i for i in c.ids if c.is_up(i)])
        c.crash(victim)
    elif roll < 0.85 and crashed:
        c.restart(rng.choice(crashed))


def log_of(c: Cluster, node_id: str) -> list[tuple[int, int]]:
    store = c.handles[node_id].store
    return [(i, store.get_log(i).term) for i in range(store.first_index(), store.last_index() + 1)]


@pytest.mark.parametrize("seed", range(SEEDS))
def test_random_faults_keep_raft_safe(seed: int) -> None:
    """Under 10% loss, random partitions and crashes, no safety property breaks and a leader returns."""
    replay = f"python -m pytest 'tests/test_safety_randomized.py::test_random_faults_keep_raft_safe[{seed}]'"
    rng = random.Random(seed)
    nodes = rng.choice([3, 5])
    c = Cluster(nodes, seed, config=inmem_config(""), faults=LinkFaults(delay=0.002, jitter=0.0015, loss=0.1,
                                                                          duplicate=0.01, reorder=0.02))
    monitor = SafetyMonitor()
    c.events.subscribe(monitor)
    clients = c.loop.create_task(client(c, random.Random(f"{seed}:client")))
    try:
        for _ in range(12):
            c.run_for(rng.uniform(1, 6) * HT)
            random_fault(c, rng)
            assert not monitor.violations, f"{monitor.violations[0]}\nreplay: {replay}"
        # Liveness: once every node is up and the network heals, a leader is elected.
        c.heal()
        for node_id in c.ids:
            if not c.is_up(node_id):
                c.restart(node_id)
        c.run_until(lambda c: c.leader() is not None, timeout=100 * HT, what=f"a leader ({replay})")
        clients.cancel()
        c.set_faults(loss=0.0, duplicate=0.0, reorder=0.0)
        for _attempt in range(20):  # retry like a client: a new election may depose the leader
            c.run_until(lambda c: c.leader() is not None, timeout=100 * HT, what=f"a leader ({replay})")
            try:
                c.apply(b"final")
                break
            except (ErrLeadershipLost, ErrNotLeader):
                continue
        else:
            pytest.fail(f"no command could be committed after healing\nreplay: {replay}")
        # Log Matching: once the final entry is everywhere, all logs are identical.
        final = c.node(c.leader()).last_index()
        c.run_until(lambda c: all(c.node(i).applied_index() >= final for i in c.ids), timeout=100 * HT,
                    what=f"all nodes apply index {final} ({replay})")
        logs = {i: log_of(c, i) for i in c.ids}
        first = logs[c.ids[0]]
        for node_id, log in logs.items():
            assert log == first, f"Log Matching: {node_id} differs from {c.ids[0]}\nreplay: {replay}"
        assert not monitor.violations, f"{monitor.violations[0]}\nreplay: {replay}"
        assert monitor.applied, "the run must have applied entries to be meaningful"
    finally:
        clients.cancel()
        c.close()
        c.loop.close()
