"""The key-value store (exactly-once sessions, snapshots, linearizable reads) and the invariant checker."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import pytest

from raft.checkers.invariants import InvariantViolation
from raft.errors import FSMError
from raft.kv import Command, KVError, KVStore, Result, read
from raft.log import Log, LogType
from raft.sim import Cluster
from raft.state import RaftState

Make = Callable[..., Cluster]


def entry(index: int, command: Command) -> Log:
    return Log(index, 1, LogType.LogCommand, command.encode())


def test_operations_follow_their_specification() -> None:
    """get/put/append/cas do what their names say; a missing key reads as ""."""
    kv = KVStore()
    assert kv.apply(entry(1, Command("get", "x"))).value == ""
    kv.apply(entry(2, Command("put", "x", "a")))
    kv.apply(entry(3, Command("append", "x", "b")))
    assert kv.apply(entry(4, Command("get", "x"))).value == "ab"
    assert kv.apply(entry(5, Command("cas", "x", "c", expected="zz"))).swapped is False
    assert kv.apply(entry(6, Command("cas", "x", "c", expected="ab"))).swapped is True
    assert kv.get("x") == "c"


def test_a_retried_command_takes_effect_once() -> None:
    """The same (client, seq) applied twice changes the state once and returns the first answer again."""
    kv = KVStore()
    command = Command("append", "x", "!", client="c1", seq=1)
    first = kv.apply(entry(1, command))
    again = kv.apply(entry(2, command))
    assert kv.get("x") == "!"
    assert again.duplicate and (again.value, again.swapped) == (first.value, first.swapped)


def test_an_out_of_order_sequence_number_is_refused_without_raising() -> None:
    """A command older than the session's last one is answered with an error and changes nothing."""
    kv = KVStore()
    kv.apply(entry(1, Command("put", "x", "1", client="c1", seq=5)))
    refused = kv.apply(entry(2, Command("put", "x", "2", client="c1", seq=3)))
    assert refused.error is not None and "seq 3 after seq 5" in refused.error
    assert kv.get("x") == "1" and kv.sessions["c1"][0] == 5
    assert kv.apply(entry(3, Command("put", "x", "3", client="c1", seq=6))).error is None
    assert kv.get("x") == "3"


def test_snapshot_round_trip_keeps_data_and_sessions() -> None:
    """A restored store answers exactly like the original, including a retried command."""
    kv = KVStore()
    kv.apply(entry(1, Command("put", "x", "1", client="c1", seq=1)))
    buffer = io.BytesIO()

    class Sink:
        def write(self, data: bytes) -> int:
            return buffer.write(data)

        def close(self) -> None: ...

        def cancel(self) -> None: ...

        def id(self) -> str:
            return "s"

    kv.snapshot().persist(Sink())  # type: ignore[arg-type]
    restored = KVStore()
    restored.restore(io.BytesIO(buffer.getvalue()))
    assert restored.data == {"x": "1"}
    assert restored.apply(entry(2, Command("put", "x", "1", client="c1", seq=1))).duplicate


@pytest.mark.parametrize("data", [b"", b"\x00garbage", Command("get", "x").encode()[:-1]])
def test_malformed_commands_and_snapshots_are_refused(data: bytes) -> None:
    """Bytes that are not a command are answered with an error; not a snapshot, KVError; nothing changes."""
    kv = KVStore()
    result = kv.apply(Log(1, 1, LogType.LogCommand, data))
    assert result.error is not None and "command" in result.error
    with pytest.raises(KVError):
        kv.restore(io.BytesIO(data))
    assert kv.data == {}


def test_a_refused_command_is_no_poison_pill_even_across_a_full_restart(make: Make) -> None:
    """seq 5 then seq 3 from one client: the second is refused on every node, and the cluster keeps working.

    This froze a whole raft-kv cluster for good: every node's state machine
    raised on the committed entry, and again after every restart.
    """
    c = make(3, fsm_factory=KVStore)
    leader = c.node(c.wait_leader())
    first = leader.apply(Command("put", "x", "a", client="app", seq=5).encode())
    assert c.wait(first) is None
    second = leader.apply(Command("put", "x", "b", client="app", seq=3).encode())
    assert c.wait(second) is None
    refused = second.response()
    assert isinstance(refused, Result) and refused.error is not None
    later = leader.apply(Command("append", "x", "!", client="other", seq=1).encode())
    assert c.wait(later) is None
    c.run_until(lambda c: all(c.node(i).fsm_applied_index >= later.index() for i in c.handles), timeout=5)
    assert {c.node(i).fsm.get("x") for i in c.handles} == {"a!"}  # type: ignore[attr-defined]
    for node_id in list(c.handles):
        c.crash(node_id)
    for node_id in list(c.handles):
        c.restart(node_id)
    leader = c.node(c.wait_leader())
    after = leader.apply(Command("append", "x", "?", client="other", seq=2).encode())
    assert c.wait(after) is None
    c.run_until(lambda c: all(c.node(i).fsm_applied_index >= after.index() for i in c.handles), timeout=5)
    assert {c.node(i).fsm.get("x") for i in c.handles} == {"a!?"}  # type: ignore[attr-defined]
    assert not [e for e in c.events if e.kind == "fsm_failed"]


