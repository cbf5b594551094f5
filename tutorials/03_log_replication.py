"""Tutorial 3: log replication and the consistency check.

The leader keeps, for each follower, the index of the next entry to send it
(nextIndex). Every AppendEntries names the entry just before the new ones
(prevLogIndex and prevLogTerm); a follower whose log does not hold that
entry refuses, and the leader steps back and tries again. We watch a follower
catch up after a partition, and a deposed leader's log being repaired.

Run it with ``python tutorials/03_log_replication.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import print_logs, show, step

from raft.sim import Cluster

# --8<-- [end:imports]


# --8<-- [start:progress]
def progress(cluster: Cluster) -> None:
    """Print the leader's nextIndex and matchIndex for each follower (Figure 2, leader state)."""
    leader_id = cluster.leader()
    assert leader_id is not None
    leader = cluster.node(leader_id)
    match = leader.leader_state.commitment.match_indexes if leader.leader_state.commitment else {}
    for peer, replication in leader.leader_state.repl_state.items():
        print(f"  leader {leader_id} -> {peer}: nextIndex {replication.next_index}, matchIndex {match.get(peer)}")
# --8<-- [end:progress]


step("lagging", "A follower falls behind")
# --8<-- [start:lagging]
cluster = Cluster(nodes=3, seed=3)
leader = cluster.wait_leader()  # run until exactly one leader has settled
behind = cluster.followers()[0]
cluster.disconnect(behind)  # cut it off from everyone, both ways
for i in range(5):
    cluster.apply(f"command {i}".encode())
print(f"{leader} leads; {behind} is cut off")
print_logs(cluster)
progress(cluster)
# --8<-- [end:lagging]

step("catch_up", "It catches up when the network heals")
# --8<-- [start:catch_up]
healed_at = cluster.now
cluster.heal()
cluster.run_until(lambda c: c.node(behind).commit_index() == c.node(leader).commit_index())
cluster.run_for(0.1)  # let the follower's answer reach the leader
show(cluster.events.since(healed_at), "replication_rejected", "append", "commit", nodes=[leader, behind])
print_logs(cluster)
progress(cluster)
# --8<-- [end:catch_up]

step("diverge", "A deposed leader with entries nobody else has")
# --8<-- [start:diverge]
old = leader
cluster.partition([old])  # the leader alone on one side, the two others on the other
# The old leader appends these, but it can never commit them.
lost = [cluster.submit(f"lost {i}".encode(), old) for i in range(3)]
cluster.run_until(lambda c: c.leader() not in (None, old))
new = cluster.leader()
assert new is not None
for i in range(4):
    cluster.apply(f"kept {i}".encode())
# Hand leadership on, so that the leader that meets the old one again was
# elected with a longer log than the old one's (see the next step for why).
cluster.wait(cluster.node(new).leadership_transfer())
cluster.run_until(lambda c: c.leader() not in (None, old, new))
new = cluster.leader()
assert new is not None
cluster.run_for(0.5)
print(f"{new} now leads term {cluster.node(new).current_term()}; {old} is a {cluster.node(old).state().name.lower()}")
print_logs(cluster)
progress(cluster)
# --8<-- [end:diverge]

step("repair", "The consistency check finds where the logs agree")
# --8<-- [start:repair]
healed_at = cluster.now
cluster.heal()
cluster.run_until(lambda c: c.node(old).commit_index() == c.node(new).commit_index())
show(cluster.events.since(healed_at), "replication_rejected", "truncate", "append", nodes=[old, new])
cluster.run_for(0.1)
print_logs(cluster)
print(f"{old} applied {[command.decode() for command in cluster.fsm(old).logs]}")
print("the clients of the lost commands were told:", [type(cluster.wait(future)).__name__ for future in lost])
cluster.dispose()
# --8<-- [end:repair]
