"""Tutorial 11: clients and reads, linearizable reads and exactly-once writes.

A leader that has been deposed may not know it yet, and if it answers a read
from its own state machine it can return a value that was overwritten long
ago. We build that stale read, then the two ways ``raft.kv`` reads safely
(through the log, and with a read index), the leader lease that makes a cut-off
leader step down, and the client sessions that let a client retry a write
whose outcome it never learned without applying it twice.

Run it with ``python tutorials/11_clients_and_reads.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import print_logs, show, step

from raft.config import Config
from raft.errors import RaftError
from raft.kv import Command, KVStore, read
from raft.sim import Cluster
from raft.state import RaftState

# --8<-- [end:imports]

step("setup", "A key-value cluster")
# --8<-- [start:setup]
def leader_among(cluster: Cluster, node_ids: list[str]) -> str | None:
    """The node of ``node_ids`` that is leader right now, if any (others elsewhere may think they lead too)."""
    leaders = [i for i in node_ids if cluster.is_up(i) and cluster.node(i).state() == RaftState.Leader]
    return leaders[0] if leaders else None


# n1's clock runs slow: it counts 5 seconds where the others count 1. Its
# heartbeat timeout and its lease last five times as long as theirs.
slow_clock = Config(heartbeat_timeout=5.0, election_timeout=5.0, leader_lease_timeout=5.0)
cluster = Cluster(nodes=5, seed=11, fsm_factory=KVStore, configs={"n1": slow_clock})
cluster.force_timeout("n1")  # n1 stands first
cluster.run_until(lambda c: c.leader() == "n1")
result = cluster.apply(Command("put", "x", "1").encode())
print(f"n1 leads term {cluster.node('n1').current_term()}; put x=1 committed at index {result.index}")
cluster.run_until(lambda c: all(c.fsm(i).get("x") == "1" for i in c.ids))
# --8<-- [end:setup]

step("stale", "A deposed leader that still believes it leads")
# --8<-- [start:stale]
cut_at = cluster.now
cluster.partition(["n1", "n2"])  # n1 and n2 on one side, n3, n4 and n5 on the other
majority = ["n3", "n4", "n5"]
cluster.run_until(lambda c: leader_among(c, majority) is not None)
new_leader = leader_among(cluster, majority)
assert new_leader is not None
cluster.wait(cluster.submit(Command("put", "x", "2").encode(), new_leader))
print(f"+{cluster.now - cut_at:.3f}s: {new_leader} leads term {cluster.node(new_leader).current_term()} "
      f"and has committed x=2")
print(f"n1 is still a {cluster.node('n1').state().name.lower()} of term {cluster.node('n1').current_term()}")
print(f"reading n1's state machine directly:         x={cluster.fsm('n1').get('x')!r}   (stale)")
print(f"reading {new_leader}'s state machine directly:         x={cluster.fsm(new_leader).get('x')!r}")
# --8<-- [end:stale]

step("safe_reads", "Two safe reads: through the log, and with a read index")
# --8<-- [start:safe_reads]
through_log = cluster.submit(Command("get", "x").encode(), "n1")  # a read that is a log entry
try:
    value = cluster.run_coro(read(cluster.node("n1"), "x"))  # the read index (Thesis §6.4)
    print(f"read index on n1: x={value!r}")
except RaftError as err:
    print(f"+{cluster.now - cut_at:.3f}s: read index on n1 failed: {type(err).__name__}")
cluster.run_until(lambda c: through_log.done)
print(f"+{cluster.now - cut_at:.3f}s: read through the log on n1 failed: {through_log.error_now()}")
leader = cluster.node(new_leader)
print(f"on {new_leader}: read index x={cluster.run_coro(read(leader, 'x'))!r}, "
      f"through the log x={cluster.run_coro(read(leader, 'x', through_log=True))!r}")
# --8<-- [end:safe_reads]

step("lease", "The lease: a leader that cannot reach a majority steps down")
# --8<-- [start:lease]
print(f"the partition began at t={cut_at:.3f}")
show(cluster.events.since(cut_at), "lease_lost", "state", nodes=["n1"])
cluster.heal()
cluster.run_until(lambda c: c.fsm("n1").get("x") == "2")
print(f"after healing, n1 follows {cluster.node('n1').leader()} and its state machine has x=2")
cluster.dispose()

# The same partition when n1's clock keeps time with the others:
with Cluster(nodes=5, seed=11, fsm_factory=KVStore) as fair:
    fair.force_timeout("n1")
    fair.run_until(lambda c: c.leader() == "n1")
    cut_at = fair.now
    fair.partition(["n1", "n2"])
    fair.run_until(lambda c: leader_among(c, majority) is not None)
    print(f"with a clock like the others', the partition began at t={cut_at:.3f}")
    for event in fair.events.since(cut_at):
        if event.kind == "state" and (event.node == "n1" or event["state"] == "leader"):
            print(f"  {event}")
# --8<-- [end:lease]

step("unknown", "A write with an unknown outcome")
# --8<-- [start:unknown]
cluster = Cluster(nodes=5, seed=12, fsm_factory=KVStore)
leader_id = cluster.wait_leader()
cluster.apply(Command("put", "x", "2").encode())
followers = [i for i in cluster.ids if i != leader_id]
for follower in followers:
    cluster.cut(follower, leader_id)  # the leader's messages arrive; the answers are lost
cut_at = cluster.now
with_session = cluster.submit(Command("append", "x", "!", client="alice", seq=1).encode())
without_session = cluster.submit(Command("append", "y", "!").encode())
cluster.run_until(lambda c: with_session.done and without_session.done)
print(f"+{cluster.now - cut_at:.3f}s: alice's append: {with_session.error_now()}")
print(f"+{cluster.now - cut_at:.3f}s: the anonymous append: {without_session.error_now()}")
cluster.run_until(lambda c: leader_among(c, followers) is not None)
new_leader = leader_among(cluster, followers)
assert new_leader is not None
elected_at = cluster.now
cluster.heal()
last = cluster.node(new_leader).last_index()
cluster.run_until(lambda c: all(c.node(i).commit_index() == last for i in c.ids))
print(f"{new_leader} leads term {cluster.node(new_leader).current_term()}; the logs:")
print_logs(cluster)
show(cluster.events.since(elected_at), "commit", nodes=[new_leader])
# --8<-- [end:unknown]

step("retry", "Exactly once: retry with the same sequence number")
# --8<-- [start:retry]
again = cluster.apply(Command("append", "x", "!", client="alice", seq=1).encode())
print(f"alice retries (client='alice', seq=1): {again.response}")
again = cluster.apply(Command("append", "y", "!").encode())
print(f"the anonymous client retries:           {again.response}")
leader = cluster.node(new_leader)
print(f"x={cluster.run_coro(read(leader, 'x'))!r}  y={cluster.run_coro(read(leader, 'y'))!r}")
stale = cluster.apply(Command("put", "x", "late", client="alice", seq=0).encode())
print(f"an older sequence number is refused: {stale.response.error}")
cluster.dispose()
# --8<-- [end:retry]
