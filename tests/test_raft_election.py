"""Leader election, ported from hashicorp's raft_test.go (names in snake_case).

Paper: §5.2 (leader election), §5.4.1 (election restriction); Thesis §9.6 (pre-vote).
Each test runs in virtual time with hashicorp's default timeouts unless it says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raft.api import has_existing_state, new_raft
from raft.commands import RequestPreVoteRequest, RequestVoteRequest, RPCHeader
from raft.config import Config, ProtocolVersionMax
from raft.configuration import Configuration, Server, ServerSuffrage
from raft.errors import ErrCantBootstrap, ErrNotVoter, ErrRaftShutdown, TransportError
from raft.inmem_snapshot import InmemSnapshotStore
from raft.inmem_store import InmemStore
from raft.inmem_transport import InmemTransport
from raft.runtime.channels import Chan
from raft.runtime.virtual_loop import VirtualTimeLoop
from raft.sim import Cluster
from raft.state import RaftState
from raft.testing import MockFSM, inmem_config

Make = Callable[..., Cluster]


def voters(*ids: str) -> Configuration:
    return Configuration([Server(ServerSuffrage.Voter, i, i) for i in ids])


def test_start_stop(make: Make) -> None:
    """A one-node cluster starts, elects itself and shuts down cleanly."""
    c = make(1)
    assert c.wait_leader() == "n1"
    c.close()
    assert c.node("n1").state() == RaftState.Shutdown
    assert len(c.node("n1").routines_group) == 0


def test_after_shutdown(make: Make) -> None:
    """After shutdown every client call answers ErrRaftShutdown, and shutdown is idempotent."""
    c = make(1)
    c.wait_leader()
    c.close()
    r = c.node("n1")
    for future in (r.apply(b""), r.add_voter("id", "addr"), r.add_nonvoter("id", "addr"),
                   r.remove_server("id"), r.demote_voter("id"), r.snapshot(), r.barrier(), r.verify_leader()):
        assert isinstance(c.wait(future), ErrRaftShutdown)
    assert c.run_coro(r.shutdown().error()) is None


def test_live_bootstrap(make: Make) -> None:
    """Bootstrapping one running, empty node of three elects a leader; a second bootstrap fails."""
    c = make(3, bootstrap=False)
    c.run_for(5)
    assert c.leader() is None, "nobody may stand for election without a configuration"
    configuration = voters(*c.ids)
    assert c.wait(c.node("n1").bootstrap_cluster(configuration)) is None
    leader = c.wait_leader()
    c.ensure_leader(leader)
    c.apply(b"test")
    c.wait_for_replication(1)
    assert isinstance(c.wait(c.node("n1").bootstrap_cluster(configuration)), ErrCantBootstrap)


def test_live_bootstrap_from_non_voter(make: Make) -> None:
    """A node may not bootstrap a configuration in which it is not a voter."""
    c = make(2, bootstrap=False)
    configuration = Configuration([Server(ServerSuffrage.Nonvoter, "n1", "n1"),
                                   Server(ServerSuffrage.Voter, "n2", "n2")])
    assert isinstance(c.wait(c.node("n1").bootstrap_cluster(configuration)), ErrNotVoter)


def test_has_existing_state(make: Make) -> None:
    """A fresh node has no state; once bootstrapped it has (the bootstrap half of the Go test)."""
    c = make(1, bootstrap=False)
    handle = c.handles["n1"]
    assert not has_existing_state(handle.store, handle.store, handle.snapshots)
    assert c.wait(c.node("n1").bootstrap_cluster(voters("n1"))) is None
    assert has_existing_state(handle.store, handle.store, handle.snapshots)


def test_triple_node_election(make: Make) -> None:
    """Three nodes elect exactly one leader; the other two follow it."""
    c = make(3)
    leader = c.wait_leader()
    assert sorted(c.followers()) == sorted(i for i in c.ids if i != leader)
    c.ensure_leader(leader)


def test_voting_grant_when_leader_available(make: Make) -> None:
    """A follower votes for its own leader's candidacy, refuses another candidate, unless it is a transfer."""
    c = make(3)
    ldr = c.node(c.wait_leader())
    f0, f1 = c.followers()
    req = RequestVoteRequest(ldr.get_rpc_header(), term=ldr.current_term() + 10,
                             last_log_index=ldr.last_index(), last_log_term=ldr.current_term())
    resp = c.run_coro(ldr.trans.request_vote(f0, f0, req))
    assert resp.granted, "a follower must grant a vote to the leader it knows"

    req.header = RPCHeader(3, f0, f0)  # now the candidate claims to be f0
    resp = c.run_coro(ldr.trans.request_vote(f1, f1, req))
    assert not resp.granted, "a follower that still has a leader refuses other candidates"

    req.leadership_transfer = True
    resp = c.run_coro(ldr.trans.request_vote(f1, f1, req))
    assert resp.granted, "a leadership transfer overrides the sticky-leader rule"


