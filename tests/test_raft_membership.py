"""Membership changes, ported from hashicorp's raft_test.go (names in snake_case).

Paper: §6; Thesis §4.1–4.2 (single-server changes: a configuration takes effect
when appended, at most one is uncommitted at a time).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from raft.api import get_configuration, has_existing_state
from raft.commands import RequestVoteRequest
from raft.config import Config
from raft.configuration import Configuration, ServerSuffrage, has_vote
from raft.errors import ConfigError, ErrLeadershipLost, ErrNotLeader
from raft.future import ConfigurationsFuture
from raft.sim import Cluster
from raft.state import RaftState
from raft.testing import MockFSM, MockFSMConfigStore, inmem_config

Make = Callable[..., Cluster]


def members(configuration: Configuration) -> list[tuple[str, ServerSuffrage]]:
    return sorted((s.id, s.suffrage) for s in configuration.servers)


def latest(c: Cluster, node_id: str) -> Configuration:
    return c.node(node_id).get_configuration().configuration()


def committed(c: Cluster, node_id: str) -> tuple[Configuration, int]:
    """The committed configuration, read through the main loop (Go's configurationsCh)."""
    future = ConfigurationsFuture()
    node = c.node(node_id)
    c.run_coro(node._enqueue(node.configurations_ch, future, 0))
    assert c.wait(future) is None
    return future.configurations.committed, future.configurations.committed_index


def test_join_node(make: Make) -> None:
    """An empty server added with add_voter catches up and everyone agrees on three members."""
    c = make(2)
    leader = c.node(c.wait_leader())
    c.apply(b"first")
    c.add_node("n3")
    assert c.wait(leader.add_voter("n3", "n3")) is None
    c.ensure_same()
    c.run_until(lambda c: all(len(latest(c, i).servers) == 3 for i in c.ids))
    assert c.fsm("n3").logs == [b"first"]
    c.ensure_leader(leader.local_id)


def test_join_node_config_store(make: Make) -> None:
    """A ConfigurationStore FSM on every node records the 1-, 2- and 3-server configurations in order."""
    c = make(1, fsm_factory=MockFSMConfigStore)
    leader = c.node(c.wait_leader())
    for node_id in ("n2", "n3"):
        c.add_node(node_id)
        assert c.wait(leader.add_voter(node_id, node_id)) is None
    c.run_until(lambda c: all(len(c.fsm(i).configurations) == 3 for i in c.ids))
    for node_id in c.ids:
        assert [len(cfg.servers) for cfg in c.fsm(node_id).configurations] == [1, 2, 3]


def test_has_existing_state_after_join(make: Make) -> None:
    """A node has no state before it joins and has state after add_voter (the full Go test)."""
    c = make(2)
    leader = c.node(c.wait_leader())
    c.add_node("n3")
    handle = c.handles["n3"]
    assert not has_existing_state(handle.store, handle.store, handle.snapshots)
    assert c.wait(leader.add_voter("n3", "n3")) is None
    c.ensure_same()
    c.run_until(lambda c: has_existing_state(handle.store, handle.store, handle.snapshots))


def test_remove_follower(make: Make) -> None:
    """After a follower is removed the others list two servers; the removed one stays a follower."""
    c = make(3)
    leader = c.node(c.wait_leader())
    removed, other = c.followers()
    assert c.wait(leader.remove_server(removed)) is None
    c.run_until(lambda c: len(latest(c, other).servers) == 2)
    assert len(latest(c, leader.local_id).servers) == 2
    c.run_for(3)
    assert c.node(removed).state() == RaftState.Follower
    assert c.leader() == leader.local_id


def test_remove_leader(make: Make) -> None:
    """A leader that removes itself steps down once the change commits, shuts down, and a new leader rises."""
    c = make(3)
    leader = c.node(c.wait_leader())
    assert c.wait(leader.remove_server(leader.local_id)) is None
    c.run_until(lambda c: c.leader() not in (None, leader.local_id))
    assert leader.state() == RaftState.Shutdown
    new_leader = c.leader()
    assert new_leader is not None
    assert len(latest(c, new_leader).servers) == 2


def test_remove_leader_no_shutdown(make: Make) -> None:
    """With ShutdownOnRemove false, a removed leader refuses later commands and becomes a voteless follower."""
    conf = inmem_config("")
    conf.shutdown_on_remove = False
    c = make(3, config=conf)
    leader = c.node(c.wait_leader())
    for i in range(100):
        if i == 80:
            assert c.wait(leader.remove_server(leader.local_id)) is None
        future = leader.apply(bytes([i]))
        if i > 80:
            assert isinstance(c.wait(future), ErrNotLeader)
    new_leader = c.wait_leader()
    assert new_leader != leader.local_id
    for node_id in (new_leader, leader.local_id):
        configuration = latest(c, node_id)
        assert len(configuration.servers) == 2
        assert not has_vote(configuration, leader.local_id)
    assert leader.state() == RaftState.Follower
    c.ensure_same()


def test_remove_follower_split_cluster(make: Make) -> None:
    """With two of four servers partitioned away, removing a third cannot commit."""
    c = make(4, config=inmem_config(""))
    leader = c.node(c.wait_leader())
    followers = c.followers()
    c.partition(followers[:2])
    future = leader.remove_server(followers[2])
    assert c.wait(future) is not None, "a change without a reachable majority must not succeed"


def test_add_known_peer(make: Make) -> None:
    """Adding a voter that is already a voter writes a new entry but leaves the configuration unchanged."""
    c = make(3)
    leader = c.wait_leader()
    before, before_index = committed(c, leader)
    follower = c.followers()[0]
    assert c.wait(c.node(leader).add_voter(follower, follower)) is None
    after, after_index = committed(c, leader)
    assert after_index > before_index
    assert after == before


def test_remove_unknown_peer(make: Make) -> None:
    """Removing a server that is not a member writes a new entry and changes nothing."""
    c = make(3)
    leader = c.wait_leader()
    before, before_index = committed(c, leader)
    assert c.wait(c.node(leader).remove_server("nobody")) is None
    after, after_index = committed(c, leader)
    assert after_index > before_index and after == before


def test_configuration_change_is_validated(make: Make) -> None:
    """A change that would leave no voter is refused with a ConfigError and nothing is written."""
    c = make(1)
    leader = c.node(c.wait_leader())
    last = leader.last_index()
    assert isinstance(c.wait(leader.remove_server("n1")), ConfigError)
    assert leader.last_index() == last


def test_stale_prev_index_is_refused(make: Make) -> None:
    """A change conditioned on an outdated configuration index fails (optimistic concurrency)."""
    c = make(3)
    leader = c.node(c.wait_leader())
    _, index = committed(c, leader.local_id)
    assert c.wait(leader.remove_server("nobody", prev_index=index)) is None
    err = c.wait(leader.remove_server("nobody", prev_index=index))
    assert isinstance(err, ConfigError) and "configuration changed since" in str(err)


def test_rejoin_follower(make: Make) -> None:
    """A removed follower (ShutdownOnRemove off) can be added back, and the cluster settles with three."""
    conf = inmem_config("")
    conf.shutdown_on_remove = False
    c = make(3, config=conf)
    leader = c.node(c.wait_leader())
    follower, other = c.followers()
    assert c.wait(leader.remove_server(follower)) is None
    c.run_until(lambda c: len(latest(c, other).servers) == 2)
    leader_id = c.wait_leader()
    err = c.wait(c.node(leader_id).add_voter(follower, follower))
    assert err is None or isinstance(err, ErrLeadershipLost)
    leader_id = c.wait_leader()
    c.run_until(lambda c: len(latest(c, leader_id).servers) == 3 and len(latest(c, other).servers) == 3)
    assert c.node(follower).state() == RaftState.Follower


def test_vote_not_granted_when_node_not_in_cluster(make: Make) -> None:
    """A removed server's vote request with a higher term is refused, even by a candidate (#526)."""
    c = make(3)
    leader = c.node(c.wait_leader())
    removed, follower = c.followers()
    assert c.wait(leader.remove_server(removed)) is None
    c.run_until(lambda c: len(latest(c, follower).servers) == 2)
    removed_node = c.node(removed)
    req = RequestVoteRequest(removed_node.get_rpc_header(), term=removed_node.current_term() + 10,
                             last_log_index=removed_node.last_index(), last_log_term=removed_node.current_term())
    c.partition([leader.local_id])
    c.run_until(lambda c: c.node(follower).state() == RaftState.Candidate)
    resp = c.run_coro(removed_node.trans.request_vote(follower, follower, req))
    assert not resp.granted


def test_cluster_can_regain_stability_when_non_voter_with_higher_term_joins(make: Make) -> None:
    """A node removed, given a far higher term and re-added as a nonvoter never leads; the cluster recovers (#524)."""
    c = make(3)
    leader = c.node(c.wait_leader())
    removed = c.followers()[0]
    c.disconnect(removed)
    c.run_for(0.3)
    assert c.wait(leader.remove_server(removed)) is None
    new_term = leader.current_term() + 20
    c.node(removed).set_current_term(new_term)
    assert c.wait(leader.add_nonvoter(removed, removed)) is None
    c.full_connect()
    c.run_for(2 * 1.0 + 0.05)
    leader_id = c.wait_leader()
    assert c.node(leader_id).current_term() >= new_term, "the cluster adopts the higher term it saw"
    assert leader_id != removed
    leader = c.node(leader_id)
    for i in range(100):
        assert c.wait(leader.apply(f"test{i}".encode())) is None
    c.wait_for_replication(100)
    assert c.wait(leader.remove_server(removed)) is None
    leader.add_voter(removed, removed)
    c.run_for(10 * (2 * 1.0 + 0.05))
    for i in range(100, 200):
        assert c.wait(c.node(c.wait_leader()).apply(f"test{i}".encode())) is None
    c.wait_for_replication(200)
    assert not [e for e in c.events if e.kind == "state" and e["state"] == "leader" and e.node == removed]


@pytest.mark.parametrize(("pre_vote", "no_pre_vote"), [(2, 3), (3, 2), (1, 2), (2, 1), (3, 0), (0, 3)])
def test_pre_vote_mixed_cluster(pre_vote: int, no_pre_vote: int) -> None:
    """Clusters mixing nodes with and without pre-vote still replace a partitioned leader."""
    majority, minority = max(pre_vote, no_pre_vote), min(pre_vote, no_pre_vote)
    majority_conf = inmem_config("")
    majority_conf.pre_vote_disabled = pre_vote <= no_pre_vote
    minority_conf = inmem_config("")
    minority_conf.pre_vote_disabled = pre_vote >= no_pre_vote
    c = Cluster(majority, seed=pre_vote * 10 + no_pre_vote, config=majority_conf)
    leader = c.node(c.wait_leader())
    for i in range(minority):
        node_id = f"m{i + 1}"
        c.add_node(node_id, config=minority_conf)
        assert c.wait(leader.add_voter(node_id, node_id)) is None
    c.run_for(10 * (2 * 0.050 + 0.005))
    old_leader = c.wait_leader()
    c.partition([old_leader])
    c.run_until(lambda c: any(r.state() == RaftState.Leader and r.local_id != old_leader for r in c.rafts()))
    c.dispose()


def test_get_configuration_no_bootstrap(make: Make) -> None:
    """The top-level get_configuration on a node's stores equals what the running node reports."""
    c = make(2)
    leader = c.node(c.wait_leader())
    c.add_node("n3")
    assert c.wait(leader.add_voter("n3", "n3")) is None
    c.run_until(lambda c: len(latest(c, "n3").servers) == 3)
    for node_id in c.ids:
        handle = c.handles[node_id]
        stored = get_configuration(Config(local_id=node_id), MockFSM(), handle.store, handle.store,
                                   handle.snapshots, handle.transport)
        assert members(stored) == members(latest(c, node_id))


def test_at_most_one_uncommitted_configuration(make: Make) -> None:
    """A second change waits until the first has committed: the leader never has two in flight."""
    c = make(3)
    leader = c.node(c.wait_leader())
    c.add_node("n4")
    c.add_node("n5")
    first = leader.add_voter("n4", "n4")
    second = leader.add_voter("n5", "n5")
    c.run_until(lambda c: first.done and second.done)
    assert c.wait(first) is None and c.wait(second) is None
    latest_changes = [e for e in c.events if e.kind == "configuration" and e.node == leader.local_id
                      and e["which"] == "latest"]
    committed_changes = [e for e in c.events if e.kind == "configuration" and e.node == leader.local_id
                         and e["which"] == "committed"]
    # Each new latest configuration appears only once the one before it is committed.
    for previous, newer in itertools.pairwise(latest_changes):
        assert any(cm["index"] == previous["index"] and cm.t <= newer.t for cm in committed_changes), \
            f"configuration {newer['index']} was appended before {previous['index']} committed"
    assert len(latest(c, leader.local_id).servers) == 5
