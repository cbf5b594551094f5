"""Tutorial 4: safety, the paper's Figures 7 and 8.

Figure 7 shows six followers whose logs disagree with a new leader's in
every possible way; the leader repairs them all. Figure 8 shows why a leader
may not count replicas to commit an entry from an earlier term. We build both
figures from hand-made logs, run them, and then turn on a deliberate bug to
watch the invariant checker catch the very mistake Figure 8 warns about.

Run it with ``python tutorials/04_safety_figures_7_and_8.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import print_logs, show, step

from raft.checkers.invariants import InvariantViolation
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage, encode_configuration
from raft.log import Log, LogType
from raft.raft import KEY_CURRENT_TERM
from raft.sim import Cluster
from raft.sim.bugs import TeachingBugs

# --8<-- [end:imports]

step("seed_log", "Give servers the logs of a figure")
# --8<-- [start:seed_log]
def seed_log(cluster: Cluster, node_id: str, terms: list[int], current_term: int) -> None:
    """Write a log into a server's store before it starts: entry i gets term terms[i-1].

    Entry 1 is the cluster's configuration (every server must know its
    peers); the others are commands. This is what the disk of a server that
    lived through the figure's earlier terms would hold.
    """
    configuration = Configuration([Server(ServerSuffrage.Voter, i, i) for i in cluster.ids])
    entries = [Log(1, terms[0], LogType.LogConfiguration, encode_configuration(configuration))]
    entries += [Log(index, term, LogType.LogCommand, f"entry {index} of term {term}".encode())
                for index, term in enumerate(terms[1:], start=2)]
    store = cluster.handles[node_id].store
    store.store_logs(entries)
    store.set_uint64(KEY_CURRENT_TERM, current_term)  # Figure 2: currentTerm survives restarts


def timeouts(ids: list[str], first: str) -> dict[str, Config]:
    """Per-server settings: ``first`` times out after 0.1 s, all the others only after 10 s.

    This is how we choose who stands first, as the figure does. One entry
    per AppendEntries makes each step of replication visible.
    """
    configs = {i: Config(heartbeat_timeout=10.0, election_timeout=10.0, max_append_entries=1) for i in ids}
    configs[first] = Config(heartbeat_timeout=0.1, election_timeout=0.1, leader_lease_timeout=0.1,
                            max_append_entries=1)
    return configs
# --8<-- [end:seed_log]

step("figure7", "Figure 7: every follower is brought in line")
# --8<-- [start:figure7]
figure_7 = {  # the leader's log and followers (a)-(f), as terms, index 1 first
    "leader": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}
ids = list(figure_7)
cluster = Cluster(ids, seed=7, bootstrap=False, start=False, configs=timeouts(ids, "leader"))
for node_id, terms in figure_7.items():
    seed_log(cluster, node_id, terms, current_term=7)
print("before:")
print_logs(cluster)
cluster.start()
cluster.run_until(lambda c: c.leader() == "leader")
print(f"'leader' wins term {cluster.node('leader').current_term()}:")
for event in cluster.events.of_kind("vote"):
    if event["phase"] == "vote":  # the real votes, not the pre-votes
        print(f"  {event}")
cluster.run_until(lambda c: all(c.node(i).commit_index() == 11 for i in ids))
print("after:")
print_logs(cluster)
show(cluster.events, "truncate")
cluster.dispose()
# --8<-- [end:figure7]

step("figure8", "Figure 8: a majority holds an entry, yet it is not committed")
# --8<-- [start:figure8]
def figure_8(bugs: TeachingBugs | None = None) -> Cluster:
    """Figure 8 (c): S1 leads term 4 and copies its term-2 entry at index 2 to S3.

    Afterwards S1, S2 and S3 (a majority of five) store that entry. We stop
    the moment S1 learns that S3 has it. ``bugs`` turns on deliberate
    mistakes (see the last step).
    """
    ids = ["S1", "S2", "S3", "S4", "S5"]
    cluster = Cluster(ids, seed=8, bootstrap=False, start=False, configs=timeouts(ids, "S1"), bugs=bugs)
    for node_id, terms in {"S1": [1, 2], "S2": [1, 2], "S3": [1], "S4": [1], "S5": [1, 3]}.items():
        seed_log(cluster, node_id, terms, current_term=3)
    cluster.start()
    cluster.run_until(lambda c: c.leader() == "S1")
    cluster.cut("S1", "S4")  # as in the figure, S4 and S5 hear nothing from S1
    cluster.cut("S1", "S5")
    leader = cluster.node("S1")
    cluster.run_until(lambda c: leader.leader_state.commitment.match_indexes["S3"] >= 2)
    cluster.run_for(0.0005)  # let S1's main loop act on S3's answer
    return cluster


cluster = figure_8()
leader = cluster.node("S1")
print(f"S1 leads term {leader.current_term()}; its matchIndex: {leader.leader_state.commitment.match_indexes}")
print(f"index 2 (term 2) is on S1, S2 and S3, but S1's commit index is {leader.commit_index()}")
print_logs(cluster)
# --8<-- [end:figure8]

step("figure8d", "Figure 8 (d): S1 crashes and S5 overwrites index 2")
# --8<-- [start:figure8d]
crashed_at = cluster.now
cluster.partition(["S1"])  # S1's messages still on the wire are lost...
cluster.crash("S1")  # ...and S1 crashes
for node_id in ("S3", "S4", "S5"):
    cluster.force_timeout(node_id)  # as if their heartbeat timers had fired
cluster.run_until(lambda c: c.leader() is not None)
winner = cluster.leader()
assert winner is not None
print(f"{winner} wins term {cluster.node(winner).current_term()}")
cluster.run_until(lambda c: all(c.node(i).commit_index() >= 3 for i in ("S2", "S3", "S4", "S5")))
print_logs(cluster)
show(cluster.events.since(crashed_at), "truncate")
cluster.dispose()
# --8<-- [end:figure8d]

step("figure8e", "Figure 8 (e): commit an entry of the current term, and the old one commits with it")
# --8<-- [start:figure8e]
cluster = figure_8()
leader = cluster.node("S1")
cluster.run_until(lambda c: leader.commit_index() >= 3)  # S1's own no-op (term 4) reaches a majority
print(f"S1's commit index is now {leader.commit_index()}: index 2 is committed together with index 3")
print_logs(cluster)
crashed_at = cluster.now
cluster.partition(["S1"])
cluster.crash("S1")
for node_id in ("S2", "S3", "S4", "S5"):
    cluster.force_timeout(node_id)
cluster.run_until(lambda c: c.leader() is not None)
winner = cluster.leader()
assert winner is not None
print(f"{winner} wins term {cluster.node(winner).current_term()}; S5 could not, because:")
for event in cluster.events.since(crashed_at):
    if event.kind == "vote" and event["candidate"] == "S5" and not event["granted"]:
        print(f"  {event}")
cluster.dispose()
# --8<-- [end:figure8e]

step("bug", "Turn on the bug Figure 8 warns about")
# --8<-- [start:bug]
cluster = figure_8(TeachingBugs(commit_old_terms_by_counting=True))
leader = cluster.node("S1")
print(f"with the bug, S1's commit index is {leader.commit_index()}: it counted replicas of a term-2 entry")
cluster.partition(["S1"])
cluster.crash("S1")
for node_id in ("S3", "S4", "S5"):
    cluster.force_timeout(node_id)
try:
    cluster.run_until(lambda c: c.leader() is not None)
except InvariantViolation as violation:
    print(f"the invariant checker stopped the run: {violation.rule}")
    print(violation)
cluster.dispose()
# --8<-- [end:bug]
