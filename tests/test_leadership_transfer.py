"""Leadership transfer and configuration reload, ported from raft_test.go.

Paper: Thesis §3.10 (leadership transfer: catch the target up, then TimeoutNow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from raft.api import new_raft
from raft.config import Config, ReloadableConfig
from raft.configuration import (
    Configuration,
    ConfigurationChangeCommand,
    ConfigurationChangeRequest,
    Server,
    ServerSuffrage,
)
from raft.errors import (
    ConfigError,
    ErrLeadershipLost,
    ErrLeadershipTransferInProgress,
    ErrNotLeader,
    ErrRaftShutdown,
)
from raft.future import ConfigurationChangeFuture
from raft.inmem_snapshot import InmemSnapshotStore
from raft.inmem_store import InmemStore
from raft.inmem_transport import InmemTransport
from raft.raft import LeaderState
from raft.replication import FollowerReplication
from raft.runtime.channels import Chan
from raft.runtime.virtual_loop import VirtualTimeLoop
from raft.sim import Cluster
from raft.state import RaftState
from raft.testing import MockFSM, inmem_config

Make = Callable[..., Cluster]


def bare_node(loop: VirtualTimeLoop, local_id: str = "z") -> object:
    """A node that is built but never started, for poking at leader-only helpers."""
    conf = replace(inmem_config(local_id), skip_startup=True)
    store = InmemStore()
    return new_raft(conf, MockFSM(), store, store, InmemSnapshotStore(), InmemTransport(local_id), loop=loop)


def test_leadership_transfer_in_progress() -> None:
    """The in-progress flag starts false after leader setup and follows what is set."""
    loop = VirtualTimeLoop()
    r = bare_node(loop)
    r.setup_leader_state()  # type: ignore[attr-defined]
    assert r.get_leadership_transfer_in_progress() is False  # type: ignore[attr-defined]
    r.set_leadership_transfer_in_progress(True)  # type: ignore[attr-defined]
    assert r.get_leadership_transfer_in_progress() is True  # type: ignore[attr-defined]
    r.set_leadership_transfer_in_progress(False)  # type: ignore[attr-defined]
    assert r.get_leadership_transfer_in_progress() is False  # type: ignore[attr-defined]
    loop.close()


@pytest.mark.parametrize(("next_indexes", "expected"), [
    ({}, None),
    ({"z": 11, "a": 9}, "a"),
    ({"z": 11, "a": 9, "b": 8}, "a"),
    ({"z": 11, "c": 9, "b": 8, "a": 8}, "c"),
    ({"z": 11, "a": 7, "b": 11, "c": 8}, "b"),
])
def test_leadership_transfer_pick_server(next_indexes: dict[str, int], expected: str | None) -> None:
    """pick_server chooses the voter (never ourselves) with the highest nextIndex."""
    loop = VirtualTimeLoop()
    r = bare_node(loop, "z")
    servers = [Server(ServerSuffrage.Voter, i, i) for i in next_indexes]
    r.configurations.latest = Configuration(servers)  # type: ignore[attr-defined]
    state = LeaderState()
    for server in servers:
        state.repl_state[server.id] = FollowerReplication(server, None, 1, next_indexes[server.id],  # type: ignore[arg-type]
                                                          0.0, Chan(1))
    r.leader_state = state  # type: ignore[attr-defined]
    picked = r.pick_server()  # type: ignore[attr-defined]
    assert (picked.id if picked else None) == expected
    loop.close()


def test_leadership_transfer(make: Make) -> None:
    """A transfer on three nodes moves leadership to another node."""
    c = make(3)
    old = c.wait_leader()
    assert c.wait(c.node(old).leadership_transfer()) is None
    new = c.wait_leader()
    assert new != old
    assert [e for e in c.events if e.kind == "transfer" and e["phase"] == "started" and e.node == old]


def test_leadership_transfer_with_one_node(make: Make) -> None:
    """A lone node has nobody to hand over to: "cannot find peer"."""
    c = make(1)
    err = c.wait(c.node(c.wait_leader()).leadership_transfer())
    assert err is not None and "cannot find peer" in str(err)


def test_leadership_transfer_with_writes(make: Make) -> None:
    """Under a steady stream of writes on 7 nodes, the transfer reaches the chosen follower (#581)."""
    c = make(7, config=inmem_config(""))
    leader = c.wait_leader()
    writes = {"ok": 0}
    unexpected: list[BaseException] = []

    async def writer() -> None:
        current = leader
        while True:
            try:
                err = await c.node(current).apply(b"test").error()
            except RuntimeError:  # the node we wrote to is gone
                return
            if isinstance(err, ErrRaftShutdown):
                return
            if isinstance(err, ErrNotLeader):
                current = c.leader() or current
            elif err is None:
                writes["ok"] += 1
            elif not isinstance(err, ErrLeadershipTransferInProgress | ErrLeadershipLost):
                unexpected.append(err)
            await asyncio.sleep(0.001)

    task = c.loop.create_task(writer())
    target = c.followers()[0]
    assert c.wait(c.node(leader).leadership_transfer_to_server(target, target)) is None
    assert c.wait_leader() == target
    task.cancel()
    assert unexpected == []
    assert writes["ok"] > 0


def test_leadership_transfer_with_seven_nodes(make: Make) -> None:
    """Among seven, leadership goes to exactly the follower named."""
    c = make(7)
    leader = c.node(c.wait_leader())
    target = c.followers()[-1]
    assert c.wait(leader.leadership_transfer_to_server(target, target)) is None
    assert c.wait_leader() == target


def test_leadership_transfer_to_invalid_id(make: Make) -> None:
    """A target that is not a member: "cannot find replication state"."""
    c = make(3)
    err = c.wait(c.node(c.wait_leader()).leadership_transfer_to_server("awesome_peer", "awesome_address"))
    assert err is not None and "cannot find replication state" in str(err)


def test_leadership_transfer_to_invalid_address(make: Make) -> None:
    """A member at an address nobody answers: "failed to make TimeoutNow RPC"."""
    c = make(3)
    follower = c.followers()[0] if c.wait_leader() else ""
    err = c.wait(c.node(c.wait_leader()).leadership_transfer_to_server(follower, "localhost"))
    assert err is not None and "failed to make TimeoutNow RPC" in str(err)


def test_leadership_transfer_to_behind_server(make: Make) -> None:
    """A target that is 1000 entries behind is caught up first, then becomes leader."""
    c = make(3)
    leader = c.node(c.wait_leader())
    behind = c.followers()[0]
    for i in range(1000):
        leader.apply(f"test{i}".encode())
    assert c.wait(leader.leadership_transfer_to_server(behind, behind)) is None
    assert c.wait_leader() == behind


def test_leadership_transfer_to_itself(make: Make) -> None:
    """Transferring to oneself is refused at once."""
    c = make(3)
    leader = c.node(c.wait_leader())
    err = c.wait(leader.leadership_transfer_to_server(leader.local_id, leader.local_addr))
    assert err is not None and "cannot transfer leadership to itself" in str(err)


def test_leadership_transfer_leader_rejects_client_requests(make: Make) -> None:
    """While a transfer is in progress the leader refuses writes, barriers and changes."""
    c = make(3)
    leader = c.node(c.wait_leader())
    leader.set_leadership_transfer_in_progress(True)
    request = ConfigurationChangeFuture(ConfigurationChangeRequest(ConfigurationChangeCommand.AddVoter, "", ""),
                                        leader.shutdown_ch)
    leader.go_func(leader.request_config_change(request, 0.1))
    futures = [leader.add_nonvoter("", ""), leader.add_voter("", ""), leader.apply(b"test"), leader.barrier(),
               leader.demote_voter(""), request, leader.leadership_transfer()]
    for future in futures:
        assert isinstance(c.wait(future), ErrLeadershipTransferInProgress)
    assert isinstance(c.wait(leader.leadership_transfer_to_server("", "")), ErrLeadershipTransferInProgress)


def test_leadership_transfer_leader_replication_timeout(make: Make) -> None:
    """If the target cannot be caught up within ElectionTimeout, the transfer fails with a timeout.

    Go's test only hopes for this; in virtual time catching up takes time,
    so with an ElectionTimeout of 1 ns the timeout is certain.
    """
    c = make(3)
    leader = c.node(c.wait_leader())
    behind = c.followers()[0]
    for i in range(10000):
        leader.apply(f"test{i}".encode())
    leader.conf = replace(leader.conf, election_timeout=1e-9)
    err = c.wait(leader.leadership_transfer_to_server(behind, behind))
    assert err is not None and "leadership transfer timeout" in str(err)


def test_leadership_transfer_ignores_nonvoters(make: Make) -> None:
    """A demoted follower is no candidate for a transfer: "cannot find peer"."""
    c = make(2)
    leader = c.node(c.wait_leader())
    follower = c.followers()[0]
    assert c.wait(leader.demote_voter(follower)) is None
    err = c.wait(leader.leadership_transfer())
    assert err is not None and "cannot find peer" in str(err)


def test_leadership_transfer_stop_right_away() -> None:
    """With its stop channel already closed, the transfer worker reports success and sends nothing."""
    loop = VirtualTimeLoop()
    r = bare_node(loop, "z")
    r.setup_leader_state()  # type: ignore[attr-defined]
    stop: Chan[bool] = Chan(0)
    done: Chan[object] = Chan(1)
    stop.close()
    repl = FollowerReplication(Server(ServerSuffrage.Voter, "a", "a"), None, 1, 1, 0.0, Chan(1))  # type: ignore[arg-type]
    loop.run_until_complete(r.run_leadership_transfer("a", "", repl, stop, done))  # type: ignore[attr-defined]
    assert done.try_recv() == (None, True)
    loop.close()


def test_transfer_target_skips_pre_vote_and_overrides_sticky_leaders(make: Make) -> None:
    """TimeoutNow makes the target stand at once, without a pre-vote, with the transfer flag on its RequestVote."""
    c = make(5)
    leader = c.node(c.wait_leader())
    target = c.followers()[0]
    start = c.now
    assert c.wait(leader.leadership_transfer_to_server(target, target)) is None
    elections = [e for e in c.events.since(start) if e.kind == "election" and e.node == target]
    assert elections and elections[0]["phase"] == "vote", "a transfer candidacy skips the pre-vote"
    granted = [e for e in c.events.since(start) if e.kind == "vote" and e["candidate"] == target and e["granted"]]
    assert len(granted) >= 2


def test_reload_config(make: Make) -> None:
    """reload_config changes all five reloadable settings."""
    conf = inmem_config("")
    conf.leader_lease_timeout = 0.040
    c = make(1, config=conf)
    r = c.node("n1")
    assert (r.config().trailing_logs, r.config().snapshot_interval, r.config().snapshot_threshold) == (10240, 120, 8192)
    new = ReloadableConfig(trailing_logs=12345, snapshot_interval=234, snapshot_threshold=6789,
                           heartbeat_timeout=0.045, election_timeout=0.046)
    r.reload_config(new)
    assert r.reloadable_config() == new


def test_reload_config_validates(make: Make) -> None:
    """An invalid reload raises ConfigError and changes nothing."""
    c = make(1, config=inmem_config(""))
    r = c.node("n1")
    before = r.config()
    with pytest.raises(ConfigError):
        r.reload_config(ReloadableConfig(trailing_logs=12345, snapshot_interval=0.001, snapshot_threshold=6789,
                                         heartbeat_timeout=0, election_timeout=0))
    assert r.config() == before


def test_run_follower_reload_timeout_configs() -> None:
    """Shrinking the heartbeat timeout of a running follower takes effect at once (it becomes a candidate)."""
    loop = VirtualTimeLoop()
    conf = Config(local_id="first", heartbeat_timeout=0.5, election_timeout=0.5, leader_lease_timeout=0.05,
                  commit_timeout=0.005, snapshot_threshold=100, trailing_logs=10, skip_startup=True)
    store = InmemStore()
    r = new_raft(conf, MockFSM(), store, store, InmemSnapshotStore(), InmemTransport("first"), loop=loop)
    r.set_latest_configuration(Configuration([Server(ServerSuffrage.Voter, "first", "first")]), 1)
    r.set_state(RaftState.Follower)
    task = loop.create_task(r.run_follower())
    r.reload_config(ReloadableConfig(trailing_logs=10, snapshot_interval=conf.snapshot_interval,
                                     snapshot_threshold=100, heartbeat_timeout=0.05, election_timeout=0.05))
    loop.run_until_complete(asyncio.sleep(3 * 0.05))
    assert r.get_state() == RaftState.Candidate
    task.cancel()
    loop.close()
