"""Tutorial 7: leadership transfer and pre-vote.

A leader can hand over its role on purpose, for instance before it is shut
down for maintenance: it brings a chosen follower fully up to date and then
tells it to stand at once (TimeoutNow, Thesis §3.10). Pre-vote (Thesis §9.6)
solves another problem: a server cut off from the others keeps standing for
election and, without pre-vote, keeps raising its term; when it comes back,
that high term forces the healthy leader to step down.

Run it with ``python tutorials/07_transfer_and_pre_vote.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import show, step

from raft.config import Config
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
