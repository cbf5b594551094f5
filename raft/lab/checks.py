"""Each lab's focused checks: small, seeded runs that test one claim each, before the fault simulator.

Mirrors: nothing in hashicorp/raft (see ``raft.lab``).
Read before: raft/sim/cluster.py (``Cluster``, the cluster every check drives).

A check is a function whose docstring states its claim; it raises
``AssertionError`` with a sentence a student can act on. Every check runs in
virtual time with a fixed seed, so it passes or fails the same way every
time. The checks come before the fault simulator because their failures
are easier to read: one RPC, one answer, one expectation.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack

from raft.api import Raft
from raft.commands import (
    AppendEntriesRequest,
    InstallSnapshotRequest,
    RequestPreVoteRequest,
    RequestVoteRequest,
    RPCHeader,
)
from raft.commitment import Commitment
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage, encode_configuration
from raft.errors import ErrNotLeader, RaftError
from raft.kv import Command, KVStore, read
from raft.log import Log, LogType
from raft.raft import KEY_CURRENT_TERM
from raft.runtime.channels import Chan
from raft.sim import Cluster
from raft.sim.bugs import TeachingBugs
from raft.transport import WithPreVote

Check = Callable[[TeachingBugs], None]
KEY_LAST_VOTE_TERM = b"LastVoteTerm"  # the stable-store keys raft.py writes (Figure 2: votedFor)
KEY_LAST_VOTE_CAND = b"LastVoteCand"


@contextmanager
def cluster(nodes: int, seed: int, bugs: TeachingBugs, **options: Any) -> Iterator[Cluster]:
    """A cluster that is always disposed of, with the grade's teaching bugs (if any) switched on."""
    built = Cluster(nodes, seed, bugs=bugs, **options)
    try:
        yield built
    finally:
        built.dispose()


def expect(condition: bool, message: str) -> None:
    """Fail the check with ``message`` (a sentence saying what the student's code did wrong)."""
    if not condition:
        raise AssertionError(message)


def wait_for(c: Cluster, predicate: Callable[[Cluster], bool], seconds: float, failure: str) -> None:
    """Run until ``predicate`` holds; fail the check with ``failure`` if it does not within ``seconds``."""
    try:
        c.run_until(predicate, seconds)
    except TimeoutError:
        raise AssertionError(f"{failure} (within {seconds:g} virtual seconds)") from None


def _leader_and_followers(c: Cluster) -> tuple[Raft, Raft, Raft]:
    leader = c.node(c.wait_leader())
    first, second = (c.node(i) for i in c.followers()[:2])
    return leader, first, second


# ---------------------------------------------------------------------------
# Lab 1: leader election
# ---------------------------------------------------------------------------


def three_nodes_elect_one_leader(bugs: TeachingBugs) -> None:
    """Three nodes elect exactly one leader, and the other two follow it in the same term."""
    with cluster(3, 11, bugs) as c:
        leader = c.wait_leader()
        c.ensure_leader(leader)
        terms = {r.local_id: r.current_term() for r in c.rafts()}
        expect(len(set(terms.values())) == 1, f"after the election the nodes disagree on the term: {terms}")


def a_candidate_votes_for_itself_on_disk(bugs: TeachingBugs) -> None:
    """A new leader has persisted a vote for itself in its own term (elect_self: "vote for self")."""
    with cluster(3, 12, bugs) as c:
        leader = c.node(c.wait_leader())
        store = c.handles[leader.local_id].store
        expect(store.get_uint64(KEY_LAST_VOTE_TERM) == leader.current_term(),
               f"the leader of term {leader.current_term()} stored a vote for term "
               f"{store.get_uint64(KEY_LAST_VOTE_TERM)}: elect_self must persist its own vote in the new term")
        expect(store.get(KEY_LAST_VOTE_CAND) == leader.local_addr.encode(),
               "the leader's stored vote is not for itself: elect_self votes for self (persist_vote)")


