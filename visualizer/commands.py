"""Every command a browser may send, and how its payload is checked.

Read next: simulation.py, which carries the commands out.

Browsers send one Socket.IO event, ``command``, whose payload is an object
with an ``action`` and that action's arguments. ``parse_command`` checks
types, ranges and node names and returns a ``Command``, or raises
``CommandError`` with a message for the user. Nothing reaches the simulation
until its payload has passed, so a bad payload changes nothing.

Checks that depend on the cluster at the moment the command runs (is the
node up? is that message still in flight?) are made by the simulation
thread, which refuses in the same way.

=============== ====================================================== ===========================
action          arguments                                              does
=============== ====================================================== ===========================
play, pause     —                                                      run or stop virtual time
step            optional ``skip``: timer, heartbeat, message           run to the next event not skipped
speed           ``speed``: 0.001–2 (virtual seconds per wall second)   slow motion … real time
seek            ``t``: virtual seconds ≥ 0                             rewind or replay to ``t``
write           ``key``, ``value``, optional ``node``                  client command ``set K V``
read            ``key``, optional ``node``                             client command ``get K``
crash, restart  ``node``                                               stop / start a server
timeout         ``node``                                               a follower times out now
partition       ``groups``: lists of node names                        only groups talk inside
heal            —                                                      every link works again
cut, restore    ``src``, ``dst``                                       one-way link off / on
faults          some of ``delay``, ``jitter``, ``loss``, ...            network dials
drop, duplicate ``flight``: the id of a message in flight               lose it / send it twice
add_server      optional ``node``: a new name (default: next free nK)  start it; the leader adds it
remove_server   ``node``                                               the leader removes it
transfer        optional ``node`` (default: the leader picks)          hand leadership over
reset           optional ``nodes`` (3–9), ``seed``                     a new cluster
preset          ``name``                                               load a scenario
narration       ``do``: next, back, restart, exit, skip; pace+seconds  move through its captions
export          —                                                      send the run back as JSON
import          ``run``: an exported run                               replay it
explain         ``func``: a name from an event                         the code behind an event
=============== ====================================================== ===========================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

MIN_NODES, MAX_NODES = 3, 9
MIN_SPEED, MAX_SPEED = 0.001, 2.0
MAX_SEED = 2**31 - 1
MAX_TIME = 1e6
FAULT_RANGES = {"delay": (0.0, 0.5), "jitter": (0.0, 0.5), "loss": (0.0, 1.0), "duplicate": (0.0, 1.0),
                "reorder": (0.0, 1.0)}
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
NODE_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,7}")
MAX_VALUE = 64
NARRATION_MOVES = ("next", "back", "restart", "exit", "skip", "pace")
MAX_READING_TIME = 60.0  # seconds a caption may hold by itself before the narration goes on


class CommandError(ValueError):
    """A command was refused; the message says why, in words for the user."""


@dataclass(frozen=True)
class Command:
    """A checked command, ready for the simulation thread. ``sid`` is who sent it (for replies)."""

    action: str
    args: dict[str, Any] = field(default_factory=dict)
    sid: str | None = None


# -- small checkers ---------------------------------------------------------------------------


def _number(data: dict[str, Any], name: str, low: float, high: float) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CommandError(f"{name} must be a number")
    if not low <= value <= high:
        raise CommandError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def _integer(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CommandError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise CommandError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _node(data: dict[str, Any], name: str, ids: Sequence[str]) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise CommandError(f"{name} must be a node name ({', '.join(ids)})")
    if value not in ids:
        raise CommandError(f"there is no node {value[:20]!r}; nodes are {', '.join(ids)}")
    return value


def _optional_node(data: dict[str, Any], ids: Sequence[str]) -> dict[str, Any]:
    if data.get("node") in (None, ""):
        return {}
    return {"node": _node(data, "node", ids)}


def _new_node(data: dict[str, Any]) -> dict[str, Any]:
    """A server name for ``add_server``: a new one, or an existing node outside the configuration."""
    name = data.get("node")
    if name in (None, ""):
        return {}
    if not isinstance(name, str) or not NODE_NAME_PATTERN.fullmatch(name):
        raise CommandError("a server name is a letter then up to 7 letters, digits, _ or -")
    return {"node": name}


def _key(data: dict[str, Any]) -> str:
    key = data.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise CommandError("key must be 1–32 letters, digits or _ . : -")
    return key


def _value(data: dict[str, Any]) -> str:
    value = data.get("value")
    if not isinstance(value, str) or len(value) > MAX_VALUE or not value.isprintable():
        raise CommandError(f"value must be printable text of at most {MAX_VALUE} characters")
    return value


def _groups(data: dict[str, Any], ids: Sequence[str]) -> list[list[str]]:
    groups = data.get("groups")
    if not isinstance(groups, list) or not groups or len(groups) > len(ids):
        raise CommandError("groups must be a non-empty list of lists of node names")
    seen: dict[str, bool] = {}
    result = []
    for group in groups:
        if not isinstance(group, list) or not group:
            raise CommandError("each group must be a non-empty list of node names")
        for member in group:
            if not isinstance(member, str) or member not in ids:
                raise CommandError(f"there is no node {str(member)[:20]!r}; nodes are {', '.join(ids)}")
            if member in seen:
                raise CommandError(f"{member} is in two groups")
            seen[member] = True
        result.append(list(group))
    rest = [node for node in ids if node not in seen]
    if rest:
        result.append(rest)  # whoever was not named forms one more group
    if len(result) < 2:
        raise CommandError("a partition needs at least two groups; use heal to join everyone")
    return result


def _link(data: dict[str, Any], ids: Sequence[str]) -> dict[str, Any]:
    src, dst = _node(data, "src", ids), _node(data, "dst", ids)
    if src == dst:
        raise CommandError("a link joins two different nodes")
    return {"src": src, "dst": dst}


def _faults(data: dict[str, Any]) -> dict[str, Any]:
    names = [name for name in data if name != "action"]
    unknown = [name for name in names if name not in FAULT_RANGES]
    if unknown or not names:
        raise CommandError(f"faults takes some of {', '.join(FAULT_RANGES)}")
    return {name: _number(data, name, *FAULT_RANGES[name]) for name in names}


def _reset(data: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if data.get("nodes") is not None:
        args["nodes"] = _integer(data, "nodes", MIN_NODES, MAX_NODES)
    if data.get("seed") is not None:
        args["seed"] = _integer(data, "seed", 0, MAX_SEED)
    return args


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise CommandError(f"{name} must be text of 1–{limit} characters")
    return value


STEP_SKIPS = ("timer", "heartbeat", "message")  # what the page's feed filters may hide


def _step(data: dict[str, Any]) -> dict[str, Any]:
    skip = data.get("skip", [])
    if not isinstance(skip, list) or not all(s in STEP_SKIPS for s in skip):
        raise CommandError(f"step skip must list some of {', '.join(STEP_SKIPS)}")
    return {"skip": sorted(set(skip))} if skip else {}


def _narration(data: dict[str, Any]) -> dict[str, Any]:
    move = data.get("do")
    if move not in NARRATION_MOVES:
        raise CommandError(f"narration do must be one of {', '.join(NARRATION_MOVES)}")
    if move != "pace":
        return {"do": move}
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_READING_TIME:
        raise CommandError(f"narration pace takes seconds: 0 (hold each caption until Next) to {MAX_READING_TIME:g}")
    return {"do": move, "seconds": float(seconds)}


def _import(data: dict[str, Any]) -> dict[str, Any]:
    run = data.get("run")
    if not isinstance(run, dict):
        raise CommandError("import needs run: the JSON object an export produced")
    return {"run": run}


_Parser = Callable[[dict[str, Any], Sequence[str]], dict[str, Any]]

PARSERS: dict[str, _Parser] = {
    "hello": lambda d, ids: {},
    "play": lambda d, ids: {},
    "pause": lambda d, ids: {},
    "step": lambda d, ids: _step(d),
    "speed": lambda d, ids: {"speed": _number(d, "speed", MIN_SPEED, MAX_SPEED)},
    "seek": lambda d, ids: {"t": _number(d, "t", 0.0, MAX_TIME)},
    "write": lambda d, ids: {"key": _key(d), "value": _value(d), **_optional_node(d, ids)},
    "read": lambda d, ids: {"key": _key(d), **_optional_node(d, ids)},
    "crash": lambda d, ids: {"node": _node(d, "node", ids)},
    "restart": lambda d, ids: {"node": _node(d, "node", ids)},
    "timeout": lambda d, ids: {"node": _node(d, "node", ids)},
    "partition": lambda d, ids: {"groups": _groups(d, ids)},
    "heal": lambda d, ids: {},
    "cut": _link,
    "restore": _link,
    "faults": lambda d, ids: _faults(d),
    "drop": lambda d, ids: {"flight": _integer(d, "flight", 1, 2**53)},
    "duplicate": lambda d, ids: {"flight": _integer(d, "flight", 1, 2**53)},
    "add_server": lambda d, ids: _new_node(d),
    "remove_server": lambda d, ids: {"node": _node(d, "node", ids)},
    "transfer": lambda d, ids: _optional_node(d, ids),
    "reset": lambda d, ids: _reset(d),
    "preset": lambda d, ids: {"name": _text(d, "name", 64)},
    "narration": lambda d, ids: _narration(d),
    "export": lambda d, ids: {},
    "import": lambda d, ids: _import(d),
    "explain": lambda d, ids: {"func": _text(d, "func", 100)},
}

# Commands that change the run: they are recorded, and after a rewind they
# replace the old future with a new branch.
INTERVENTIONS = ("write", "read", "crash", "restart", "timeout", "partition", "heal", "cut", "restore", "faults",
                 "drop", "duplicate", "add_server", "remove_server", "transfer")


def parse_command(data: Any, ids: Sequence[str], sid: str | None = None) -> Command:
    """Check a browser's payload against the table above; raise ``CommandError`` if it does not fit."""
    if not isinstance(data, dict):
        raise CommandError("a command must be an object with an action")
    action = data.get("action")
    if not isinstance(action, str) or action not in PARSERS:
        raise CommandError(f"unknown action {str(action)[:30]!r}; known actions: {', '.join(PARSERS)}")
    return Command(action, PARSERS[action](data, ids), sid)
