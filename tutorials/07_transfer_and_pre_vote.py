"""Tutorial 7: leadership transfer.

A leader can hand over its role on purpose, for instance before it is shut
down for maintenance: it brings a chosen follower fully up to date and then
tells it to stand at once (TimeoutNow, Thesis §3.10). (Pre-vote, which this
tutorial used to show too, is now in tutorial 2, right after the elections
whose output already shows it.)

Run it with ``python tutorials/07_transfer_and_pre_vote.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import show, step

from raft.sim import Cluster

# --8<-- [end:imports]

step("transfer", "Hand leadership to another server")
# --8<-- [start:transfer]
cluster = Cluster(nodes=5, seed=7)
old = cluster.wait_leader()
cluster.apply(b"before the transfer")
started = cluster.now
future = cluster.node(old).leadership_transfer()  # to the most up-to-date voter
print("leadership_transfer answered:", cluster.wait(future))
cluster.run_until(lambda c: c.leader() not in (None, old))
new = cluster.leader()
assert new is not None
print(f"{old} handed over to {new} in {cluster.now - started:.3f}s; term {cluster.node(new).current_term()}")
show(cluster.events.since(started), "transfer", "state", "election")
cluster.dispose()
# --8<-- [end:transfer]

step("named", "Hand over to a server you name")
# --8<-- [start:named]
cluster = Cluster(nodes=5, seed=7)
old = cluster.wait_leader()
target = next(n for n in cluster.ids if n != old)
started = cluster.now
future = cluster.node(old).leadership_transfer_to_server(target, target)
print(f"{old} -> {target}: answered {cluster.wait(future)} after {cluster.now - started:.3f}s")
cluster.run_until(lambda c: c.leader() == target)
print(f"{target} leads term {cluster.node(target).current_term()}")
# --8<-- [end:named]

step("unreachable", "A transfer to a server that cannot be reached gives up")
# --8<-- [start:unreachable]
leader = cluster.leader()
assert leader is not None
away = next(n for n in cluster.ids if n != leader)
cluster.partition([away])
started = cluster.now
future = cluster.node(leader).leadership_transfer_to_server(away, away)
print(f"{leader} -> {away} (cut off): answered {cluster.wait(future)!r} after {cluster.now - started:.3f}s")
print(f"{leader} still leads: {cluster.leader() == leader}")
cluster.dispose()
# --8<-- [end:unreachable]
