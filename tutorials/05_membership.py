"""Tutorial 5: membership changes, one server at a time.

A running cluster can grow and shrink. hashicorp/raft, like Ongaro's thesis,
changes the membership one server at a time: any majority of the old
configuration then overlaps any majority of the new one, so two leaders can
never be elected in one term. A configuration is an ordinary log entry, used
by each server as soon as it is in its log, and a leader starts the next
change only once the previous one has committed.

Run it with ``python tutorials/05_membership.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import print_logs, step

from raft.sim import Cluster

# --8<-- [end:imports]


# --8<-- [start:helpers]
def members(cluster: Cluster, node_id: str) -> str:
    """The latest configuration a node knows, e.g. ``n1 n2 n3``."""
    configuration = cluster.node(node_id).get_latest_configuration()
    return " ".join(f"{s.id}{'' if s.suffrage.name == 'Voter' else '(' + s.suffrage.name.lower() + ')'}"
                    for s in configuration.servers)


def configuration_events(cluster: Cluster, node_id: str, since: float) -> None:
    """Print when ``node_id`` adopted (latest) and committed each configuration."""
    for event in cluster.events.since(since):
        if event.kind == "configuration" and event.node == node_id:
            servers = " ".join(s["id"] for s in event["configuration"]["servers"])
            print(f"  {event.t:.3f} {node_id} {event['which']:<9} index {event['index']}: {servers}")
# --8<-- [end:helpers]


step("add", "Add a fourth server")
# --8<-- [start:add]
cluster = Cluster(nodes=3, seed=5)
leader = cluster.wait_leader()
cluster.apply(b"before n4 joined")
started = cluster.now
cluster.add_node("n4")  # a new, empty server: no log, no configuration, it cannot stand for election
future = cluster.node(leader).add_voter("n4", "n4")  # ask the leader to add it as a voter
print("add_voter answered:", cluster.wait(future))
configuration_events(cluster, leader, started)
cluster.wait_for_replication(1)
print(f"n4 knows: {members(cluster, 'n4')}; n4 applied {cluster.fsm('n4').logs}")
print_logs(cluster)
# --8<-- [end:add]

step("one_at_a_time", "At most one uncommitted change")
# --8<-- [start:one_at_a_time]
started = cluster.now
cluster.add_node("n5")
cluster.add_node("n6")
first = cluster.node(leader).add_voter("n5", "n5")
second = cluster.node(leader).add_voter("n6", "n6")  # asked at the same moment
cluster.run_until(lambda c: first.done and second.done)
print("answers:", cluster.wait(first), cluster.wait(second), "at indexes", first.index(), second.index())
configuration_events(cluster, leader, started)
# --8<-- [end:one_at_a_time]

step("remove", "Remove a server, then the leader itself")
# --8<-- [start:remove]
follower = cluster.followers()[0]
print(f"removing {follower}:", cluster.wait(cluster.node(leader).remove_server(follower)))
cluster.run_for(5)
# A removed follower is no longer a voter in its own eyes, so it never stands
# for election; it just waits (hashicorp #483). A removed leader steps down.
print(f"{follower} is now a {cluster.node(follower).state().name.lower()} that knows: {members(cluster, follower)}")
old = leader
print(f"removing the leader {old}:", cluster.wait(cluster.node(old).remove_server(old)))
cluster.run_until(lambda c: c.leader() not in (None, old))
leader = cluster.leader()
assert leader is not None
cluster.run_for(5)
print(f"{leader} leads term {cluster.node(leader).current_term()}")
for node_id in cluster.ids:  # Config.shutdown_on_remove: a removed leader shuts down
    print(f"  {node_id}: {cluster.node(node_id).state().name.lower():<9} knows {members(cluster, node_id)}")
cluster.dispose()
# --8<-- [end:remove]