class ExplodingFSM(KVStore):
    """A user's state machine with a bug: it raises on the command "boom"."""

    def apply(self, log: Log) -> Result:
        if log.data == b"boom":
            raise ZeroDivisionError("the application divided by zero")
        return super().apply(log)


def test_a_state_machine_that_raises_stops_its_node_loudly(make: Make) -> None:
    """An exception from the FSM: an fsm_failed event, the caller gets FSMError, the node shuts down."""
    c = make(3, fsm_factory=ExplodingFSM, check_invariants=False)
    leader = c.node(c.wait_leader())
    ok = leader.apply(Command("put", "x", "a").encode())
    assert c.wait(ok) is None
    boom = leader.apply(b"boom")
    error = c.wait(boom)
    assert isinstance(error, FSMError) and error.index == boom.index()
    assert "ZeroDivisionError" in str(error)
    assert leader.state() == RaftState.Shutdown
    # The entry is committed, so the next leader applies it too, and stops as
    # a Go process would panic; the last node alone can commit nothing more.
    c.run_until(lambda c: sum(c.node(i).state() == RaftState.Shutdown for i in c.handles) == 2, timeout=30)
    failed = [e for e in c.events if e.kind == "fsm_failed"]
    assert len(failed) == 2 and failed[0].node == leader.local_id
    assert {e["index"] for e in failed} == {boom.index()}
    for node_id in c.handles:
        raft = c.node(node_id)
        assert raft.fsm_applied_index == ok.index()
        if raft.state() == RaftState.Shutdown:
            failure = raft.fsm_failure()
            assert failure is not None and f"applying entry {boom.index()}" in failure
        else:
            assert raft.fsm_failure() is None


def test_checker_reports_a_state_machine_failure(make: Make) -> None:
    """With the invariant checker on, a state machine that raises fails the run."""
    c = make(3, fsm_factory=ExplodingFSM)
    c.node(c.wait_leader()).apply(b"boom")
    with pytest.raises(InvariantViolation, match="state machine keeps applying violated"):
        c.run_for(1)


@pytest.mark.parametrize("through_log", [False, True], ids=["read-index", "through-log"])
def test_reads_see_every_acknowledged_write(make: Make, through_log: bool) -> None:
    """After a write is acknowledged, a read on the leader returns it, in both read modes."""
    c = make(3, fsm_factory=KVStore)
    leader = c.node(c.wait_leader())
    future = leader.apply(Command("put", "k", "v", client="c", seq=1).encode())
    assert c.wait(future) is None and isinstance(future.response(), Result)
    assert c.run_coro(read(leader, "k", through_log=through_log)) == "v"


def test_a_read_on_a_follower_is_refused(make: Make) -> None:
    """Only the leader serves reads: a follower answers ErrNotLeader so the client can retry."""
    from raft.errors import ErrNotLeader

    c = make(3, fsm_factory=KVStore)
    c.wait_leader()
    with pytest.raises(ErrNotLeader):
        c.run_coro(read(c.node(c.followers()[0]), "k"))


def test_checker_reports_two_leaders_in_one_term(make: Make) -> None:
    """Election Safety: a forged second leader event for the same term stops the run with a clear report."""
    c = make(3)
    leader = c.wait_leader()
    term = c.node(leader).current_term()
    other = c.followers()[0]
    c.events.emit(other, "state", "forged", state="leader", term=term)
    with pytest.raises(InvariantViolation, match=f"Election Safety violated: {leader} and {other}"):
        c.run_for(0.1)


def test_checker_reports_a_leader_truncating_its_own_log(make: Make) -> None:
    """Leader Append-Only: a truncate event on the leader is a violation."""
    c = make(3)
    leader = c.wait_leader()
    c.events.emit(leader, "truncate", "forged", first=1, last=2, term=1)
    with pytest.raises(InvariantViolation, match="Leader Append-Only"):
        c.run_for(0.1)


def test_checker_reports_a_term_going_backwards(make: Make) -> None:
    """A node's term never decreases, not even across a restart."""
    c = make(3)
    leader = c.wait_leader()
    c.events.emit(leader, "term", "forged", term=0, previous=2)
    with pytest.raises(InvariantViolation, match="monotonic term"):
        c.run_for(0.1)


def test_checker_report_shows_logs_around_the_conflict(make: Make) -> None:
    """A State Machine Safety report names the nodes and shows index:term around the index."""
    c = make(3, fsm_factory=KVStore)
    leader = c.wait_leader()
    future = c.node(leader).apply(Command("put", "x", "1").encode())
    assert c.wait(future) is None
    c.run_for(0.5)
    index = future.index()
    follower = c.followers()[0]
    c.events.emit(follower, "apply", "forged", index=index, term=99, type="LogCommand")
    with pytest.raises(InvariantViolation) as raised:
        c.run_for(0.1)
    assert "State Machine Safety" in str(raised.value) and f"*{index}:" in str(raised.value)
    assert raised.value.nodes and raised.value.event.node == follower


