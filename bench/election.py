"""Election benchmarks in virtual time.

(a) How many simulated seconds an idle five-node cluster runs per wall-clock
    second, with hashicorp's default timeouts.
(b) Over many seeds: crash the leader of a settled five-node cluster and
    measure the virtual time until a new leader is elected, and how often the
    first node to stand as candidate is the one that wins.

    python -m bench.election [--seeds 200] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from raft.events import Event
from raft.sim import Cluster


def idle_speed(virtual_seconds: float = 60.0) -> float:
    """Simulated seconds per wall second for an idle, settled 5-node cluster."""
    cluster = Cluster(5, seed=1)
    cluster.run_until(lambda c: c.leader() is not None)
    cluster.run_for(5)
    start = time.perf_counter()
    cluster.run_for(virtual_seconds)
    elapsed = time.perf_counter() - start
    cluster.close()
    return virtual_seconds / elapsed


def failover(seed: int) -> tuple[float, int]:
    """(seconds to a new leader after crashing the old one, the winner's rank among candidates: 1 = first)."""
    cluster = Cluster(5, seed=seed)
    cluster.run_until(lambda c: c.leader() is not None)
    cluster.run_for(3)
    old = cluster.leader()
    assert old is not None
    candidates: list[str] = []

    def watch(event: Event) -> None:
        if event.kind == "state" and event["state"] == "candidate":
            candidates.append(event.node)

    cluster.events.subscribe(watch)
    crashed_at = cluster.now
    cluster.crash(old)
    cluster.run_until(lambda c: c.leader() not in (None, old))
    new = cluster.leader()
    elapsed = cluster.now - crashed_at
    cluster.close()
    order = list(dict.fromkeys(candidates))  # distinct candidates in the order they stood
    return elapsed, order.index(new) + 1 if new in order else 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    speed = idle_speed()
    print(f"idle 5-node cluster, default timeouts: {speed:.1f} simulated seconds per wall second")

    started = time.perf_counter()
    results = [failover(seed) for seed in range(args.seeds)]
    times = [t for t, _ in results]
    ranks = [rank for _, rank in results]
    first_wins = ranks.count(1) / len(ranks)
    print(f"leader crash -> new leader, {args.seeds} seeds (5 nodes, HeartbeatTimeout 1s, pre-vote on):")
    print(f"  p50 {percentile(times, 50):.3f} s   p99 {percentile(times, 99):.3f} s   "
          f"min {min(times):.3f} s   max {max(times):.3f} s   mean {statistics.mean(times):.3f} s")
    print(f"  elections won by the first candidate: {first_wins:.1%}")
    shares = ", ".join(f"#{rank}: {ranks.count(rank) / len(ranks):.1%}" for rank in sorted(set(ranks)))
    print(f"  winner's rank among the nodes that stood, in order of standing: {shares}")
    print(f"  (wall time for the {args.seeds} runs: {time.perf_counter() - started:.1f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"idle_speed": speed, "failover_seconds": times, "first_candidate_wins": first_wins,
                       "winner_rank": ranks}, out)


if __name__ == "__main__":
    main()
