"""The invariant checker: Raft's safety properties, checked after every event of a simulation.

Paper:   Figure 3 (the properties), §5.4.3 (why they hold).
Read before: events.py (what it listens to), testing.py (the cluster it inspects).

Figure 3 states five guarantees. Each is checked the moment an event could
break it, using the event and the nodes' own stores:

Election Safety
    At most one leader per term: every ``state`` → leader event is recorded
    per term.
Leader Append-Only
    A leader never overwrites or deletes its own entries: a ``truncate``
    event on a node that is leader is a violation.
Log Matching
    Two logs with an entry of the same index and term agree on everything up
    to it. Checked by induction on each ``append``: an entry (index, term)
    must have the same data, and follow an entry of the same term, on every
    node that holds it. If that holds for every entry, whole prefixes agree.
Leader Completeness
    A new leader holds every entry committed so far: at each election we look
    for the highest committed entry in the winner's log (Log Matching covers
    the rest).
State Machine Safety
    No two nodes apply different entries at one index: every ``apply`` is
    recorded per index. We also refuse a ``truncate`` that deletes an entry
    some node has already committed.

And per node: the term never decreases (it is durable, so not even across a
restart), the commit index never decreases (within one run of the node), and
no entry is applied before it is committed.

The node's own bookkeeping, checked after every event of that node, within
one incarnation (a restart starts over):

Log covers commit
    Every committed entry is still readable: the last index is at least the
    commit index, and the log store holds every entry from just after the
    snapshot up to the commit index. A node that lost committed entries
    could win an election and lose them for everyone.
Monotonic progress
    ``lastApplied`` and the last snapshot's index never move backwards.
Apply in order
    The state machine sees strictly increasing indexes: each ``apply`` is
    past the previous one, and a ``restore`` jumps forward, never back.

No rule is ever waived because of what an event's ``reason`` says: a
truncation may delete committed entries only where the node's snapshot
covers them, whoever deleted them and why.

A violation pauses the simulation and is raised by the runner as an
``InvariantViolation`` whose message names the rule, the event, the nodes
involved and their logs around the conflict.

Mirrors: the ``appendEntriesVerifier`` and VerifyLog/VerifyFSM of hashicorp's
fuzzy/ tests, extended to all five properties and checked continuously.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from raft.errors import ErrLogNotFound
from raft.events import Event
from raft.inmem_store import InmemStore

if TYPE_CHECKING:
    from raft.api import Raft


class NodeHandle(Protocol):
    """What the checker reads of one server: its running node (None while crashed) and its store.

    ``raft.sim.NodeHandle`` is one; the checker names only what it reads, so
    that it does not depend on the simulator that uses it.
    """

    @property
    def raft(self) -> Raft | None: ...

    @property
    def store(self) -> InmemStore: ...


class Cluster(Protocol):
    """What the checker reads of a cluster: its servers by ID (``raft.sim.Cluster`` is one)."""

    @property
    def handles(self) -> Mapping[str, NodeHandle]: ...


class InvariantViolation(AssertionError):
    """A safety property of Raft failed; the message explains which, where and when."""

    def __init__(self, rule: str, detail: str, event: Event, nodes: list[str], report: str) -> None:
        super().__init__(f"{rule} violated: {detail}\n{report}")
        self.rule = rule
        self.detail = detail
        self.event = event
        self.nodes = nodes


@dataclass
class _Entry:
    term: int
    prev_term: int | None  # None when the holder's previous entry is inside its snapshot
    digest: bytes
    node: str  # the first node seen holding it


@dataclass
class _Incarnation:
    """What the checker remembers of one run of one node, to see it never go backwards."""

    applied: int = 0  # lastApplied
    snapshot: int = 0  # the last snapshot's index
    fsm: int = 0  # the last index the state machine applied or was restored to


@dataclass
class InvariantChecker:
    """Subscribe it to a cluster's event log; it records the first violation."""

    cluster: Cluster
    on_violation: Callable[[InvariantViolation], None] | None = None
    violation: InvariantViolation | None = None
    leaders: dict[int, str] = field(default_factory=dict)  # term -> leader
    entries: dict[tuple[int, int], _Entry] = field(default_factory=dict)  # (index, term) -> entry facts
    committed: dict[int, int] = field(default_factory=dict)  # index -> term, once committed anywhere
    max_committed: int = 0
    applied: dict[int, tuple[int, str]] = field(default_factory=dict)  # index -> (term, first node)
    terms: dict[str, int] = field(default_factory=dict)
    commits: dict[str, int] = field(default_factory=dict)
    incarnations: dict[str, _Incarnation] = field(default_factory=dict)
    checked_events: int = 0

    def __call__(self, event: Event) -> None:
        if self.violation is not None:
            return
        self.checked_events += 1
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)
        if self.violation is None:
            handle = self.cluster.handles.get(event.node)
            if handle is not None and handle.raft is not None:
                self._check_node(event, handle)

    def _check_node(self, e: Event, handle: NodeHandle) -> None:
        """Log covers commit, and monotonic lastApplied and snapshot index, for the node of ``e``."""
        raft = handle.raft
        assert raft is not None
        node = e.node
        seen = self.incarnations.setdefault(node, _Incarnation())
        applied = raft.get_last_applied()
        if applied < seen.applied:
            self._fail("monotonic lastApplied", f"{node}'s lastApplied went from {seen.applied} back to {applied}",
                       e, [node])
            return
        seen.applied = applied
        snapshot_index = raft.get_last_snapshot()[0]
        if snapshot_index < seen.snapshot:
            self._fail("monotonic snapshot", f"{node}'s last snapshot went from index {seen.snapshot} back to "
                       f"{snapshot_index}", e, [node])
            return
        seen.snapshot = snapshot_index
        commit = raft.get_commit_index()
        last = raft.get_last_index()
        if last < commit:
            self._fail("log covers commit", f"{node}'s last index {last} is below its commit index {commit}",
                       e, [node], commit)
            return
        if commit > snapshot_index:
            store = handle.store
            first, stored_last = store.first_index(), store.last_index()
            if first == 0 or first > snapshot_index + 1 or stored_last < commit:
                held = f"entries {first}..{stored_last}" if first else "no entries"
                self._fail("log covers commit", f"{node} has committed up to {commit}, but its log holds {held} "
                           f"and its snapshot ends at {snapshot_index}", e, [node], commit)

    # -- one method per event kind that can break something -------------------------

    def _on_state(self, e: Event) -> None:
        if e["state"] != "leader":
            return
        term = e["term"]
        other = self.leaders.setdefault(term, e.node)
        if other != e.node:
            self._fail("Election Safety", f"{other} and {e.node} are both leader in term {term}", e,
                       [other, e.node])
            return
        if self.max_committed:
            index = self.max_committed
            have = self._term_at(e.node, index)
            raft = self.cluster.handles[e.node].raft
            covered = raft is not None and raft.get_last_snapshot()[0] >= index
            committed_term = self.committed.get(index)
            if have is None and not covered:
                with_term = f" with term {committed_term}" if committed_term is not None else ""
                self._fail("Leader Completeness", f"new leader {e.node} of term {term} has no entry at index {index}, "
                           f"which was committed{with_term}", e, [e.node], index)
            elif have is not None and committed_term is not None and have != committed_term:
                self._fail("Leader Completeness", f"new leader {e.node} of term {term} has term {have} at index "
                           f"{index}, which was committed with term {self.committed[index]}", e, [e.node], index)

    def _on_term(self, e: Event) -> None:
        previous = self.terms.get(e.node, 0)
        if e["term"] < previous:
            self._fail("monotonic term", f"{e.node}'s term went from {previous} back to {e['term']}", e, [e.node])
        self.terms[e.node] = e["term"]

    def _on_append(self, e: Event) -> None:
        raft = self.cluster.handles[e.node].raft
        if raft is None:
            return
        for index, term, _kind in e["entries"]:
            try:
                entry = raft.logs.get_log(index)
            except ErrLogNotFound:
                continue
            prev_term = self._term_at(e.node, index - 1) if index > 1 else 0
            digest = hashlib.blake2b(bytes([entry.type]) + entry.data, digest_size=8).digest()
            known = self.entries.setdefault((index, term), _Entry(term, prev_term, digest, e.node))
            if known.prev_term is None:
                known.prev_term = prev_term
            if known.digest != digest:
                self._fail("Log Matching", f"entry {index} of term {term} holds different data on {known.node} "
                           f"and {e.node}", e, [known.node, e.node], index)
                return
            if prev_term is not None and known.prev_term is not None and known.prev_term != prev_term:
                self._fail("Log Matching", f"entry {index} of term {term} follows a term-{known.prev_term} entry on "
                           f"{known.node} but a term-{prev_term} entry on {e.node}", e, [known.node, e.node], index)
                return

    def _on_truncate(self, e: Event) -> None:
        raft = self.cluster.handles[e.node].raft
        if raft is not None and raft.state().name == "Leader":
            self._fail("Leader Append-Only", f"leader {e.node} deleted entries {e['first']}..{e['last']} of its "
                       f"own log", e, [e.node], e["first"])
            return
        # Deleting a committed entry is allowed only where the node's snapshot
        # covers it. In each run of one term, check the first deleted entry
        # past the snapshot: if it is not committed with that term, by Log
        # Matching no later entry of the run is either.
        covered = raft.get_last_snapshot()[0] if raft is not None else 0
        runs = e.get("terms") or [[e["first"], e.get("term")]]
        for k, (start, term) in enumerate(runs):
            end = runs[k + 1][0] - 1 if k + 1 < len(runs) else e["last"]
            index = max(start, covered + 1)
            if index <= end and self.committed.get(index) == term:
                self._fail("State Machine Safety", f"{e.node} deleted entry {index} (term {term}), which is "
                           f"committed and not covered by its snapshot (ending at {covered})", e, [e.node], index)
                return

    def _on_commit(self, e: Event) -> None:
        previous = self.commits.get(e.node, 0)
        index = e["index"]
        if index < previous:
            self._fail("monotonic commit index", f"{e.node}'s commit index went from {previous} back to {index}",
                       e, [e.node])
            return
        self.commits[e.node] = index
        for i in range(previous + 1, index + 1):
            term = self._term_at(e.node, i)
            if term is None:
                continue  # covered by a snapshot: its terms are no longer known here
            known = self.committed.setdefault(i, term)
            if known != term:
                self._fail("State Machine Safety", f"index {i} committed with term {known} elsewhere, but with "
                           f"term {term} on {e.node}", e, [e.node], i)
                return
        self.max_committed = max(self.max_committed, index)

    def _on_apply(self, e: Event) -> None:
        index, term = e["index"], e["term"]
        commit = self.commits.get(e.node, 0)
        raft = self.cluster.handles[e.node].raft
        if raft is not None:
            commit = max(commit, raft.commit_index())
        if index > commit:
            self._fail("applied ≤ committed", f"{e.node} applied index {index} before committing it "
                       f"(commit index {commit})", e, [e.node], index)
            return
        known = self.applied.setdefault(index, (term, e.node))
        if known[0] != term:
            self._fail("State Machine Safety", f"{known[1]} applied index {index} from term {known[0]} but {e.node} "
                       f"applied one from term {term}", e, [known[1], e.node], index)
            return
        seen = self.incarnations.setdefault(e.node, _Incarnation())
        if index <= seen.fsm:
            self._fail("apply in order", f"{e.node}'s state machine applied index {index} after index {seen.fsm}",
                       e, [e.node], index)
            return
        seen.fsm = index

    def _on_restore(self, e: Event) -> None:
        seen = self.incarnations.setdefault(e.node, _Incarnation())
        if e["index"] <= seen.fsm:
            self._fail("apply in order", f"{e.node}'s state machine was restored to index {e['index']} after it had "
                       f"reached index {seen.fsm}", e, [e.node], e["index"])
            return
        seen.fsm = e["index"]

    def _on_fsm_failed(self, e: Event) -> None:
        # Not a property of the paper, but a node that stops because its state
        # machine raised is a failure every run must report.
        self._fail("state machine keeps applying", f"{e.node}'s state machine failed at index {e['index']}: "
                   f"{e['error']}", e, [e.node], e["index"])

    def _on_restart(self, e: Event) -> None:
        self.commits.pop(e.node, None)  # the commit index is volatile
        self.incarnations.pop(e.node, None)  # so is all the bookkeeping of one run

    # -- helpers ----------------------------------------------------------------------

    def _term_at(self, node_id: str, index: int) -> int | None:
        """Term of ``node_id``'s entry at ``index``: from its log or its snapshot; None if unknown."""
        if index == 0:
            return 0
        handle = self.cluster.handles[node_id]
        entry = handle.store.logs.get(index)  # the in-memory store's own dict: no copy needed to read a term
        if entry is not None:
            return entry.term
        raft = handle.raft
        if raft is not None:
            snapshot_index, snapshot_term = raft.get_last_snapshot()
            if index == snapshot_index:
                return snapshot_term
        return None

    def _fail(self, rule: str, detail: str, event: Event, nodes: list[str], around: int | None = None) -> None:
        report = [f"  at t={event.t:.6f} on {event.node}: {event}"]
        if around is not None:
            for node_id in dict.fromkeys(nodes):
                report.append(f"  {node_id}: {self.describe_log(node_id, around)}")
        self.violation = InvariantViolation(rule, detail, event, nodes, "\n".join(report))
        if self.on_violation is not None:
            self.on_violation(self.violation)

    def describe_log(self, node_id: str, around: int, width: int = 3) -> str:
        """Entries around ``around`` as ``index:term`` (``-`` where there is none)."""
        cells = []
        for index in range(max(1, around - width), around + width + 1):
            term = self._term_at(node_id, index)
            mark = "*" if index == around else ""
            cells.append(f"{mark}{index}:{'-' if term is None else term}")
        return " ".join(cells)
