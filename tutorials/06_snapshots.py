"""Tutorial 6: snapshots and InstallSnapshot.

A log cannot grow forever. Every server now and then writes a snapshot of
its state machine and deletes the log entries the snapshot covers, keeping a
few recent ones (trailing logs) for followers that are only a little behind.
A follower that is further behind than that gets the snapshot itself, through
the InstallSnapshot RPC (§7, Figures 12 and 13), and then keeps the part of
its own log that follows the snapshot (Figure 13, rule 6) or discards the
whole log (rule 7).

Run it with ``python tutorials/06_snapshots.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import print_logs, show, step

from raft.config import Config
from raft.sim import Cluster

# --8<-- [end:imports]

step("threshold", "Snapshots are taken on their own")
# --8<-- [start:threshold]
config = Config(
    snapshot_threshold=20,  # snapshot once 20 entries have been applied since the last snapshot
    trailing_logs=5,  # then keep the last 5 entries, delete the rest
    snapshot_interval=0.5,  # how often to check (hashicorp's default is 120 s)
)
cluster = Cluster(nodes=3, seed=6, config=config)
leader = cluster.wait_leader()
for i in range(30):
    cluster.apply(f"command {i}".encode())
cluster.run_for(2)
show(cluster.events, "snapshot_taken", "compact")
print_logs(cluster)
# --8<-- [end:threshold]

step("install", "A follower down for long catches up through InstallSnapshot")
# --8<-- [start:install]
down = cluster.followers()[0]
cluster.crash(down)
for i in range(30, 80):
    cluster.apply(f"command {i}".encode())
cluster.run_for(2)  # more snapshots: the entries the crashed follower lacks are deleted
print(f"{down} is down; the others:")
print_logs(cluster)
restarted_at = cluster.now
cluster.restart(down)
cluster.wait_for_replication(80)
cluster.run_for(0.1)
show(cluster.events.since(restarted_at), "snapshot_send", "snapshot_installed", "truncate", "append")
print_logs(cluster)
print(f"{down} has applied {len(cluster.fsm(down).logs)} commands, the last {cluster.fsm(down).logs[-1]}")
# --8<-- [end:install]

step("rule6", "Figure 13, rule 6: a follower that holds the snapshot's last entry keeps what follows")
# --8<-- [start:rule6]
leader = cluster.leader()
assert leader is not None
behind = next(f for f in cluster.followers() if f != down)  # the follower that never went down
# One way only: `behind` still hears the leader and stores what it sends,
# but its answers are lost, so the leader never learns how far it got.
cluster.cut(behind, leader)
for i in range(80, 90):
    cluster.apply(f"command {i}".encode())
assert cluster.wait(cluster.node(leader).snapshot()) is None  # a snapshot now, at the last applied entry
for i in range(90, 98):
    cluster.apply(f"command {i}".encode())
cluster.run_until(lambda c: c.node(behind).last_index() == c.node(leader).last_index())
print_logs(cluster)
next_index, match_index = cluster.replication_state()[behind]
print(f"the leader's nextIndex for {behind}: {next_index} (matchIndex {match_index})")
cluster.crash(behind)
cluster.run_for(1)  # down long enough for the leader to stop streaming entries to it
cluster.restart(behind)  # the commit index is volatile: it restarts from its own snapshot's index
print(f"{behind} restarted:")
print_logs(cluster, [behind])
cluster.restore_link(behind, leader)  # from now on the leader hears its answers again
restarted_at = cluster.now
cluster.run_for(1)
show(cluster.events.since(restarted_at), "snapshot_send", "snapshot_installed", "snapshot_ignored", "compact",
     "truncate", nodes=[leader, behind])
print_logs(cluster, [behind])
store = cluster.handles[behind].store
print(f"{behind}'s snapshot ends at {cluster.node(behind).get_last_snapshot()[0]}; "
      f"its log holds entries {store.first_index()} to {store.last_index()}")
cluster.wait_for_replication(98)
print(f"{behind} has applied {len(cluster.fsm(behind).logs)} commands, the last {cluster.fsm(behind).logs[-1]}")
# --8<-- [end:rule6]

step("rule7", "Figure 13, rule 7: a log that disagrees with the snapshot is discarded")
# --8<-- [start:rule7]
old = cluster.leader()
assert old is not None
cluster.partition([old])
# The old leader appends 60 entries it can never commit: its log now runs
# past the index of the snapshot the others are about to take.
lost = [cluster.submit(f"lost {i}".encode(), old) for i in range(60)]
cluster.run_until(lambda c: c.leader() not in (None, old))
for i in range(80, 130):
    cluster.apply(f"command {i}".encode())
cluster.run_for(2)
print_logs(cluster)
healed_at = cluster.now
cluster.heal()
cluster.wait_for_replication(130)
cluster.run_for(0.1)
show(cluster.events.since(healed_at), "snapshot_send", "snapshot_installed", "truncate")
print_logs(cluster)
print("the clients of the lost commands were told:", {type(cluster.wait(f)).__name__ for f in lost})
cluster.dispose()
# --8<-- [end:rule7]
