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

Three checks judge the run: the invariant checker after every event; at the
end, identical logs and identical state machines on every member; and the
clients' history must be linearizable.

A run is a pure function of (scenario, seed, nodes, bugs), so a failure is
reported with the one command that replays it exactly.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from raft.config import Config, TeachingBugs
from raft.errors import RaftError
from raft.invariants import InvariantViolation
from raft.kv import Command, KVStore, Result, read
from raft.linearizability import UNKNOWN, Operation, check_operations, kv_cas_model
from raft.sim.network import LinkFaults, SlowRule
from raft.state import RaftState
from raft.testing import Cluster, SimulationError

HT = 0.2  # heartbeat and election timeout of fuzz runs, in virtual seconds
KEYS = ("a", "b", "c")  # few keys: more contention, more interesting histories
CLIENTS = 3
OPERATION_TIMEOUT = 10 * HT  # a client gives up (outcome unknown) after this long


def fuzz_config() -> Config:
    """Short timeouts and frequent snapshots, so that much happens in few virtual seconds."""
    return Config(heartbeat_timeout=HT, election_timeout=HT, leader_lease_timeout=HT / 2, commit_timeout=HT / 4,
                  snapshot_threshold=40, trailing_logs=16, snapshot_interval=HT * 2, max_append_entries=8)


def fuzz_faults() -> LinkFaults:
    """The unreliable network every scenario runs on."""
    return LinkFaults(delay=0.0135, jitter=0.0135, loss=0.10, duplicate=0.01, reorder=0.01, reorder_delay=0.15)


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
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def start(self) -> None:
        for client in range(CLIENTS):
            rng = random.Random(f"{self.run.seed}:client{client}")
            self.tasks.append(self.run.cluster.loop.create_task(self.client(client, rng)))

    async def client(self, client: int, rng: random.Random) -> None:
        seq = 0
        while not self.stopping:
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
            output = await self.perform(command, rng)
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
        config = replace(fuzz_config(), bugs=self.bugs)
        self.cluster = Cluster(nodes, seed, config=config, faults=fuzz_faults(), fsm_factory=KVStore,
                               transport_timeout=HT / 2)
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
        cluster.network.slow.clear()
        cluster.set_faults(loss=0.0, duplicate=0.0, reorder=0.0)
        for node_id in self.members():
            if not cluster.is_up(node_id):
                cluster.restart(node_id)
        self.clients.stopping = True
        try:
            cluster.run_until(lambda c: all(t.done() for t in self.clients.tasks), timeout=4 * OPERATION_TIMEOUT)
        except TimeoutError as err:
            raise FuzzFailure("clients did not finish after healing") from err
        if self.leader(100) is None:
            raise FuzzFailure("no leader was elected after healing the network and restarting every node")
        if not self.through_leader(lambda r: r.barrier(), limit=100):
            raise FuzzFailure("a barrier could not commit after healing")

    def verify(self, result: FuzzResult) -> None:
        cluster = self.cluster
        members = self.members()
        leader = cluster.node(cluster.leader() or members[0])
        last = leader.last_index()
        try:
            cluster.run_until(lambda c: all(c.node(i).applied_index() >= last and not c.node(i).fsm_pending_applies()
                                            for i in members), timeout=50 * HT)
        except TimeoutError as err:
            raise FuzzFailure(f"members did not all apply index {last}") from err
        # Identical logs: every entry still held by several members is the same
        # on all of them; an entry a member no longer holds must lie inside its snapshot.
        for index in range(1, last + 1):
            seen: dict[tuple[int, bytes], str] = {}
            for i in members:
                store = cluster.handles[i].store
                if store.first_index() <= index <= store.last_index():
                    held = store.get_log(index)
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
        verdict = check_operations(kv_cas_model, history, timeout=60)
        if verdict.linearizable is False:
            raise FuzzFailure(f"the client history is not linearizable:\n{verdict.explanation}")

    def replay_command(self) -> str:
        bugs = "".join(f" --bug {name.replace('_', '-')}" for name, on in vars(self.bugs).items() if on)
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
}

# Cluster sizes as in hashicorp's fuzzy tests.
DEFAULT_NODES = {"AddMembership": 3, "AddRemoveNodesNotLeader": 3}


def run_one(scenario: str, seed: int, nodes: int | None = None, bugs: TeachingBugs | None = None) -> FuzzResult:
    """Run one scenario with one seed and report the outcome."""
    return FuzzRun(scenario, seed, nodes or DEFAULT_NODES.get(scenario, 5), bugs).execute()
