"""The event stream: every observable change in a cluster, in order.

Every part of the project reads this one stream: the invariant checker,
the visualizer, the tests, the tutorials and the trace files. An event is
``{t, node, kind, ...fields}``: the clock time, the server it happened on,
what happened, the details, and ``func``, the function that emitted it
(look it up in the Python code, and through its ``Mirrors:`` line in Go).

Kinds emitted by the protocol (fields after ``t``, ``node``, ``kind``):

=================== =========================================================
``state``           ``state`` (follower, candidate, leader, shutdown), ``term``, ``reason``
``term``            ``term``, ``previous``
``leader``          ``leader`` (an ID, or "" when unknown) — hashicorp's LeaderObservation
``timer``           ``timer`` (heartbeat, election), ``timeout``, ``deadline`` — the earliest moment
                    the randomized timer can fire (now + timeout) — and ``fires_at``, when it will
``election``        ``phase`` (pre_vote, vote), ``term``, ``needed``, ``last_log_index``, ``last_log_term``
``election_timeout`` ``term``, ``reason`` — a candidate starts over
``vote``            ``phase``, ``candidate``, ``term``, ``granted``, ``reason``
``tally``           ``phase``, ``voter``, ``term``, ``granted``, ``granted_votes``, ``refused_votes``, ``needed``
``request_vote``    ``candidate``, ``term`` — hashicorp's RequestVoteRequest observation
``request_pre_vote`` ``candidate``, ``term`` — RequestPreVoteRequest observation
``peer``            ``peer``, ``removed`` — PeerObservation
``append``          ``first``, ``last``, ``entries`` ([index, term, type] each)
``truncate``        ``first``, ``last``, ``term`` (of the first deleted entry), ``terms`` ([index, term]
                    where each run of one term starts among the deleted entries), ``reason``
``commit``          ``index``, ``previous``
``apply``           ``index``, ``term``, ``type`` — an entry reached the state machine
``restore``         ``index``, ``term``, ``id`` — the state machine was replaced by a snapshot
``fsm_failed``      ``index``, ``error`` — the application's state machine raised; the node shuts down
``snapshot_ignored`` ``index``, ``term``, ``leader``, ``commit_index``, ``reason`` — an
                    InstallSnapshot at or below the commit index, acknowledged and not installed
``timeout_now_refused`` ``leader``, ``term``, ``reason`` — a stale TimeoutNow
``snapshot_taken``, ``snapshot_installed``, ``snapshot_restored``, ``snapshot_send``, ``compact``
``configuration``   ``which`` (latest, committed), ``index``, ``configuration``
``transfer``        ``phase`` (started, finished), ``target``, ``error``
``lease_lost``      ``contacted``, ``quorum``
``replication_rejected`` ``peer``, ``next_index`` (after stepping back), ``follower_last_log``,
                    ``conflict_term``, ``conflict_index`` (the follower's hint; 0: none) — a follower refused entries
``client_request``, ``client_reply`` (from the runner's clients): ``command``, ``to``, ``ok``, ``index``
``heartbeat_failed`` ``peer``, ``last_contact``
``heartbeat_resumed`` ``peer``
``rpc_send``        ``id``, ``rpc``, ``to``, ``dir`` (request/response), ``copies``
``rpc_deliver``     ``id``, ``rpc``, ``from``, ``dir``
``rpc_drop``        ``id``, ``rpc``, ``from``, ``to``, ``dir``, ``reason``
``rpc_timeout``     ``id``, ``rpc``, ``to``
``crash``, ``restart``, ``partition``, ``network`` (from the runner)
=================== =========================================================

Events are plain data: they serialize to one JSON object per line, with a
stable key order, so two runs of the same seed give byte-identical traces.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

Fields = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One thing that happened on one node at one time."""

    t: float
    node: str
    kind: str
    func: str
    fields: Fields = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        """``t``, ``node``, ``kind``, the fields in emission order, then ``func``."""
        data: dict[str, Any] = {"t": round(self.t, 6), "node": self.node, "kind": self.kind}
        data.update(self.fields)
        data["func"] = self.func
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        rest = {k: v for k, v in data.items() if k not in ("t", "node", "kind", "func")}
        return cls(float(data["t"]), str(data["node"]), str(data["kind"]), str(data.get("func", "")), rest)

    def __str__(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.fields.items() if k != "reason")
        reason = self.fields.get("reason")
        text = f"{self.t:.3f} {self.node} {self.kind}"
        if shown:
            text += " " + shown
        if reason:
            text += f" ({reason})"
        return text


Listener = Callable[[Event], None]


class EventLog:
    """An append-only list of events plus listeners called on each new one.

    ``clock`` gives the time stamped on each event: the virtual loop's
    ``time`` in a simulation, the wall clock on a live node.
    """

    def __init__(self, clock: Callable[[], float], keep: bool = True) -> None:
        self.clock = clock
        self.keep = keep  # False: only listeners see events (a long-running node)
        self.events: list[Event] = []
        self._listeners: dict[int, Listener] = {}
        self._next_listener = 0

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def emit(self, node: str, kind: str, func: str, **fields: Any) -> Event:
        event = Event(self.clock(), node, kind, func, fields)
        if self.keep:
            self.events.append(event)
        for listener in list(self._listeners.values()):
            listener(event)
        return event

    def subscribe(self, listener: Listener) -> int:
        """Call ``listener`` on every new event; returns a token for ``unsubscribe``."""
        token = self._next_listener
        self._next_listener += 1
        self._listeners[token] = listener
        return token

    def unsubscribe(self, token: int) -> None:
        self._listeners.pop(token, None)

    def since(self, t: float) -> list[Event]:
        """Events at or after time ``t``."""
        return [e for e in self.events if e.t >= t]

    def of_kind(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.kind in kinds]

    def write_jsonl(self, out: IO[str], events: Iterable[Event] | None = None) -> None:
        for event in self.events if events is None else events:
            out.write(event.to_json())
            out.write("\n")


class NodeEvents:
    """The emitter one node holds: stamps its own name on what it emits.

    A node built without an ``EventLog`` gets one whose ``emit`` does nothing,
    so protocol code can always call ``r.events.emit(...)``.
    """

    def __init__(self, log: EventLog | None, node: str) -> None:
        self.log = log
        self.node = node

    @property
    def enabled(self) -> bool:
        return self.log is not None

    def emit(self, kind: str, func: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.emit(self.node, kind, func, **fields)