def an_out_of_date_candidate_is_refused(bugs: TeachingBugs) -> None:
    """A voter refuses a candidate whose log ends in an older term, but still adopts its newer term (§5.4.1)."""
    with cluster(3, 13, bugs) as c:
        leader, first, second = _leader_and_followers(c)
        for i in range(3):
            c.apply(f"x{i}".encode())
        c.run_until(lambda _: second.last_index() == leader.last_index(), 10, "entries replicated")
        term = leader.current_term() + 5
        req = RequestVoteRequest(RPCHeader(3, first.local_id, first.local_addr), term=term, last_log_index=1,
                                 last_log_term=0, leadership_transfer=True)
        resp = c.run_coro(leader.trans.request_vote(second.local_id, second.local_addr, req))
        expect(not resp.granted, "a vote was granted to a candidate whose last log term (0) is older than the "
                                 "voter's: that is the election restriction of §5.4.1")
        expect(second.current_term() == term, f"the voter did not adopt the candidate's newer term {term} "
                                              f"(it has {second.current_term()}): Figure 2, All Servers")


def one_vote_per_term(bugs: TeachingBugs) -> None:
    """In one term a voter grants one vote: again to the same candidate, never to another (Figure 2)."""
    with cluster(3, 14, bugs) as c:
        leader, first, second = _leader_and_followers(c)
        term = leader.current_term() + 3
        last_index, last_term = leader.last_index(), leader.current_term()

        def ask(candidate: Raft) -> bool:
            req = RequestVoteRequest(RPCHeader(3, candidate.local_id, candidate.local_addr), term=term,
                                     last_log_index=last_index + 10, last_log_term=last_term + 1,
                                     leadership_transfer=True)
            return bool(c.run_coro(leader.trans.request_vote(second.local_id, second.local_addr, req)).granted)

        expect(ask(first), "an up-to-date candidate with a newer term was refused a vote")
        expect(not ask(leader), f"the voter voted twice in term {term}: for {first.local_id} and then for "
                                f"{leader.local_id}")
        expect(ask(first), "a repeated request from the candidate we voted for must be granted again "
                           "(the reply may have been lost)")


def a_pre_vote_changes_nothing(bugs: TeachingBugs) -> None:
    """Granting a pre-vote neither changes the voter's term nor records a vote (Thesis §9.6)."""
    with cluster(3, 15, bugs) as c:
        leader, first, _ = _leader_and_followers(c)
        term, store = first.current_term(), c.handles[first.local_id].store
        vote_before = store.get_uint64(KEY_LAST_VOTE_TERM)
        assert isinstance(leader.trans, WithPreVote), "the simulated transport supports pre-vote"
        req = RequestPreVoteRequest(leader.get_rpc_header(), term=term + 4, last_log_index=leader.last_index(),
                                    last_log_term=leader.current_term())
        resp = c.run_coro(leader.trans.request_pre_vote(first.local_id, first.local_addr, req))
        expect(resp.granted, "a pre-vote was refused to the voter's own, up-to-date leader (hashicorp #605)")
        expect(first.current_term() == term, f"a pre-vote moved the voter's term from {term} to "
                                             f"{first.current_term()}; a pre-vote must change nothing")
        expect(store.get_uint64(KEY_LAST_VOTE_TERM) == vote_before, "a pre-vote was recorded as a vote")


# ---------------------------------------------------------------------------
# Lab 2: log replication
# ---------------------------------------------------------------------------


def entries_reach_every_node(bugs: TeachingBugs) -> None:
    """Twenty commands applied through the leader reach every node's state machine, in order."""
    with cluster(3, 21, bugs) as c:
        c.wait_leader()
        for i in range(20):
            c.apply(f"cmd{i}".encode())
        c.wait_for_replication(20, timeout=30)
        c.ensure_same()


def a_mismatching_previous_entry_is_refused(bugs: TeachingBugs) -> None:
    """AppendEntries is refused when the follower lacks prevLogIndex or holds another term there (rule 2)."""
    with cluster(3, 22, bugs) as c:
        leader, first, _ = _leader_and_followers(c)
        c.apply(b"one")
        c.run_until(lambda _: first.last_index() == leader.last_index(), 10, "entry replicated")
        last = first.last_index()
        for prev_index, prev_term, what in [(last + 5, leader.current_term(), "an index past its log"),
                                            (last, leader.current_term() + 7, "another term at that index")]:
            req = AppendEntriesRequest(leader.get_rpc_header(), term=leader.current_term(), prev_log_entry=prev_index,
                                       prev_log_term=prev_term, leader_commit_index=leader.commit_index())
            resp = c.run_coro(leader.trans.append_entries(first.local_id, first.local_addr, req))
            expect(not resp.success, f"AppendEntries with prevLogIndex {prev_index}, prevLogTerm {prev_term} "
                                     f"({what}) was accepted; Figure 2 rule 2 says reply false")


