"""Scenario presets: data files whose captions wait for events.

Read before: simulation.py (which runs the narration). Presets live in
``visualizer/presets/*.json``; each is one object::

    {
      "title": "Leader crash",
      "summary": "one line for the menu",
      "cluster": {"nodes": 5, "seed": 1, "config": {...}, "faults": {...}, "bugs": [...]},
      "setup": {"logs": {"n1": [1, 1, 4]}, "terms": {"n1": 4}, "configs": {"n1": {...}}},
      "steps": [
        {"caption": "Five followers, no leader yet.", "pause": true},
        {"wait": {"kind": "state", "state": "leader"}, "remember": {"old": "node"},
         "caption": "{node} leads term {term}.", "after": 1.0,
         "do": [{"action": "crash", "node": "$old"}]}
      ]
    }

``cluster.config`` and ``cluster.faults`` take the fields a recording may
hold (``raft.sim.RECORDABLE_CONFIG`` and ``RECORDABLE_FAULTS``);
``cluster.bugs`` (optional) switches on teaching bugs, named as
``raft-sim fuzz --bug`` names them (``raft.sim.bugs.BUG_NAMES``), so that a
preset can show what a broken rule leads to; ``setup`` (optional) gives nodes
hand-made logs before they start.

A step runs in this order:

1. ``wait``: the first event, from now on, whose fields equal the given ones
   (``"!x"`` means "not x"; ``"$name"`` is a remembered value). No ``wait``:
   the step starts at once.
2. ``remember``: keep fields of that event (``"node"`` is the event's node),
   or ``"$leader"``/``"$follower"``: who leads or follows at that moment.
3. ``caption``: shown, with ``{field}`` filled from the event and the
   remembered values.
4. ``pause``: stop the clock until the user presses Next.
5. ``after``: let that many virtual seconds pass.
6. ``do``: interventions, written like browser commands; ``"$leader"`` is the
   current leader, ``"$follower"`` the first follower, ``"$name"`` a
   remembered value. They go through the same checks and the same recorded
   ``Cluster`` methods as a click, so a preset run is a recording like any
   other and replays exactly.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.events import Event
from raft.sim import RECORDABLE_CONFIG, RECORDABLE_FAULTS
from raft.sim.bugs import BUG_NAMES
from visualizer.cluster import LogSetup
from visualizer.commands import INTERVENTIONS, MAX_NODES, MIN_NODES

PRESET_DIR = Path(__file__).resolve().parent / "presets"
# A step still waiting this many virtual seconds after it began is called
# stalled: its event may no longer be able to happen (the node it waits for
# was crashed, or a cut changed the story), and the page offers Restart or Skip.
STALL_AFTER = 20.0


class PresetError(ValueError):
    """A preset file does not follow the format above; the message says where."""


@dataclass(frozen=True)
class Step:
    """One caption of a preset and what it waits for and does."""

    caption: str
    wait: dict[str, Any] | None = None
    remember: dict[str, str] = field(default_factory=dict)
    pause: bool = False
    after: float = 0.0
    do: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Preset:
    """A scenario: how to build its cluster and the steps of its narration."""

    name: str
    title: str
    summary: str
    nodes: int | list[str]
    seed: int
    config: dict[str, Any]
    faults: dict[str, Any]
    setup: LogSetup | None
    steps: tuple[Step, ...]
    bugs: tuple[str, ...] = ()  # teaching bugs switched on, as ``--bug`` names them

    def menu_entry(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "summary": self.summary}


def _fail(name: str, where: str, problem: str) -> PresetError:
    return PresetError(f"preset {name}: {where}: {problem}")


def _parse_step(name: str, index: int, raw: Any) -> Step:
    where = f"step {index + 1}"
    if not isinstance(raw, dict) or not isinstance(raw.get("caption"), str):
        raise _fail(name, where, "must be an object with a caption")
    unknown = set(raw) - {"caption", "wait", "remember", "pause", "after", "do"}
    if unknown:
        raise _fail(name, where, f"unknown keys {sorted(unknown)}")
    wait = raw.get("wait")
    if wait is not None and (not isinstance(wait, dict) or not isinstance(wait.get("kind"), str)):
        raise _fail(name, where, "wait must be an object with at least a kind")
    remember = raw.get("remember", {})
    if not isinstance(remember, dict) or not all(isinstance(v, str) for v in remember.values()):
        raise _fail(name, where, "remember maps names to event fields")
    after = raw.get("after", 0.0)
    if isinstance(after, bool) or not isinstance(after, (int, float)) or not 0 <= after <= 60:
        raise _fail(name, where, "after must be 0–60 virtual seconds")
    actions = raw.get("do", [])
    if not isinstance(actions, list):
        raise _fail(name, where, "do must be a list of commands")
    for action in actions:
        if not isinstance(action, dict) or action.get("action") not in INTERVENTIONS:
            raise _fail(name, where, f"do takes interventions ({', '.join(INTERVENTIONS)}), got {action!r:.60}")
    return Step(raw["caption"], wait, dict(remember), bool(raw.get("pause", False)), float(after), tuple(actions))


def _parse_setup(name: str, raw: Any, ids: list[str]) -> LogSetup | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"logs", "terms", "configs"}:
        raise _fail(name, "setup", "takes logs, terms and configs")
    logs, terms, configs = raw.get("logs", {}), raw.get("terms", {}), raw.get("configs", {})
    for section, value in (("logs", logs), ("terms", terms), ("configs", configs)):
        if not isinstance(value, dict) or not set(value) <= set(ids):
            raise _fail(name, f"setup.{section}", f"must map node names ({', '.join(ids)}) to values")
    for node, log in logs.items():
        if not isinstance(log, list) or not log or not all(isinstance(t, int) and t > 0 for t in log):
            raise _fail(name, f"setup.logs.{node}", "must list positive terms, entry 1 first")
        if log != sorted(log):
            raise _fail(name, f"setup.logs.{node}", "terms in a log never decrease")
    for node, overrides in configs.items():
        if not isinstance(overrides, dict) or not set(overrides) <= set(RECORDABLE_CONFIG):
            raise _fail(name, f"setup.configs.{node}", f"keys must be among {', '.join(RECORDABLE_CONFIG)}")
    return LogSetup(dict(logs), dict(terms), dict(configs))


def parse_preset(name: str, data: Any) -> Preset:
    """Check a preset's JSON and build a ``Preset``; raise ``PresetError`` naming what is wrong."""
    if not isinstance(data, dict):
        raise _fail(name, "file", "must hold one JSON object")
    cluster = data.get("cluster")
    if not isinstance(cluster, dict):
        raise _fail(name, "cluster", "missing")
    nodes = cluster.get("nodes", 5)
    if isinstance(nodes, int) and not isinstance(nodes, bool):
        if not MIN_NODES <= nodes <= MAX_NODES:
            raise _fail(name, "cluster.nodes", f"must be {MIN_NODES}–{MAX_NODES}")
        ids = [f"n{i}" for i in range(1, nodes + 1)]
    elif isinstance(nodes, list) and MIN_NODES <= len(nodes) <= MAX_NODES and all(isinstance(n, str) for n in nodes):
        ids = list(nodes)
    else:
        raise _fail(name, "cluster.nodes", "must be a count or a list of names")
    seed = cluster.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _fail(name, "cluster.seed", "must be a whole number")
    config, faults = cluster.get("config", {}), cluster.get("faults", {})
    if not isinstance(config, dict) or not set(config) <= set(RECORDABLE_CONFIG):
        raise _fail(name, "cluster.config", f"keys must be among {', '.join(RECORDABLE_CONFIG)}")
    if not isinstance(faults, dict) or not set(faults) <= set(RECORDABLE_FAULTS):
        raise _fail(name, "cluster.faults", f"keys must be among {', '.join(RECORDABLE_FAULTS)}")
    bugs = cluster.get("bugs", [])
    if not isinstance(bugs, list) or not all(isinstance(b, str) and b in BUG_NAMES for b in bugs):
        raise _fail(name, "cluster.bugs", f"must list teaching bugs among {', '.join(BUG_NAMES)}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _fail(name, "steps", "must be a non-empty list")
    return Preset(name, str(data.get("title", name)), str(data.get("summary", "")), nodes, seed, dict(config),
                  dict(faults), _parse_setup(name, data.get("setup"), ids),
                  tuple(_parse_step(name, i, s) for i, s in enumerate(steps)), tuple(bugs))


def _menu_order(path: Path) -> tuple[int, str]:
    """Files are named ``<number>-<words>.json``; order by the number, so 10 comes after 9."""
    number, _, _ = path.stem.partition("-")
    return (int(number) if number.isdigit() else 1 << 30, path.stem)


def load_presets(directory: Path = PRESET_DIR) -> dict[str, Preset]:
    """Every preset in ``directory``, by file name without ``.json``, in the order of their numbers."""
    presets = {}
    for path in sorted(directory.glob("*.json"), key=_menu_order):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise PresetError(f"preset {path.stem}: not valid JSON: {err}") from err
        presets[path.stem] = parse_preset(path.stem, data)
    return presets


class _Fields(dict[str, Any]):
    """Caption fields; a missing one shows as ``{name}`` instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Narrator:
    """Where a preset's narration is: which step, waiting or paused, and what it remembers.

    It only decides; ``Simulation`` shows captions and carries out actions.
    Phases: ``waiting`` for the step's event, ``matched`` (caption due),
    ``paused`` (until Next), ``ready`` (run ``after``/``do``), ``delay``
    (until ``due``), ``done``.
    """

    def __init__(self, preset: Preset) -> None:
        self.preset = preset
        self.index = 0
        self.phase = "waiting"
        self.vars: dict[str, Any] = {}
        self.cursor = 0  # the first event seq the current wait may match
        self.match: tuple[int, Event] | None = None
        self.due: float | None = None
        self.shown: list[dict[str, Any]] = []
        self.waiting_since = 0.0  # virtual time the current step began to wait

    @property
    def step(self) -> Step | None:
        return self.preset.steps[self.index] if self.index < len(self.preset.steps) else None

    def copy(self) -> Narrator:
        return copy.deepcopy(self)

    def _value(self, wanted: Any) -> Any:
        if isinstance(wanted, str) and wanted.startswith("$"):
            return self.vars.get(wanted[1:])
        return wanted

    def matches(self, event: Event) -> bool:
        """Does ``event`` fulfil the current step's wait?"""
        step = self.step
        if step is None or step.wait is None:
            return False
        for key, wanted in step.wait.items():
            actual = event.node if key == "node" else event.kind if key == "kind" else event.get(key)
            if isinstance(wanted, str) and wanted.startswith("!"):
                if actual == self._value(wanted[1:]):
                    return False
            elif actual != self._value(wanted):
                return False
        return True

    def offer(self, seq: int, event: Event) -> bool:
        """Look at one event; True if it is the one the current step waits for."""
        if self.phase != "waiting" or seq < self.cursor or not self.matches(event):
            return False
        self.phase, self.match = "matched", (seq, event)
        return True

    def begin_step(self, events: list[Event], now: float) -> None:
        """Start waiting for the current step: match at once if it waits for nothing or for a past event."""
        step = self.step
        if step is None:
            self.phase = "done"
            return
        self.phase, self.match, self.due = "waiting", None, None
        self.waiting_since = now
        if step.wait is None:
            self.phase = "matched"
            return
        for seq in range(self.cursor, len(events)):
            if self.offer(seq, events[seq]):
                return

    def caption(self, now: float, resolve: Callable[[str], Any] = lambda name: None) -> dict[str, Any]:
        """Remember what the step asks for and format its caption; returns the caption shown.

        ``resolve`` gives the value of ``$leader`` and ``$follower`` for
        ``remember`` entries that name the cluster's state instead of a field.
        """
        step = self.step
        assert step is not None and self.phase == "matched", "a caption is shown once its wait matched"
        event = self.match[1] if self.match else None
        fields = _Fields(self.vars)
        if event is not None:
            fields.update(event.fields)
            fields.update({"node": event.node, "kind": event.kind, "t": f"{event.t:.3f}"})
        for name, source in step.remember.items():
            self.vars[name] = resolve(source) if source.startswith("$") else fields.get(source)
            fields[name] = self.vars[name]
        shown = {"step": self.index, "t": event.t if event else now, "text": step.caption.format_map(fields)}
        self.shown.append(shown)
        return shown

    def finish_step(self, events_so_far: int) -> None:
        """Move to the next step.

        Its wait looks at events from just after the match, or, if time
        passed since (``after``), from ``events_so_far`` (the events before
        this step's actions): what happened while we waited belongs to the
        step that waited, what its actions cause belongs to the next.
        """
        step = self.step
        delayed = step is not None and step.after > 0
        self.cursor = self.match[0] + 1 if self.match and not delayed else events_so_far
        self.index += 1
        self.phase = "waiting"

    def awaiting(self) -> str:
        """The current step's wait in words, e.g. "a state event (state leader, node n2)"."""
        step = self.step
        if step is None or step.wait is None:
            return ""
        details = []
        for key, wanted in step.wait.items():
            if key == "kind":
                continue
            negated = isinstance(wanted, str) and wanted.startswith("!")
            value = self._value(wanted[1:] if negated else wanted)
            details.append(f"{key} {'not ' if negated else ''}{value}")
        return f"a {step.wait['kind']} event" + (f" ({', '.join(details)})" if details else "")

    def stalled(self, now: float) -> bool:
        """Has the current step waited so long that its event may never come?"""
        return self.phase == "waiting" and now - self.waiting_since >= STALL_AFTER

    def state(self, now: float | None = None) -> dict[str, Any]:
        """What the page shows: the preset, the captions so far, and where we are.

        With ``now``, also whether the current wait looks stalled and what it waits for.
        """
        stalled = now is not None and self.stalled(now)
        return {"name": self.preset.name, "title": self.preset.title, "summary": self.preset.summary,
                "index": self.index, "count": len(self.preset.steps), "phase": self.phase,
                "shown": self.shown, "due": self.due, "stalled": stalled,
                "awaiting": self.awaiting() if stalled else ""}
