"""Run a whole cluster in one process, in virtual time, and drive it step by step.

Mirrors: testing.go (MakeCluster, the cluster type and its wait helpers).
Read before: api.py, raft/testing.py (MockFSM). Used by: the tests, the tutorials, the visualizer, ``raft-sim``.

``Cluster`` builds N nodes on one ``VirtualTimeLoop`` and one seeded
``SimNetwork``. Nothing runs until you ask; then the loop runs only as far
as you ask, and stops between two callbacks::

    cluster = Cluster(nodes=5, seed=42)
    cluster.run_until(lambda c: c.leader() is not None)
    print(cluster.now, cluster.leader())
    result = cluster.apply(b"set x 1")
    cluster.crash(cluster.leader())
    cluster.run_until(lambda c: c.leader() is not None)

The same seed and the same calls at the same virtual times always give the
same event trace. These methods are synchronous and work in a plain script,
in pytest and inside a Jupyter notebook (whose own event loop is set aside
while the cluster runs).

Differs: hashicorp's helpers wait in real time and fail the test on a
timeout; here they run the virtual clock and raise ``TimeoutError``. Node IDs
are ``n1``…``nN`` and double as addresses. Links are cut inside the simulated
network rather than by disconnecting transports: a request over a cut link
still fails at once, as in hashicorp's tests, but it also shows up in the
event stream as an ``rpc_drop`` with reason "partition".
"""

from __future__ import annotations

import asyncio
import io
import itertools
import random
import traceback
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from typing import Any, Self

from raft.api import Raft, bootstrap_cluster, new_raft
from raft.checkers.invariants import InvariantChecker
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage
from raft.errors import RaftError
from raft.events import Event, EventLog
from raft.fsm import FSM
from raft.future import ConfigurationChangeFuture, ErrorFuture, LeadershipTransferFuture, LogFuture, VerifyFuture
from raft.inmem_snapshot import InmemSnapshotStore
from raft.inmem_store import InmemStore
from raft.inmem_transport import InmemTransport
from raft.runtime.channels import describe_task, set_select_cost
from raft.runtime.virtual_loop import VirtualTimeLoop, run_paused
from raft.sim.bugs import BUG_NAMES, BuggyRaft, TeachingBugs
from raft.sim.network import LinkFaults, SimNetwork
from raft.state import RaftState
from raft.testing import MockFSM, MockMonotonicLogStore
from raft.util import async_notify_ch

DEFAULT_RUN_LIMIT = 120.0  # virtual seconds a run_until may take before giving up
SHUTDOWN_LIMIT = 60.0  # virtual seconds every node's tasks have to return after Shutdown


class SimulationError(RuntimeError):
    """A task inside the simulation raised: a bug, reported with its traceback."""


# ---------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------


@dataclass
class NodeHandle:
    """Everything that belongs to one simulated server, running or crashed."""

    id: str
    store: InmemStore  # log and stable store: survives a crash, as a disk would
    snapshots: InmemSnapshotStore  # survives a crash too
    transport: InmemTransport
    fsm: FSM
    raft: Raft | None = None  # None while crashed
    incarnation: int = 0  # how many times it has been (re)started


@dataclass
class ApplyResult:
    """What ``Cluster.apply`` returns: where the command landed and what the FSM said."""

    index: int
    response: Any


@dataclass(frozen=True)
class Intervention:
    """One thing done to a running simulation, and exactly when.

    ``position`` counts the loop callbacks that had run (``callbacks_run``),
    so a replay can stop at the very same point between two callbacks; ``t``
    is the virtual time, for people.
    """

    position: int
    t: float
    action: str
    args: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "t": self.t, "action": self.action, "args": self.args}


RECORDING_VERSION = 1
# Config fields a recording may set (all plain numbers or booleans).
RECORDABLE_CONFIG = ("heartbeat_timeout", "election_timeout", "commit_timeout", "max_append_entries",
                     "batch_apply_ch", "shutdown_on_remove", "trailing_logs", "snapshot_interval",
                     "snapshot_threshold", "leader_lease_timeout", "pre_vote_disabled")
RECORDABLE_FAULTS = ("delay", "jitter", "loss", "duplicate", "reorder", "reorder_delay")