def test_pre_vote_should_not_reject_leader(make: Make) -> None:
    """A follower grants a pre-vote to the node it believes is leader (hashicorp #605)."""
    c = make(3)
    leader = c.node(c.wait_leader())
    follower = c.node(c.followers()[0])
    assert follower.leader_with_id() == (leader.local_addr, leader.local_id)
    req = RequestPreVoteRequest(leader.get_rpc_header(), term=leader.current_term() + 1,
                                last_log_index=leader.last_index(), last_log_term=leader.current_term())
    resp = c.run_coro(leader.trans.request_pre_vote(follower.local_id, follower.local_addr, req))
    assert resp.granted


def test_pre_vote_should_reject_non_leader(make: Make) -> None:
    """A follower with a known leader refuses another node's pre-vote."""
    c = make(3)
    c.wait_leader()
    follower, other = (c.node(i) for i in c.followers())
    assert follower.leader() != other.local_addr
    req = RequestPreVoteRequest(other.get_rpc_header(), term=other.current_term() + 1,
                                last_log_index=other.last_index(), last_log_term=other.current_term())
    resp = c.run_coro(other.trans.request_pre_vote(follower.local_id, follower.local_addr, req))
    assert not resp.granted


def test_pre_vote_avoid_election_with_partition(make: Make) -> None:
    """An isolated follower with pre-vote does not inflate terms; healing it does not depose the leader."""
    c = make(5, config=inmem_config(""))
    leader = c.wait_leader()
    old_term = c.node(leader).current_term()
    isolated = c.followers()[0]
    c.partition([isolated])
    c.run_for(10 * (2 * 0.050 + 0.005))
    assert c.leader() == leader and c.node(leader).current_term() == old_term
    assert c.node(isolated).current_term() == old_term, "pre-vote keeps the isolated node's term"
    c.full_connect()
    c.run_for(3 * (2 * 0.050 + 0.005))
    assert c.leader() == leader
    assert len(c.followers()) == 4
    assert c.node(leader).current_term() == old_term


def test_without_pre_vote_isolated_node_inflates_its_term(make: Make) -> None:
    """Contrast: with pre-vote disabled, an isolated follower keeps raising its term (the disruptive server)."""
    c = make(5, config=Config(pre_vote_disabled=True))
    c.wait_leader()
    isolated = c.followers()[0]
    before = c.node(isolated).current_term()
    c.partition([isolated])
    c.run_for(10)
    assert c.node(isolated).current_term() > before + 2


def test_protocol_version_reject_rpc(make: Make) -> None:
    """A request with a protocol version we cannot speak is refused with a "protocol version" error."""
    c = make(3)
    ldr = c.node(c.wait_leader())
    follower = c.followers()[0]
    for version in (ProtocolVersionMax + 1, ProtocolVersionMax - 2):
        req = RequestVoteRequest(RPCHeader(version, ldr.local_id, ldr.local_addr), term=ldr.current_term() + 10,
                                 last_log_index=ldr.last_index(), last_log_term=ldr.current_term())
        with pytest.raises(TransportError, match="protocol version"):
            c.run_coro(ldr.trans.request_vote(follower, follower, req))


