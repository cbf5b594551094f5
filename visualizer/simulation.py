"""The simulation thread: one cluster, played in slow motion, changed only between two callbacks.

Read before: commands.py, cluster.py, views.py. Read next: server.py.

Theory of operation
-------------------
``Cluster`` is not thread-safe, so exactly one thread touches it: the one
``Simulation.start`` starts (before that, the thread that built the
``Simulation``). Socket handlers only check a payload and put a ``Command``
on ``self.commands``. The thread runs ticks, 25 a second::

    take commands until the tick is due, applying each at once
    if playing: advance virtual time by (wall seconds since last tick) × speed
    send the browsers what changed (a "batch")

Every intervention goes through a recorded ``Cluster`` method, so the run is
a pure function of the seed and ``cluster.interventions``. That is what makes
the time controls exact:

* **rewind** to ``t``: rebuild with ``import_run(recording, until=t)``. The
  interventions after ``t`` are kept as ``future``.
* **replay**: playing on after a rewind applies each ``future`` intervention
  at the very callback position it was recorded at, so the old run comes
  back event for event; seeking forward does the same without pausing.
* **branch**: a new intervention while a ``future`` exists drops it; the run
  continues from here, and the scrubber's end moves to now.

A preset's narration (narration.py) waits for events: the event listener
asks the loop to pause at the matching event, so its captions and actions
land at the same place whatever the wall clock did.
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from raft.config import Config
from raft.configuration import ServerSuffrage
from raft.errors import RaftError
from raft.events import Event
from raft.sim import Cluster, Intervention, SimulationError
from raft.sim.bugs import TeachingBugs
from raft.sim.network import LinkFaults
from raft.state import RaftState
from visualizer.cluster import VisualCluster, settle_client_requests, with_setup
from visualizer.commands import MAX_NODES, Command, CommandError, parse_command
from visualizer.narration import Narrator, Preset, load_presets
from visualizer.views import StateTracker

logger = logging.getLogger(__name__)

DEFAULT_SPEED = 0.25  # virtual seconds per wall second: a 1 s election timeout takes 4 s to watch
# hashicorp's timeouts are about 1 s; a 100 ms network delay keeps the paper's ratio of message
# delay to election timeout (RaftScope's is similar) so messages can be seen travelling.
DEFAULT_FAULTS = {"delay": 0.1, "jitter": 0.02}
TICK_HZ = 25.0
MAX_WALL_STEP = 0.25  # after a stall, do not jump ahead by more than this much wall time
STEP_LIMIT = 10.0  # virtual seconds a single step may skip over looking for the next event
MAX_IMPORT_TIME = 1800.0  # virtual seconds an imported run may last (a rebuild replays all of it)
MAX_IMPORT_INTERVENTIONS = 20000
TIME_EPSILON = 1e-9  # virtual times closer than this are one instant (asyncio's clock resolution)
# A preset's "after" lands this much later than asked, so that its action never
# falls on the same instant as a protocol timer of the same length (a 0.5 s
# delay after an event would otherwise meet the 0.5 s lease timer it started).
NARRATION_OFFSET = 1.2345e-6
NARRATION_MATCH = 1e-3  # a recorded intervention this close in time may be the narration's own


class Publisher(Protocol):
    """Where the simulation sends what it has to say (Socket.IO in server.py, a list in tests)."""

    def broadcast(self, name: str, data: Any) -> None: ...

    def send(self, sid: str, name: str, data: Any) -> None: ...


class Rejected(Exception):
    """A command cannot be carried out in the cluster's present state; nothing was changed."""


# How a recorded intervention is carried out again; the same mapping import_run uses.
_REPLAY: dict[str, Callable[[VisualCluster, dict[str, Any]], Any]] = {
    "crash": lambda c, a: c.crash(a["node"]),
    "restart": lambda c, a: c.restart(a["node"]),
    "heal": lambda c, a: c.heal(),
    "partition": lambda c, a: c.partition(groups=a["groups"]),
    "cut": lambda c, a: c.cut(a["src"], a["dst"]),
    "restore_link": lambda c, a: c.restore_link(a["src"], a["dst"]),
    "set_faults": lambda c, a: c.set_faults(**a),
    "submit": lambda c, a: c.submit(str(a["command"]).encode(), a["node"]),
    "force_timeout": lambda c, a: c.force_timeout(a["node"]),
    "drop_message": lambda c, a: c.drop_message(a["flight"]),
    "duplicate_message": lambda c, a: c.duplicate_message(a["flight"]),
    "add_node": lambda c, a: c.add_node(a["node"]),
    "add_voter": lambda c, a: c.add_voter(a["node"]),
    "remove_server": lambda c, a: c.remove_server(a["node"]),
    "transfer_leadership": lambda c, a: c.transfer_leadership(a.get("target")),
    "barrier": lambda c, a: c.barrier(),
    "verify_leader": lambda c, a: c.verify_leader(),
}


