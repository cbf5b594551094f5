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
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from types import CodeType, FrameType
from typing import IO, Any, ClassVar

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


# ---------------------------------------------------------------------------
# Which protocol function an event names
# ---------------------------------------------------------------------------

# Functions that only carry a change to the event stream; an event never names them.
PLUMBING = frozenset({"emit", "report", "observe", "protocol_function", "go_func"})
# Setters: an event names the protocol function that called them (or the
# setter itself, when a test or a tool calls it directly).
SETTERS = frozenset({"set_state", "set_leader", "set_current_term", "set_commit_index"})
# The protocol's own modules: the top level of the package, not its tools.
_PROTOCOL_DIR = os.path.dirname(os.path.abspath(__file__))
_CODE_NAMES: dict[CodeType, tuple[bool, str]] = {}  # code -> (in the protocol?, the name an event uses)


def _code_name(code: CodeType) -> tuple[bool, str]:
    known = _CODE_NAMES.get(code)
    if known is None:
        inside = os.path.dirname(os.path.abspath(code.co_filename)) == _PROTOCOL_DIR
        known = _CODE_NAMES[code] = (inside, code.co_qualname.split(".<locals>", 1)[0].rsplit(".", 1)[-1])
    return known

# The protocol function that started the running task (see ``started_by``).
_STARTED_BY: ContextVar[str] = ContextVar("raft_started_by", default="")


def protocol_function(depth: int = 1) -> str:
    """The protocol function an event is about: the first public function up the call stack.

    Walks the stack from the caller, past the pass-through functions above
    and past private helpers (a leading underscore), which report the public
    function they work for. A nested function counts as the function it is
    written in (``leader_loop.<locals>.watch`` is ``leader_loop``). When the
    walk leaves the protocol's modules (the bottom of a task's stack), the
    answer is the function that started the task (``started_by``), the way a
    Go stack trace ends with "created by"; called from a test or a tool, it
    is the setter the caller used. Deterministic, and cheap: a few frame hops, and only
    when someone records events.

    Differs: hashicorp has no event stream; this replaces the function name
    the protocol code would otherwise have to pass at every call.
    """
    frame: FrameType | None = sys._getframe(depth)
    last = ""
    while frame is not None:
        inside, name = _code_name(frame.f_code)
        if not inside:
            break  # the bottom of a task (under the runtime's wrapper), or a test or a tool calling in
        if name not in PLUMBING:
            if name not in SETTERS and not name.startswith("_"):
                return name
            last = name
        frame = frame.f_back
    return _STARTED_BY.get() or last


def started_by(name: str) -> Any:
    """Remember ``name`` as the starter of the tasks created until ``reset``; returns the reset token.

    Differs: Go has no equivalent; this is how an event raised inside a task
    names the protocol function behind it (see ``protocol_function``).
    asyncio copies the context into each task it creates, so a task started
    inside this window keeps the name for its whole life.
    """
    return _STARTED_BY.set(name)


def reset_started_by(token: Any) -> None:
    """End the window opened by ``started_by`` (Differs: no Go equivalent, as above)."""
    _STARTED_BY.reset(token)


# ---------------------------------------------------------------------------
# What the protocol reports
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """Something the protocol reports to the event stream (``Raft.observe`` takes it).

    Each subclass is one event kind; its fields are the event's fields, in
    order. A field left at None is not part of that event.
    Differs: hashicorp has observations for a few of these (leader, peer,
    heartbeat, vote request); the rest exist only for the event stream, and
    reach no registered ``Observer``.
    """

    kind: ClassVar[str] = ""

    def to_fields(self) -> Fields:
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: value for name, value in values if value is not None}


@dataclass(frozen=True)
class TimerSet(Report):
    """A randomized timer was armed: it fires at ``fires_at``, somewhere in [deadline, deadline + timeout)."""

    kind: ClassVar[str] = "timer"
    timer: str
    timeout: float
    deadline: float
    fires_at: float


@dataclass(frozen=True)
class ElectionStarted(Report):
    """A candidate asks for (pre-)votes in ``term``."""

    kind: ClassVar[str] = "election"
    phase: str
    term: int
    needed: int
    last_log_index: int
    last_log_term: int


@dataclass(frozen=True)
class VoteTallied(Report):
    """A candidate counted one (pre-)vote reply; ``refused_votes`` is counted in the pre-vote only."""

    kind: ClassVar[str] = "tally"
    phase: str
    voter: str
    term: int
    granted: bool
    granted_votes: int
    refused_votes: int | None
    needed: int


@dataclass(frozen=True)
class ElectionTimedOut(Report):
    """A candidate's election timer fired before it won: it starts over."""

    kind: ClassVar[str] = "election_timeout"
    term: int
    reason: str