def test_a_clean_run_checks_many_events(make: Make) -> None:
    """The checker really runs: a few seconds of a cluster means thousands of checked events, no violation."""
    c = make(5)
    c.wait_leader()
    for i in range(20):
        c.apply(f"x{i}".encode())
    assert c.checker is not None and c.checker.violation is None
    assert c.checker.checked_events > 1000


def test_checker_waives_no_truncation_because_of_its_reason(make: Make) -> None:
    """Deleting a committed entry that no snapshot covers is reported, whatever reason the event gives."""
    c = make(3)
    leader = c.wait_leader()
    index = c.apply(b"x").index
    c.run_for(0.5)
    follower = c.followers()[0]
    term = c.node(leader).current_term()
    c.events.emit(follower, "truncate", "forged", first=index, last=index, term=term, terms=[[index, term]],
                  reason="Figure 13 rule 7: the log does not contain the snapshot's last entry")
    with pytest.raises(InvariantViolation, match=f"deleted entry {index} .* not covered by its snapshot"):
        c.run_for(0.1)


def test_checker_reports_a_commit_index_beyond_the_log(make: Make) -> None:
    """Log covers commit: a node whose commit index passes its last index is caught at its next event."""
    c = make(3)
    c.wait_leader()
    follower = c.node(c.followers()[0])
    follower.set_commit_index(follower.last_index() + 5)
    with pytest.raises(InvariantViolation, match="log covers commit violated"):
        c.run_for(0.1)


def test_checker_reports_last_applied_going_backwards(make: Make) -> None:
    """lastApplied never moves back within one run of a node."""
    c = make(3)
    c.wait_leader()
    c.apply(b"x")
    c.run_for(0.5)
    follower = c.node(c.followers()[0])
    follower.set_last_applied(follower.applied_index() - 1)
    with pytest.raises(InvariantViolation, match="monotonic lastApplied"):
        c.run_for(0.1)


def test_checker_reports_an_entry_applied_after_a_later_one(make: Make) -> None:
    """Apply in order: a state machine that sees index i after a higher index is caught."""
    c = make(3)
    c.wait_leader()
    first = c.apply(b"x").index
    c.apply(b"y")
    c.run_for(0.5)
    follower = c.followers()[0]
    term = c.node(follower).current_term()
    c.events.emit(follower, "apply", "forged", index=first, term=term, type="LogCommand")
    with pytest.raises(InvariantViolation, match=f"apply in order violated: {follower}'s state machine applied index"):
        c.run_for(0.1)


def test_checker_reports_a_restore_that_goes_back(make: Make) -> None:
    """Apply in order: a restore to an index below what the state machine has reached is caught."""
    c = make(3)
    c.wait_leader()
    for command in (b"x", b"y", b"z"):
        c.apply(command)
    c.run_for(0.5)
    follower = c.followers()[0]
    c.events.emit(follower, "restore", "forged", index=1, term=1, id="forged")
    with pytest.raises(InvariantViolation, match="was restored to index 1"):
        c.run_for(0.1)


def test_a_read_waits_for_its_own_index_not_for_the_whole_backlog(make: Make) -> None:
    """Read index: the reader is woken once its index is applied, while later writes are still being applied.

    Reads used to poll until the state machine's queue was empty, so under a
    steady stream of writes they waited for writes that came after them.
    """
    c = make(3, fsm_factory=KVStore)
    leader = c.node(c.wait_leader())
    assert c.wait(leader.apply(Command("put", "k", "v").encode())) is None
    c.slow_state_machine(leader.local_id, 0.01)
    before = [leader.apply(Command("append", "other", "x").encode()) for _ in range(1000)]
    c.run_until(lambda c: leader.commit_index() >= before[-1].index() > 0, timeout=10)
    after = [leader.apply(Command("append", "other", "y").encode()) for _ in range(1000)]
    assert c.run_coro(read(leader, "k")) == "v"
    assert all(future.done for future in before), "a read sees every write committed before it"
    assert not all(future.done for future in after), "the read must not wait for writes made after it"
    c.run_until(lambda c: all(future.done for future in after), timeout=30)


def test_a_read_on_a_new_leader_is_woken_by_its_no_op(make: Make) -> None:
    """The no-op never reaches the state machine; a read waiting for its index is still woken at once."""
    c = make(3, fsm_factory=KVStore)
    leader = c.node(c.wait_leader())
    started = c.now
    assert c.run_coro(read(leader, "k")) == ""
    assert c.now - started < 0.1


def test_wait_applied_gives_up_at_shutdown(make: Make) -> None:
    """A reader waiting for an index the state machine will never reach is released by shutdown."""
    c = make(3, fsm_factory=KVStore)
    leader = c.node(c.wait_leader())

    async def wait_then_shut_down() -> bool:
        waiting = asyncio.ensure_future(leader.wait_applied(10_000, timeout=60))
        await asyncio.sleep(0.05)
        leader.shutdown()
        return await waiting

    started = c.now
    assert c.run_coro(wait_then_shut_down()) is False
    assert c.now - started < 1