class _Diverged(Exception):
    """Replaying the recorded future did not reach an intervention where it was recorded."""


class Simulation:
    """Owns one ``VisualCluster`` and the thread that drives it; see the module docstring."""

    def __init__(self, publisher: Publisher, *, nodes: int = 5, seed: int = 1, speed: float = DEFAULT_SPEED,
                 playing: bool = True, presets: dict[str, Preset] | None = None) -> None:
        self.publisher = publisher
        self.presets = load_presets() if presets is None else presets
        self.commands: queue.Queue[Command] = queue.Queue()
        self.speed = speed
        self.playing = playing
        self.node_ids: tuple[str, ...] = ()  # read by socket handlers to check names; replaced whole
        self.cluster_class: type[VisualCluster] = VisualCluster
        self.preset: Preset | None = None
        self.narrator: Narrator | None = None
        self.narration_history: list[tuple[float, int, Narrator]] = []
        self.future: list[Intervention] = []
        self.known_end = 0.0
        self._pause_on_match = False
        self.reading_time = 0.0  # 0: every caption holds until Next; else real seconds before it goes on
        self._auto_next_at: float | None = None  # time.monotonic() at which a held caption goes on by itself
        self.origin: Preset | None = None  # the preset this run started from, kept after "explore freely"
        self._clients_sent = 0
        self._sent_state: dict[str, Any] | None = None
        self._sent_narration: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cluster: VisualCluster
        self.tracker: StateTracker
        self._listener = 0
        self._install(VisualCluster(nodes, seed, faults=LinkFaults(**DEFAULT_FAULTS)))

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the simulation thread; from now on only it touches the cluster."""
        self._thread = threading.Thread(target=self._run, name="raft-simulation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and release the cluster."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._retire(self.cluster)

    def enqueue(self, command: Command) -> None:
        """Hand a checked command to the simulation thread (safe from any thread)."""
        self.commands.put(command)

    def submit(self, data: Any, sid: str | None = None) -> None:
        """Check a browser payload and queue it, or answer ``sid`` with an error; never raises."""
        try:
            command = parse_command(data, self.node_ids, sid)
        except CommandError as err:
            action = data.get("action") if isinstance(data, dict) else None
            self._error(sid, str(action)[:30] if action else "", str(err))
            return
        self.enqueue(command)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            self.run_pending(until=last + 1.0 / TICK_HZ)
            now = time.monotonic()
            if self._auto_next_at is not None and now >= self._auto_next_at:
                self._auto_next_at = None
                self._guard(None, "narration", self._read_on)
            elapsed, last = min(now - last, MAX_WALL_STEP), now
            if self.playing:
                self._guard(None, "play", functools.partial(self._advance_by, elapsed * self.speed))
            self._guard(None, "flush", self._flush)

    def run_pending(self, until: float | None = None) -> None:
        """Apply queued commands, waiting for more until the wall-clock time ``until`` (None: do not wait)."""
        while True:
            timeout = None if until is None else until - time.monotonic()
            try:
                command = self.commands.get_nowait() if timeout is None or timeout <= 0 else \
                    self.commands.get(timeout=timeout)
            except queue.Empty:
                return
            self._guard(command.sid, command.action, functools.partial(self._apply, command))
            self._guard(None, "flush", self._flush)

    def _guard(self, sid: str | None, action: str, work: Callable[[], Any]) -> None:
        """Run ``work``; whatever it raises becomes an error message, never a dead thread."""
        try:
            work()
        except (Rejected, CommandError) as err:
            self._error(sid, action, str(err))
        except SimulationError as err:
            self.playing = False
            logger.error("simulation error: %s", err)
            self._error(None, action, "the simulation stopped because a node's task raised an error; "
                                      "rewind or reset to go on", detail=str(err)[-3000:])
        except Exception as err:
            self.playing = False
            logger.exception("visualizer: %s failed", action)
            self._error(sid, action, f"internal error while doing {action}: {type(err).__name__}: {err}")

    def _error(self, sid: str | None, action: str, message: str, detail: str = "") -> None:
        payload = {"action": action, "message": message, "detail": detail}
        if sid is None:
            self.publisher.broadcast("error", payload)
        else:
            self.publisher.send(sid, "error", payload)

    # -- installing a cluster --------------------------------------------------------------------

    def _install(self, cluster: VisualCluster) -> None:
        old = getattr(self, "cluster", None)
        if old is not None and old is not cluster:
            self._retire(old)
        self.cluster = cluster
        self.tracker = StateTracker(cluster)
        self._listener = cluster.events.subscribe(self._on_event)
        self._clients_sent = len(cluster.client_requests)
        self.node_ids = tuple(cluster.ids)

    def _retire(self, cluster: VisualCluster) -> None:
        cluster.events.unsubscribe(self._listener)
        try:
            cluster.dispose()
        except Exception:  # a broken run must not stop us from building the next one
            logger.exception("visualizer: could not dispose of a cluster")

    def _on_event(self, event: Event) -> None:
        if len(self.cluster.handles) != len(self.node_ids):  # a server was just added: commands may name it
            self.node_ids = tuple(self.cluster.ids)
        self.tracker.observe(event)
        narrator = self.narrator
        if narrator is not None and narrator.offer(len(self.cluster.events) - 1, event) and self._pause_on_match:
            self.cluster.loop.request_pause()  # stop right here so the caption lands on this event

    # -- commands ----------------------------------------------------------------------------------

    def _apply(self, command: Command) -> None:
        handler = getattr(self, f"_do_{command.action}", None)
        if handler is not None:
            handler(command)
        else:
            self._intervene(command.action, command.args)

    def _do_hello(self, command: Command) -> None:
        self._flush()  # everyone else is now up to date, so a full view for one does not skip anything
        if command.sid is not None:
            self.publisher.send(command.sid, "snapshot", self._snapshot("connected"))

    def _do_play(self, command: Command) -> None:
        self.playing = True
        if self.narrator is not None and self.narrator.phase == "paused":
            self._narration_next()

    def _do_pause(self, command: Command) -> None:
        self.playing = False

    def _do_speed(self, command: Command) -> None:
        self.speed = command.args["speed"]

    def _do_step(self, command: Command) -> None:
        """Run to the next event the page would show (its feed filters are ``skip``), or the next replay."""
        self.playing = False
        cluster = self.cluster
        events = cluster.events.events
        cursor = len(events)
        target = self.future[0].position if self.future else None
        skip = set(command.args.get("skip", ()))
        rpc_kinds = self.tracker.rpc_kinds

        def shown(event: Event) -> bool:
            if event.kind == "timer":
                return "timer" not in skip
            if event.kind in ("rpc_send", "rpc_deliver", "rpc_drop"):
                return "message" not in skip and not (
                    "heartbeat" in skip and rpc_kinds.get(int(event.get("id", -1))) == "heartbeat")
            return event.kind not in ("request_vote", "request_pre_vote")  # the feed shows the vote instead

        def something_happened(c: Cluster) -> bool:
            nonlocal cursor
            while cursor < len(events):
                if shown(events[cursor]):
                    return True
                cursor += 1
            return target is not None and c.loop.callbacks_run >= target

        try:
            cluster.run_until(something_happened, timeout=STEP_LIMIT)
        except TimeoutError:
            self.publisher.broadcast("notice", {"message": f"nothing happened for {STEP_LIMIT:g} virtual seconds"})
        if self.future and cluster.loop.callbacks_run >= self.future[0].position:
            self._replay_next()
        self._narrate(live=True)
        self._narration_due()

    def _do_seek(self, command: Command) -> None:
        self.playing = False
        target = min(command.args["t"], self._timeline_end())
        if target > self.cluster.now:
            self._advance_to(target, live=False)
        elif target < self.cluster.now:
            self._rebuild(target)
        self._broadcast_snapshot("seek")

    def _do_reset(self, command: Command) -> None:
        nodes = command.args.get("nodes", len(self.cluster.ids))
        seed = command.args.get("seed", self.cluster.seed)
        self._start_over(VisualCluster, VisualCluster(nodes, seed, faults=LinkFaults(**DEFAULT_FAULTS)), None)
        self.playing = True
        self._broadcast_snapshot("reset")

    def _do_preset(self, command: Command) -> None:
        preset = self.presets.get(command.args["name"])
        if preset is None:
            raise Rejected(f"there is no preset {command.args['name']!r}; presets are {', '.join(self.presets)}")
        self._load_preset(preset)

    @staticmethod
    def _preset_cluster(preset: Preset) -> VisualCluster:
        """A fresh cluster as ``preset`` describes it, at time 0."""
        cluster_class = with_setup(preset.setup)
        return cluster_class(preset.nodes, preset.seed, config=Config(**preset.config),
                             faults=LinkFaults(**{**DEFAULT_FAULTS, **preset.faults}),
                             bootstrap=preset.setup is None, bugs=TeachingBugs.from_cli_names(preset.bugs))

    def _load_preset(self, preset: Preset) -> None:
        cluster = self._preset_cluster(preset)
        self._start_over(with_setup(preset.setup), cluster, preset)
        self.playing = True
        assert self.narrator is not None
        self.narrator.begin_step(cluster.events.events, cluster.now)
        self._narrate(live=True)
        self._broadcast_snapshot("preset")

    def _start_over(self, cluster_class: type[VisualCluster], cluster: VisualCluster, preset: Preset | None) -> None:
        self.cluster_class = cluster_class
        self.preset = preset
        self.origin = preset
        self._auto_next_at = None
        self.narrator = Narrator(preset) if preset is not None else None
        self.narration_history = []
        self.future = []
        self.known_end = 0.0
        self._install(cluster)

    def _do_narration(self, command: Command) -> None:
        narrator = self.narrator
        move = command.args["do"]
        if move == "pace":
            # How long a caption holds: 0 = until Next; otherwise that many real seconds.
            self.reading_time = float(command.args["seconds"])
            if narrator is not None and narrator.phase == "paused" and self.reading_time > 0:
                step = narrator.step
                self._auto_next_at = (None if step is not None and step.pause
                                      else time.monotonic() + self.reading_time)
            elif self.reading_time == 0:
                self._auto_next_at = None
            return
        if narrator is None or self.preset is None:
            raise Rejected("no preset is running; choose one first")
        self._auto_next_at = None
        if move == "skip":
            # The awaited event may never come (a crash or a cut changed the
            # story): leave this step without its caption and wait for the next.
            if narrator.phase != "waiting":
                raise Rejected("only a caption that is waiting for its event can be skipped")
            narrator.finish_step(len(self.cluster.events))
            narrator.begin_step(self.cluster.events.events, self.cluster.now)
            self._narrate(live=True)
            self._remember_narration()
            return
        if move == "next":
            self.playing = True
            self._narration_next()
        elif move == "back":
            shown = narrator.shown
            target = shown[-2]["t"] if len(shown) >= 2 else 0.0
            self.playing = False
            self._rebuild(target, prefer_paused=True)
            self._broadcast_snapshot("narration")
        elif move == "restart":
            self._load_preset(self.preset)
        else:
            self.narrator, self.preset = None, None
            self._broadcast_snapshot("narration")

    def _do_export(self, command: Command) -> None:
        data = self._recording()
        data["visualizer"] = {"preset": self.origin.name if self.origin else None,
                              "narration": self.narrator is not None,
                              "position": round(self.cluster.now, 6)}
        if command.sid is not None:
            self.publisher.send(command.sid, "export", data)

    def _do_import(self, command: Command) -> None:
        run = command.args["run"]
        meta = run.get("visualizer") if isinstance(run.get("visualizer"), dict) else {}
        cluster_class: type[VisualCluster] = VisualCluster
        preset_name = meta.get("preset")
        preset = None
        if preset_name is not None:
            preset = self.presets.get(preset_name) if isinstance(preset_name, str) else None
            if preset is None:
                raise Rejected(f"this run starts from preset {preset_name!r:.40}, which this version does not have")
            cluster_class = with_setup(preset.setup)
        _check_import_limits(run)
        try:
            cluster = _import_run(cluster_class, run)
        except (ValueError, KeyError, TypeError, AttributeError, RuntimeError, RaftError) as err:
            raise Rejected(f"cannot import this run: {err}") from err
        fresh = self._preset_cluster(preset) if preset is not None and meta.get("narration") is True else None
        if fresh is not None and fresh.params != cluster.params:
            fresh.dispose()  # the run changed what the preset built: replay it without the narration
            fresh = None
        if fresh is not None:
            # A scenario run: replay it from the preset, narration included,
            # so that its captions (and Back through them) come with it.
            cluster.dispose()
            self._start_over(cluster_class, fresh, preset)
            assert self.narrator is not None
            self.narrator.begin_step(self.cluster.events.events, self.cluster.now)
            self.future = [Intervention(i["position"], i["t"], i["action"], i["args"]) for i in run["interventions"]]
            self._advance_to(float(run["now"]), live=False)
            self.known_end = self.cluster.now
        else:
            self._start_over(cluster_class, cluster, None)
            self.origin = preset
            self.known_end = cluster.now
        self.playing = False
        self._broadcast_snapshot("import")

    # -- interventions ------------------------------------------------------------------------------

    def _intervene(self, action: str, args: dict[str, Any]) -> None:
        """Check that ``action`` can happen now, start a branch if we were replaying, and do it."""
        self._check(action, args)
        if self.future:
            self._branch()
        self._perform(action, args)

    def _check(self, action: str, args: dict[str, Any]) -> None:
        cluster = self.cluster
        node = str(args.get("node"))
        if action in ("crash", "timeout") and not cluster.is_up(node):
            raise Rejected(f"{node} is crashed; restart it first")
        if action == "restart" and cluster.is_up(node):
            raise Rejected(f"{node} is running; only a crashed node can restart")
        if action == "timeout" and cluster.node(node).state() != RaftState.Follower:
            raise Rejected(f"{node} is a {cluster.node(node).state().name.lower()}; only a follower can time out")
        if action in ("write", "read"):
            target = args.get("node") or cluster.leader()
            if target is None:
                raise Rejected("there is no leader to send the request to; wait for an election or pick a node")
            if not cluster.is_up(target):
                raise Rejected(f"{target} is crashed; a client cannot reach it")
        if action in ("add_server", "remove_server", "transfer"):
            self._check_leader_request(action, args)
        if action in ("drop", "duplicate") and args["flight"] not in cluster.network.in_flight:
            raise Rejected("that message is no longer in flight (it has arrived or was lost)")
        if action == "faults":
            try:
                replace(cluster.network.faults, **args).validate()
            except ValueError as err:
                raise Rejected(str(err)) from err

    def _check_leader_request(self, action: str, args: dict[str, Any]) -> None:
        """Membership changes and transfers go to the leader, and must make sense in its configuration."""
        cluster = self.cluster
        leader = cluster.leader()
        if leader is None:
            raise Rejected("there is no leader to ask; wait for an election")
        servers = cluster.node(leader).get_latest_configuration().servers
        members = {server.id for server in servers}
        voters = [server.id for server in servers if server.suffrage == ServerSuffrage.Voter]
        node = args.get("node")
        if action == "add_server":
            if node is None or node not in cluster.handles:
                if len(cluster.handles) >= MAX_NODES:
                    raise Rejected(f"the ring holds at most {MAX_NODES} servers")
            elif node in members:
                raise Rejected(f"{node} is already a member of the cluster")
            elif not cluster.is_up(node) or cluster.node(node).state() == RaftState.Shutdown:
                raise Rejected(f"{node} is not running; crash and restart it before adding it again")
        elif action == "remove_server":
            if node not in members:
                raise Rejected(f"{node} is not a member of the cluster")
            if voters == [node]:
                raise Rejected(f"{node} is the last voter; removing it would leave nobody to decide")
        elif node is not None:
            if node == leader:
                raise Rejected(f"{node} already leads")
            if node not in voters:
                raise Rejected(f"{node} is not a voter, so it cannot become leader")
            if not cluster.is_up(node):
                raise Rejected(f"{node} is crashed; restart it first")
        elif voters == [leader]:
            raise Rejected("there is no other voter to hand leadership to")

    def _next_node_name(self) -> str:
        return next(f"n{k}" for k in itertools.count(1) if f"n{k}" not in self.cluster.handles)

    def _perform(self, action: str, args: dict[str, Any]) -> None:
        cluster = self.cluster
        if action == "crash":
            cluster.crash(args["node"])
        elif action == "restart":
            cluster.restart(args["node"])
        elif action == "timeout":
            cluster.force_timeout(args["node"])
        elif action == "write":
            cluster.submit(f"set {args['key']} {args['value']}".encode(), args.get("node"))
        elif action == "read":
            cluster.submit(f"get {args['key']}".encode(), args.get("node"))
        elif action == "partition":
            cluster.partition(groups=args["groups"])
        elif action == "heal":
            cluster.heal()
        elif action == "cut":
            cluster.cut(args["src"], args["dst"])
        elif action == "restore":
            cluster.restore_link(args["src"], args["dst"])
        elif action == "faults":
            cluster.set_faults(**args)
        elif action == "drop":
            cluster.drop_message(args["flight"])
        elif action == "duplicate":
            cluster.duplicate_message(args["flight"])
        elif action == "add_server":
            name = args.get("node") or self._next_node_name()
            if name not in cluster.handles:
                cluster.add_node(name)  # a new, empty server that can talk to everyone
            cluster.add_voter(name)
        elif action == "remove_server":
            cluster.remove_server(args["node"])
        elif action == "transfer":
            cluster.transfer_leadership(args.get("node"))
        else:
            raise Rejected(f"unknown intervention {action}")

    def _branch(self) -> None:
        now = self.cluster.now
        self.future = []
        self.known_end = now
        self.narration_history = [h for h in self.narration_history if h[0] <= now]
        self.publisher.broadcast("notice", {"message": f"new branch at t={now:.3f}s: the old future is dropped"})

    # -- moving through time -------------------------------------------------------------------------

    def _timeline_end(self) -> float:
        return max(self.known_end, self.cluster.now)

    def _recording(self) -> dict[str, Any]:
        """The whole known run of this branch: what has happened plus the future kept after a rewind."""
        data = copy.deepcopy(self.cluster.export_run())
        if self.future:
            data["interventions"] += [i.to_dict() for i in self.future]
            data["now"] = self._timeline_end()
        return data

    def _advance_by(self, seconds: float) -> None:
        self._advance_to(self.cluster.now + seconds)

    def _advance_to(self, target: float, live: bool = True) -> None:
        """Run to virtual time ``target``, replaying the recorded future and the narration on the way."""
        while True:
            if live and self.narrator is not None and self.narrator.phase == "paused":
                # A caption holds the clock until Next (Play counts as Next), so a
                # replay, which goes on at once, lands every caption at the same time.
                self.playing = False
                return
            if not live and self.narrator is not None and self.narrator.phase == "paused":
                # Replaying: the first time, Next was pressed while the clock
                # stood at this caption. Go on as it did.
                self.narrator.phase = "ready"
                self._narrate(live)
                continue
            if self.narrator is not None and self.narrator.phase == "matched":
                self._narrate(live)
                if live and not self.playing:
                    return  # a caption asked to pause
                continue
            planned = self._next_planned(target)
            if planned == "replay":
                self._replay_next()
                continue
            if planned == "narration":
                assert self.narrator is not None and self.narrator.due is not None
                self._run_exactly_to(self.narrator.due)
                self._narration_due(live)
                continue
            cluster = self.cluster
            if cluster.now < target:
                self._pause_on_match = True
                try:
                    cluster.run_for(target - cluster.now)
                finally:
                    self._pause_on_match = False
            if self.narrator is None or self.narrator.phase != "matched":
                return

    def _next_planned(self, target: float) -> str | None:
        # At one instant the narration goes first: when a preset's action is
        # replayed, the narration must reach that moment before the action's
        # events, exactly as when the narration itself carried it out.
        options = []
        if self.future and self.future[0].t <= target:
            options.append((round(self.future[0].t, 9), 1, "replay"))
        narrator = self.narrator
        if narrator is not None and narrator.phase == "delay" and narrator.due is not None and narrator.due <= target:
            options.append((round(narrator.due, 9), 0, "narration"))
        return min(options)[2] if options else None

    def _run_exactly_to(self, t: float) -> None:
        cluster = self.cluster
        # Closer than TIME_EPSILON counts as there: running on would run timers
        # that asyncio has already lumped into this instant, at the wrong time.
        if cluster.now < t - TIME_EPSILON:
            cluster.run_for(t - cluster.now)

    def _replay_next(self) -> None:
        """Carry out the next recorded intervention exactly where it happened the first time.

        If a caption's event comes first, stop there and return; ``_advance_to``
        shows the caption and calls us again, as the original run did.
        """
        step = self.future[0]
        cluster = self.cluster
        narrator = self.narrator

        def reached_or_caption(c: Cluster) -> bool:
            return c.loop.callbacks_run >= step.position or (narrator is not None and narrator.phase == "matched")

        try:
            cluster.run_until(reached_or_caption, timeout=max(0.0, step.t - cluster.now) + 1)
            if cluster.loop.callbacks_run < step.position:
                return
            if cluster.now < step.t:
                cluster.run_for(step.t - cluster.now)
            if cluster.loop.callbacks_run != step.position or cluster.now != step.t:
                raise _Diverged()
        except (_Diverged, TimeoutError):
            # Floating-point time could not land on the recorded instant here;
            # a rebuild from the seed lands on it exactly (it is how import_run works).
            self._rebuild(step.t)
            return
        self.future.pop(0)
        _REPLAY[step.action](cluster, step.args)

    def _rebuild(self, t: float, prefer_paused: bool = False) -> None:
        """Re-simulate this branch from its seed up to time ``t``; keep what comes later as the future."""
        recording = self._recording()
        end = float(recording["now"])
        self.publisher.broadcast("status", {"busy": f"rewinding to t={t:.3f}s: re-simulating from the seed"})
        cluster = _import_run(self.cluster_class, recording, until=t)
        stop = min(t, end)
        future = [Intervention(i["position"], i["t"], i["action"], i["args"]) for i in recording["interventions"]
                  if i["t"] > stop]
        self._install(cluster)
        self.future = future
        self.known_end = end
        self._restore_narration(prefer_paused)
        self.publisher.broadcast("status", {"busy": ""})

    # -- narration ------------------------------------------------------------------------------------

    def _narrate(self, live: bool) -> None:
        """Show due captions and carry out due actions until the narration has to wait."""
        narrator = self.narrator
        if narrator is None:
            return
        changed = False
        while narrator.phase in ("matched", "ready"):
            step = narrator.step
            assert step is not None
            if narrator.phase == "matched":
                narrator.caption(self.cluster.now, lambda name: self._resolve(narrator, name))
                changed = True
                # Live, a caption holds until Next, so that it never runs away
                # from the speaker; with a reading time, only a step marked
                # "pause" holds, and the others go on after that many seconds.
                narrator.phase = "paused" if live else "ready"
                if narrator.phase == "paused":
                    self.playing = False
                    self._auto_next_at = (time.monotonic() + self.reading_time
                                          if self.reading_time > 0 and not step.pause else None)
                    break
            if step.after > 0:
                narrator.phase, narrator.due = "delay", self.cluster.now + step.after + NARRATION_OFFSET
                break
            self._finish_narration_step()
        if changed or narrator.phase == "delay":
            self._remember_narration()

    def _read_on(self) -> None:
        """The reading time of a held caption is over: go on as if Next had been pressed."""
        if self.narrator is not None and self.narrator.phase == "paused":
            self.playing = True
            self._narration_next()

    def _narration_next(self) -> None:
        narrator = self.narrator
        if narrator is not None and narrator.phase == "paused":
            narrator.phase = "ready"
            self._narrate(live=True)
            self._remember_narration()

    def _narration_due(self, live: bool = True) -> None:
        narrator = self.narrator
        if narrator is None or narrator.phase != "delay" or narrator.due is None:
            return
        if self.cluster.now < narrator.due - TIME_EPSILON:  # run_for may land a rounding error short
            return
        self._finish_narration_step()
        self._narrate(live)
        self._remember_narration()

    def _finish_narration_step(self) -> None:
        narrator = self.narrator
        assert narrator is not None and narrator.step is not None
        before = len(self.cluster.events)  # the next step may wait for what these actions cause
        for action in narrator.step.do:
            self._narration_action(narrator, action)
        narrator.finish_step(before)
        narrator.begin_step(self.cluster.events.events, self.cluster.now)

    def _narration_action(self, narrator: Narrator, action: dict[str, Any]) -> None:
        try:
            command = parse_command(self._resolve(narrator, action), self.node_ids)
            if self._already_recorded(command):
                return  # replaying after a rewind: this action is in the recording already
            self._intervene(command.action, command.args)
        except (CommandError, Rejected) as err:
            self._error(None, "preset", f"preset step {narrator.index + 1} could not {action.get('action')}: {err}")

    def _already_recorded(self, command: Command) -> bool:
        """Is there an intervention like ``command`` at this very moment, done or about to be replayed?"""
        action, args = _recorded_form(command)
        now = self.cluster.now
        nearby = [i for i in self.cluster.interventions[-8:] if abs(i.t - now) <= NARRATION_MATCH]
        nearby += [i for i in self.future[:8] if abs(i.t - now) <= NARRATION_MATCH]
        for intervention in nearby:
            if intervention.action != action:
                continue
            if action == "submit":
                if intervention.args.get("command") == args["command"]:
                    return True
            elif all(intervention.args.get(k) == v for k, v in args.items()):
                return True
        return False

    def _resolve(self, narrator: Narrator, value: Any) -> Any:
        """Replace ``$leader``, ``$follower`` and remembered ``$names`` in a preset action."""
        if isinstance(value, dict):
            return {k: self._resolve(narrator, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(narrator, v) for v in value]
        if not isinstance(value, str) or not value.startswith("$"):
            return value
        name = value[1:]
        if name == "leader":
            return self.cluster.leader()
        if name == "follower":
            followers = self.cluster.followers()
            return followers[0] if followers else None
        return narrator.vars.get(name)

    def _remember_narration(self) -> None:
        if self.narrator is not None:
            cluster = self.cluster
            self.narration_history.append((cluster.now, cluster.loop.callbacks_run, self.narrator.copy()))

    def _restore_narration(self, prefer_paused: bool = False) -> None:
        """Put the narration back where it was at this moment of the run.

        Several states can share one moment (a caption that paused, then the
        Next that went on); ``prefer_paused`` picks the paused one, so that
        Back stops on the caption.
        """
        if self.preset is None:
            return
        now, position = self.cluster.now, self.cluster.loop.callbacks_run
        kept = [h for h in self.narration_history if (h[0], h[1]) <= (now, position)]
        if prefer_paused and kept:
            moment = kept[-1][:2]
            paused = [i for i, h in enumerate(kept) if h[:2] == moment and h[2].phase == "paused"]
            if paused:
                kept = kept[: paused[0] + 1]
        self.narration_history = kept  # replaying forward records the later states again
        if kept:
            self.narrator = kept[-1][2].copy()
        else:
            self.narrator = Narrator(self.preset)
            self.narrator.begin_step(self.cluster.events.events, now)
        if self.narrator.phase == "matched":
            self._narrate(live=False)

    # -- telling the browsers --------------------------------------------------------------------------

    def _sim_state(self) -> dict[str, Any]:
        return {"t": round(self.cluster.now, 6), "playing": self.playing, "speed": self.speed,
                "end": round(self._timeline_end(), 6), "future_count": len(self.future),
                "reading_time": self.reading_time}

    def _snapshot(self, reason: str) -> dict[str, Any]:
        data = self.tracker.full()
        data.update(self._sim_state())
        self._clients_sent = len(self.cluster.client_requests)
        data["reason"] = reason
        data["future"] = [i.to_dict() for i in self.future]
        data["narration"] = self.narrator.state(self.cluster.now) if self.narrator is not None else None
        data["presets"] = [p.menu_entry() for p in self.presets.values()]
        data["limits"] = {"nodes": [3, MAX_NODES]}
        return data

    def _broadcast_snapshot(self, reason: str) -> None:
        self.publisher.broadcast("snapshot", self._snapshot(reason))

    def _flush(self) -> None:
        """Send every browser what changed since the last batch (nothing if nothing did)."""
        cluster = self.cluster
        answered = settle_client_requests(cluster, self.tracker.apply_times)
        batch = self.tracker.diff()
        fresh = cluster.client_requests[self._clients_sent:]
        self._clients_sent = len(cluster.client_requests)
        clients = {r.seq: r.to_dict() for r in [*answered, *fresh]}
        if clients:
            batch["clients"] = sorted(clients.values(), key=lambda r: r["seq"])
        narration = self.narrator.state(self.cluster.now) if self.narrator is not None else None
        if narration != self._sent_narration:
            batch["narration"] = narration
            self._sent_narration = narration
        state = self._sim_state()
        if not batch and state == self._sent_state:
            return
        self._sent_state = state
        batch.update(state)
        self.publisher.broadcast("batch", batch)


def _recorded_form(command: Command) -> tuple[str, dict[str, Any]]:
    """The (action, args) a ``Cluster`` records for a browser command (see ``_perform``)."""
    args = command.args
    if command.action == "write":
        return "submit", {"command": f"set {args['key']} {args['value']}"}
    if command.action == "read":
        return "submit", {"command": f"get {args['key']}"}
    if command.action == "add_server":
        return "add_voter", {"node": args["node"]} if "node" in args else {}
    if command.action == "transfer":
        return "transfer_leadership", {"target": args.get("node")}
    names = {"timeout": "force_timeout", "restore": "restore_link", "faults": "set_faults", "drop": "drop_message",
             "duplicate": "duplicate_message"}
    return names.get(command.action, command.action), dict(args)


def _import_run(cluster_class: type[VisualCluster], data: Any, until: float | None = None) -> VisualCluster:
    cluster = cluster_class.import_run(data, until=until)
    assert isinstance(cluster, VisualCluster), "import_run builds the class it is called on"
    return cluster


def _check_import_limits(run: dict[str, Any]) -> None:
    params = run.get("params")
    nodes = params.get("nodes") if isinstance(params, dict) else None
    if isinstance(nodes, list) and not 1 <= len(nodes) <= MAX_NODES:
        raise Rejected(f"a run for the visualizer has 1–{MAX_NODES} nodes, this one has {len(nodes)}")
    end = run.get("now")
    if isinstance(end, (int, float)) and end > MAX_IMPORT_TIME:
        raise Rejected(f"this run lasts {end:g} virtual seconds; the visualizer replays at most {MAX_IMPORT_TIME:g}")
    interventions = run.get("interventions")
    if isinstance(interventions, list) and len(interventions) > MAX_IMPORT_INTERVENTIONS:
        raise Rejected(f"this run has more than {MAX_IMPORT_INTERVENTIONS} interventions")
    if isinstance(nodes, list) and isinstance(interventions, list):
        added = sum(1 for i in interventions if isinstance(i, dict) and i.get("action") == "add_node")
        if len(nodes) + added > MAX_NODES:
            raise Rejected(f"this run grows to {len(nodes) + added} servers; the visualizer shows at most {MAX_NODES}")