def a_conflicting_suffix_is_replaced(bugs: TeachingBugs) -> None:
    """A deposed leader's uncommitted entries are overwritten by the new leader's, and all logs end equal."""
    with cluster(3, 23, bugs) as c:
        old = c.wait_leader()
        c.apply(b"committed")
        c.partition([old])
        for i in range(3):
            c.submit(f"lost{i}".encode(), old)  # never committed: the old leader has no majority
        c.run_until(lambda cl: any(cl.node(i).state().name == "Leader" for i in cl.ids if i != old), 20,
                    "a new leader on the majority side")
        new = next(i for i in c.ids if i != old and c.node(i).state().name == "Leader")
        c.apply(b"kept")
        c.heal()
        c.run_until(lambda cl: len({tuple(sorted(cl.log_terms(i).items())) for i in cl.ids}) == 1, 30,
                    "all logs equal")
        expect(c.log_terms(old) == c.log_terms(new), "the old leader's log still differs from the new leader's")
        c.ensure_same()


def commit_counts_only_entries_of_the_current_term(bugs: TeachingBugs) -> None:
    """The leader's commitment does not commit an older term's entry by counting replicas (Figure 8)."""
    voters = Configuration([Server(ServerSuffrage.Voter, i, i) for i in ("a", "b", "c")])
    commitment = Commitment(Chan(1, name="commit"), voters, start_index=5)
    commitment.match("a", 4)
    commitment.match("b", 4)
    expect(commitment.get_commit_index() == 0,
           f"entries 1-4 (older terms) were committed by counting replicas: commit index "
           f"{commitment.get_commit_index()}, but this leader's term starts at 5 (§5.4.2, Figure 8)")
    commitment.match("a", 6)
    commitment.match("b", 7)
    expect(commitment.get_commit_index() == 6,
           f"a majority stores entry 6 of the current term, but the commit index is {commitment.get_commit_index()}")
    commitment.match("b", 3)
    expect(commitment.get_commit_index() == 6, "a late, lower match index moved the commit index")


# ---------------------------------------------------------------------------
# Lab 3: persistence
# ---------------------------------------------------------------------------


def the_term_is_on_disk(bugs: TeachingBugs) -> None:
    """Every node's stable store holds the term it acts in (Figure 2: currentTerm is persistent)."""
    with cluster(3, 31, bugs) as c:
        c.wait_leader()
        for r in c.rafts():
            stored = c.handles[r.local_id].store.get_uint64(KEY_CURRENT_TERM)
            expect(stored == r.current_term(), f"{r.local_id} acts in term {r.current_term()} but its stable "
                                               f"store says {stored}: set_current_term must write it first")


def a_restarted_node_remembers_term_vote_and_log(bugs: TeachingBugs) -> None:
    """A node that crashes and restarts comes back with its term, its vote and its log."""
    with cluster(3, 32, bugs) as c:
        c.wait_leader()
        for i in range(5):
            c.apply(f"cmd{i}".encode())
        c.wait_for_replication(5)
        victim = c.followers()[0]
        before = c.node(victim)
        store = c.handles[victim].store
        term, last = before.current_term(), before.last_index()
        vote = (store.get_uint64(KEY_LAST_VOTE_TERM), store.get(KEY_LAST_VOTE_CAND))
        c.partition([victim])  # nobody moves its term while it is down
        c.crash(victim)
        after = c.restart(victim)
        expect(after.current_term() == term, f"{victim} restarted in term {after.current_term()}, "
                                             f"it was in term {term}")
        expect(after.last_index() == last, f"{victim} restarted with its log ending at {after.last_index()}, "
                                           f"it ended at {last}")
        now = (store.get_uint64(KEY_LAST_VOTE_TERM), store.get(KEY_LAST_VOTE_CAND))
        expect(now == vote, f"{victim}'s vote was {vote} before the crash and {now} after it")


