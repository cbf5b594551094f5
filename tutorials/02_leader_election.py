"""Tutorial 2: leader election and split votes.

Followers wait a random time before they stand for election. Usually one
wins at once; sometimes two stand together, split the votes, and try again.
We watch both, find how the network's speed changes the odds, measure
how long a cluster goes without a leader after its leader crashes, and see
why every election starts with a pre-vote (Thesis §9.6): a server cut off
from the others would otherwise come back with a high term and depose a
healthy leader.

Run it with ``python tutorials/02_leader_election.py``.
"""

# --8<-- [start:imports]
import statistics

from tutorial_helpers import show, step

from raft.config import Config
from raft.sim import Cluster
from raft.sim.network import LinkFaults

# --8<-- [end:imports]

step("timers", "Random timers decide who stands first")
# --8<-- [start:timers]
# A follower's heartbeat timer fires after a random time between one and two
# heartbeat timeouts (1 s by default). The first follower to notice the
# silence stands for election. Change the seed and you change the timers.
for seed in range(1, 6):
    cluster = Cluster(nodes=5, seed=seed)
    cluster.run_until(lambda c: c.leader() is not None)
    first = cluster.events.of_kind("election")[0]
    winner = cluster.events.of_kind("state")[-1]
    print(f"seed {seed}: {first.node} stood first at {first.t:.3f}s; "
          f"{winner.node} won term {winner['term']} at {winner.t:.3f}s")
    cluster.dispose()
# --8<-- [end:timers]

step("split", "A split vote on a slow network")
# --8<-- [start:split]
# The visualizer slows messages to 100 ms so that you can watch them fly.
# With the same seed and network, this run has a split vote.
slow = LinkFaults(delay=0.100, jitter=0.020)
cluster = Cluster(nodes=5, seed=69, faults=slow)
cluster.run_until(lambda c: c.leader() is not None)
for event in cluster.events:
    real_vote = event.kind == "vote" and event["phase"] == "vote"  # leave out the pre-votes
    if event.kind in ("state", "election", "election_timeout") or real_vote:
        print(f"  {event}")
leader = cluster.leader()
assert leader is not None
print(f"{leader} leads term {cluster.node(leader).current_term()} at {cluster.now:.3f}s")
cluster.dispose()
# --8<-- [end:split]

step("odds", "How often do votes split?")
# --8<-- [start:odds]
def first_election(seed: int, delay: float) -> tuple[float, bool]:
    """(time of the first leader, whether some candidate's election timed out first)."""
    cluster = Cluster(nodes=5, seed=seed, faults=LinkFaults(delay=delay, jitter=delay / 5))
    cluster.run_until(lambda c: c.leader() is not None)
    result = cluster.now, bool(cluster.events.of_kind("election_timeout"))
    cluster.dispose()
    return result


for delay in (0.002, 0.100, 0.200):
    runs = [first_election(seed, delay) for seed in range(100)]
    splits = [seed for seed, (_, split) in enumerate(runs) if split]
    median = statistics.median(t for t, _ in runs)
    print(f"delay {delay * 1000:3.0f} ms: {len(splits):2d} split votes in 100 seeds {splits}; "
          f"median first leader at {median:.3f}s")
# --8<-- [end:odds]

step("failover", "How long is a cluster without a leader?")
# --8<-- [start:failover]
def failover(seed: int) -> tuple[float, int]:
    """Crash the leader of a settled cluster: (seconds until a new leader, how many nodes stood)."""
    cluster = Cluster(nodes=5, seed=seed)
    cluster.run_until(lambda c: c.leader() is not None)
    cluster.run_for(1)
    old, crashed_at = cluster.leader(), cluster.now
    cluster.crash(old)
    cluster.run_until(lambda c: c.leader() not in (None, old))
    stood = {e.node for e in cluster.events.since(crashed_at) if e.kind == "state" and e["state"] == "candidate"}
    elapsed = cluster.now - crashed_at
    cluster.dispose()
    return elapsed, len(stood)


results = [failover(seed) for seed in range(40)]
times = sorted(t for t, _ in results)
print(f"40 seeds: min {times[0]:.3f}s  median {statistics.median(times):.3f}s  max {times[-1]:.3f}s")
for low in (1.0, 1.5, 2.0, 2.5, 3.0):
    count = sum(1 for t in times if low <= t < low + 0.5)
    print(f"  {low:.1f}-{low + 0.5:.1f}s {'#' * count} {count}")
print("nodes that stood before a leader won:", sorted({n for _, n in results}))
# --8<-- [end:failover]


# --8<-- [start:isolate]
def isolate_a_follower(pre_vote: bool) -> None:
    """Cut a follower off for 10 seconds, then let it back in, and see what it did to the terms."""
    cluster = Cluster(nodes=5, seed=7, config=Config(pre_vote_disabled=not pre_vote))
    leader = cluster.wait_leader()
    loner = cluster.followers()[0]
    term = cluster.node(leader).current_term()
    cluster.partition([loner])
    cluster.run_for(10)
    print(f"after 10 s alone, {loner} is in term {cluster.node(loner).current_term()} (the cluster: {term})")
    healed_at = cluster.now
    cluster.heal()
    cluster.run_for(5)
    final = cluster.leader()
    assert final is not None
    print(f"after healing, {final} leads term {cluster.node(final).current_term()}")
    show(cluster.events.since(healed_at), "state")
    cluster.dispose()
# --8<-- [end:isolate]


step("without", "Without pre-vote: the disruptive server")
# --8<-- [start:without]
isolate_a_follower(pre_vote=False)
# --8<-- [end:without]

step("with", "With pre-vote (the default): nothing happens")
# --8<-- [start:with]
isolate_a_follower(pre_vote=True)
# --8<-- [end:with]
