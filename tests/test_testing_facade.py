"""The synchronous facade of raft.sim.Cluster: driving, faults, and errors that reach the user."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from raft.sim import Cluster, SimulationError
from raft.state import RaftState


def test_facade_works_inside_a_running_event_loop() -> None:
    """Inside a running asyncio loop (as in a Jupyter notebook) the facade still drives the cluster."""

    async def notebook_cell() -> str | None:
        c = Cluster(3, seed=4)
        c.run_until(lambda c: c.leader() is not None)
        leader = c.leader()
        c.close()
        return leader

    assert asyncio.run(notebook_cell()) is not None


def test_crash_keeps_stores_and_restart_recovers_them() -> None:
    """A crash loses volatile state only: after restart, term, vote and log are back and it rejoins."""
    c = Cluster(3, seed=2)
    leader = c.wait_leader()
    c.apply(b"one")
    follower = c.followers()[0]
    term, last = c.node(follower).current_term(), c.node(follower).last_index()
    c.crash(follower)
    assert not c.is_up(follower)
    with pytest.raises(RuntimeError, match="is crashed"):
        c.node(follower)
    restarted = c.restart(follower)
    assert restarted.current_term() == term and restarted.last_index() == last
    assert restarted.commit_index() == 0 and c.fsm(follower).logs == [], "volatile state starts empty"
    c.run_until(lambda c: c.fsm(follower).logs == [b"one"])
    assert c.leader() == leader
    c.close()


def test_step_stops_at_the_next_event() -> None:
    """step() returns as soon as something happens, with the new events."""
    c = Cluster(3, seed=1)
    events = c.step()
    assert events and all(e.t == events[0].t for e in events)
    c.close()


def test_run_until_gives_up_with_the_seed_in_the_message() -> None:
    """A condition that never holds raises TimeoutError naming the seed, after the virtual timeout."""
    c = Cluster(3, seed=9)
    with pytest.raises(TimeoutError, match="seed=9"):
        c.run_until(lambda c: False, timeout=2)
    assert c.now == pytest.approx(2)
    c.close()


def test_a_bug_inside_the_simulation_surfaces_as_simulation_error() -> None:
    """An exception in a node's task stops the run and is raised with its traceback."""
    c = Cluster(1, seed=1)
    c.wait_leader()
    node = c.node("n1")

    def broken(*args: object) -> None:
        raise ZeroDivisionError("boom")

    node.dispatch_logs = broken  # type: ignore[method-assign]
    node.apply(b"x")
    with pytest.raises(SimulationError, match="ZeroDivisionError: boom"):
        c.run_for(1)
    c.close()


def test_partition_isolates_a_minority_and_heal_reunites() -> None:
    """Nodes in a minority partition cannot elect; after heal all follow one leader."""
    c = Cluster(5, seed=3)
    leader = c.wait_leader()
    minority = [leader, c.followers()[0]]
    c.partition(minority)
    c.run_until(lambda c: c.leader() not in (None, leader))
    assert c.node(leader).state() != RaftState.Leader
    c.heal()
    new_leader = c.wait_leader()
    c.ensure_leader(new_leader)
    assert [e for e in c.events if e.kind == "partition"]
    c.close()


def test_one_way_cut_is_visible_as_drops() -> None:
    """cut(a, b) loses a's messages to b and records each loss as an rpc_drop event."""
    c = Cluster(3, seed=6)
    leader = c.wait_leader()
    follower = c.followers()[0]
    c.cut(leader, follower)
    c.run_for(1)
    drops = [e for e in c.events if e.kind == "rpc_drop" and e.node == leader and e["to"] == follower]
    assert drops and all(e["reason"] == "partition" for e in drops)
    c.close()


def test_set_faults_rejects_nonsense() -> None:
    """Network dials refuse values that make no sense, with a clear message."""
    c = Cluster(3, seed=1)
    with pytest.raises(ValueError, match="loss must be a probability"):
        c.set_faults(loss=2)
    with pytest.raises(ValueError, match="cannot be negative"):
        c.set_faults(delay=-1)
    c.close()


def test_unknown_node_names_are_reported_clearly() -> None:
    """Asking for a node that does not exist lists the ones that do."""
    c = Cluster(2, seed=1)
    with pytest.raises(KeyError, match="nodes are n1, n2"):
        c.crash("n7")
    c.close()


