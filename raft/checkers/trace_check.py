"""``raft-sim check-trace``: check Raft's safety properties on recorded event traces.

    raft-sim check-trace FILE...

A trace is the JSON Lines event stream that ``raft-sim run --trace`` writes for a
simulated cluster and ``raft-kv --trace`` writes for one real node. Give it one
simulator trace, or the trace files of every node of a real cluster: they are
read together, as one run. It prints one line, ``ok`` with what was checked or
the first violation with the event that broke the rule, and exits 0 when every
property held, 1 on a violation, 2 for a usage error or a file that cannot be
read (stderr names the file and the line).

The live checker (invariants.py) can look into each node's log whenever an
event arrives. A trace holds only the events, so this checks the properties
that the events alone decide:

Election Safety
    At most one node becomes leader in any term (``state`` events).
Leader Append-Only
    A node never truncates its log while it is leader (``truncate`` events,
    against the node's last ``state``).
State Machine Safety
    No two nodes apply entries of different terms at one index (``apply``
    events); one node applying the same index again after a restart is fine.
Monotonic term
    Each node's current term never decreases, across restarts too, since the
    term is durable (``term`` events).

The checks do not depend on how the files interleave in time, only on the
order of each node's own events, which its file keeps. So traces from
separate processes are checked correctly even if their clocks differ.

Paper:   Figure 3 (the properties).
Mirrors: nothing in hashicorp/raft; a post-mortem counterpart of the fuzzy/ verifiers.
Read before: invariants.py (the same rules, checked live), events.py (the event format).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from raft.checkers.invariants import InvariantViolation
from raft.events import Event

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2

DESCRIPTION = ("Check a recorded run for Election Safety, Leader Append-Only, State Machine Safety and "
               "monotonic terms: one simulator trace (raft-sim run --trace), or the trace files of all "
               "nodes of a real cluster (raft-kv --trace) read together.")

RULES = ("Election Safety", "Leader Append-Only", "State Machine Safety", "monotonic term")


class TraceFormatError(ValueError):
    """A line of a trace file is not an event this checker can read."""


@dataclass
class TraceChecker:
    """Feed it events, in each node's own order; it keeps the first violation."""

    violation: InvariantViolation | None = None
    events: int = 0
    leaders: dict[int, Event] = field(default_factory=dict)  # term -> the event that made its leader
    roles: dict[str, str] = field(default_factory=dict)  # node -> its last state
    terms: dict[str, int] = field(default_factory=dict)  # node -> its highest term so far
    applied: dict[int, Event] = field(default_factory=dict)  # index -> the first apply event seen for it

    def __call__(self, event: Event) -> None:
        if self.violation is not None:
            return
        self.events += 1
        if event.kind == "state":
            self._on_state(event)
        elif event.kind == "truncate" and self.roles.get(event.node) == "leader":
            self._fail("Leader Append-Only", f"{event.node} truncated its log while leader", event, [event.node])
        elif event.kind == "term":
            self._on_term(event)
        elif event.kind == "apply":
            self._on_apply(event)

    def _on_state(self, e: Event) -> None:
        state, term = _field(e, "state", str), _field(e, "term", int)
        self.roles[e.node] = state
        if state != "leader":
            return
        first = self.leaders.setdefault(term, e)
        if first.node != e.node:
            self._fail("Election Safety", f"{first.node} and {e.node} are both leader in term {term}", e,
                       [first.node, e.node], first)

    def _on_term(self, e: Event) -> None:
        term = _field(e, "term", int)
        previous = self.terms.get(e.node, 0)
        if term < previous:
            self._fail("monotonic term", f"{e.node}'s term went from {previous} back to {term}", e, [e.node])
        self.terms[e.node] = max(term, previous)

    def _on_apply(self, e: Event) -> None:
        index, term = _field(e, "index", int), _field(e, "term", int)
        first = self.applied.setdefault(index, e)
        if first["term"] != term:
            self._fail("State Machine Safety", f"{first.node} applied index {index} from term {first['term']} but "
                       f"{e.node} applied one from term {term}", e, [first.node, e.node], first)

    def _fail(self, rule: str, detail: str, event: Event, nodes: list[str], earlier: Event | None = None) -> None:
        report = [f"  at t={event.t:.6f} on {event.node}: {event}"]
        if earlier is not None:
            report.append(f"  earlier, at t={earlier.t:.6f} on {earlier.node}: {earlier}")
        self.violation = InvariantViolation(rule, detail, event, nodes, "\n".join(report))


def _field(event: Event, name: str, kind: type[Any]) -> Any:
    value = event.fields.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TraceFormatError(f"a {event.kind!r} event needs {name!r} ({kind.__name__}), got {value!r:.40}")
    return value


def read_events(lines: Iterable[str]) -> Iterable[tuple[int, Event]]:
    """(line number, event) for each non-blank line; TraceFormatError names what is wrong."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise TraceFormatError(f"line {number}: not JSON ({err.msg})") from None
        if not isinstance(data, dict) or not all(k in data for k in ("t", "node", "kind")):
            raise TraceFormatError(f"line {number}: an event is a JSON object with t, node and kind")
        try:
            yield number, Event.from_dict(data)
        except (TypeError, ValueError) as err:
            raise TraceFormatError(f"line {number}: {err}") from None


def check_files(paths: Iterable[str], out: TextIO, err: TextIO) -> int:
    """Check the files as one run; print the verdict. Returns the exit status."""
    checker = TraceChecker()
    for path in paths:
        try:
            with open(path, encoding="utf-8") as file:
                for number, event in read_events(file):
                    try:
                        checker(event)
                    except TraceFormatError as error:
                        raise TraceFormatError(f"line {number}: {error}") from None
                    if checker.violation is not None:
                        print(f"{path}:{number}: {checker.violation}", file=out)
                        return EXIT_VIOLATION
        except OSError as error:
            print(f"raft-sim check-trace: {path}: cannot read: {error.strerror or error}", file=err)
            return EXIT_USAGE
        except UnicodeDecodeError as error:
            print(f"raft-sim check-trace: {path}: not UTF-8 text (byte {error.start})", file=err)
            return EXIT_USAGE
        except TraceFormatError as error:
            print(f"raft-sim check-trace: {path}: {error}", file=err)
            return EXIT_USAGE
    terms = len(checker.leaders)
    print(f"ok: {checker.events} events from {len(checker.roles)} node(s); "
          f"{terms} term(s) with a leader, {len(checker.applied)} applied index(es); "
          f"{', '.join(RULES)} hold", file=out)
    return EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options on the ``check-trace`` subparser of raft-sim."""
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON Lines trace files, read as one run")


def run_check_trace(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``raft-sim check-trace``: check ``args.files``; returns the exit status."""
    return check_files(args.files, out or sys.stdout, err or sys.stderr)
