"""Snapshots, InstallSnapshot, user snapshot/restore and recovery, ported from raft_test.go.

Paper: §7, Figures 12 and 13.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace

import pytest

from raft.api import recover_cluster
from raft.commands import AppendEntriesRequest
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage
from raft.errors import ErrNothingNewToSnapshot, RaftError, StoreError
from raft.file_snapshot import FileSnapshotStore
from raft.log import Log, LogType
from raft.sim import Cluster
from raft.testing import MockFSM, inmem_config

Make = Callable[..., Cluster]


def conf_with(**changes: object) -> Config:
    return replace(inmem_config(""), **changes)  # type: ignore[arg-type]


def apply_many(c: Cluster, count: int, prefix: str = "test") -> None:
    leader = c.node(c.wait_leader())
    futures = [leader.apply(f"{prefix}{i}".encode()) for i in range(count)]
    assert c.wait(futures[-1]) is None


def test_snapshot_restore(make: Make) -> None:
    """A snapshot trims the log to TrailingLogs, and a restarted node resumes from it (lastApplied = its index)."""
    c = make(1, config=conf_with(trailing_logs=10))
    apply_many(c, 100)
    leader = c.node("n1")
    assert c.wait(leader.snapshot()) is None
    snaps = c.handles["n1"].snapshots.list()
    assert len(snaps) == 1
    assert c.handles["n1"].store.first_index() == snaps[0].index - 10 + 1
    c.crash("n1")
    restarted = c.restart("n1")
    assert restarted.applied_index() == snaps[0].index
    assert len(c.fsm("n1").logs) == 100, "the FSM is rebuilt from the snapshot"


def test_no_restore_on_start(make: Make) -> None:
    """With NoSnapshotRestoreOnStart the new FSM stays empty at start, though the snapshot metadata counts."""
    c = make(1, config=conf_with(trailing_logs=10, no_snapshot_restore_on_start=True))
    apply_many(c, 100)
    assert c.wait(c.node("n1").snapshot()) is None
    index = c.handles["n1"].snapshots.list()[0].index
    c.crash("n1")
    restarted = c.restart("n1")
    assert c.fsm("n1").logs == []
    assert restarted.applied_index() == index


def test_auto_snapshot(make: Make) -> None:
    """Past SnapshotThreshold new entries, a snapshot is taken without being asked."""
    conf = conf_with(trailing_logs=10, snapshot_threshold=50)
    conf.snapshot_interval = conf.commit_timeout * 2
    c = make(1, config=conf)
    apply_many(c, 100)
    c.run_for(2 * 0.050 + 0.005)
    assert c.handles["n1"].snapshots.list()
    assert [e for e in c.events if e.kind == "snapshot_taken"]


def test_user_snapshot(make: Make) -> None:
    """A user snapshot with nothing applied reports ErrNothingNewToSnapshot; after ten applies it works."""
    c = make(1, config=conf_with(trailing_logs=10, snapshot_threshold=50))
    c.wait_leader()
    leader = c.node("n1")
    assert isinstance(c.wait(leader.snapshot()), ErrNothingNewToSnapshot)
    apply_many(c, 10)
    future = leader.snapshot()
    assert c.wait(future) is None
    meta, reader = future.open()
    assert meta.index == leader.applied_index() and reader.read()
    with pytest.raises(RaftError, match="no snapshot available"):
        future.open()  # usable once, as in Go


def test_send_snapshot_follower(make: Make) -> None:
    """A follower that missed entries now compacted away catches up through InstallSnapshot."""
    c = make(3, config=conf_with(trailing_logs=10))
    c.wait_leader()
    behind = c.followers()[0]
    c.disconnect(behind)
    apply_many(c, 100)
    for raft in c.rafts():
        err = c.wait(raft.snapshot())
        assert err is None or isinstance(err, ErrNothingNewToSnapshot)
    c.full_connect()
    c.ensure_same()
    c.run_until(lambda c: any(e.kind == "snapshot_installed" and e.node == behind for e in c.events), timeout=1)


def test_send_snapshot_and_logs_follower(make: Make) -> None:
    """After the snapshot, the follower also receives the entries written since (snapshot then log)."""
    c = make(3, config=conf_with(trailing_logs=10))
    c.wait_leader()
    behind = c.followers()[0]
    c.disconnect(behind)
    apply_many(c, 100)
    for raft in c.rafts():
        err = c.wait(raft.snapshot())
        assert err is None or isinstance(err, ErrNothingNewToSnapshot)
    apply_many(c, 100, prefix="after")
    c.full_connect()
    c.ensure_same()
    assert len(c.fsm(behind).logs) == 200


@pytest.mark.parametrize("offset", [0, 1, 2, 100, 1000, 10000])
@pytest.mark.parametrize("new_cluster", [False, True], ids=["same-cluster", "new-cluster"])
@pytest.mark.parametrize("monotonic", [False, True], ids=["plain-store", "monotonic-store"])
def test_user_restore(offset: int, new_cluster: bool, monotonic: bool) -> None:
    """Restore burns an index and commits a no-op: lastIndex = max(pre, snapshot)+2, and the FSM is the snapshot's.

    Differs from Go's test in one expectation: followers apply Figure 13 rule
    7, so their log is discarded and starts at the new last index instead of 1.
    """
    conf = conf_with(heartbeat_timeout=0.5, election_timeout=0.5, leader_lease_timeout=0.5)
    c = Cluster(3, seed=offset, config=conf, monotonic_logs=monotonic)
    leader = c.node(c.wait_leader())
    apply_many(c, 10, prefix="test ")
    snapshot = leader.snapshot()
    assert c.wait(snapshot) is None
    apply_many(c, 10, prefix="later ")
    pre_index = leader.get_last_index()
    meta, reader = snapshot.open()
    if new_cluster:
        c.dispose()
        c = Cluster(3, seed=offset + 1, config=conf, monotonic_logs=monotonic)
        leader = c.node(c.wait_leader())
    meta = replace(meta, index=meta.index + offset)
    assert c.wait(leader.restore(meta, reader, timeout=5)) is None
    expected = (pre_index if not new_cluster and meta.index < pre_index else meta.index) + 2
    assert leader.get_last_index() == expected
    c.run_until(lambda c: all(r.last_index() == expected for r in c.rafts()))
    for raft in c.rafts():
        store = c.handles[raft.local_id].store
        first = store.first_index()
        if monotonic or raft is not leader:
            assert first == expected
        else:
            assert first == 1
        assert store.last_index() == expected
    c.ensure_same()
    assert c.fsm(leader.local_id).logs == [f"test {i}".encode() for i in range(10)]
    apply_many(c, 10, prefix="again ")
    c.ensure_same()
    c.dispose()


def test_restore_rejects_a_short_snapshot(make: Make) -> None:
    """A restore whose reader holds fewer bytes than the metadata says fails and changes nothing."""
    c = make(3)
    leader = c.node(c.wait_leader())
    apply_many(c, 3)
    snapshot = leader.snapshot()
    assert c.wait(snapshot) is None
    meta, reader = snapshot.open()
    last = leader.last_index()
    err = c.wait(leader.restore(meta, io.BytesIO(reader.read()[:-1])))
    assert isinstance(err, RaftError) and "size didn't match" in str(err)
    assert leader.last_index() == last


def test_recover_cluster_no_state(make: Make) -> None:
    """recover_cluster refuses a node that has no state: that is probably an operator error."""
    c = make(1, bootstrap=False)
    handle = c.handles["n1"]
    configuration = Configuration([Server(ServerSuffrage.Voter, "n1", "n1")])
    with pytest.raises(RaftError, match="no initial state"):
        recover_cluster(Config(local_id="n1"), MockFSM(), handle.store, handle.store, handle.snapshots,
                        handle.transport, configuration)


@pytest.mark.parametrize("applies", [0, 4, 25])
def test_recover_cluster(applies: int) -> None:
    """After recover_cluster on every stopped node, each has a new snapshot and an empty log; they restart as one."""
    conf = conf_with(trailing_logs=10, snapshot_threshold=5)
    c = Cluster(3, seed=applies, config=conf)
    leader = c.node(c.wait_leader())
    for i in range(applies):
        assert c.wait(leader.apply(f"test{i}".encode())) is None
    configuration = leader.get_configuration().configuration()
    for node_id in c.ids:
        c.crash(node_id)
    for node_id in c.ids:
        handle = c.handles[node_id]
        before = len(handle.snapshots.list())
        recover_cluster(c.config_for(node_id), MockFSM(), handle.store, handle.store, handle.snapshots,
                        handle.transport, configuration)
        assert len(handle.snapshots.list()) >= min(before + 1, 1)  # the in-memory store keeps only the newest
        assert (handle.store.first_index(), handle.store.last_index()) == (0, 0)
    for node_id in c.ids:
        c.restart(node_id)
    c.wait_leader()
    c.ensure_same()
    assert all(len(c.fsm(i).logs) == applies for i in c.ids)
    c.dispose()


def test_restart_every_node_from_its_stores(make: Make) -> None:
    """Crash all nodes after snapshots and more entries; restarted, they rebuild the same FSM state."""
    c = make(3, config=conf_with(trailing_logs=5, snapshot_threshold=20))
    apply_many(c, 60)
    c.ensure_same()
    before = list(c.fsm("n1").logs)
    for node_id in c.ids:
        c.crash(node_id)
    for node_id in c.ids:
        c.restart(node_id)
    leader = c.node(c.wait_leader())
    assert c.wait(leader.barrier()) is None
    c.ensure_same()
    assert c.fsm("n1").logs == before


def test_figure_13_rule_7_a_conflicting_log_is_discarded_after_install(make: Make) -> None:
    """A follower whose entry at the snapshot's last index has another term discards its log (hashicorp #697).

    Without rule 7 the conflicting entry stays, every AppendEntries after the
    snapshot is rejected, and the leader resends the snapshot forever.
    """
    c = make(3, config=conf_with(trailing_logs=2))
    leader = c.node(c.wait_leader())
    behind = c.followers()[0]
    c.disconnect(behind)
    # The isolated follower gets a divergent, uncommitted suffix straight into its log.
    stray = c.node(behind)
    last = stray.last_index()
    stray.logs.store_logs([Log(last + i, 1, LogType.LogCommand, b"stray") for i in range(1, 40)])
    stray.set_last_log(last + 39, 1)
    apply_many(c, 30)
    assert c.wait(leader.snapshot()) is None
    apply_many(c, 5, prefix="after")
    c.full_connect()
    c.ensure_same(timeout=10)
    c.run_for(1)
    installs = [e for e in c.events if e.kind == "snapshot_installed" and e.node == behind]
    assert len(installs) == 1, "one install must be enough: no livelock"
    assert [e for e in c.events if e.kind == "truncate" and e.node == behind and "rule 7" in e.get("reason", "")]
    assert b"stray" not in c.fsm(behind).logs


def test_install_snapshot_keeps_the_log_after_a_matching_entry(make: Make) -> None:
    """Rule 6: when the follower already has the snapshot's last entry, its later entries are kept."""
    c = make(3, config=conf_with(trailing_logs=2))
    leader = c.node(c.wait_leader())
    apply_many(c, 20)
    c.ensure_same()
    follower = c.followers()[0]
    node = c.node(follower)
    assert c.wait(leader.snapshot()) is None
    meta = c.handles[leader.local_id].snapshots.list()[0]
    before = node.logs.last_index()
    node.set_last_snapshot(meta.index, meta.term)  # as install_snapshot does before applying rules 6 and 7
    node._keep_or_discard_log(meta.index, meta.term)
    assert node.logs.last_index() == before