def test_an_exported_run_replays_to_the_same_trace() -> None:
    """export_run + import_run rebuilds a run with interventions into a byte-identical trace."""
    c = Cluster(5, seed=11)
    c.run_until(lambda c: c.leader() is not None)
    leader = c.leader()
    assert leader is not None
    c.submit(b"x=1")
    c.step()
    c.crash(leader)
    c.run_for(0.37)
    c.partition(["n1", "n2"])
    c.set_faults(loss=0.2)
    c.run_until(lambda c: c.leader() not in (None, leader))
    c.heal()
    c.restart(leader)
    c.force_timeout(c.followers()[0])
    c.run_for(2)
    recording = json.loads(json.dumps(c.export_run()))  # as if saved to a file and loaded again
    replay = Cluster.import_run(recording)
    assert replay.now == c.now
    assert replay.trace() == c.trace()
    earlier = Cluster.import_run(recording, until=1.5)
    assert earlier.now == 1.5
    assert [e.to_json() for e in earlier.events if e.t < 1.5] == [e.to_json() for e in c.events if e.t < 1.5]
    for cluster in (c, replay, earlier):
        cluster.close()


@pytest.mark.parametrize(("data", "message"), [
    ("nonsense", "not a raft-textbook recording"),
    ({"version": 1}, "no params"),
    ({"version": 1, "params": {"nodes": []}}, "non-empty list"),
    ({"version": 1, "params": {"nodes": ["n1"], "seed": "x", "bootstrap": True}}, "seed must be an integer"),
    ({"version": 1, "params": {"nodes": ["n1"], "seed": 1, "bootstrap": True, "config": {"evil": 1},
                               "faults": {}}}, "params.config"),
    ({"version": 1, "params": {"nodes": ["n1"], "seed": 1, "bootstrap": True, "config": {}, "faults": {}},
      "now": 1, "interventions": [{"action": "format_disk"}]}, "malformed intervention"),
])
def test_import_rejects_malformed_recordings(data: object, message: str) -> None:
    """A bad recording is refused with a message that says what is wrong."""
    with pytest.raises(ValueError, match=message):
        Cluster.import_run(data)


def test_membership_transfer_and_reads_replay_to_the_same_trace() -> None:
    """Membership changes, leadership transfers, barriers and leader checks are recorded and replay exactly."""
    c = Cluster(3, seed=12)
    c.run_until(lambda c: c.leader() is not None)
    c.submit(b"x=1")
    c.add_node("n4")
    added = c.add_voter("n4")
    c.run_until(lambda c: added.done)
    assert added.error_now() is None
    removed = c.remove_server("n2")
    c.run_until(lambda c: removed.done)
    assert removed.error_now() is None
    barrier, verify = c.barrier(), c.verify_leader()
    c.run_until(lambda c: barrier.done and verify.done)
    assert barrier.error_now() is None and verify.error_now() is None
    old = c.leader()
    transfer = c.transfer_leadership("n4")
    c.run_until(lambda c: transfer.done)
    assert transfer.error_now() is None
    c.run_until(lambda c: c.leader() == "n4")
    assert old != "n4"
    c.run_for(0.5)
    again = c.transfer_leadership()
    c.run_until(lambda c: again.done)
    c.run_for(0.5)
    actions = [i.action for i in c.interventions]
    assert actions == ["submit", "add_node", "add_voter", "remove_server", "barrier", "verify_leader",
                       "transfer_leadership", "transfer_leadership"]
    recording = json.loads(json.dumps(c.export_run()))
    replay = Cluster.import_run(recording)
    assert replay.trace() == c.trace()
    assert replay.leader() == c.leader()
    for cluster in (c, replay):
        cluster.close()


@pytest.mark.parametrize("ask", [
    lambda c: c.add_voter("n2"), lambda c: c.remove_server("n2"), lambda c: c.transfer_leadership(),
    lambda c: c.transfer_leadership("n2"), lambda c: c.barrier(), lambda c: c.verify_leader(),
])
def test_asking_a_leader_when_there_is_none_raises_and_records_nothing(ask: Any) -> None:
    """Without a leader these requests raise RuntimeError, and the recording stays empty."""
    c = Cluster(3, seed=1)
    with pytest.raises(RuntimeError, match="no leader"):
        ask(c)
    assert c.interventions == [] and not [e for e in c.events if e.kind == "client_request"]
    c.close()


def test_asking_about_an_unknown_node_raises_and_records_nothing() -> None:
    """add_voter and remove_server name a node of the simulation; any other name is refused before recording."""
    c = Cluster(3, seed=2)
    c.wait_leader()
    recorded = len(c.interventions)
    for ask in (c.add_voter, c.remove_server, c.transfer_leadership):
        with pytest.raises(KeyError, match="nodes are n1, n2, n3"):
            ask("n9")
    assert len(c.interventions) == recorded
    c.close()
