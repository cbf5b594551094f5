"""Observations: a way for applications to watch a node's state changes.

Mirrors: observer.go.

An application registers an ``Observer`` with a channel; the node sends it an
``Observation`` for each change (new role, new leader, a peer added, a
heartbeat failing, a vote requested). The test harness uses them to detect
when a cluster has settled. Every observation is also emitted on the
node's event stream (see events.py).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raft.commands import RequestPreVoteRequest, RequestVoteRequest
from raft.configuration import Server
from raft.events import Report, protocol_function
from raft.runtime.channels import Chan, Send, select
from raft.state import RaftState

if TYPE_CHECKING:
    from raft.api import Raft  # only for ``self: Raft``; api.py builds Raft from this module's mixin


@dataclass(frozen=True)
class Observation:
    """What an observer receives: the node and one of the ``*Observation`` values."""

    raft: Raft
    data: Any


@dataclass(frozen=True)
class LeaderObservation:
    """The node's idea of the leader changed; empty strings mean "no leader known"."""

    leader_addr: str
    leader_id: str


@dataclass(frozen=True)
class PeerObservation:
    """A replicator to ``peer`` started (``removed=False``) or stopped."""

    removed: bool
    peer: Server


@dataclass(frozen=True)
class FailedHeartbeatObservation:
    """A leader's heartbeats to ``peer_id`` are failing."""

    peer_id: str
    last_contact: float


@dataclass(frozen=True)
class ResumedHeartbeatObservation:
    """Heartbeats to ``peer_id`` succeed again."""

    peer_id: str


FilterFn = Callable[[Observation], bool]

_observer_ids = itertools.count(1)


class Observer:
    """Receives observations on ``channel`` (Mirrors: observer.go Observer).

    A non-blocking observer drops an observation when its channel is full
    and counts the drop. A blocking one never drops.

    Differs: Go's blocking observer stalls the node until the channel has
    room. Python's protocol code calls ``observe`` from plain functions that
    cannot wait (``set_state``, ``set_leader``, and through them the public
    ``shutdown``), so a blocking observer instead has its own feeding task:
    ``observe`` queues the observation, in order and without a bound, and
    the task hands each one over with a blocking send. Nothing is dropped
    and the order is kept; what is lost is Go's back-pressure, by which a
    slow blocking observer slows the node down.
    """

    def __init__(self, channel: Chan[Observation] | None, blocking: bool, filter_fn: FilterFn | None = None) -> None:
        self.channel = channel
        self.blocking = blocking
        self.filter = filter_fn
        self.id = next(_observer_ids)
        self.num_observed = 0
        self.num_dropped = 0
        self._backlog: deque[Observation] = deque()
        self._pumping = False

    def get_num_observed(self) -> int:
        return self.num_observed

    def get_num_dropped(self) -> int:
        return self.num_dropped


def observation_event(data: Any) -> tuple[str, dict[str, Any]] | None:
    """The event-stream form of an observation, or None if it has its own event."""
    if isinstance(data, LeaderObservation):
        return "leader", {"leader": data.leader_id, "address": data.leader_addr}
    if isinstance(data, PeerObservation):
        return "peer", {"peer": data.peer.id, "removed": data.removed}
    if isinstance(data, FailedHeartbeatObservation):
        return "heartbeat_failed", {"peer": data.peer_id, "last_contact": round(data.last_contact, 6)}
    if isinstance(data, ResumedHeartbeatObservation):
        return "heartbeat_resumed", {"peer": data.peer_id}
    if isinstance(data, RequestVoteRequest):
        return "request_vote", {"candidate": data.header.id, "term": data.term}
    if isinstance(data, RequestPreVoteRequest):
        return "request_pre_vote", {"candidate": data.header.id, "term": data.term}
    if isinstance(data, RaftState):
        return None  # set_state emits a richer "state" event itself
    raise TypeError(f"unknown observation {data!r}")


class ObserverMixin:
    """The observer methods of ``Raft`` (Mirrors: observer.go methods on *Raft)."""

    def register_observer(self: Raft, observer: Observer) -> None:
        """Start sending observations to ``observer`` (Mirrors: RegisterObserver)."""
        self.observers[observer.id] = observer

    def deregister_observer(self: Raft, observer: Observer) -> None:
        """Stop sending observations to ``observer`` (Mirrors: DeregisterObserver)."""
        self.observers.pop(observer.id, None)

    def observe(self: Raft, data: Any) -> None:
        """Send ``data`` to every interested observer and to the event stream.

        Mirrors: observer.go (*Raft).observe.
        Differs: also takes a ``Report`` (events.py), which goes to the event
        stream only. The event names the protocol function that observed it
        (``protocol_function``), so no caller passes its own name.
        """
        if isinstance(data, Report):
            if self.events.enabled:
                self.events.report(data, protocol_function())
            return
        described = observation_event(data)
        if described is not None and self.events.enabled:
            kind, fields = described
            self.events.emit(kind, protocol_function(), **fields)
        for observer in list(self.observers.values()):
            observation = Observation(self, data)
            if observer.filter is not None and not observer.filter(observation):
                continue
            if observer.channel is None:
                continue
            if observer.blocking:
                observer._backlog.append(observation)
                if not observer._pumping:
                    observer._pumping = True
                    self.go_func(self._feed_blocking_observer(observer), "observer")
            elif observer.channel.try_send(observation):  # Go: a select with a default, counting drops
                observer.num_observed += 1
            else:
                observer.num_dropped += 1

    async def _feed_blocking_observer(self: Raft, observer: Observer) -> None:
        """Hand a blocking observer its queued observations in order, waiting for room each time."""
        channel = observer.channel
        assert channel is not None
        try:
            while observer._backlog:
                case, _ = await select([Send(channel, observer._backlog[0]), self.shutdown_ch])
                if case is self.shutdown_ch:
                    return
                observer._backlog.popleft()
                observer.num_observed += 1
        finally:
            observer._pumping = False
