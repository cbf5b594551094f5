"""Tutorial 1: your first cluster.

Build five Raft servers in one process, watch them elect a leader, replicate
a command, survive the leader's crash, and replay the very same run again.

Run it with ``python tutorials/01_first_cluster.py``. Everything happens in
virtual time, so the output is the same on every machine, every time.
"""

# --8<-- [start:imports]
from tutorial_helpers import print_logs, show, step

from raft.sim import Cluster

# --8<-- [end:imports]

step("build", "Build a cluster")
# --8<-- [start:build]
cluster = Cluster(nodes=5, seed=42)  # five servers, n1..n5, one shared virtual clock
print(f"time {cluster.now:.3f}s, nodes {cluster.ids}")
print("roles:", {node_id: cluster.node(node_id).state().name for node_id in cluster.ids})
print("leader:", cluster.leader())
# --8<-- [end:build]

step("elect", "Run until a leader is elected")
# --8<-- [start:elect]
cluster.run_until(lambda c: c.leader() is not None)
leader = cluster.leader()
assert leader is not None
print(f"time {cluster.now:.3f}s: {leader} leads term {cluster.node(leader).current_term()}")
show(cluster.events, "state", "election", "vote")
# --8<-- [end:elect]

step("apply", "Replicate a command")
# --8<-- [start:apply]
result = cluster.apply(b"set x 1")  # runs until the leader has applied it
print(f"applied at index {result.index}; the state machine answered {result.response}")
cluster.wait_for_replication(1)  # run until every node's state machine has it
for node_id in cluster.ids:
    print(f"  {node_id} applied {cluster.fsm(node_id).logs}")
print_logs(cluster)
# --8<-- [end:apply]

step("crash", "Crash the leader")
# --8<-- [start:crash]
old, crashed_at = leader, cluster.now
cluster.crash(old)  # its tasks stop and its memory is gone; its disk (the stores) stays
cluster.run_until(lambda c: c.leader() not in (None, old))
new = cluster.leader()
assert new is not None
print(f"{cluster.now - crashed_at:.3f}s after the crash, {new} leads term {cluster.node(new).current_term()}")
show(cluster.events.since(crashed_at), "crash", "state")
refusals = [e for e in cluster.events.since(crashed_at) if e.kind == "vote" and not e["granted"]]
print(f"{len(refusals)} votes refused on the way, for example:")
for event in refusals[:3]:
    print(f"  {event}")
# --8<-- [end:crash]

step("restart", "Bring the old leader back")
# --8<-- [start:restart]
cluster.restart(old)  # rebuilt from its stores: term, vote and log survive
cluster.apply(b"set y 2")
cluster.wait_for_replication(2)
print(f"{old} is a {cluster.node(old).state().name.lower()} in term {cluster.node(old).current_term()}")
print(f"{old} applied {cluster.fsm(old).logs}")
print_logs(cluster)
# --8<-- [end:restart]

step("replay", "Same seed, same run")
# --8<-- [start:replay]
trace = cluster.trace()  # every event so far, as JSON Lines
cluster.dispose()


def same_story() -> str:
    with Cluster(nodes=5, seed=42) as again:  # leaving the block shuts the nodes down (dispose)
        again.run_until(lambda c: c.leader() is not None)
        again.apply(b"set x 1")
        again.wait_for_replication(1)
        again.crash(old)
        again.run_until(lambda c: c.leader() not in (None, old))
        again.restart(old)
        again.apply(b"set y 2")
        again.wait_for_replication(2)
        return again.trace()


print(f"{len(trace.splitlines())} events; identical on a second run: {same_story() == trace}")
# --8<-- [end:replay]