class Cluster:
    """A simulated cluster with a synchronous control panel.

    Use it as a context manager, which shuts every node down and releases
    the event loop at the end::

        with Cluster(nodes=3, seed=1) as cluster:
            cluster.run_until(lambda c: c.leader() is not None)
            print(cluster.leader())

    Outside a ``with`` block, ``dispose()`` does the same; ``close()`` only
    shuts the nodes down, and the cluster can still be inspected.
    """

    def __init__(self, nodes: int | Iterable[str] = 3, seed: int = 0, *, config: Config | None = None,
                 bootstrap: bool = True, faults: LinkFaults | None = None,
                 fsm_factory: Callable[[], FSM] = MockFSM, speed: float | None = None,
                 configs: dict[str, Config] | None = None, start: bool = True,
                 monotonic_logs: bool = False, check_invariants: bool = True,
                 transport_timeout: float = 0.5, bugs: TeachingBugs | None = None) -> None:
        ids = [f"n{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else list(nodes)
        if not ids:
            raise ValueError("a cluster needs at least one node")
        if len(set(ids)) != len(ids):
            raise ValueError(f"node IDs must be unique: {ids}")
        self.seed = seed
        self.loop = VirtualTimeLoop(speed)
        self.loop.set_exception_handler(self._on_task_error)
        self.events = EventLog(self.loop.time)
        self.network = SimNetwork(random.Random(f"{seed}:network"), self.events, faults, loop=self.loop)
        self.config_template = config or Config()
        self.configs = dict(configs or {})
        self.fsm_factory = fsm_factory
        self.monotonic_logs = monotonic_logs
        self.bugs = bugs or TeachingBugs()  # deliberate protocol bugs, for classes (sim/bugs.py)
        self.transport_timeout = transport_timeout
        self.handles: dict[str, NodeHandle] = {}
        self._failure: str | None = None
        self._building = True
        self._closing = False  # while shutting down, a violation already reported is not raised again
        self._slowed: dict[asyncio.Task[Any], str] = {}  # state machine tasks slowed down, and their node
        self.interventions: list[Intervention] = []
        self._disconnected: dict[str, bool] = {}  # nodes cut off by ``disconnect``, until ``connect``
        # Called with each node as it starts or restarts (the fault simulator
        # uses it to watch every request made to any node).
        self.on_start: list[Callable[[Raft], None]] = []
        self.checker: InvariantChecker | None = None
        if check_invariants:
            self.checker = InvariantChecker(self, on_violation=lambda _: self.loop.request_pause())
            self.events.subscribe(self.checker)
        self.params: dict[str, Any] = {
            "nodes": list(ids), "seed": seed, "bootstrap": bootstrap,
            "config": {name: getattr(self.config_template, name) for name in RECORDABLE_CONFIG},
            "faults": {name: getattr(self.network.faults, name) for name in RECORDABLE_FAULTS},
        }
        if self.bugs.any():
            self.params["bugs"] = self.bugs.cli_names()
        for node_id in ids:
            self._add_handle(node_id)
        self.full_connect()
        if bootstrap:
            configuration = Configuration([Server(ServerSuffrage.Voter, i, i) for i in ids])
            for handle in self.handles.values():
                bootstrap_cluster(self.config_for(handle.id), handle.store, handle.store, handle.snapshots,
                                  handle.transport, configuration)
        self._building = False
        if start:
            self.start()

    def start(self, *node_ids: str) -> None:
        """Start nodes built with ``start=False`` (all of them by default).

        Between building and starting, a test can prepare each node's stores,
        for instance to recreate the logs of the paper's Figure 7.
        """
        for node_id in node_ids or tuple(self.handles):
            handle = self._handle(node_id)
            if handle.raft is None:
                self._start(handle)

    # -- construction -------------------------------------------------------------------

    def _add_handle(self, node_id: str) -> NodeHandle:
        transport = InmemTransport(node_id, timeout=self.transport_timeout, network=self.network)
        store = MockMonotonicLogStore() if self.monotonic_logs else InmemStore()
        handle = NodeHandle(node_id, store, InmemSnapshotStore(), transport, self.fsm_factory())
        self.handles[node_id] = handle
        return handle

    def config_for(self, node_id: str) -> Config:
        base = self.configs.get(node_id, self.config_template)
        return replace(base, local_id=node_id, notify_ch=base.notify_ch if node_id in self.configs else None)

    def _start(self, handle: NodeHandle) -> None:
        rng = random.Random(f"{self.seed}:{handle.id}:{handle.incarnation}")
        stores = (self.config_for(handle.id), handle.fsm, handle.store, handle.store, handle.snapshots,
                  handle.transport)
        if self.bugs.any():
            handle.raft = BuggyRaft(self.bugs, *stores, events=self.events, rng=rng, loop=self.loop)
        else:
            handle.raft = new_raft(*stores, events=self.events, rng=rng, loop=self.loop)
        for hook in self.on_start:
            hook(handle.raft)

    def add_node(self, node_id: str, config: Config | None = None) -> Raft:
        """Start a new, empty (unbootstrapped) server that can talk to everyone.

        It joins the cluster once the leader adds it (``add_voter``).
        """
        if node_id in self.handles:
            raise ValueError(f"node {node_id} already exists")
        if config is not None:
            self.configs[node_id] = config
        self._record("add_node", node=node_id)
        handle = self._add_handle(node_id)
        self._connect_transports()
        self._start(handle)
        assert handle.raft is not None
        return handle.raft

    def _on_task_error(self, loop: Any, context: dict[str, Any]) -> None:
        error = context.get("exception")
        detail = "".join(traceback.format_exception(error)) if error else ""
        if self._failure is None:
            self._failure = f"{context.get('message')}\n{detail}"
        self.loop.request_pause()

    # -- looking at the cluster ------------------------------------------------------------

    @property
    def now(self) -> float:
        """Virtual seconds since the cluster was built."""
        return self.loop.time()

    @property
    def ids(self) -> list[str]:
        return list(self.handles)

    def node(self, node_id: str) -> Raft:
        """The running node ``node_id``; raises if it is crashed."""
        handle = self._handle(node_id)
        if handle.raft is None:
            raise RuntimeError(f"node {node_id} is crashed; restart it first")
        return handle.raft

    def _handle(self, node_id: str) -> NodeHandle:
        try:
            return self.handles[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id!r}; nodes are {', '.join(self.handles)}") from None

    def fsm(self, node_id: str) -> Any:
        return self._handle(node_id).fsm

    def rafts(self) -> list[Raft]:
        """Running nodes, in ID order."""
        return [h.raft for h in self.handles.values() if h.raft is not None]

    def is_up(self, node_id: str) -> bool:
        return self._handle(node_id).raft is not None

    def leader(self) -> str | None:
        """The node that currently leads in the highest term, or None. Does not run the loop."""
        leaders = [r for r in self.rafts() if r.state() == RaftState.Leader]
        if not leaders:
            return None
        return max(leaders, key=lambda r: r.current_term()).local_id

    def followers(self) -> list[str]:
        """Running nodes in the follower state (Mirrors: Followers, without waiting)."""
        return [r.local_id for r in self.rafts() if r.state() == RaftState.Follower]

    def log_terms(self, node_id: str) -> dict[int, int]:
        """{index: term} of every entry in the node's log store, crashed or not (its "disk")."""
        store = self._handle(node_id).store
        return {i: store.logs[i].term for i in sorted(store.logs)}

    def replication_state(self) -> dict[str, tuple[int, int]]:
        """On the current leader: {follower: (nextIndex, matchIndex)} (Figure 2, volatile state on leaders)."""
        leader = self.leader()
        if leader is None:
            return {}
        state = self.node(leader).leader_state
        matches = state.commitment.match_indexes
        return {peer: (repl.next_index, matches.get(peer, 0)) for peer, repl in state.repl_state.items()}

    def in_state(self, state: RaftState) -> list[str]:
        return [r.local_id for r in self.rafts() if r.state() == state]

    # -- driving the loop -------------------------------------------------------------------

    def _drive(self, stop: Callable[[], bool] | None, deadline: float | None) -> None:
        if stop is not None and stop():
            return
        handle = self.loop.call_at(deadline, self.loop.request_pause) if deadline is not None else None
        self.loop.pause_when = stop
        try:
            run_paused(self.loop)
        finally:
            self.loop.pause_when = None
            if handle is not None:
                handle.cancel()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise SimulationError(failure)
        if self.checker is not None and self.checker.violation is not None and not self._closing:
            raise self.checker.violation

    def run_for(self, seconds: float) -> None:
        """Advance virtual time by ``seconds``."""
        if seconds < 0:
            raise ValueError("cannot run for a negative time")
        self._drive(None, self.now + seconds)

    def run_until(self, predicate: Callable[[Cluster], bool], timeout: float = DEFAULT_RUN_LIMIT,
                  what: str = "") -> None:
        """Run until ``predicate(cluster)`` holds; raise ``TimeoutError`` after ``timeout`` virtual seconds.

        The predicate is checked after every callback, so the loop stops at
        the first moment it becomes true.
        """
        deadline = self.now + timeout
        self._drive(lambda: predicate(self) or self.now >= deadline, deadline)
        if not predicate(self):
            raise TimeoutError(f"condition {what or predicate} not met within {timeout} virtual seconds "
                               f"(now t={self.now:.3f}, seed={self.seed})")

    def step(self, timeout: float = DEFAULT_RUN_LIMIT) -> list[Event]:
        """Run until at least one new event happens; return the new events."""
        start = len(self.events)
        deadline = self.now + timeout
        self._drive(lambda: len(self.events) > start or self.now >= deadline, deadline)
        return self.events.events[start:]

    def run_coro(self, coro: Coroutine[Any, Any, Any], timeout: float = DEFAULT_RUN_LIMIT) -> Any:
        """Run a coroutine on the cluster's loop until it finishes; return its result."""
        task = self.loop.create_task(coro)
        deadline = self.now + timeout
        self._drive(lambda: task.done() or self.now >= deadline, deadline)
        while not task.done() and self.now < deadline and self._closing:
            # While closing, a violation already reported still pauses the loop
            # once; keep going, so that only the clock can end the wait.
            self._drive(lambda: task.done() or self.now >= deadline, deadline)
        if not task.done():
            task.cancel()
            raise TimeoutError(f"coroutine did not finish within {timeout} virtual seconds")
        return task.result()

    def wait(self, future: Any, timeout: float = DEFAULT_RUN_LIMIT) -> RaftError | None:
        """Run until ``future`` is answered; return its error (None on success)."""
        self.run_until(lambda c: future.done, timeout, "future answered")
        result: RaftError | None = future.error_now()
        return result

    def apply(self, command: bytes, timeout: float = DEFAULT_RUN_LIMIT) -> ApplyResult:
        """Apply ``command`` through the current leader and run until it is applied there.

        Raises ``RuntimeError`` if there is no leader and the ``RaftError`` the
        future reports if the command fails (e.g. the leader lost leadership).
        """
        leader = self.leader()
        if leader is None:
            raise RuntimeError("no leader to apply to; run until one is elected first")
        future = self.submit(command, leader)  # recorded, so an exported run replays it
        err = self.wait(future, timeout)
        if err is not None:
            raise err
        return ApplyResult(future.index(), future.response())

    # -- faults ----------------------------------------------------------------------------

    def crash(self, node_id: str) -> None:
        """Stop a node abruptly: its tasks die and its volatile state is gone; its stores stay."""
        handle = self._handle(node_id)
        raft = handle.raft
        if raft is None:
            raise RuntimeError(f"node {node_id} is already crashed")
        self._record("crash", node=node_id)
        self.events.emit(node_id, "crash", "Cluster.crash", term=raft.current_term(), state=str(raft.state()).lower())
        raft.events.log = None  # a dead node says nothing more
        for task in raft.routines_group.tasks():
            set_select_cost(task, 0)  # a slow state machine dies with its process
            self._slowed.pop(task, None)
        raft.routines_group.cancel_all()
        self.network.down[node_id] = True
        self.network.stalled.pop(node_id, None)  # what a stalled process had not read dies with it
        handle.raft = None

    def restart(self, node_id: str) -> Raft:
        """Start a crashed node again from its own stores (term, vote, log survive)."""
        handle = self._handle(node_id)
        if handle.raft is not None:
            raise RuntimeError(f"node {node_id} is running; crash it first")
        self._record("restart", node=node_id)
        handle.incarnation += 1
        handle.fsm = self.fsm_factory()  # the state machine is rebuilt from the log
        if self.bugs.forget_vote_on_restart:  # teaching bug: votedFor was not durable
            handle.store.kv.pop(b"LastVoteCand", None)
            handle.store.kv_int.pop(b"LastVoteTerm", None)
        if self.bugs.forget_term_on_restart:  # teaching bug: currentTerm was not durable
            handle.store.kv_int.pop(b"CurrentTerm", None)
        handle.transport.reopen()
        self.network.down.pop(node_id, None)
        self.events.emit(node_id, "restart", "Cluster.restart", incarnation=handle.incarnation)
        self._start(handle)
        assert handle.raft is not None
        return handle.raft

    def full_connect(self) -> None:
        """Connect every transport to every other and heal all cuts (Mirrors: FullyConnect)."""
        if not self._building:
            self._record("heal")
        self._connect_transports()
        self._disconnected.clear()
        if self.network.blocked:
            self.network.heal()
            self.events.emit("*", "partition", "Cluster.full_connect", groups=[self.ids])

    def _connect_transports(self) -> None:
        for a in self.handles.values():
            for b in self.handles.values():
                if a is not b:
                    a.transport.connect(b.id, b.transport)

    def heal(self) -> None:
        """Restore every network link."""
        self.full_connect()

    def disconnect(self, node_id: str) -> None:
        """Cut ``node_id`` off from everyone, both ways, keeping every other cut (Mirrors: Disconnect).

        ``disconnect("n1")`` then ``disconnect("n2")`` leaves both cut off;
        ``connect`` undoes one of them.
        """
        self._handle(node_id)
        self._record("disconnect", node=node_id)
        self._disconnected[node_id] = True
        for other in self.handles:
            if other != node_id:
                self.network.cut(node_id, other)
                self.network.cut(other, node_id)
        self.events.emit("*", "partition", "Cluster.disconnect", disconnected=node_id)

    def connect(self, node_id: str) -> None:
        """Undo ``disconnect(node_id)``: restore its links to every node that is not disconnected itself."""
        self._handle(node_id)
        self._record("connect", node=node_id)
        self._disconnected.pop(node_id, None)
        for other in self.handles:
            if other != node_id and other not in self._disconnected:
                self.network.restore(node_id, other)
                self.network.restore(other, node_id)
        self.events.emit("*", "partition", "Cluster.connect", connected=node_id)

    def slow_state_machine(self, node_id: str, delay: float) -> None:
        """Make ``node_id``'s state machine take ``delay`` virtual seconds per message (0: normal).

        Each batch of committed entries, snapshot or restore then costs that
        much time, and entries pile up in the FSM channel until the main loop
        has to wait, as in a real server whose application is slower than its
        log. The fault lasts until the node crashes (a restarted node has a
        new task).
        """
        raft = self.node(node_id)
        self._record("slow_state_machine", node=node_id, delay=delay)
        for task in raft.routines_group.tasks():
            if task.get_name() == f"{node_id}:run_fsm":
                set_select_cost(task, delay)
                if delay > 0:
                    self._slowed[task] = node_id
                else:
                    self._slowed.pop(task, None)
        self.events.emit(node_id, "slow_state_machine", "Cluster.slow_state_machine", delay=delay)

    def stall(self, node_id: str) -> None:
        """Stop ``node_id`` reading its network: what arrives is held until ``release`` (a paused process)."""
        self._handle(node_id)
        self._record("stall", node=node_id)
        self.network.stall(node_id)
        self.events.emit(node_id, "stall", "Cluster.stall")

    def release(self, node_id: str) -> None:
        """Undo ``stall``: everything held for ``node_id`` arrives at once, in order."""
        self._handle(node_id)
        self._record("release", node=node_id)
        held = self.network.release(node_id)
        self.events.emit(node_id, "release", "Cluster.release", messages=held)

    def restore_link(self, src: str, dst: str) -> None:
        """Undo ``cut(src, dst)``."""
        self._handle(src), self._handle(dst)
        self._record("restore_link", src=src, dst=dst)
        self.network.restore(src, dst)
        self.events.emit("*", "partition", "Cluster.restore_link", restored=[src, dst])

    def submit(self, command: bytes, node_id: str | None = None) -> Any:
        """Send a client command to ``node_id`` (default: the leader) without waiting; returns its future."""
        target = node_id or self.leader()
        if target is None:
            raise RuntimeError("no leader to send the command to")
        raft = self.node(target)  # raises, and records nothing, if it is crashed
        self._record("submit", node=target, command=command.decode("utf-8", "replace"))
        self.events.emit("client", "client_request", "Cluster.submit", to=target,
                         command=command.decode("utf-8", "replace"))
        return raft.apply(command)

    def force_timeout(self, node_id: str) -> None:
        """Make a follower act as if it had not heard from a leader for a whole timeout."""
        raft = self.node(node_id)
        if raft.state() != RaftState.Follower:
            raise RuntimeError(f"{node_id} is a {raft.state()}, only a follower can be timed out")
        self._record("force_timeout", node=node_id)
        raft._last_contact = None
        raft.leader_addr = raft.leader_id = ""
        async_notify_ch(raft.follower_notify_ch)  # the follower loop re-checks at once

    def drop_message(self, flight_id: int) -> bool:
        """Lose one message in flight (see ``network.in_flight``)."""
        if flight_id not in self.network.in_flight:
            return False
        self._record("drop_message", flight=flight_id)
        return self.network.drop(flight_id)

    def duplicate_message(self, flight_id: int) -> int | None:
        """Deliver one more copy of a message in flight."""
        if flight_id not in self.network.in_flight:
            return None
        self._record("duplicate_message", flight=flight_id)
        return self.network.duplicate(flight_id)

    # -- asking the leader: membership, leadership transfer, reads ----------------------------
    #
    # Each one is an intervention like ``submit``: recorded first, then handed
    # to whoever leads at this moment, so an exported run replays it exactly.
    # Without a leader they raise RuntimeError and record nothing.

    def _ask_leader(self, action: str, what: str, **args: Any) -> Raft:
        """Find the leader (or raise), record ``action`` and tell the event stream who was asked."""
        leader = self.leader()
        if leader is None:
            raise RuntimeError(f"no leader to {what}; run until one is elected first")
        raft = self.node(leader)
        self._record(action, **args)
        shown = " ".join([action, *(str(v) for v in args.values() if v is not None)])
        self.events.emit("client", "client_request", f"Cluster.{action}", to=raft.local_id, command=shown)
        return raft

    def add_voter(self, node_id: str) -> ConfigurationChangeFuture | ErrorFuture:
        """Ask the leader to make ``node_id`` a voting member (Mirrors: AddVoter); returns its future.

        The node must exist in the simulation (see ``add_node``); its ID is its address.
        """
        self._handle(node_id)
        return self._ask_leader("add_voter", f"add {node_id}", node=node_id).add_voter(node_id, node_id)

    def remove_server(self, node_id: str) -> ConfigurationChangeFuture | ErrorFuture:
        """Ask the leader to remove ``node_id`` from the configuration (Mirrors: RemoveServer)."""
        self._handle(node_id)
        return self._ask_leader("remove_server", f"remove {node_id}", node=node_id).remove_server(node_id)

    def transfer_leadership(self, target: str | None = None) -> LeadershipTransferFuture | ErrorFuture:
        """Ask the leader to hand over to ``target``, or to the most up-to-date voter if None.

        Mirrors: LeadershipTransfer and LeadershipTransferToServer.
        """
        if target is not None:
            self._handle(target)
        raft = self._ask_leader("transfer_leadership", "transfer leadership", target=target)
        if target is None:
            return raft.leadership_transfer()
        return raft.leadership_transfer_to_server(target, target)

    def barrier(self) -> LogFuture | ErrorFuture:
        """Ask the leader for a barrier: resolves once every earlier entry is applied (Mirrors: Barrier)."""
        return self._ask_leader("barrier", "send a barrier to").barrier()

    def verify_leader(self) -> VerifyFuture | ErrorFuture:
        """Ask the leader to confirm with a quorum that it still leads (Mirrors: VerifyLeader)."""
        return self._ask_leader("verify_leader", "ask for a leadership check").verify_leader()

    # -- recording and replaying a run ------------------------------------------------------

    def _position_reached(self, position: int) -> Callable[[], bool]:
        return lambda: self.loop.callbacks_run >= position

    def _record(self, action: str, **args: Any) -> None:
        self.interventions.append(Intervention(self.loop.callbacks_run, self.now, action, args))

    def export_run(self) -> dict[str, Any]:
        """Everything needed to replay this run exactly: parameters and interventions."""
        return {"version": RECORDING_VERSION, "params": self.params, "now": self.now,
                "interventions": [i.to_dict() for i in self.interventions]}

    @classmethod
    def import_run(cls, data: Any, until: float | None = None) -> Self:
        """Rebuild a run from ``export_run`` data, replaying it up to its end (or virtual time ``until``).

        Raises ``ValueError`` with a clear message if the data is malformed.
        """
        params, interventions, end = _parse_recording(data)
        config = Config(**params["config"])
        cluster = cls(params["nodes"], params["seed"], config=config, bootstrap=params["bootstrap"],
                      faults=LinkFaults(**params["faults"]),
                      bugs=TeachingBugs.from_cli_names(params.get("bugs", [])))
        stop_at = end if until is None else min(until, end)
        for step in interventions:
            if step.t > stop_at:
                break
            cluster._drive(cluster._position_reached(step.position), None)
            if cluster.now < step.t:
                # The original paused here later, after time passed with no callbacks.
                cluster._drive(None, step.t)
            if cluster.loop.callbacks_run != step.position or cluster.now != step.t:
                raise ValueError(f"recording does not replay: intervention {step.action} expected at position "
                                 f"{step.position}, t={step.t}; the replay reached {cluster.loop.callbacks_run}, "
                                 f"t={cluster.now}")
            getattr(cluster, _REPLAY_METHODS[step.action])(**_replay_args(step))
        cluster.run_for(max(0.0, stop_at - cluster.now))
        return cluster

    def partition(self, *groups: Iterable[str], **kwargs: Any) -> None:
        """Split the network: nodes talk only within their group.

        ``partition(["n1", "n2"])`` separates n1 and n2 from everyone else
        (Mirrors: Partition(far)); ``partition(["n1"], ["n2", "n3"], ["n4"])`` makes three groups.
        """
        group_list = [list(g) for g in (*groups, *kwargs.pop("groups", []))]
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        for group in group_list:
            for node_id in group:
                self._handle(node_id)
        if len(group_list) == 1:
            rest = [i for i in self.handles if i not in group_list[0]]
            group_list.append(rest)
        self._record("partition", groups=group_list)
        self._disconnected.clear()
        self.network.partition(group_list)
        self.events.emit("*", "partition", "Cluster.partition", groups=group_list)

    def cut(self, src: str, dst: str) -> None:
        """Lose every message from ``src`` to ``dst`` (one way)."""
        self._handle(src), self._handle(dst)
        self._record("cut", src=src, dst=dst)
        self.network.cut(src, dst)
        self.events.emit("*", "partition", "Cluster.cut", cut=[src, dst])

    def set_faults(self, **changes: Any) -> None:
        """Change the network's faults, e.g. ``set_faults(loss=0.1, delay=0.005)``."""
        self.network.update_faults(**changes)
        self._record("set_faults", **changes)
        faults = self.network.faults
        self.events.emit("*", "network", "Cluster.set_faults", loss=faults.loss, delay=faults.delay,
                         jitter=faults.jitter, duplicate=faults.duplicate, reorder=faults.reorder)

    # -- Go's waiting helpers -----------------------------------------------------------------

    def get_in_state(self, state: RaftState, longstop: float = DEFAULT_RUN_LIMIT) -> list[str]:
        """Wait until elections have settled, then list the nodes in ``state`` (Mirrors: GetInState).

        "Settled" means no role change and no vote request for
        2 × max(heartbeat, election timeout) + commit timeout.
        """
        conf = self.config_template
        window = 2 * max(conf.heartbeat_timeout, conf.election_timeout) + conf.commit_timeout
        deadline = self.now + longstop
        changes = [0]

        def count_changes(event: Event) -> None:
            if event.kind in ("state", "request_vote"):
                changes[0] += 1

        token = self.events.subscribe(count_changes)
        try:
            while True:
                quiet_until = self.now + window
                seen = changes[0]
                self._drive(self._quiet_check(changes, seen, quiet_until), min(quiet_until, deadline))
                if changes[0] == seen and self.now >= quiet_until:
                    return self.in_state(state)
                if self.now >= deadline:
                    raise TimeoutError(f"cluster did not settle within {longstop} virtual seconds "
                                       f"(seed={self.seed})")
        finally:
            self.events.unsubscribe(token)

    def _quiet_check(self, changes: list[int], seen: int, until: float) -> Callable[[], bool]:
        return lambda: changes[0] != seen or self.now >= until

    def wait_leader(self, longstop: float = DEFAULT_RUN_LIMIT) -> str:
        """Wait for a stable leader and return it; exactly one is expected (Mirrors: Leader)."""
        leaders = self.get_in_state(RaftState.Leader, longstop)
        if len(leaders) != 1:
            raise AssertionError(f"expected one leader, found {leaders} (seed={self.seed})")
        return leaders[0]

    def ensure_leader(self, expected: str | None) -> None:
        """Every running node agrees that ``expected`` leads (Mirrors: EnsureLeader)."""
        for raft in self.rafts():
            _, leader_id = raft.leader_with_id()
            if leader_id != (expected or ""):
                raise AssertionError(f"{raft.local_id} thinks the leader is {leader_id!r}, expected {expected!r}")

    def ensure_same(self, timeout: float = DEFAULT_RUN_LIMIT) -> None:
        """Run until every running node's MockFSM holds the same commands (Mirrors: EnsureSame)."""
        def same(c: Cluster) -> bool:
            logs = [c.fsm(r.local_id).logs for r in c.rafts()]
            return all(log == logs[0] for log in logs)

        self.run_until(same, timeout, "all FSMs equal")

    def wait_for_replication(self, count: int, timeout: float = DEFAULT_RUN_LIMIT) -> None:
        """Run until every running node's MockFSM has ``count`` commands (Mirrors: WaitForReplication)."""
        self.run_until(lambda c: all(len(c.fsm(r.local_id).logs) >= count for r in c.rafts()), timeout,
                       f"{count} commands replicated")

    def close(self) -> None:
        """Shut every node down and wait for their tasks (Mirrors: Close).

        Safe to call more than once. Anything else still running on the loop
        (a client task, a message in flight) is cancelled. The cluster can
        still be inspected afterwards; ``dispose`` also releases the loop.
        """
        if self.loop.is_closed():
            return
        self._closing = True
        self._failure = None
        futures = [raft.shutdown() for raft in self.rafts()]
        try:
            for future in futures:
                self.run_coro(future.error(), timeout=SHUTDOWN_LIMIT)
        except TimeoutError:
            raise TimeoutError(f"shutdown did not finish within {SHUTDOWN_LIMIT} virtual seconds "
                               f"(seed={self.seed}); still running:\n{self.stall_report()}") from None
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            self._drive(lambda: all(task.done() for task in pending), self.now + 60)
        for task in self._slowed:
            set_select_cost(task, 0)
        self._slowed.clear()

    def slow_state_machines(self) -> list[str]:
        """The running nodes whose state machine ``slow_state_machine`` has slowed down."""
        return [node_id for task, node_id in self._slowed.items() if not task.done()]

    def stall_report(self, node_ids: Iterable[str] | None = None) -> str:
        """One line per task still running on the nodes (all by default): the channels it waits on, and where.

        This is how a stalled simulation is diagnosed: a task waiting for
        ever on a full channel names that channel and the line it is stuck on.
        """
        wanted = list(node_ids) if node_ids is not None else list(self.handles)
        lines = []
        for node_id in wanted:
            raft = self.handles[node_id].raft
            if raft is None:
                continue
            for task in raft.routines_group.tasks():
                lines.append(f"  {describe_task(task)}")
        return "\n".join(lines) or "  (no tasks)"

    def dispose(self) -> None:
        """``close`` and release the event loop; the cluster cannot run again."""
        self.close()
        self.loop.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def trace(self) -> str:
        """The event stream as JSON Lines."""
        out = io.StringIO()
        self.events.write_jsonl(out)
        return out.getvalue()


def make_cluster(n: int, conf: Config | None = None, *, seed: int = 0, **options: Any) -> Cluster:
    """A bootstrapped cluster of ``n`` voters (Mirrors: testing.go MakeCluster)."""
    return Cluster(n, seed, config=conf, bootstrap=True, **options)


def make_cluster_no_bootstrap(n: int, conf: Config | None = None, *, seed: int = 0, **options: Any) -> Cluster:
    """``n`` connected nodes without a configuration (Mirrors: MakeClusterNoBootstrap)."""
    return Cluster(n, seed, config=conf, bootstrap=False, **options)


_REPLAY_METHODS = {
    "add_node": "add_node", "crash": "crash", "restart": "restart", "heal": "heal", "partition": "partition",
    "cut": "cut", "disconnect": "disconnect", "connect": "connect", "stall": "stall", "release": "release",
    "slow_state_machine": "slow_state_machine",
    "restore_link": "restore_link", "set_faults": "set_faults", "submit": "submit",
    "force_timeout": "force_timeout", "drop_message": "drop_message", "duplicate_message": "duplicate_message",
    "add_voter": "add_voter", "remove_server": "remove_server", "transfer_leadership": "transfer_leadership",
    "barrier": "barrier", "verify_leader": "verify_leader",
}


def _replay_args(step: Intervention) -> dict[str, Any]:
    args = dict(step.args)
    if step.action == "partition":
        return {"groups": args["groups"]}
    if step.action == "submit":
        return {"command": str(args["command"]).encode(), "node_id": args["node"]}
    if step.action in ("crash", "restart", "force_timeout", "add_node", "add_voter", "remove_server", "disconnect",
                       "connect", "stall", "release"):
        return {"node_id": args["node"]}
    if step.action == "transfer_leadership":
        return {"target": args.get("target")}
    if step.action == "slow_state_machine":
        return {"node_id": args["node"], "delay": args["delay"]}
    if step.action in ("drop_message", "duplicate_message"):
        return {"flight_id": args["flight"]}
    return args


def _parse_recording(data: Any) -> tuple[dict[str, Any], list[Intervention], float]:
    if not isinstance(data, dict) or data.get("version") != RECORDING_VERSION:
        raise ValueError(f"not a raft-textbook recording (expected version {RECORDING_VERSION})")
    params = data.get("params")
    if not isinstance(params, dict):
        raise ValueError("recording has no params")
    nodes = params.get("nodes")
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) and n for n in nodes):
        raise ValueError("params.nodes must be a non-empty list of node names")
    if not isinstance(params.get("seed"), int) or not isinstance(params.get("bootstrap"), bool):
        raise ValueError("params.seed must be an integer and params.bootstrap a boolean")
    for key, allowed in (("config", RECORDABLE_CONFIG), ("faults", RECORDABLE_FAULTS)):
        section = params.get(key)
        if not isinstance(section, dict) or not set(section) <= set(allowed):
            raise ValueError(f"params.{key} must be an object with keys among {', '.join(allowed)}")
        if not all(isinstance(v, (int, float)) for v in section.values()):
            raise ValueError(f"params.{key} values must be numbers or booleans")
    bugs = params.get("bugs", [])
    if not isinstance(bugs, list) or not set(bugs) <= set(BUG_NAMES):
        raise ValueError(f"params.bugs must be a list of names among {', '.join(BUG_NAMES)}")
    end = data.get("now")
    if not isinstance(end, (int, float)) or end < 0:
        raise ValueError("recording has no valid end time ('now')")
    raw = data.get("interventions")
    if not isinstance(raw, list):
        raise ValueError("recording has no interventions list")
    steps = []
    for item in raw:
        if (not isinstance(item, dict) or item.get("action") not in _REPLAY_METHODS
                or not isinstance(item.get("position"), int) or not isinstance(item.get("t"), (int, float))
                or not isinstance(item.get("args"), dict)):
            raise ValueError(f"malformed intervention: {item!r:.100}")
        steps.append(Intervention(item["position"], float(item["t"]), item["action"], item["args"]))
    if any(a.position > b.position for a, b in itertools.pairwise(steps)):
        raise ValueError("interventions must be in the order they happened")
    return {**params, "nodes": nodes}, steps, float(end)
