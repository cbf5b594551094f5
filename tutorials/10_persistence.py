"""Tutorial 10: persistence, what must be on disk before a server answers.

Figure 2 of the paper lists three things every server keeps on stable
storage, "updated on stable storage before responding to RPCs": its current
term, its vote, and its log. We look at them in a running cluster, see that
they are written before the reply leaves, and then forget each of the first
two in a crash, with a teaching bug, to watch two leaders win one term.

Run it with ``python tutorials/10_persistence.py``.
"""

# --8<-- [start:imports]
from tutorial_helpers import print_logs, step

from raft.checkers.invariants import InvariantViolation
from raft.config import Config
from raft.raft import KEY_CURRENT_TERM, KEY_LAST_VOTE_CAND, KEY_LAST_VOTE_TERM
from raft.sim import Cluster
from raft.sim.bugs import TeachingBugs
from raft.sim.fuzz import FuzzRun

# --8<-- [end:imports]

step("disk", "What a server keeps on disk")
# --8<-- [start:disk]
SERVERS = ["n1", "n2", "n3"]
QUIET = Config(heartbeat_timeout=10.0, election_timeout=10.0)  # nobody times out unless we say so


def print_disk(cluster: Cluster, node_id: str) -> None:
    """Print what ``node_id``'s stable store holds: Figure 2's persistent state (the log is printed apart)."""
    store = cluster.handles[node_id].store  # it survives a crash, as a disk would
    vote = store.get(KEY_LAST_VOTE_CAND)
    print(f"  {node_id}  currentTerm={store.get_uint64(KEY_CURRENT_TERM)}  "
          f"votedFor={vote.decode() if vote else None} (in term {store.get_uint64(KEY_LAST_VOTE_TERM)})")


cluster = Cluster(SERVERS, seed=10, config=QUIET)
cluster.force_timeout("n1")  # n1 stands first
cluster.run_until(lambda c: c.leader() == "n1")
cluster.apply(b"set x 1")
for node_id in SERVERS:
    print_disk(cluster, node_id)
print_logs(cluster)
# --8<-- [end:disk]

step("order", "Written before the reply leaves")
# --8<-- [start:order]
for event in cluster.events:
    if event.node == "n2" and event.kind in ("rpc_deliver", "term", "vote", "append", "rpc_send"):
        print(f"  {event}")
# --8<-- [end:order]

step("restart", "What a restart brings back, and what it does not")
# --8<-- [start:restart]
cluster.crash("n2")
n2 = cluster.restart("n2")
print(f"n2 is back: term {n2.current_term()}, last log index {n2.last_index()}, commit index {n2.commit_index()}")
print_disk(cluster, "n2")
cluster.run_until(lambda c: c.node("n2").commit_index() == 3)  # the leader's next heartbeat tells it
print(f"after the leader's next heartbeat: commit index {n2.commit_index()}")
cluster.dispose()
# --8<-- [end:restart]

step("vote_kept", "A vote survives a crash")
# --8<-- [start:vote_kept]
def lost_vote(cluster: Cluster) -> None:
    """n1 wins term 2 with n2's vote; n2 crashes and restarts; then n3 stands for term 2 and asks n2."""
    cluster.partition(["n1", "n2"], ["n3"])  # n3 hears nothing of the first election
    cluster.force_timeout("n1")
    cluster.run_until(lambda c: c.leader() == "n1")
    cluster.partition(["n1"], ["n2", "n3"])  # the network splits...
    cluster.crash("n2")  # ...and n2 crashes and comes back at once
    cluster.restart("n2")
    cluster.force_timeout("n3")  # n3, still in term 1, stands for term 2
    cluster.run_until(lambda c: answered(c, "n2", "n3"))
    cluster.run_for(0.01)  # n2's answer reaches n3


def answered(cluster: Cluster, voter: str, candidate: str) -> bool:
    """Has ``voter`` answered a (real, not pre-) vote request from ``candidate``?"""
    return any(e.kind == "vote" and e.node == voter and e["candidate"] == candidate and e["phase"] == "vote"
               for e in cluster.events)