@pytest.mark.parametrize(("servers", "expected"), [
    ([Server(ServerSuffrage.Nonvoter, "first", "first")], RaftState.Follower),
    ([Server(ServerSuffrage.Voter, "first", "first")], RaftState.Candidate),
    ([Server(ServerSuffrage.Voter, "second", "second")], RaftState.Follower),
], ids=["NonVoter", "Voter", "NotInConfig"])
def test_run_follower_state_transition(servers: list[Server], expected: RaftState) -> None:
    """After a heartbeat timeout only a voter of the configuration becomes a candidate (#483)."""
    loop = VirtualTimeLoop()
    conf = inmem_config("first")
    conf.skip_startup = True
    store = InmemStore()
    r = new_raft(conf, MockFSM(), store, store, InmemSnapshotStore(), InmemTransport("first"), loop=loop)
    r.set_latest_configuration(Configuration(servers), 1)
    r.set_state(RaftState.Follower)
    task = loop.create_task(r.run_follower())
    loop.run_until_complete(_sleep(3 * conf.heartbeat_timeout))
    assert r.get_state() == expected
    task.cancel()
    loop.close()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def test_follower_removal_no_election(make: Make) -> None:
    """Restarting a follower from its stores causes no election: the leader stays leader."""
    c = make(3, config=Config(heartbeat_timeout=0.1, election_timeout=0.1, leader_lease_timeout=0.05,
                               commit_timeout=0.005))
    leader = c.wait_leader()
    follower = c.followers()[0]
    term = c.node(leader).current_term()
    c.crash(follower)
    c.restart(follower)
    start = c.now
    c.run_for(0.250)
    assert not [e for e in c.events.since(start) if e.kind == "state" and e["state"] == "candidate"]
    assert c.leader() == leader and c.node(leader).current_term() == term
    c.ensure_leader(leader)


def test_leader_id_propagated(make: Make) -> None:
    """Every node learns the leader's ID and address, and commands still replicate."""
    c = make(3, config=inmem_config(""))
    leader = c.wait_leader()
    for r in c.rafts():
        assert r.protocol_version == 3
        assert r.leader_with_id() == (leader, leader)
    for i in range(5):
        c.apply(f"test{i}".encode())
    c.ensure_same()
    c.ensure_leader(leader)


def test_notify_ch() -> None:
    """Config.notify_ch receives True on election and False on shutdown."""
    ch: Chan[bool] = Chan(1)
    c = Cluster(1, configs={"n1": Config(notify_ch=ch)})
    c.run_until(lambda c: len(ch) > 0)
    assert ch.try_recv() == (True, True)
    c.close()
    assert ch.try_recv() == (False, True)
    c.loop.close()


def test_leader_ch_reports_the_newest_value(make: Make) -> None:
    """leader_ch holds only the latest leadership state, as hashicorp #384 requires."""
    c = make(1)
    c.wait_leader()
    r = c.node("n1")
    assert r.leader_ch.try_recv() == (True, True)
    c.close()
    assert r.leader_ch.try_recv() == (False, True)


def test_stats_report_hashicorp_keys(make: Make) -> None:
    """stats() has hashicorp's keys with sensible values for a leader and a follower."""
    c = make(3)
    leader = c.wait_leader()
    s = c.node(leader).stats()
    assert s["state"] == "Leader" and s["last_contact"] == "0" and s["num_peers"] == "2"
    assert s["term"] == str(c.node(leader).current_term())
    follower_stats = c.node(c.followers()[0]).stats()
    assert follower_stats["state"] == "Follower" and follower_stats["last_contact"].endswith("s")
    for key in ("last_log_index", "last_log_term", "commit_index", "applied_index", "fsm_pending",
                "last_snapshot_index", "protocol_version", "latest_configuration_index", "latest_configuration"):
        assert key in s


def test_observer_sees_state_and_leader_changes(make: Make) -> None:
    """A registered observer receives the RaftState and LeaderObservation values."""
    from raft.observer import LeaderObservation, Observer

    c = make(1, bootstrap=False)
    r = c.node("n1")
    ch: Chan[object] = Chan(64)
    observer = Observer(ch, blocking=False)  # type: ignore[arg-type]
    r.register_observer(observer)
    c.wait(r.bootstrap_cluster(voters("n1")))
    c.wait_leader()
    seen = []
    while True:
        item, ok = ch.try_recv()
        if not ok:
            break
        seen.append(item.data)  # type: ignore[attr-defined]
    assert RaftState.Candidate in seen and RaftState.Leader in seen
    assert LeaderObservation("n1", "n1") in seen
    assert observer.get_num_observed() == len(seen) and observer.get_num_dropped() == 0
    r.deregister_observer(observer)
