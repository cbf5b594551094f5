"""Log replication and commitment, ported from hashicorp's raft_test.go (names in snake_case).

Paper: §5.3 (log replication), §5.4.2 (committing entries from previous terms), Figures 7 and 8.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from injected import LEADER, append, inject, lone_follower

from raft.commands import AppendEntriesRequest, RPCHeader
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage, encode_configuration
from raft.errors import ErrEnqueueTimeout, ErrLeadershipLost, ErrNotLeader, StoreError
from raft.log import Log, LogType
from raft.log_cache import LogCache
from raft.raft import KEY_CURRENT_TERM
from raft.replication import RoundTrip, heartbeat_deadline
from raft.runtime.channels import Chan
from raft.sim import Cluster
from raft.sim.network import LinkFaults
from raft.state import RaftState
from raft.testing import inmem_config

Make = Callable[..., Cluster]


def test_single_node(make: Make) -> None:
    """A lone voter elects itself and applies a command: response 1, a non-zero index, one FSM entry."""
    c = make(1, config=inmem_config(""))
    c.run_until(lambda c: len(c.node("n1").leader_ch) > 0, timeout=3 * 0.050)
    assert c.node("n1").leader_ch.try_recv() == (True, True)
    assert c.node("n1").state() == RaftState.Leader
    result = c.apply(b"test")
    assert result.response == 1 and result.index != 0
    assert c.fsm("n1").logs == [b"test"]


def test_triple_node(make: Make) -> None:
    """A command applied on the leader of three reaches every FSM."""
    c = make(3)
    c.wait_leader()
    c.apply(b"test")
    c.wait_for_replication(1)
    assert all(c.fsm(i).logs == [b"test"] for i in c.ids)


def test_leader_fail(make: Make) -> None:
    """A cut-off leader is replaced in a higher term; its late command fails and never applies anywhere."""
    c = make(3)
    leader = c.wait_leader()
    c.apply(b"test")
    c.wait_for_replication(1)
    old_term = c.node(leader).current_term()
    c.disconnect(leader)
    c.run_until(lambda c: any(r.state() == RaftState.Leader and r.local_id != leader for r in c.rafts()))
    new_leader = next(r for r in c.rafts() if r.state() == RaftState.Leader and r.local_id != leader)
    assert new_leader.current_term() > old_term
    future1 = c.node(leader).apply(b"fail")
    future2 = new_leader.apply(b"apply")
    assert c.wait(future2) is None
    c.full_connect()
    assert isinstance(c.wait(future1), (ErrLeadershipLost, ErrNotLeader))
    c.ensure_same()
    for node_id in c.ids:
        assert c.fsm(node_id).logs == [b"test", b"apply"]


def test_behind_follower(make: Make) -> None:
    """A follower cut off during 100 commands catches up when it reconnects."""
    c = make(3)
    leader = c.wait_leader()
    behind = c.followers()[0]
    c.disconnect(behind)
    futures = [c.node(leader).apply(f"test{i}".encode()) for i in range(100)]
    assert c.wait(futures[-1]) is None
    assert c.node(behind).last_contact() is not None
    c.full_connect()
    c.ensure_same()
    assert len(c.fsm(behind).logs) == 100
    c.ensure_leader(c.wait_leader())


def test_apply_non_leader(make: Make) -> None:
    """A follower refuses a command with ErrNotLeader, and asking the future twice gives the same answer."""
    c = make(3)
    c.wait_leader()
    future = c.node(c.followers()[0]).apply(b"test", timeout=0.050)
    assert isinstance(c.wait(future), ErrNotLeader)
    assert isinstance(c.run_coro(future.error()), ErrNotLeader)


def test_apply_concurrent(make: Make) -> None:
    """A hundred commands submitted at once all succeed and every FSM applies them in the same order."""
    c = make(3)
    leader = c.node(c.wait_leader())
    futures = [leader.apply(f"test{i}".encode()) for i in range(100)]
    for future in futures:
        assert c.wait(future) is None
    c.ensure_same()
    assert len(c.fsm(leader.local_id).logs) == 100
    assert sorted(f.index() for f in futures) == list(range(futures[0].index(), futures[0].index() + 100))


def test_apply_concurrent_timeout() -> None:
    """An apply whose hand-over to a busy main loop outlasts its timeout fails with ErrEnqueueTimeout.

    Go's test relies on real CPU time to keep the loop busy. Virtual time does
    not pass while code runs, so we keep the loop busy the way Go can too: the
    new leader is blocked sending on a NotifyCh that nobody reads yet.
    """
    notify: Chan[bool] = Chan(0)
    conf = inmem_config("n1")
    conf.notify_ch = notify
    c = Cluster(1, configs={"n1": conf})
    leader = c.node("n1")
    c.run_until(lambda c: leader.state() == RaftState.Leader)
    futures = [leader.apply(f"test{i}".encode(), timeout=0.001) for i in range(50)]
    c.run_for(0.010)
    assert all(isinstance(c.wait(f), ErrEnqueueTimeout) for f in futures)
    assert notify.try_recv() == (True, True)  # unblock the leader loop
    assert c.wait(leader.apply(b"after", timeout=0.001)) is None
    c.close()
    c.loop.close()


def test_leader_lease_expire(make: Make) -> None:
    """A leader that cannot reach a quorum steps down within two lease timeouts, and nobody leads."""
    conf = inmem_config("")
    c = make(2, config=conf)
    leader = c.node(c.wait_leader())
    follower = c.node(c.followers()[0])
    leader.leader_ch.try_recv()
    c.disconnect(follower.local_id)
    start = c.now
    c.run_until(lambda c: leader.state() != RaftState.Leader, timeout=2 * conf.leader_lease_timeout)
    assert c.now - start <= 2 * conf.leader_lease_timeout
    assert leader.leader_ch.try_recv() == (False, True)
    assert leader.last_contact() is not None
    assert [e for e in c.events.since(start) if e.kind == "lease_lost" and e.node == leader.local_id]
    assert c.get_in_state(RaftState.Leader) == []
    last = follower.last_contact()
    c.run_for(2 * 0.050 + 0.005)
    assert follower.last_contact() == last, "nobody may contact the isolated follower"
    assert leader.leader_with_id() == ("", "")
    assert follower.leader_with_id() == ("", "")


def test_barrier(make: Make) -> None:
    """A barrier resolves only after every earlier command is applied."""
    c = make(3)
    leader = c.node(c.wait_leader())
    for i in range(100):
        leader.apply(f"test{i}".encode())
    barrier = leader.barrier()
    assert c.wait(barrier) is None
    assert len(c.fsm(leader.local_id).logs) == 100
    c.ensure_same()


def test_verify_leader(make: Make) -> None:
    """verify_leader succeeds on the leader of a healthy three-node cluster."""
    c = make(3)
    leader = c.node(c.wait_leader())
    assert c.wait(leader.verify_leader()) is None


def test_verify_leader_single(make: Make) -> None:
    """verify_leader succeeds at once on a single node."""
    c = make(1)
    leader = c.node(c.wait_leader())
    assert c.wait(leader.verify_leader()) is None


def test_verify_leader_fail(make: Make) -> None:
    """When a follower has a newer term, the leader steps down and verify_leader reports ErrNotLeader."""
    conf = inmem_config("")
    c = make(2, config=conf)
    leader = c.node(c.wait_leader())
    assert leader.leader_ch.try_recv() == (True, True)
    follower = c.node(c.followers()[0])
    follower.set_current_term(follower.current_term() + 1)
    c.run_until(lambda c: len(leader.leader_ch) > 0, timeout=3 * conf.heartbeat_timeout)
    assert leader.leader_ch.try_recv() == (False, True)
    err = c.wait(leader.verify_leader())
    assert isinstance(err, (ErrNotLeader, ErrLeadershipLost))
    assert leader.leader() == ""


def test_verify_leader_partial_connect(make: Make) -> None:
    """verify_leader succeeds with one of two followers unreachable: two of three is a quorum."""
    c = make(3, config=inmem_config(""))
    leader = c.node(c.wait_leader())
    c.disconnect(c.followers()[0])
    assert c.wait(leader.verify_leader()) is None


def test_append_entry(make: Make) -> None:
    """A hand-made AppendEntries from a newer term is accepted, even without a sender ID or address.

    The forged request overwrites committed entries, which the invariant
    checker would rightly stop, so this test runs without it.
    """
    c = make(3, check_invariants=False)
    ldr = c.node(c.wait_leader())
    follower = c.followers()[0]
    entry = Log(index=1, term=ldr.current_term() + 1, type=LogType.LogCommand, data=b"log 1")
    req = AppendEntriesRequest(ldr.get_rpc_header(), term=ldr.current_term() + 1, prev_log_entry=0,
                               prev_log_term=ldr.current_term(), entries=[entry], leader_commit_index=90)
    assert c.run_coro(ldr.trans.append_entries(follower, follower, req)).success
    req.header = RPCHeader(3, "", "")
    assert c.run_coro(ldr.trans.append_entries(follower, follower, req)).success


def test_cache_log_with_store_error(make: Make) -> None:
    """An entry the store failed to write is not served from the LogCache, so a restart finds no hole."""
    c = make(2)
    leader = c.node(c.wait_leader())
    follower_id = c.followers()[0]
    follower = c.node(follower_id)
    failing = FailingStore(c.handles[follower_id].store)
    follower.logs = LogCache(100, failing)
    for i in range(5):
        c.apply(f"test{i}".encode())
    failing.fail_next = 1
    leader.apply(b"test6")
    leader.apply(b"test7")
    assert c.wait(leader.apply(b"test8")) is None
    c.crash(follower_id)
    restarted = c.restart(follower_id)  # restarts on the plain store: it must be consistent
    assert restarted.last_index() == c.handles[follower_id].store.last_index()
    c.ensure_same()


class FailingStore:
    """A log store wrapper whose next ``fail_next`` writes fail (Mirrors: errorStore in Go's tests)."""

    def __init__(self, store: object) -> None:
        self.store = store
        self.fail_next = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def store_logs(self, logs: list[Log]) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise StoreError("some error")
        self.store.store_logs(logs)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# The paper's figures, as scenarios
# ---------------------------------------------------------------------------


def seed_log(c: Cluster, node_id: str, terms: list[int], current_term: int, configuration: Configuration) -> None:
    """Give an unstarted node a log whose entry i has term terms[i-1]; entry 1 is the configuration."""
    store = c.handles[node_id].store
    entries = [Log(1, terms[0], LogType.LogConfiguration, encode_configuration(configuration))]
    entries += [Log(i, t, LogType.LogCommand, f"entry {i} of term {t}".encode()) for i, t in enumerate(terms[1:], 2)]
    store.store_logs(entries)
    store.set_uint64(KEY_CURRENT_TERM, current_term)


def log_terms(c: Cluster, node_id: str) -> list[int]:
    store = c.handles[node_id].store
    return [store.get_log(i).term for i in range(1, store.last_index() + 1)]


def figure_config(ids: list[str], first: str, second: str | None = None) -> dict[str, Config]:
    """Per-node configs: ``first`` times out quickly, ``second`` next, everyone else much later."""
    configs = {i: Config(heartbeat_timeout=10.0, election_timeout=10.0) for i in ids}
    configs[first] = Config(heartbeat_timeout=0.1, election_timeout=0.1, leader_lease_timeout=0.1)
    if second is not None:
        configs[second] = Config(heartbeat_timeout=1.0, election_timeout=1.0)
    return configs


def test_figure_7_every_follower_log_is_brought_in_line_with_the_leaders() -> None:
    """§5.3, Figure 7: whatever a follower's log (a)–(f) holds, the leader makes it identical to its own."""
    logs = {
        "leader": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
        "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
        "b": [1, 1, 1, 4],
        "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        "e": [1, 1, 1, 4, 4, 4, 4],
        "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    }
    ids = list(logs)
    configuration = Configuration([Server(ServerSuffrage.Voter, i, i) for i in ids])
    c = Cluster(ids, seed=7, bootstrap=False, start=False, configs=figure_config(ids, "leader"))
    for node_id, terms in logs.items():
        seed_log(c, node_id, terms, 7, configuration)
    c.start()
    c.run_until(lambda c: c.leader() == "leader", timeout=5)
    assert c.node("leader").current_term() == 8
    expected = logs["leader"] + [8]  # plus the new leader's no-op
    c.run_until(lambda c: all(log_terms(c, i) == expected for i in ids), timeout=5)
    c.run_until(lambda c: all(c.node(i).commit_index() == len(expected) for i in ids), timeout=5)
    truncated = {e.node for e in c.events if e.kind == "truncate"}
    assert truncated == {"c", "d", "e", "f"}, "exactly the followers with conflicting suffixes truncate"
    c.close()


def _figure_8_cluster() -> Cluster:
    """Figure 8 (c): S1 leads term 2's entry at index 2 onto S1, S2 and S3; S5 holds a term-3 entry there."""
    ids = ["S1", "S2", "S3", "S4", "S5"]
    configuration = Configuration([Server(ServerSuffrage.Voter, i, i) for i in ids])
    c = Cluster(ids, seed=8, bootstrap=False, start=False, configs=figure_config(ids, "S1", "S5"))
    seed_log(c, "S1", [1, 2], 3, configuration)
    seed_log(c, "S2", [1, 2], 3, configuration)
    seed_log(c, "S3", [1, 2], 3, configuration)
    seed_log(c, "S4", [1], 3, configuration)
    seed_log(c, "S5", [1, 3], 3, configuration)
    c.start()
    c.run_until(lambda c: c.leader() == "S1", timeout=5)
    assert c.node("S1").current_term() == 4
    return c


def test_figure_8_an_entry_from_an_earlier_term_is_not_committed_by_counting_replicas() -> None:
    """§5.4.2, Figure 8 (d): a term-2 entry stored on a majority is not committed, and may be overwritten."""
    c = _figure_8_cluster()
    # S1 is leader of term 4 but crashes before its no-op reaches anyone.
    for other in ("S2", "S3", "S4", "S5"):
        c.cut("S1", other)
    assert c.node("S1").commit_index() < 2, "a majority holds index 2, yet the leader must not commit it"
    c.crash("S1")
    c.run_until(lambda c: c.leader() == "S5", timeout=10)
    c.run_until(lambda c: all(log_terms(c, i)[:2] == [1, 3] for i in ("S2", "S3", "S4", "S5")), timeout=5)
    applied_term_2 = [e for e in c.events if e.kind == "apply" and e["index"] == 2 and e["term"] == 2]
    assert applied_term_2 == [], "the overwritten entry was never applied anywhere"
    c.close()


def test_figure_8_an_earlier_entry_commits_together_with_one_of_the_current_term() -> None:
    """§5.4.2, Figure 8 (e): once the leader's own term-4 entry is on a majority, index 2 commits with it."""
    c = _figure_8_cluster()
    leader = c.node("S1")
    c.run_until(lambda c: leader.commit_index() >= 3, timeout=5)
    commits = [e for e in c.events if e.kind == "commit" and e.node == "S1"]
    assert commits[0]["index"] >= 3, "the commit index jumps over index 2 straight to the no-op"
    c.crash("S1")
    c.run_for(20)
    assert c.leader() != "S5", "S5's log lacks a committed entry, so it can never win"
    c.run_until(lambda c: all(c.node(i).applied_index() >= 2 for i in ("S2", "S3", "S4", "S5")), timeout=30)
    assert {e["term"] for e in c.events if e.kind == "apply" and e["index"] == 2} == {2}
    c.close()


# -- accelerated log backup (end of §5.3; Config.fast_log_backup) ---------------------------------

FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]


def _figure_7_pair(make: Make, follower_terms: list[int], fast: bool) -> Cluster:
    """The figure 7 leader (term 8) and one follower with ``follower_terms``; the leader times out first."""
    c = make(["L", "f"], start=False)
    configuration = Configuration([Server(ServerSuffrage.Voter, i, i) for i in ("L", "f")])
    for node_id, terms in (("L", FIGURE_7_LEADER), ("f", follower_terms)):
        entries = [Log(1, terms[0], LogType.LogConfiguration, encode_configuration(configuration))]
        entries += [Log(i, t, LogType.LogCommand, b"%d" % i) for i, t in enumerate(terms[1:], start=2)]
        store = c.handles[node_id].store
        store.store_logs(entries)
        store.set_uint64(KEY_CURRENT_TERM, max(terms))
    c.configs["L"] = Config(heartbeat_timeout=0.1, election_timeout=0.1, leader_lease_timeout=0.1,
                            fast_log_backup=fast)
    c.configs["f"] = Config(heartbeat_timeout=10.0, election_timeout=10.0, fast_log_backup=fast)
    c.start()
    c.run_until(lambda c: c.leader() == "L", timeout=5)
    c.run_until(lambda c: c.node("f").last_index() == c.node("L").last_index()
                and c.node("f").commit_index() >= len(FIGURE_7_LEADER), timeout=10)
    return c


def _rejections(c: Cluster) -> list[dict[str, int]]:
    return [dict(e.fields) for e in c.events if e.kind == "replication_rejected" and e.fields["peer"] == "f"]


def test_fast_backup_skips_a_term_the_leader_lacks(make: Make) -> None:
    """Follower (f) of Figure 7: terms 2 and 3 the leader never had. One rejection per term, not per entry."""
    follower = [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]
    fast = _rejections(_figure_7_pair(make, follower, fast=True))
    assert [(r["conflict_term"], r["conflict_index"], r["next_index"]) for r in fast] == [(3, 7, 7), (2, 4, 4)]
    slow = _rejections(_figure_7_pair(make, follower, fast=False))
    assert [r["next_index"] for r in slow] == [10, 9, 8, 7, 6, 5, 4]
    assert all(r["conflict_index"] == 0 for r in slow)


def test_fast_backup_resumes_after_the_leaders_last_entry_of_the_conflicting_term(make: Make) -> None:
    """Follower (e) of Figure 7: too short, then term 4 entries the leader has only up to index 5."""
    follower = [1, 1, 1, 4, 4, 4, 4]
    fast = _rejections(_figure_7_pair(make, follower, fast=True))
    # First "I have nothing at 10: my log ends at 7", then "my entry 7 is of term 4, from index 4".
    assert [(r["conflict_term"], r["conflict_index"], r["next_index"]) for r in fast] == [(0, 8, 8), (4, 4, 6)]
    slow = _rejections(_figure_7_pair(make, follower, fast=False))
    assert [r["next_index"] for r in slow] == [8, 7, 6]


def test_a_follower_reports_where_its_conflicting_term_starts() -> None:
    """The follower's half: the term of its entry at prevLogIndex, and the first index it holds with it."""
    c = lone_follower(seed=3)
    try:
        replies = inject(c, append(2, 9, commit=1, term=2),
                         AppendEntriesRequest(LEADER, term=3, prev_log_entry=7, prev_log_term=3, entries=[],
                                              leader_commit_index=1),
                         AppendEntriesRequest(LEADER, term=3, prev_log_entry=20, prev_log_term=3, entries=[],
                                              leader_commit_index=1))
        c.run_for(0.1)
        first, conflict, short = (r.response for r in replies.answers)
        assert first.success
        assert (conflict.success, conflict.conflict_term, conflict.conflict_index) == (False, 2, 2)
        assert (short.success, short.conflict_term, short.conflict_index) == (False, 0, 10)
    finally:
        c.dispose()


# -- message loss: how the leader tells a lost answer from a late one ----------------------------


def test_round_trip_estimate_follows_rfc_6298() -> None:
    """The heartbeat deadline is SRTT + 4 RTTVAR, clamped between a heartbeat period and half the lease."""
    rt = RoundTrip()
    rt.sample(0.040)
    assert (rt.average, rt.deviation, rt.timeout()) == pytest.approx((0.040, 0.020, 0.120))
    rt.sample(0.020)
    assert (rt.average, rt.deviation) == pytest.approx((0.0375, 0.02))
    conf = Config()  # heartbeat 1 s (period 0.1 s), lease 0.5 s
    assert heartbeat_deadline(conf) == 0.25  # nothing measured yet: half the lease
    assert heartbeat_deadline(conf, rt) == pytest.approx(0.1175)
    fast, slow = RoundTrip(), RoundTrip()
    fast.sample(0.002)
    slow.sample(0.3)
    assert heartbeat_deadline(conf, fast) == 0.1  # never less than a heartbeat period
    assert heartbeat_deadline(conf, slow) == 0.25  # never more than half the lease


def test_after_a_lost_heartbeat_answer_the_next_heartbeat_goes_out_after_the_backoff(make: Make) -> None:
    """A heartbeat answer that does not come within the deadline is retried after the backoff, not a period later.

    Before: deadline (0.25 s) + backoff + a heartbeat period (0.1-0.2 s) between
    two tries, so two lost answers in a row silenced the follower for longer
    than the 0.5 s lease.
    """
    c = make(3, seed=3)
    c.run_until(lambda c: c.leader() is not None)
    c.run_for(2.0)
    leader = c.leader()
    assert leader is not None
    follower = c.followers()[0]
    c.network.set_faults(LinkFaults(loss=1.0), src=follower, dst=leader)  # every answer from it is lost
    c.run_for(0.6)
    failed = [e.t for e in c.events.of_kind("heartbeat_failed") if e["peer"] == follower]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(failed)]
    # deadline 0.1 s (a heartbeat period: the measured round trip is shorter) + backoff 10, 10, 10, 20 ms
    assert gaps[:4] == [0.11, 0.11, 0.11, 0.12]


def test_replication_backoff_ends_when_heartbeats_reach_the_follower_again(make: Make) -> None:
    """After a long partition a follower catches up at the next heartbeat, not when a 10 s backoff ends.

    In Go each failed AppendEntries doubles the replicator's wait, up to
    10.24 s, whatever the heartbeats say.
    """
    c = make(3, seed=5)
    c.run_until(lambda c: c.leader() is not None)
    leader = c.leader()
    assert leader is not None
    follower = c.followers()[0]
    c.disconnect(follower)
    for i in range(5):
        c.apply(b"while cut off %d" % i)
    c.run_for(40.0)  # the replicator fails again and again, its backoff growing to 10 s
    c.connect(follower)
    reconnected = c.now
    target = c.node(leader).last_index()
    c.run_until(lambda c: c.node(follower).last_index() >= target, timeout=10)
    # The next heartbeat (every 0.1-0.2 s) finds it, and replication resumes at once; before, 1.4 s here.
    assert c.now - reconnected < 0.5