def test_corrupt_snapshot_falls_back_to_an_older_one(tmp_path: object) -> None:
    """At start-up a snapshot that fails its checksum is skipped, with a logged reason, for the older one."""
    from pathlib import Path

    base = Path(str(tmp_path))
    c = Cluster(1, seed=1, config=conf_with(trailing_logs=1000))
    c.handles["n1"].snapshots = FileSnapshotStore(str(base), retain=2)  # type: ignore[assignment]
    c.crash("n1")
    c.restart("n1")
    apply_many(c, 5)
    assert c.wait(c.node("n1").snapshot()) is None
    apply_many(c, 5, prefix="more")
    assert c.wait(c.node("n1").snapshot()) is None
    newest, older = c.handles["n1"].snapshots.list()
    state = base / "snapshots" / newest.id / "state.bin"
    data = bytearray(state.read_bytes())
    data[0] ^= 0xFF
    state.write_bytes(bytes(data))
    c.crash("n1")
    restarted = c.restart("n1")
    assert restarted.get_last_snapshot() == (older.index, older.term)
    assert len(c.fsm("n1").logs) >= 5
    c.wait_leader()
    c.run_until(lambda c: len(c.fsm("n1").logs) == 10)
    c.dispose()


def test_all_snapshots_unusable_refuses_to_start(make: Make) -> None:
    """If every snapshot is damaged the node will not start: it would silently lose committed state."""
    c = make(1)
    apply_many(c, 3)
    assert c.wait(c.node("n1").snapshot()) is None
    c.crash("n1")

    class BrokenFSM(MockFSM):
        def restore(self, source: object) -> None:
            raise ValueError("cannot read this")

    c.fsm_factory = BrokenFSM
    with pytest.raises(StoreError, match="failed to load any existing snapshots"):
        c.restart("n1")


def test_append_entries_after_install_uses_the_snapshot_term(make: Make) -> None:
    """After installing, an AppendEntries whose previous entry is the snapshot's last entry is accepted."""
    c = make(3, config=conf_with(trailing_logs=2))
    leader = c.node(c.wait_leader())
    behind = c.followers()[0]
    c.disconnect(behind)
    apply_many(c, 20)
    assert c.wait(leader.snapshot()) is None
    c.full_connect()
    c.run_until(lambda c: any(e.kind == "snapshot_installed" and e.node == behind for e in c.events))
    node = c.node(behind)
    snap_index, snap_term = node.get_last_snapshot()
    assert snap_index > 0
    req = AppendEntriesRequest(leader.get_rpc_header(), term=leader.current_term(), prev_log_entry=snap_index,
                               prev_log_term=snap_term)
    assert c.run_coro(leader.trans.append_entries(behind, behind, req)).success
