"""The fault simulator: hashicorp's fuzzy scenarios, in virtual time, checked three ways.

Paper:   Figure 3 (the properties checked), §8 (linearizable clients).
Mirrors: hashicorp/raft's ``fuzzy/`` tests (one function per scenario).
Differs: the scenarios run in seeded virtual time with our simulated network
rather than with real sleeps and transport hooks; pre-vote requests are
delivered (the Go harness drops them) and removed nodes really leave.
Read before: testing.py (Cluster), invariants.py, kv.py, linearizability.py.

Every run builds a cluster whose nodes run the key-value store (kv.py), on an
unreliable network (10% of all messages lost — requests and replies alike —
0–27 ms delays, occasional long reordering, some duplication), with small
snapshot thresholds so snapshots and InstallSnapshot happen. Several clients
send random get/put/append/cas operations the whole time, retrying like real
clients (same session sequence number, so a command takes effect once),
and record a history of calls and answers; an answer that never came is an
operation of unknown outcome. Meanwhile the scenario injects its faults.

Four checks judge the run:

* safety: the invariant checker after every event (Figure 3, and each node's
  own bookkeeping: its log covers its commit index, lastApplied and the
  state machine only move forward);
* liveness: every request made to any node that is still running (apply,
  barrier, verify_leader, membership changes, snapshot, restore, leadership
  transfer) is answered, with a result or an error, within
  ``LIVENESS_BOUND`` virtual seconds of the last fault healing, and every
  node then shuts down within ``SHUTDOWN_LIMIT``; a stalled run names the
  tasks that wait and the channels they wait on; and once every member has
  applied the backlog, one new entry reaches every member within
  ``PROGRESS_BOUND``;
* at the end, identical logs and identical state machines on every member;
* the clients' history must be linearizable, decided within a fixed budget
  of search steps, so the verdict never depends on the machine's speed.

Besides the client load, some scenarios add what real deployments do in
bursts: thousands of concurrent applies, hundreds of concurrent VerifyLeader
and Barrier calls, user snapshots and restores. InstallSnapshot and
TimeoutNow requests sometimes arrive twice, the second copy long after the
first, in every scenario.

A run is a pure function of (scenario, seed, nodes, bugs), so a failure is
reported with the one command that replays it exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from raft.api import Raft
from raft.checkers.invariants import InvariantViolation
from raft.checkers.linearizability import UNKNOWN, Operation, check_operations, kv_cas_model
from raft.config import Config
from raft.errors import RaftError
from raft.kv import Command, KVStore, Result, read
from raft.sim.bugs import TeachingBugs
from raft.sim.cluster import Cluster, SimulationError
from raft.sim.network import EchoRule, LinkFaults, SlowRule
from raft.state import RaftState

HT = 0.2  # heartbeat and election timeout of fuzz runs, in virtual seconds
KEYS = ("a", "b", "c")  # few keys: more contention, more interesting histories
CLIENTS = 3
OPERATION_TIMEOUT = 10 * HT  # a client gives up (outcome unknown) after this long
# Every request to a running node is answered within this many virtual seconds
# of the last fault healing (or of being made, if later): time for a few
# elections and for a backlog of thousands of entries to commit. A follower
# that fell behind catches up one AppendEntries at a time (as in Go) and 8
# entries each (fuzz_config), about 300 entries a second: three bursts of up to
# 2,500 entries need some 25 seconds.
LIVENESS_BOUND = 300 * HT
# Once the backlog is applied everywhere, one new entry must reach every member
# within this many virtual seconds: ten heartbeat timeouts, which at hashicorp's
# default timings is the 10 s the standard teaching test suite allows (and what
# bench/progress.py measures from the heal).
PROGRESS_BOUND = 10 * HT
# The linearizability search may take this many steps (about a minute of
# CPython on a slow machine); a history it cannot decide within them fails the
# run, the same way on every machine.
LINCHECK_STEPS = 50_000_000
BURST_APPLIES = 2000  # a burst sends 2,000 to 2,500 concurrent applies ...
BURST_CHECKS = 200  # ... and 200 to 250 each of VerifyLeader and Barrier
# The fault simulator's requests that must be answered: the Raft methods that return a future.
WATCHED_METHODS = ("apply_log", "barrier", "verify_leader", "_change_configuration", "snapshot", "restore",
                   "initiate_leadership_transfer", "bootstrap_cluster")


def fuzz_config() -> Config:
    """Short timeouts and frequent snapshots, so that much happens in few virtual seconds."""
    return Config(heartbeat_timeout=HT, election_timeout=HT, leader_lease_timeout=HT / 2, commit_timeout=HT / 4,
                  snapshot_threshold=40, trailing_logs=16, snapshot_interval=HT * 2, max_append_entries=8)


def fuzz_faults() -> LinkFaults:
    """The unreliable network every scenario runs on."""
    return LinkFaults(delay=0.0135, jitter=0.0135, loss=0.10, duplicate=0.01, reorder=0.01, reorder_delay=0.15)


def fuzz_echoes() -> list[EchoRule]:
    """Late second copies of the messages whose stale copies are the most dangerous."""
    return [EchoRule("install_snapshot", "request", 0.3, HT / 2, 3 * HT),
            EchoRule("timeout_now", "request", 0.3, HT / 2, 3 * HT)]


class FuzzFailure(AssertionError):
    """A fuzz run found a problem; the message ends with the command that replays it."""


@dataclass
class FuzzResult:
    scenario: str
    seed: int
    nodes: int
    operations: int = 0  # client operations checked for linearizability
    unknown: int = 0  # of which had an unknown outcome
    virtual_seconds: float = 0.0
    wall_seconds: float = 0.0
    failure: str | None = None  # None: the run passed every check
    replay: str = ""


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


@dataclass
class Clients:
    """Key-value clients that keep operating and record what they saw."""

    run: FuzzRun
    history: list[Operation] = field(default_factory=list)
    stopping: bool = False
    paused: bool = False  # while True, no client starts a new operation
    busy: int = 0  # operations started and not yet finished
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def start(self) -> None:
        for client in range(CLIENTS):
            rng = random.Random(f"{self.run.seed}:client{client}")
            self.tasks.append(self.run.cluster.loop.create_task(self.client(client, rng)))

    async def client(self, client: int, rng: random.Random) -> None:
        seq = 0
        while not self.stopping:
            if self.paused:
                await asyncio.sleep(HT / 10)
                continue
            seq += 1
            key = rng.choice(KEYS)
            roll = rng.random()
            if roll < 0.4:
                command = Command("get", key, client=f"c{client}")
                spec: tuple[Any, ...] = ("get", key)
            elif roll < 0.6:
                value = f"{client}.{seq}"
                command = Command("put", key, value, client=f"c{client}", seq=seq)
                spec = ("put", key, value)
            elif roll < 0.85:
                value = f"<{client}.{seq}>"
                command = Command("append", key, value, client=f"c{client}", seq=seq)
                spec = ("append", key, value)
            else:
                expected = rng.choice(["", f"{client}.{seq - 1}", "0.1"])
                value = f"{client}.{seq}"
                command = Command("cas", key, value, expected, client=f"c{client}", seq=seq)
                spec = ("cas", key, expected, value)
            call = self.run.cluster.now
            self.busy += 1
            try:
                output = await self.perform(command, rng)
            finally:
                self.busy -= 1
            ret = math.inf if output is UNKNOWN else self.run.cluster.now
            self.history.append(Operation(client, spec, output, call, ret))
            await asyncio.sleep(rng.uniform(0, HT / 10))

    async def perform(self, command: Command, rng: random.Random) -> Any:
        """Send to the node that seems to lead until an answer comes, or give up (unknown outcome)."""
        cluster = self.run.cluster
        deadline = cluster.now + OPERATION_TIMEOUT
        while cluster.now < deadline and not self.stopping:
            up = [r for r in cluster.rafts() if r.state() != RaftState.Shutdown]
            leaders = [r for r in up if r.state() == RaftState.Leader]
            if not up:
                await asyncio.sleep(HT / 4)
                continue
            target = rng.choice(leaders) if leaders else rng.choice(up)
            try:
                if command.op == "get":
                    return await _with_timeout(read(target, command.key, timeout=2 * HT), 2 * HT)
                future = target.apply(command.encode())
                err = await _with_timeout(future.error(), 2 * HT)
                if err is None:
                    result = future.response()
                    assert isinstance(result, Result)
                    return result.output(command.op)
            except (RaftError, TimeoutError):
                pass
            await asyncio.sleep(rng.uniform(HT / 20, HT / 4))  # then retry, same sequence number
        return UNKNOWN


def _answered(future: Any) -> Callable[[Cluster], bool]:
    return lambda c: bool(future.done)


async def _with_timeout(awaitable: Any, seconds: float) -> Any:
    """Await with a time limit on the loop's clock (a crashed node's future may never answer)."""
    async with asyncio.timeout(seconds):
        return await awaitable


# ---------------------------------------------------------------------------
# Requests, watched for liveness
# ---------------------------------------------------------------------------


@dataclass
class Request:
    """One call to a node that returned a future, and when it was made."""

    method: str
    node: str
    incarnation: int
    future: Any
    submitted: float


class RequestLog:
    """Every request made to any node, so a run can check that each one is answered.

    Attached to each node as it starts (``Cluster.on_start``): the node's
    future-returning methods are wrapped to note each call. A request to a
    node that has since crashed is lost with it, as with a real process, and
    is not waited for.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.requests: list[Request] = []

    def watch(self, raft: Raft) -> None:
        incarnation = self.cluster.handles[raft.local_id].incarnation
        for name in WATCHED_METHODS:
            setattr(raft, name, self._watched(name, raft.local_id, incarnation, getattr(raft, name)))

    def _watched(self, name: str, node: str, incarnation: int, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            future = method(*args, **kwargs)
            self.requests.append(Request(name, node, incarnation, future, self.cluster.now))
            return future
        return call

    def _waited_for(self, request: Request) -> bool:
        """Not answered yet, and its node still runs the incarnation that took it."""
        if request.future.done:
            return False
        handle = self.cluster.handles[request.node]
        return handle.raft is not None and handle.incarnation == request.incarnation

    def outstanding(self) -> list[Request]:
        """Requests not yet answered whose node still runs the incarnation that took them."""
        self.requests = [r for r in self.requests if self._waited_for(r)]  # the rest never count again
        return list(self.requests)

    def settled(self) -> bool:
        """True when nothing is outstanding; cheap enough to ask after every step of the loop.

        Looks only as far as the first outstanding request, and forgets the
        answered ones before it (a request never becomes outstanding again).
        """
        requests = self.requests
        start = 0
        while start < len(requests) and not self._waited_for(requests[start]):
            start += 1
        if start:
            del requests[:start]
        return not requests

    def stall(self, waiting: list[Request], since: float) -> str:
        """A failure message: what was not answered, and what every task of those nodes waits for."""
        by_method: dict[tuple[str, str], int] = {}
        for request in waiting:
            key = (request.method, request.node)
            by_method[key] = by_method.get(key, 0) + 1
        lines = [f"liveness violated: {len(waiting)} request(s) unanswered {LIVENESS_BOUND:g} virtual seconds "
                 f"after the network healed at t={since:.3f}:"]
        lines += [f"  {count} x {method} on {node}" for (method, node), count in by_method.items()]
        oldest = min(waiting, key=lambda r: r.submitted)
        lines.append(f"  the oldest was made at t={oldest.submitted:.3f}; tasks of the nodes concerned:")
        lines.append(self.cluster.stall_report(dict.fromkeys(r.node for r in waiting)))
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


class FuzzRun:
    """One scenario with one seed."""

    def __init__(self, scenario: str, seed: int, nodes: int, bugs: TeachingBugs | None = None) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.seed = seed
        self.nodes = nodes
        self.bugs = bugs or TeachingBugs()
        self.rng = random.Random(f"fuzz:{scenario}:{seed}")
        options = SCENARIO_OPTIONS.get(scenario, {})
        config = replace(fuzz_config(), **options.get("config", {}))
        self.cluster = Cluster(nodes, seed, config=config, faults=fuzz_faults(), fsm_factory=KVStore,
                               transport_timeout=HT / 2, start=False, bugs=self.bugs,
                               monotonic_logs=bool(options.get("monotonic_logs", False)))
        self.cluster.network.echoes.extend(fuzz_echoes())
        self.requests = RequestLog(self.cluster)
        self.cluster.on_start.append(self.requests.watch)
        self.cluster.start()
        self.clients = Clients(self)
        self.next_node = nodes + 1
        self.removed: list[str] = []

    # -- helpers the scenarios use ---------------------------------------------------------

    def run_for(self, heartbeats: float) -> None:
        self.cluster.run_for(heartbeats * HT)

    def leader(self, limit: float = 50) -> str | None:
        """The current leader, waiting up to ``limit`` heartbeat timeouts for one."""
        try:
            self.cluster.run_until(lambda c: c.leader() is not None, timeout=limit * HT)
        except TimeoutError:
            return None
        return self.cluster.leader()

    def through_leader(self, call: Callable[[Any], Any], limit: float = 50) -> bool:
        """Ask the leader to do something; retry across leader changes; True once it succeeded."""
        deadline = self.cluster.now + limit * HT
        while self.cluster.now < deadline:
            leader = self.leader(limit)
            if leader is None:
                return False
            future = call(self.cluster.node(leader))
            try:
                self.cluster.run_until(_answered(future), timeout=10 * HT)
            except TimeoutError:
                continue
            if future.error_now() is None:
                return True
            self.run_for(1)
        return False

    def add_node(self) -> str:
        node_id = f"n{self.next_node}"
        self.next_node += 1
        self.cluster.add_node(node_id, self.cluster.config_template)
        self.through_leader(lambda r: r.add_voter(node_id, node_id))
        return node_id

    def remove_node(self, node_id: str) -> None:
        """Remove a member for real: once the change commits, the node is stopped for good."""
        if self.through_leader(lambda r: r.remove_server(node_id)):
            self.removed.append(node_id)
            if self.cluster.is_up(node_id):
                self.cluster.crash(node_id)

    def members(self) -> list[str]:
        return [i for i in self.cluster.ids if i not in self.removed]

    def burst(self, node_id: str) -> None:
        """Thousands of concurrent applies and hundreds of VerifyLeader and Barrier calls, all at once.

        The applies are ``get`` commands: they go through the log like any
        write but change nothing, so they can be in flight across a restore.
        """
        raft = self.cluster.node(node_id)
        command = Command("get", self.rng.choice(KEYS)).encode()
        for _ in range(self.rng.randint(BURST_APPLIES, BURST_APPLIES + 500)):
            raft.apply(command)
        for _ in range(self.rng.randint(BURST_CHECKS, BURST_CHECKS + 50)):
            raft.verify_leader()
            raft.barrier()

    def stall_someone(self, heartbeats: float) -> None:
        """Stall a random member for ``heartbeats`` timeouts: it reads nothing, then everything at once."""
        up = [i for i in self.members() if self.cluster.is_up(i)]
        if not up:
            return
        victim = self.rng.choice(up)
        self.cluster.stall(victim)
        self.run_for(heartbeats)
        self.cluster.release(victim)

    def take_snapshots(self) -> None:
        """Ask some running members for a user snapshot (each must be answered, with one or an error)."""
        for node_id in self.members():
            if self.cluster.is_up(node_id) and self.rng.random() < 0.5:
                self.cluster.node(node_id).snapshot()

    def restore_on_leader(self, with_burst: bool) -> None:
        """Snapshot the leader's state and restore it, with the clients paused around it.

        A restore replaces the whole state, so to keep the clients' history
        meaningful it restores exactly the state the clients last saw: the
        clients pause, a barrier makes the leader apply everything committed,
        the snapshot is taken and then restored (with a burst of applies in
        flight, if asked). Only commands whose outcome the clients never
        learned can be lost in between, which linearizability allows.

        The network is quiet from the barrier until the restore has
        committed. hashicorp's Restore is a disaster-recovery tool: the
        leader's state machine takes the snapshot before any follower has
        it, and if leadership is lost before the no-op after it commits, that
        state machine keeps a state the cluster never committed. Faults come
        back as soon as the restore is done.
        """
        clients, cluster = self.clients, self.cluster
        faults = cluster.network.faults
        clients.paused = True
        try:
            cluster.run_until(lambda c: clients.busy == 0, timeout=2 * OPERATION_TIMEOUT)
            leader = self.leader(20)
            if leader is None:
                return
            raft = cluster.node(leader)
            cluster.heal()
            cluster.set_faults(loss=0.0, duplicate=0.0, reorder=0.0)
            barrier = raft.barrier()
            cluster.run_until(_answered(barrier), timeout=10 * HT)
            if barrier.error_now() is not None:
                return
            snapshot = raft.snapshot()
            cluster.run_until(_answered(snapshot), timeout=10 * HT)
            if snapshot.error_now() is not None or raft.state() != RaftState.Leader:
                return
            meta, reader = snapshot.open()
            data = reader.read()
            reader.close()
            if with_burst:
                self.burst(leader)
                self.run_for(self.rng.uniform(0, 1))
            restore = raft.restore(meta, io.BytesIO(data))
            # Followers first take the whole backlog from the log (as in Go),
            # then the snapshot: with a burst in flight that takes a while.
            cluster.run_until(_answered(restore), timeout=100 * HT)
        except TimeoutError:
            pass  # the faults got in the way; liveness is judged after healing
        finally:
            cluster.set_faults(loss=faults.loss, duplicate=faults.duplicate, reorder=faults.reorder)
            clients.paused = False

    # -- the run itself ----------------------------------------------------------------------

    def execute(self) -> FuzzResult:
        result = FuzzResult(self.scenario, self.seed, self.nodes, replay=self.replay_command())
        started = time.perf_counter()
        try:
            self.leader()
            self.clients.start()
            SCENARIOS[self.scenario](self)
            self.finish()
            self.verify(result)
            self.shut_down()
        except (InvariantViolation, SimulationError, FuzzFailure) as failure:
            result.failure = f"{type(failure).__name__}: {failure}"
        except Exception as error:  # anything else escaping a run is a bug too: report it with its traceback
            detail = "".join(traceback.format_exception(error))
            result.failure = f"unexpected {type(error).__name__}: {error}\n{detail}"
        finally:
            self.clients.stopping = True
            result.virtual_seconds = self.cluster.now
            self.cluster.dispose()
            result.wall_seconds = time.perf_counter() - started
        return result

    def finish(self) -> None:
        """Heal everything, bring members back, let clients finish, and let the cluster converge."""
        cluster = self.cluster
        cluster.heal()
        for node_id in list(cluster.network.stalled):
            cluster.release(node_id)
        cluster.network.slow.clear()
        for node_id in cluster.slow_state_machines():
            cluster.slow_state_machine(node_id, 0)
        cluster.set_faults(loss=0.0, duplicate=0.0, reorder=0.0)
        for node_id in self.members():
            if not cluster.is_up(node_id):
                cluster.restart(node_id)
        healed = cluster.now
        self.clients.stopping = True
        self.clients.paused = False
        self.await_answers(healed)
        try:
            cluster.run_until(lambda c: all(t.done() for t in self.clients.tasks), timeout=4 * OPERATION_TIMEOUT)
        except TimeoutError as err:
            raise FuzzFailure("clients did not finish after healing") from err
        if self.leader(100) is None:
            raise FuzzFailure("no leader was elected after healing the network and restarting every node")
        # A leader may have thousands of entries to bring its followers up to
        # date (RPC mode carries MaxAppendEntries per round trip, as in Go),
        # so this barrier gets the whole liveness bound.
        if not self.through_leader(lambda r: r.barrier(), limit=LIVENESS_BOUND / HT):
            raise FuzzFailure(f"liveness violated: a barrier could not commit within {LIVENESS_BOUND:g} "
                              "virtual seconds after healing")
        self.await_answers(healed)

    def await_answers(self, healed: float) -> None:
        """Liveness: every request to a running node is answered by ``LIVENESS_BOUND`` after healing.

        A request made after ``healed`` gets the whole bound from the moment
        it was made.
        """
        requests = self.requests

        def answered(_: Cluster) -> bool:
            return requests.settled()

        while not answered(self.cluster):
            waiting = requests.outstanding()
            deadline = max(healed, max(r.submitted for r in waiting)) + LIVENESS_BOUND
            try:
                self.cluster.run_until(answered, timeout=max(0.0, deadline - self.cluster.now))
            except TimeoutError:
                now = self.cluster.now
                late = [r for r in requests.outstanding() if max(healed, r.submitted) + LIVENESS_BOUND <= now]
                if late:
                    raise FuzzFailure(requests.stall(late, healed)) from None

    def shut_down(self) -> None:
        """Liveness at the end: every node's tasks return after Shutdown (Mirrors: Shutdown().Error())."""
        try:
            self.cluster.close()
        except TimeoutError as err:
            raise FuzzFailure(f"liveness violated: {err}") from None

    def verify(self, result: FuzzResult) -> None:
        cluster = self.cluster
        members = self.members()
        leader = cluster.node(cluster.leader() or members[0])
        last = leader.last_index()
        try:
            # The liveness bound again: a follower whose state machine held its
            # main loop up has made the leader back off exponentially (as Go's
            # does, up to 10 s at these timings) before it retries.
            cluster.run_until(lambda c: all(c.node(i).applied_index() >= last and not c.node(i).fsm_pending_applies()
                                            for i in members), timeout=LIVENESS_BOUND)
        except TimeoutError as err:
            raise FuzzFailure(f"liveness violated: members did not all apply index {last} within "
                              f"{LIVENESS_BOUND:g} virtual seconds") from err
        self.check_progress(members)
        # Identical logs: every entry still held by several members is the same
        # on all of them; an entry a member does not hold (compacted, or the
        # index a restore skipped) must lie inside its snapshot.
        for index in range(1, last + 1):
            seen: dict[tuple[int, bytes], str] = {}
            for i in members:
                held = cluster.handles[i].store.logs.get(index)
                if held is not None:
                    seen.setdefault((held.term, held.data), i)
                elif index > cluster.node(i).get_last_snapshot()[0]:
                    raise FuzzFailure(f"{i} lacks entry {index} and its snapshot does not cover it")
            if len(seen) > 1:
                holders = ", ".join(f"{node} (term {term})" for (term, _), node in seen.items())
                raise FuzzFailure(f"logs differ at index {index}: {holders}")
        states = {i: cluster.fsm(i).data for i in members}
        for i in members:
            if states[i] != states[members[0]]:
                raise FuzzFailure(f"state machines differ between {members[0]} and {i}: "
                                  f"{states[members[0]]} vs {states[i]}")
        history = self.clients.history
        result.operations = len(history)
        result.unknown = sum(1 for op in history if not op.outcome_known)
        verdict = check_operations(kv_cas_model, history, max_steps=LINCHECK_STEPS)
        if verdict.linearizable is False:
            raise FuzzFailure(f"the client history is not linearizable:\n{verdict.explanation}")
        if verdict.linearizable is None:
            raise FuzzFailure(f"the linearizability check of {len(history)} operations did not finish within "
                              f"{LINCHECK_STEPS:,} search steps")

    def check_progress(self, members: list[str]) -> None:
        """Progress: on the healed network, one new entry is applied on every member within ``PROGRESS_BOUND``."""
        cluster = self.cluster
        start = cluster.now
        leader_id = self.leader(PROGRESS_BOUND / HT)
        future = cluster.node(leader_id).barrier() if leader_id is not None else None
        if future is not None:
            with contextlib.suppress(TimeoutError):
                cluster.run_until(lambda c: future.done, timeout=PROGRESS_BOUND)
        if future is None or not future.done or future.error_now() is not None:
            raise FuzzFailure(f"progress violated: no new entry committed within {PROGRESS_BOUND:g} virtual seconds "
                              "on the healed network")
        index = future.index()
        remaining = max(0.0, start + PROGRESS_BOUND - cluster.now)
        try:
            cluster.run_until(lambda c: all(c.node(i).applied_index() >= index for i in members), timeout=remaining)
        except TimeoutError:
            behind = [i for i in members if cluster.node(i).applied_index() < index]
            raise FuzzFailure(f"progress violated: entry {index} did not reach {', '.join(behind)} within "
                              f"{PROGRESS_BOUND:g} virtual seconds on the healed network") from None

    def replay_command(self) -> str:
        bugs = "".join(f" --bug {name}" for name in self.bugs.cli_names())
        return f"raft-sim fuzz --scenario {self.scenario} --seeds 1 --start {self.seed} --nodes {self.nodes}{bugs}"


# ---------------------------------------------------------------------------
# Scenarios (Mirrors: fuzzy/*_test.go), times in heartbeat timeouts
# ---------------------------------------------------------------------------


def no_issue_sanity(run: FuzzRun) -> None:
    """Only the unreliable network and the client load (Mirrors: TestRaft_NoIssueSanity)."""
    run.run_for(30)


def leader_partitions(run: FuzzRun) -> None:
    """Cut the leader off with 0–3 others, then heal none, some or all (Mirrors: TestRaft_LeaderPartitions)."""
    for _ in range(4):
        leader = run.leader(10)
        ids = run.members()
        if leader is not None:
            others = [i for i in ids if i != leader]
            run.rng.shuffle(others)
            far = [leader, *others[:run.rng.randint(0, min(3, len(others) - 1))]]
            run.cluster.partition(far)
        run.run_for(4)
        if run.rng.random() < 0.6:
            run.cluster.heal()
        run.run_for(4)
    run.cluster.heal()
    run.run_for(4)


def slow_send_vote(run: FuzzRun) -> None:
    """Vote requests to two nodes take 1–2 timeouts to leave (Mirrors: TestRaft_SlowSendVote)."""
    for node_id in run.members()[:2]:
        for rpc in ("request_vote", "request_pre_vote"):
            run.cluster.network.slow.append(SlowRule(rpc, "request", HT, 2 * HT, dst=node_id))
    _disrupt_leader(run, rounds=3)


def slow_recv_vote(run: FuzzRun) -> None:
    """Three nodes answer vote requests only after 1–2 timeouts (Mirrors: TestRaft_SlowRecvVote)."""
    for node_id in run.members()[:3]:
        for rpc in ("request_vote", "request_pre_vote"):
            run.cluster.network.slow.append(SlowRule(rpc, "response", HT, 2 * HT, src=node_id))
    _disrupt_leader(run, rounds=3)


def _disrupt_leader(run: FuzzRun, rounds: int) -> None:
    """Force elections by cutting the leader off for a while, several times."""
    for _ in range(rounds):
        run.run_for(4)
        leader = run.leader(20)
        if leader is not None:
            run.cluster.partition([leader])
        run.run_for(5)
        run.cluster.heal()
    run.run_for(4)


def add_membership(run: FuzzRun) -> None:
    """Grow from 3 to 5 under load (Mirrors: TestRaft_AddMembership)."""
    run.run_for(4)
    run.add_node()
    run.run_for(4)
    run.add_node()
    run.run_for(8)


def add_remove_nodes_not_leader(run: FuzzRun) -> None:
    """3 → 5 → 3 without ever removing the leader (Mirrors: TestRaft_AddRemoveNodesNotLeader)."""
    run.run_for(3)
    run.add_node()
    run.add_node()
    run.run_for(4)
    for _ in range(2):
        leader = run.leader(20)
        candidates = [i for i in run.members() if i != leader]
        run.remove_node(run.rng.choice(candidates))
        run.run_for(3)
    run.run_for(4)


def remove_leader(run: FuzzRun) -> None:
    """Remove the leader itself (Mirrors: TestRaft_RemoveLeader)."""
    run.run_for(4)
    leader = run.leader(20)
    if leader is not None:
        run.remove_node(leader)
    run.run_for(10)


def remove_partitioned_node(run: FuzzRun) -> None:
    """Partition a follower away, remove it, heal (Mirrors: TestRaft_RemovePartitionedNode)."""
    run.run_for(4)
    leader = run.leader(20)
    followers = [i for i in run.members() if i != leader]
    victim = run.rng.choice(followers)
    run.cluster.partition([victim])
    run.run_for(3)
    run.remove_node(victim)
    run.cluster.heal()
    run.run_for(8)


def leadership_transfer(run: FuzzRun) -> None:
    """Load with three leadership transfers in between (Mirrors: TestRaft_FuzzyLeadershipTransfer)."""
    for _ in range(3):
        run.run_for(run.rng.uniform(2, 6))
        run.through_leader(lambda r: r.leadership_transfer(), limit=20)
    run.run_for(4)


def crash_restart(run: FuzzRun) -> None:
    """Crash any node, leader or not, and bring it back later; never more than a minority down."""
    for _ in range(6):
        run.run_for(run.rng.uniform(1, 4))
        members = run.members()
        down = [i for i in members if not run.cluster.is_up(i)]
        if down and (run.rng.random() < 0.5 or len(down) >= (len(members) - 1) // 2):
            run.cluster.restart(run.rng.choice(down))
            continue
        leader = run.cluster.leader()
        up = [i for i in members if run.cluster.is_up(i)]
        victim = leader if leader and run.rng.random() < 0.5 else run.rng.choice(up)
        run.cluster.crash(victim)
    run.run_for(4)


def restart_voters(run: FuzzRun) -> None:
    """Elections under fire: crash the leader, and restart voters quickly while a new one is chosen.

    Not in hashicorp's suite. Quick restarts in the middle of elections are
    where a vote that is not durable (Figure 2: votedFor) would be given twice.
    """
    cluster = run.cluster

    def restart_right_after_voting(event: Any) -> None:
        # A vote was just granted: sometimes crash that voter at once and bring
        # it back a moment later, while the election is still being decided.
        if event.kind == "vote" and event["granted"] and event["phase"] == "vote" and run.rng.random() < 0.3:
            voter = event.node
            cluster.loop.call_later(run.rng.uniform(0.0005, 0.005), _bounce, cluster, voter, run)

    cluster.events.subscribe(restart_right_after_voting)
    # Vote requests straggle, so a candidate's request can reach a voter after
    # that voter has restarted in the middle of the election.
    cluster.network.slow.append(SlowRule("request_vote", "request", 0.0, HT / 2))
    for _ in range(8):
        run.run_for(run.rng.uniform(1, 3))
        leader = run.cluster.leader()
        if leader is not None and run.rng.random() < 0.7:
            run.cluster.crash(leader)
        for _ in range(2):
            run.run_for(run.rng.uniform(0.2, 0.8))
            up = [i for i in run.members() if run.cluster.is_up(i)]
            if len(up) > len(run.members()) // 2 + 1:
                victim = run.rng.choice(up)
                run.cluster.crash(victim)
                run.run_for(run.rng.uniform(0.01, 0.2))
                run.cluster.restart(victim)
        for node_id in run.members():
            if not run.cluster.is_up(node_id):
                run.cluster.restart(node_id)
    run.run_for(4)


def apply_burst(run: FuzzRun) -> None:
    """Bursts of thousands of applies, VerifyLeader and Barrier calls, while the leader is cut off or crashes.

    Not in hashicorp's suite. A burst fills every queue between the client
    and the state machine at once: the apply channel, the pipeline's
    in-flight window, the FSM channel, the verify channel. A queue that
    drops what does not fit, or a task that waits on one nobody drains,
    shows up as a request that is never answered.
    """
    for _ in range(3):
        run.run_for(run.rng.uniform(1, 3))
        leader = run.leader(20)
        if leader is None:
            continue
        run.burst(leader)
        run.run_for(run.rng.uniform(0.05, 1))
        roll = run.rng.random()
        if roll < 0.3:
            run.cluster.partition([leader])
            run.run_for(run.rng.uniform(1, 4))
            run.cluster.heal()
        elif roll < 0.6:
            run.cluster.crash(leader)
            run.run_for(run.rng.uniform(1, 3))
            run.cluster.restart(leader)
        elif roll < 0.8:
            run.stall_someone(run.rng.uniform(1, 5))
    run.run_for(4)


def snapshot_restore(run: FuzzRun) -> None:
    """User snapshots on any member and restores on the leader, among crashes, partitions and bursts.

    Not in hashicorp's suite. A restore travels to the state machine on the
    same channel as committed entries; it must never overtake them, and a
    follower must end up with the same state through InstallSnapshot.
    """
    for _ in range(3):
        run.run_for(run.rng.uniform(1, 3))
        run.take_snapshots()
        run.restore_on_leader(with_burst=run.rng.random() < 0.7)
        run.take_snapshots()
        members = run.members()
        victim = run.rng.choice(members)
        roll = run.rng.random()
        if roll < 0.4:
            run.cluster.crash(victim)
            run.run_for(run.rng.uniform(0.5, 2))
            run.cluster.restart(victim)
        elif roll < 0.7:
            run.cluster.partition([victim])
            run.run_for(run.rng.uniform(0.5, 2))
            run.cluster.heal()
        else:
            run.stall_someone(run.rng.uniform(1, 5))
    run.run_for(4)


def slow_state_machine(run: FuzzRun) -> None:
    """Followers whose state machine is slower than their log; one pauses, is stalled, and then flooded.

    Not in hashicorp's suite. Each batch costs a slow state machine a few
    milliseconds. In the main round one slow follower's state machine
    pauses for seconds while a burst commits: its FSM channel fills and its
    main loop must wait, as Go's does. The follower is then stalled while
    the leader commits the rest and compacts past it; released, it reads
    back to back AppendEntries that commit more entries and the
    InstallSnapshot sent meanwhile. The restore must reach the state machine
    after the entries committed before it. The network delays but neither
    loses nor reorders here: on a lossy one the leader falls back to one
    AppendEntries per round trip (as Go's does) and the backlog stays small.
    """
    run.cluster.set_faults(loss=0.0, duplicate=0.0, reorder=0.0)
    leader = run.leader(20)
    followers = [i for i in run.members() if i != leader]
    slow = {i: run.rng.uniform(0.002, 0.02) for i in run.rng.sample(followers, k=min(2, len(followers)))}
    for node_id, delay in slow.items():
        run.cluster.slow_state_machine(node_id, delay)
    for _ in range(3):
        run.run_for(run.rng.uniform(0.5, 2))
        leader = run.leader(20)
        victims = [i for i in slow if i != leader and run.cluster.is_up(i)]
        if leader is None or not victims or run.rng.random() < 0.3:
            if leader is not None:
                run.burst(leader)
            run.run_for(run.rng.uniform(0.1, 1.0))
            run.stall_someone(run.rng.uniform(1, 4))
            continue
        victim = run.rng.choice(victims)
        run.cluster.slow_state_machine(victim, run.rng.uniform(3, 6))  # the application pauses
        run.burst(leader)
        run.run_for(run.rng.uniform(10, 25))  # enough commits to fill its FSM channel
        run.cluster.stall(victim)
        run.run_for(run.rng.uniform(5, 15))
        if _still_leader(run.cluster, leader):
            run.cluster.node(leader).snapshot()  # compact past the victim: it must be sent a snapshot
        run.run_for(run.rng.uniform(2, 10))
        run.cluster.release(victim)
        if run.cluster.is_up(victim):
            run.cluster.slow_state_machine(victim, slow[victim])
    run.run_for(4)


def monotonic_crash_restart(run: FuzzRun) -> None:
    """CrashRestart on log stores that cannot hold gaps (hashicorp's MonotonicLogStore).

    Such a store is emptied rather than left with a hole after a restore,
    and must keep the entries after an installed snapshot (Figure 13 rule 6).
    """
    leader = run.leader(20)
    if leader is not None and run.rng.random() < 0.5:
        run.burst(leader)
    crash_restart(run)


def _still_leader(cluster: Cluster, node_id: str) -> bool:
    return cluster.is_up(node_id) and cluster.node(node_id).state() == RaftState.Leader


def _bounce(cluster: Cluster, node_id: str, run: FuzzRun) -> None:
    """Crash ``node_id`` and restart it a few milliseconds later (called from inside the loop)."""
    if node_id in run.removed or not cluster.is_up(node_id):
        return
    cluster.crash(node_id)
    cluster.loop.call_later(run.rng.uniform(0.001, 0.01), _restart_if_down, cluster, node_id)


def _restart_if_down(cluster: Cluster, node_id: str) -> None:
    if not cluster.is_up(node_id):
        cluster.restart(node_id)


SCENARIOS: dict[str, Callable[[FuzzRun], None]] = {
    "NoIssueSanity": no_issue_sanity,
    "LeaderPartitions": leader_partitions,
    "SlowSendVote": slow_send_vote,
    "SlowRecvVote": slow_recv_vote,
    "AddMembership": add_membership,
    "AddRemoveNodesNotLeader": add_remove_nodes_not_leader,
    "RemoveLeader": remove_leader,
    "RemovePartitionedNode": remove_partitioned_node,
    "FuzzyLeadershipTransfer": leadership_transfer,
    "CrashRestart": crash_restart,
    "RestartVoters": restart_voters,
    "ApplyBurst": apply_burst,
    "SnapshotRestore": snapshot_restore,
    "SlowStateMachine": slow_state_machine,
    "MonotonicCrashRestart": monotonic_crash_restart,
}

# Cluster and configuration options of scenarios that need them.
SCENARIO_OPTIONS: dict[str, dict[str, Any]] = {
    "MonotonicCrashRestart": {"monotonic_logs": True},
}

# Cluster sizes as in hashicorp's fuzzy tests.
DEFAULT_NODES = {"AddMembership": 3, "AddRemoveNodesNotLeader": 3}


def run_one(scenario: str, seed: int, nodes: int | None = None, bugs: TeachingBugs | None = None) -> FuzzResult:
    """Run one scenario with one seed and report the outcome."""
    return FuzzRun(scenario, seed, nodes or DEFAULT_NODES.get(scenario, 5), bugs).execute()