# ---------------------------------------------------------------------------
# Lab 4: snapshots
# ---------------------------------------------------------------------------


def a_lagging_follower_catches_up_by_snapshot(bugs: TeachingBugs) -> None:
    """A follower cut off while the leader compacts its log is brought back by InstallSnapshot."""
    config = Config(snapshot_threshold=10, trailing_logs=5)
    with cluster(3, 41, bugs, config=config) as c:
        c.wait_leader()
        victim = c.followers()[0]
        c.disconnect(victim)
        for i in range(40):
            c.apply(f"cmd{i}".encode())
        leader = c.node(c.wait_leader())
        expect(c.wait(leader.snapshot()) is None, "the leader could not take a snapshot")
        c.connect(victim)
        wait_for(c, lambda cl: cl.node(victim).get_last_snapshot()[0] > 0, 30,
                 f"{victim} never installed the leader's snapshot")
        c.wait_for_replication(40, timeout=30)
        c.ensure_same()


def a_late_snapshot_is_ignored(bugs: TeachingBugs) -> None:
    """An InstallSnapshot that ends at or below the commit index is acknowledged and changes nothing (§7)."""
    with cluster(3, 42, bugs) as c:
        leader, first, _ = _leader_and_followers(c)
        for i in range(5):
            c.apply(f"cmd{i}".encode())
        c.wait_for_replication(5)
        applied, last = list(c.fsm(first.local_id).logs), first.last_index()
        voters = Configuration([Server(ServerSuffrage.Voter, r.local_id, r.local_addr) for r in c.rafts()])
        payload = b"an old snapshot"
        req = InstallSnapshotRequest(leader.get_rpc_header(), term=leader.current_term(), last_log_index=2,
                                     last_log_term=leader.current_term(), configuration=encode_configuration(voters),
                                     configuration_index=1, size=len(payload))
        resp = c.run_coro(leader.trans.install_snapshot(first.local_id, first.local_addr, req,
                                                        io.BytesIO(payload)))
        expect(resp.success, "a snapshot covering only committed entries was refused; acknowledge and ignore it")
        c.run_for(1)
        expect(c.fsm(first.local_id).logs == applied, "a late snapshot rolled the state machine back")
        expect(first.last_index() == last, f"a late snapshot changed the log: it ended at {last}, "
                                           f"now at {first.last_index()}")


def the_entries_after_an_installed_snapshot_are_kept(bugs: TeachingBugs) -> None:
    """Figure 13 rule 6: if the log holds the snapshot's last entry, the entries after it stay."""
    quiet = Config(heartbeat_timeout=100.0, election_timeout=100.0, leader_lease_timeout=50.0)
    with cluster(2, 43, bugs, config=quiet, start=False) as c:
        follower, leader = c.ids  # only the follower runs; the test speaks for the leader
        c.start(follower)
        header = RPCHeader(id=leader, addr=leader)
        entries = [Log(i, 1, LogType.LogCommand, b"e%d" % i) for i in range(2, 25)]
        sent = AppendEntriesRequest(header, term=1, prev_log_entry=1, prev_log_term=1, entries=entries,
                                    leader_commit_index=5)
        resp = c.run_coro(c.handles[leader].transport.append_entries(follower, follower, sent))
        expect(resp.success, "a follower refused entries 2 to 24 that follow its entry 1")
        voters = Configuration([Server(ServerSuffrage.Voter, i, i) for i in c.ids])
        # A snapshot of entries 2 to 11 (MockFSM's format), above the follower's commit index 5.
        payload = msgpack.packb([b"e%d" % i for i in range(2, 12)], use_bin_type=True)
        req = InstallSnapshotRequest(header, term=1, last_log_index=11, last_log_term=1,
                                     configuration=encode_configuration(voters), configuration_index=1,
                                     size=len(payload))
        resp = c.run_coro(c.handles[leader].transport.install_snapshot(follower, follower, req,
                                                                       io.BytesIO(payload)))
        expect(resp.success, "the follower refused a snapshot newer than its commit index")
        node = c.node(follower)
        expect(node.last_index() == 24, f"after the snapshot at 11 the log ends at {node.last_index()}: entries "
                                        "12 to 24 match the leader's and must be kept (Figure 13 rule 6)")
        kept = [c.handles[follower].store.get_log(i).data for i in range(12, 25)]
        expect(kept == [b"e%d" % i for i in range(12, 25)], "the entries after the snapshot changed")


