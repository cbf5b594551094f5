"""Progress on a hostile network: how long after the network heals does a new entry reach every server?

    python -m bench.progress [--seeds 1000] [--start 0] [--scenario NAME|all] [--json FILE]

Safety is checked elsewhere; this benchmark measures *progress*, the way the
standard teaching test suite for Raft judges it: faults for a while, then the
network heals, and a new entry must be committed on every live server within
10 seconds. Every run uses hashicorp's default timings (``Config()``:
heartbeat and election timeouts 1 s, leader lease 0.5 s) and the in-memory
transport's 0.5 s timeout, in virtual time, with the invariant checker on.

Scenarios (``--scenario``):

``figure8``
    Five servers; 10% of messages lost each way, 10% held back 0.5 s more
    (long reordering). For 30 virtual seconds, in rounds: each live server that believes it leads
    gets a command; then a pause (usually a few milliseconds, one time in ten
    up to half a second); the leader crashes with probability 1/2; when fewer
    than three servers are up, a crashed one restarts. Then every server
    restarts, the network becomes reliable, and the clock starts.
``snapshot`` and ``snapshot-crash``
    Three servers, 10% loss each way, throughout (the loss never heals). Five
    rounds: a follower is cut off (``snapshot``) or crashed
    (``snapshot-crash``), the others commit 30 commands and the leader
    snapshots and compacts its log, then the follower comes back and the clock
    starts: it can only catch up by InstallSnapshot. Each round is one
    measurement.
``churn``
    Five servers, 10% loss, three clients writing through the leader. For 10
    seconds, every 0.2-1 s one fault: crash a server (while more than three
    are up), restart one, cut one off, or reconnect one. Then everything
    restarts and reconnects on a reliable network, and the clock starts.

For each measurement: the virtual seconds from the heal to the moment a new
command, retried with whichever server leads, is applied on every server.
Reported over all seeds: p50, p99 and max, how many exceed 10 s, and the
leader step-downs (``lease_lost``) in two columns. *Unexplained*: every
server had been up and connected, with no crash, restart, cut or reconnection,
for the whole lease and heartbeat timeout before it; only message loss is to
blame. *Bare majority*: a fault had left the leader exactly a majority (one
follower of two, two of four), and loss did the rest.

``steady``
    Three servers, 10% loss each way, three clients writing, no other fault,
    for 60 virtual seconds: every step-down here is unexplained.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raft.config import Config
from raft.events import Event
from raft.sim import Cluster
from raft.sim.network import LinkFaults

AGREEMENT_LIMIT = 60.0  # give up waiting after this many virtual seconds (reported as a failure)
GOAL_MAX = 10.0  # the course's bound for a new entry to reach every server
LOSSY = LinkFaults(delay=0.0135, jitter=0.0135, loss=0.10)
LOSSY_REORDERING = LinkFaults(delay=0.0135, jitter=0.0135, loss=0.10, reorder=0.10, reorder_delay=0.5)
RELIABLE = LinkFaults(delay=0.0135, jitter=0.0135)


@dataclass
class Outcome:
    """What one seed of one scenario measured."""

    agreement: list[float] = field(default_factory=list)  # seconds from heal to agreement, per heal
    unexplained: int = 0  # lease losses while every server was up and connected (only loss to blame)
    bare_majority: int = 0  # lease losses of a leader left with a bare majority by a fault, loss doing the rest
    leader_changes: int = 0  # times a new leader was elected
    failed: str = ""  # why a heal never reached agreement within AGREEMENT_LIMIT


class Run:
    """One seeded cluster, its faults, and the bookkeeping that explains step-downs."""

    def __init__(self, nodes: int, seed: int, faults: LinkFaults, config: Config | None = None) -> None:
        self.rng = random.Random(f"progress:{seed}")
        self.cluster = Cluster(nodes, seed=seed, faults=faults, config=config or Config())
        self.outcome = Outcome()
        self.disturbed: dict[str, float] = {}  # node -> last time it crashed, restarted or was cut or rejoined
        self.any_crash = -1e9  # last crash or restart anywhere
        self.cut: set[str] = set()
        self.sequence = 0
        self.cluster.events.subscribe(self._watch)

    # -- faults, with the times that explain a step-down ----------------------------------------

    def crash(self, node: str) -> None:
        self.cluster.crash(node)
        self.disturbed[node] = self.any_crash = self.cluster.now

    def restart(self, node: str) -> None:
        self.cluster.restart(node)
        self.disturbed[node] = self.any_crash = self.cluster.now

    def disconnect(self, node: str) -> None:
        self.cluster.disconnect(node)
        self.cut.add(node)
        self.disturbed[node] = self.cluster.now

    def connect(self, node: str) -> None:
        self.cluster.connect(node)
        self.cut.discard(node)
        self.disturbed[node] = self.cluster.now

    def _watch(self, event: Event) -> None:
        if event.kind == "state" and event["state"] == "leader":
            self.outcome.leader_changes += 1
        elif event.kind == "lease_lost":
            steady = self._steady()
            if len(steady) == len(self.cluster.ids):
                self.outcome.unexplained += 1
            elif event.node in steady and len(steady) > len(self.cluster.ids) // 2:
                self.outcome.bare_majority += 1

    def _steady(self) -> list[str]:
        """The servers up, connected and left alone for a whole lease and heartbeat timeout."""
        conf = self.cluster.config_template
        since = self.cluster.now - (conf.leader_lease_timeout + conf.heartbeat_timeout)
        return [n for n in self.cluster.ids
                if self.cluster.is_up(n) and n not in self.cut and self.disturbed.get(n, -1e9) < since]

    # -- clients --------------------------------------------------------------------------------

    def command(self) -> bytes:
        self.sequence += 1
        return b"cmd-%d" % self.sequence

    def submit_to_leaders(self) -> None:
        """Give a command to every live server that believes it leads (stale leaders included)."""
        for raft in self.cluster.rafts():
            if raft.state().name == "Leader":
                raft.apply(self.command())

    def keep_writing(self, clients: list[Any]) -> None:
        """Each client whose last command is answered (or that has none) sends the next one to the leader."""
        for k, future in enumerate(clients):
            if future is None or future.done:
                leader = self.cluster.leader()
                clients[k] = self.cluster.node(leader).apply(self.command()) if leader is not None else None

    def pause(self, seconds: float) -> None:
        self.cluster.run_for(seconds)

    def commit_some(self, count: int) -> None:
        """Commit ``count`` commands through whichever server leads, retrying on failure."""
        done = 0
        deadline = self.cluster.now + AGREEMENT_LIMIT
        while done < count and self.cluster.now < deadline:
            leader = self.cluster.leader()
            if leader is None:
                self.pause(0.05)
                continue
            future = self.cluster.node(leader).apply(self.command())
            self.cluster.run_until(lambda c, f=future: f.done, timeout=AGREEMENT_LIMIT)
            if future.error_now() is None:
                done += 1

    def time_to_agreement(self) -> None:
        """From now (the heal): submit a command until one is applied on every live server; record how long."""
        c = self.cluster
        healed = c.now
        deadline = healed + AGREEMENT_LIMIT
        while c.now < deadline:
            leader = c.leader()
            if leader is None:
                self.pause(0.05)
                continue
            future = c.node(leader).apply(self.command())
            c.run_until(lambda c, f=future: f.done or c.now >= deadline, timeout=AGREEMENT_LIMIT + 1)
            if not future.done or future.error_now() is not None:
                continue
            index = future.index()

            def everywhere(c: Cluster, index: int = index) -> bool:
                return all(r.applied_index() >= index for r in c.rafts()) or c.now >= deadline

            c.run_until(everywhere, timeout=AGREEMENT_LIMIT + 1)
            if all(r.applied_index() >= index for r in c.rafts()):
                self.outcome.agreement.append(c.now - healed)
                return
        self.outcome.failed = f"no agreement within {AGREEMENT_LIMIT:g} s of the heal at t={healed:.2f}"
        self.outcome.agreement.append(float("inf"))

    def heal_everything(self) -> None:
        c = self.cluster
        for node in c.ids:
            if not c.is_up(node):
                self.restart(node)
        for node in sorted(self.cut):
            self.connect(node)
        c.network.set_faults(RELIABLE)

    def up(self) -> list[str]:
        return [n for n in self.cluster.ids if self.cluster.is_up(n)]


# -- the scenarios --------------------------------------------------------------------------------


def figure8(seed: int) -> Outcome:
    run = Run(5, seed, LOSSY_REORDERING)
    c, rng = run.cluster, run.rng
    c.run_until(lambda c: c.leader() is not None)
    end = c.now + 30.0
    while c.now < end:
        run.submit_to_leaders()
        run.pause(rng.uniform(0, 0.5) if rng.random() < 0.1 else rng.uniform(0, 0.013))
        leader = c.leader()
        if leader is not None and rng.random() < 0.5:
            run.crash(leader)
        down = [n for n in c.ids if not c.is_up(n)]
        if len(c.ids) - len(down) < 3:
            run.restart(rng.choice(down))
    run.heal_everything()
    run.time_to_agreement()
    c.dispose()
    return run.outcome


def snapshot(seed: int, crash: bool) -> Outcome:
    config = Config(snapshot_threshold=10**9, trailing_logs=5)
    run = Run(3, seed, LOSSY, config)
    c, rng = run.cluster, run.rng
    c.run_until(lambda c: c.leader() is not None)
    for _ in range(5):
        leader = c.leader()
        while leader is None:
            run.pause(0.05)
            leader = c.leader()
        victim = rng.choice([n for n in c.ids if n != leader])
        if crash:
            run.crash(victim)
        else:
            run.disconnect(victim)
        run.commit_some(30)
        leader = c.leader()
        if leader is not None:
            c.wait(c.node(leader).snapshot(), timeout=AGREEMENT_LIMIT)
        if crash:
            run.restart(victim)
        else:
            run.connect(victim)
        run.time_to_agreement()
        if run.outcome.failed:
            break
    c.dispose()
    return run.outcome


def churn(seed: int) -> Outcome:
    run = Run(5, seed, LOSSY)
    c, rng = run.cluster, run.rng
    c.run_until(lambda c: c.leader() is not None)
    end = c.now + 10.0
    clients: list[Any] = [None, None, None]
    while c.now < end:
        run.keep_writing(clients)
        run.pause(rng.uniform(0.2, 1.0))
        up, down = run.up(), [n for n in c.ids if not c.is_up(n)]
        roll = rng.random()
        if roll < 0.25 and len(up) > 3:
            run.crash(rng.choice(up))
        elif roll < 0.5 and down:
            run.restart(rng.choice(down))
        elif roll < 0.75 and len(run.cut) < 2:
            run.disconnect(rng.choice([n for n in c.ids if n not in run.cut]))
        elif run.cut:
            run.connect(rng.choice(sorted(run.cut)))
    run.heal_everything()
    run.time_to_agreement()
    c.dispose()
    return run.outcome


def steady(seed: int) -> Outcome:
    """Three servers, 10% loss each way and nothing else for 60 s, three clients writing."""
    run = Run(3, seed, LOSSY)
    c = run.cluster
    c.run_until(lambda c: c.leader() is not None)
    end = c.now + 60.0
    clients: list[Any] = [None, None, None]
    while c.now < end:
        run.keep_writing(clients)
        run.pause(0.05)
    run.time_to_agreement()
    c.dispose()
    return run.outcome


SCENARIOS: dict[str, Callable[[int], Outcome]] = {
    "steady": steady,
    "figure8": figure8,
    "snapshot": lambda seed: snapshot(seed, crash=False),
    "snapshot-crash": lambda seed: snapshot(seed, crash=True),
    "churn": churn,
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def summarize(name: str, outcomes: list[tuple[int, Outcome]], wall: float) -> dict[str, Any]:
    times = [t for _, o in outcomes for t in o.agreement]
    worst_seed = max(outcomes, key=lambda so: max(so[1].agreement, default=0.0))[0] if outcomes else -1
    return {
        "scenario": name, "seeds": len(outcomes), "measurements": len(times),
        "p50": percentile(times, 50), "p99": percentile(times, 99), "max": max(times),
        "over_10s": sum(1 for t in times if t > GOAL_MAX), "worst_seed": worst_seed,
        "unexplained_step_downs": sum(o.unexplained for _, o in outcomes),
        "bare_majority_step_downs": sum(o.bare_majority for _, o in outcomes),
        "leader_changes": sum(o.leader_changes for _, o in outcomes),
        "failed": [(seed, o.failed) for seed, o in outcomes if o.failed][:5],
        "wall_seconds": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=1000, help="seeds per scenario (default 1000)")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--scenario", default="all", choices=[*SCENARIOS, "all"])
    parser.add_argument("--json", metavar="FILE", help="also write the summary to FILE")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.start < 0:
        parser.error("--seeds must be at least 1 and --start at least 0")
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    rows = []
    print(f"{'scenario':15s} {'seeds':>6s} {'p50 s':>7s} {'p99 s':>7s} {'max s':>7s} {'>10 s':>6s} "
          f"{'unexplained':>12s} {'bare majority':>14s} {'leader changes':>15s} {'worst seed':>11s}")
    for name in names:
        start = time.perf_counter()
        outcomes = []
        for seed in range(args.start, args.start + args.seeds):
            outcomes.append((seed, SCENARIOS[name](seed)))
        row = summarize(name, outcomes, time.perf_counter() - start)
        rows.append(row)
        print(f"{name:15s} {row['seeds']:6d} {row['p50']:7.2f} {row['p99']:7.2f} {row['max']:7.2f} "
              f"{row['over_10s']:6d} {row['unexplained_step_downs']:12d} {row['bare_majority_step_downs']:14d} "
              f"{row['leader_changes']:15d} "
              f"{row['worst_seed']:11d}", flush=True)
        for seed, why in row["failed"]:
            print(f"  seed {seed}: {why}  (replay: python -m bench.progress --scenario {name} "
                  f"--start {seed} --seeds 1)")
    print("(virtual seconds from the heal until a new command is applied on every server; "
          "hashicorp's default timings)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)
    return 0 if all(not r["failed"] and r["max"] <= GOAL_MAX for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