@dataclass(frozen=True)
class VoteDecided(Report):
    """A server answered a RequestVote or RequestPreVote."""

    kind: ClassVar[str] = "vote"
    phase: str
    candidate: str
    term: int
    granted: bool
    reason: str


@dataclass(frozen=True)
class TermChanged(Report):
    kind: ClassVar[str] = "term"
    term: int
    previous: int


@dataclass(frozen=True)
class StateChanged(Report):
    kind: ClassVar[str] = "state"
    state: str
    term: int
    reason: str


@dataclass(frozen=True)
class CommitIndexChanged(Report):
    kind: ClassVar[str] = "commit"
    index: int
    previous: int


@dataclass(frozen=True)
class ConfigurationChanged(Report):
    kind: ClassVar[str] = "configuration"
    which: str
    index: int
    configuration: dict[str, Any]


@dataclass(frozen=True)
class EntriesAppended(Report):
    """Entries were written to the log.

    The event's fields are ``first``, ``last`` and ``entries`` ([index, term,
    type] for each), worked out only when someone records events.
    """

    kind: ClassVar[str] = "append"
    logs: list[Any]  # raft.log.Log, not empty

    def to_fields(self) -> Fields:
        logs = self.logs
        return {"first": logs[0].index, "last": logs[-1].index,
                "entries": [[e.index, e.term, e.type.name] for e in logs]}


@dataclass(frozen=True)
class LogTruncated(Report):
    """Entries ``first``..``last`` were deleted; ``terms`` marks where each run of one term starts."""

    kind: ClassVar[str] = "truncate"
    first: int
    last: int
    term: int
    terms: list[list[int]]
    reason: str


@dataclass(frozen=True)
class LeaseLost(Report):
    kind: ClassVar[str] = "lease_lost"
    contacted: int
    quorum: int


@dataclass(frozen=True)
class TransferStarted(Report):
    kind: ClassVar[str] = "transfer"
    target: str
    phase: str = "started"


@dataclass(frozen=True)
class TransferFinished(Report):
    kind: ClassVar[str] = "transfer"
    phase: str
    error: str


@dataclass(frozen=True)
class SnapshotIgnored(Report):
    kind: ClassVar[str] = "snapshot_ignored"
    index: int
    term: int
    leader: str
    commit_index: int
    reason: str


@dataclass(frozen=True)
class SnapshotInstalled(Report):
    kind: ClassVar[str] = "snapshot_installed"
    index: int
    term: int
    size: int
    leader: str


@dataclass(frozen=True)
class SnapshotRestored(Report):
    """The state machine was reset from a snapshot: a user restore, or at start-up (``id`` and ``reason`` set)."""

    kind: ClassVar[str] = "snapshot_restored"
    index: int
    term: int
    id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ReplicationRejected(Report):
    """A follower refused AppendEntries; ``next_index`` is where the leader tries next (hints included)."""

    kind: ClassVar[str] = "replication_rejected"
    peer: str
    next_index: int
    follower_last_log: int
    conflict_term: int
    conflict_index: int


@dataclass(frozen=True)
class SnapshotSent(Report):
    """The leader starts sending a snapshot to a follower that needs entries it has compacted."""

    kind: ClassVar[str] = "snapshot_send"
    peer: str
    index: int
    term: int
    size: int


@dataclass(frozen=True)
class Applied(Report):
    """The state machine task has finished with one committed entry."""

    kind: ClassVar[str] = "apply"
    index: int
    term: int
    type: str


@dataclass(frozen=True)
class FSMFailed(Report):
    """The application's state machine raised; the node stops."""

    kind: ClassVar[str] = "fsm_failed"
    index: int
    error: str


@dataclass(frozen=True)
class Restored(Report):
    """The state machine task restored a snapshot (InstallSnapshot or a user restore)."""

    kind: ClassVar[str] = "restore"
    index: int
    term: int
    id: str


@dataclass(frozen=True)
class SnapshotTaken(Report):
    """A snapshot was written; the log is compacted next."""

    kind: ClassVar[str] = "snapshot_taken"
    index: int
    term: int
    id: str


@dataclass(frozen=True)
class Compacted(Report):
    """Log entries ``first``..``last`` were deleted after a snapshot."""

    kind: ClassVar[str] = "compact"
    first: int
    last: int


@dataclass(frozen=True)
class TimeoutNowRefused(Report):
    kind: ClassVar[str] = "timeout_now_refused"
    leader: str
    term: int
    reason: str


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

    def report(self, report: Report, func: str) -> None:
        """Emit ``report`` as an event of its kind, naming ``func``."""
        if self.log is not None:
            self.log.emit(self.node, report.kind, func, **report.to_fields())