# ---------------------------------------------------------------------------
# Lab 5: client interaction
# ---------------------------------------------------------------------------


def a_retried_command_takes_effect_once(bugs: TeachingBugs) -> None:
    """The same (client, seq) applied twice changes the store once and answers the repeat from the session."""
    store = KVStore()
    command = Command("append", "k", "x", client="c1", seq=1).encode()
    store.apply(Log(index=1, term=1, type=LogType.LogCommand, data=command))
    repeat = store.apply(Log(index=2, term=1, type=LogType.LogCommand, data=command))
    expect(store.get("k") == "x", f"a retried append took effect twice: the value is {store.get('k')!r}")
    expect(repeat.duplicate, "the repeat was not answered as a duplicate from the client's session")
    store.apply(Log(index=3, term=1, type=LogType.LogCommand,
                    data=Command("append", "k", "y", client="c1", seq=2).encode()))
    older = store.apply(Log(index=4, term=1, type=LogType.LogCommand,
                            data=Command("append", "k", "z", client="c1", seq=1).encode()))
    expect(store.get("k") == "xy" and older.error is not None,
           "a command with an older sequence number than the client's last must be refused with an error")


def reads_see_the_last_write_and_only_on_the_leader(bugs: TeachingBugs) -> None:
    """A read on the leader returns the last acknowledged write; a follower refuses with ErrNotLeader."""
    with cluster(3, 51, bugs, fsm_factory=KVStore) as c:
        leader, first, _ = _leader_and_followers(c)
        c.apply(Command("put", "k", "v1", client="c", seq=1).encode())
        value = c.run_coro(read(leader, "k", timeout=2))
        expect(value == "v1", f"a read on the leader after put k=v1 returned {value!r}")
        try:
            c.run_coro(read(first, "k", timeout=2))
        except ErrNotLeader:
            pass
        else:
            raise AssertionError("a follower served a read: only the leader may (it could be stale)")
        expect(not first.committed_in_current_term(), "a follower claims to have committed in its term as leader")
        expect(leader.committed_in_current_term(), "the leader's no-op is committed but "
                                                   "committed_in_current_term() says no")


def a_cut_off_leader_serves_no_read(bugs: TeachingBugs) -> None:
    """A leader cut off from the others cannot confirm its leadership, so its read fails (Thesis §6.4)."""
    with cluster(3, 52, bugs, fsm_factory=KVStore) as c:
        leader = c.node(c.wait_leader())
        c.apply(Command("put", "k", "old", client="c", seq=1).encode())
        c.partition([leader.local_id])
        try:
            value = c.run_coro(read(leader, "k", timeout=2))
        except RaftError:
            return
        raise AssertionError(f"a leader cut off from every other node served a read ({value!r}): it must "
                             "confirm with a quorum that it still leads (verify_leader)")


CHECKS: dict[int, list[Check]] = {
    1: [three_nodes_elect_one_leader, a_candidate_votes_for_itself_on_disk, an_out_of_date_candidate_is_refused,
        one_vote_per_term, a_pre_vote_changes_nothing],
    2: [entries_reach_every_node, a_mismatching_previous_entry_is_refused, a_conflicting_suffix_is_replaced,
        commit_counts_only_entries_of_the_current_term],
    3: [the_term_is_on_disk, a_restarted_node_remembers_term_vote_and_log],
    4: [a_lagging_follower_catches_up_by_snapshot, a_late_snapshot_is_ignored,
        the_entries_after_an_installed_snapshot_are_kept],
    5: [a_retried_command_takes_effect_once, reads_see_the_last_write_and_only_on_the_leader,
        a_cut_off_leader_serves_no_read],
}


def claim(check: Check) -> str:
    """The first line of a check's docstring: what it claims."""
    return (check.__doc__ or check.__name__).strip().splitlines()[0]