def print_votes_and_leaders(cluster: Cluster) -> None:
    """The votes n2 gave or refused, and who became leader of which term."""
    for event in cluster.events:
        if event.kind == "vote" and event.node == "n2" and event["phase"] == "vote":
            print(f"  {event}")
    leaders: dict[int, list[str]] = {}
    for event in cluster.events.of_kind("state"):
        if event["state"] == "leader":
            leaders.setdefault(event["term"], []).append(event.node)
    print(f"  leaders by term: {leaders}")


with Cluster(SERVERS, seed=10, config=QUIET) as cluster:
    lost_vote(cluster)
    print_votes_and_leaders(cluster)
# --8<-- [end:vote_kept]

step("lost_vote", "Forget the vote: two leaders in one term")
# --8<-- [start:lost_vote]
with Cluster(SERVERS, seed=10, config=QUIET, bugs=TeachingBugs(forget_vote_on_restart=True)) as cluster:
    try:
        lost_vote(cluster)
    except InvariantViolation as violation:
        print(f"the invariant checker stopped the run: {violation.rule}")
        print(violation)
    print_votes_and_leaders(cluster)
# --8<-- [end:lost_vote]

step("term_kept", "A term survives a crash")
# --8<-- [start:term_kept]
NO_PRE_VOTE = Config(heartbeat_timeout=10.0, election_timeout=10.0, pre_vote_disabled=True)


def lost_term(cluster: Cluster) -> None:
    """n1 wins term 2 with n2's vote; n2 moves on to term 3, crashes and restarts; n3 asks it for term 2."""
    cluster.partition(["n1", "n2"], ["n3"])
    cluster.force_timeout("n1")
    cluster.run_until(lambda c: c.leader() == "n1")
    cluster.partition(["n1"], ["n2"], ["n3"])  # everyone alone
    cluster.force_timeout("n2")  # n2 stands for term 3 and votes for itself; nobody hears it
    cluster.run_until(lambda c: c.node("n2").current_term() == 3)
    cluster.crash("n2")
    cluster.restart("n2")
    print(f"n2 restarts in term {cluster.node('n2').current_term()}")
    cluster.partition(["n1"], ["n2", "n3"])
    cluster.force_timeout("n3")  # n3, still in term 1, stands for term 2
    cluster.run_until(lambda c: answered(c, "n2", "n3"))
    cluster.run_for(0.01)


with Cluster(SERVERS, seed=10, config=NO_PRE_VOTE) as cluster:
    lost_term(cluster)
    print_votes_and_leaders(cluster)
# --8<-- [end:term_kept]

step("lost_term", "Forget the term: the same two leaders")
# --8<-- [start:lost_term]
forget_term = TeachingBugs(forget_term_on_restart=True)
with Cluster(SERVERS, seed=10, config=NO_PRE_VOTE, bugs=forget_term) as cluster:
    try:
        lost_term(cluster)
    except InvariantViolation as violation:
        print(f"the invariant checker stopped the run: {violation.rule}")
        print(violation)
print("again, without the invariant checker:")
with Cluster(SERVERS, seed=10, config=NO_PRE_VOTE, bugs=forget_term, check_invariants=False) as cluster:
    lost_term(cluster)
    print_votes_and_leaders(cluster)
# --8<-- [end:lost_term]

step("fuzz", "The fault simulator finds both")
# --8<-- [start:fuzz]
for bug, seed in (("forget_vote_on_restart", 5), ("forget_term_on_restart", 9)):
    run = FuzzRun("RestartVoters", seed=seed, nodes=5, bugs=TeachingBugs(**{bug: True}))
    result = run.execute()  # elections under fire: leaders crash, voters restart right after voting
    assert result.failure is not None
    print(result.failure.splitlines()[0])
    print("  replay with:", result.replay)
# --8<-- [end:fuzz]
