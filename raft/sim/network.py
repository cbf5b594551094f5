"""A simulated network: seeded delay, loss, duplication, reordering and partitions.

``InmemTransport`` delivers through a ``SimNetwork`` when it has one. Each
message is encoded to bytes when sent and decoded when it arrives, so nodes
never share objects. For every message the network decides, with its own
seeded generator, how many copies arrive (none if it is lost or the link is
cut, two if it is duplicated) and how late. Because delays are random, later
messages can overtake earlier ones; ``reorder`` adds an occasional long delay
to make that more frequent.

Links are directed: ``cut("n1", "n2")`` stops n1's messages to n2 while n2
can still reach n1. ``partition`` cuts every link between groups, both ways.
A request sent over a cut link, or to a crashed node, fails at once, as a
connection attempt to an unreachable host or a dead process would (and as
hashicorp's tests disconnect transports); a message already in flight when
a link is cut or its receiver crashes, or a response sent over a cut link,
is silently lost and its caller waits for its timeout.

The visualizer can act on messages in flight: ``drop`` one, or ``duplicate`` it.

Mirrors: nothing in hashicorp/raft. Its fuzzy/ tests inject faults through
transport hooks instead; this covers the same faults and more.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from raft.events import EventLog


@dataclass
class LinkFaults:
    """How one directed link (or the whole network) misbehaves."""

    delay: float = 0.002  # typical one-way delay in seconds
    jitter: float = 0.001  # each message's delay is delay ± jitter, uniformly
    loss: float = 0.0  # probability a message is lost
    duplicate: float = 0.0  # probability a message arrives twice
    reorder: float = 0.0  # probability a message is held back by reorder_delay more
    reorder_delay: float = 0.050

    def validate(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1, got {value}")
        for name in ("delay", "jitter", "reorder_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")
        if self.jitter > self.delay:
            raise ValueError("jitter cannot be larger than delay (delays would go negative)")


@dataclass(frozen=True)
class SlowRule:
    """Hold back one kind of message by an extra min_delay..max_delay seconds.

    ``rpc`` and ``dir`` say which messages (e.g. "request_vote", "response");
    ``src``/``dst`` narrow it to a sender or receiver. This is how the fuzz
    scenarios make some voters slow, as hashicorp's SlowVoter hook does.
    """

    rpc: str
    dir: str
    min_delay: float
    max_delay: float
    src: str | None = None
    dst: str | None = None

    def matches(self, src: str, dst: str, rpc: str, dir: str) -> bool:
        return (self.rpc == rpc and self.dir == dir and self.src in (None, src) and self.dst in (None, dst))


@dataclass(frozen=True)
class EchoRule:
    """Deliver an extra, late copy of one kind of message: a duplicate that arrives long after.

    With ``probability``, a message matching ``rpc`` and ``dir`` gets one more
    copy, held back ``min_delay``..``max_delay`` seconds beyond its normal
    delay. The fault simulator uses it for InstallSnapshot and TimeoutNow,
    whose late copies exposed bugs that plain duplication (a copy arriving
    at about the same time) never did.
    """

    rpc: str
    dir: str
    probability: float
    min_delay: float
    max_delay: float

    def matches(self, rpc: str, dir: str) -> bool:
        return self.rpc == rpc and self.dir == dir


@dataclass
class InFlight:
    """One copy of a message on its way."""

    id: int  # pairs a request with its response; copies share it
    src: str
    dst: str
    rpc: str  # e.g. "append_entries"
    dir: str  # "request" or "response"
    payload: bytes
    deliver: Callable[[bytes], None]
    sent_at: float
    arrives_at: float
    handle: asyncio.TimerHandle | None = None


class SimNetwork:
    """The links between simulated nodes, and every message in flight."""

    def __init__(self, rng: random.Random, events: EventLog | None = None,
                 faults: LinkFaults | None = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.rng = rng
        self.loop = loop  # None: the running loop
        self.events = events
        self.faults = faults or LinkFaults()
        self.faults.validate()
        self.link_faults: dict[tuple[str, str], LinkFaults] = {}
        self.blocked: dict[tuple[str, str], bool] = {}  # directed cuts; dict keeps order
        self.down: dict[str, bool] = {}  # crashed nodes: nothing reaches them
        # Stalled nodes, and what arrived for each meanwhile: it is handed over all at once later.
        self.stalled: dict[str, list[InFlight]] = {}
        self.in_flight: dict[int, InFlight] = {}
        self.slow: list[SlowRule] = []
        self.echoes: list[EchoRule] = []
        self._next_rpc_id = 1
        self._next_flight = 1

    # -- topology ---------------------------------------------------------------

    def set_faults(self, faults: LinkFaults, src: str | None = None, dst: str | None = None) -> None:
        """Set faults for the whole network, or for the directed link src→dst."""
        faults.validate()
        if src is None and dst is None:
            self.faults = faults
            self.link_faults.clear()
        elif src is not None and dst is not None:
            self.link_faults[(src, dst)] = faults
        else:
            raise ValueError("give both src and dst, or neither")

    def faults_for(self, src: str, dst: str) -> LinkFaults:
        return self.link_faults.get((src, dst), self.faults)

    def update_faults(self, **changes: Any) -> None:
        """Change some fields of the network-wide faults, e.g. ``loss=0.1``."""
        self.set_faults(replace(self.faults, **changes))

    def cut(self, src: str, dst: str) -> None:
        """Stop messages from ``src`` to ``dst`` (one way)."""
        self.blocked[(src, dst)] = True

    def restore(self, src: str, dst: str) -> None:
        self.blocked.pop((src, dst), None)

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Cut every link between different groups; links inside a group work."""
        group_list = [list(g) for g in groups]
        self.blocked.clear()
        for i, group in enumerate(group_list):
            for other in group_list[i + 1:]:
                for a in group:
                    for b in other:
                        self.blocked[(a, b)] = True
                        self.blocked[(b, a)] = True

    def heal(self) -> None:
        """Restore every link."""
        self.blocked.clear()

    def stall(self, node: str) -> None:
        """Hold every message that arrives for ``node`` until ``release``: a process that stopped reading.

        A garbage-collection pause, a stopped process (SIGSTOP) or an
        overloaded host: the messages pile up in the socket buffer and are
        then read in one go, so the node handles them back to back.
        """
        self.stalled.setdefault(node, [])

    def release(self, node: str) -> int:
        """End a ``stall``: deliver what was held, in arrival order, at this instant; returns how many."""
        held = self.stalled.pop(node, [])
        loop = self.loop or asyncio.get_running_loop()
        for flight in held:
            flight_id = self._next_flight
            self._next_flight += 1
            self.in_flight[flight_id] = flight
            flight.handle = loop.call_at(loop.time(), self._arrive, flight_id)
        return len(held)

    def is_blocked(self, src: str, dst: str) -> bool:
        return self.blocked.get((src, dst), False)

    def new_rpc_id(self) -> int:
        rpc_id = self._next_rpc_id
        self._next_rpc_id += 1
        return rpc_id

    # -- sending ------------------------------------------------------------------

    def send(self, rpc_id: int, src: str, dst: str, rpc: str, dir: str, payload: bytes,
             deliver: Callable[[bytes], None], summary: dict[str, Any] | None = None) -> str | None:
        """Put a message on the wire; ``deliver(payload)`` runs when a copy arrives.

        Returns why the message was dropped at once ("partition", "loss",
        "sender crashed", "receiver crashed"), or None if it is on its way.
        """
        loop = self.loop or asyncio.get_running_loop()
        now = loop.time()
        faults = self.faults_for(src, dst)
        reason = None
        if self.down.get(src, False):
            reason = "sender crashed"
        elif self.down.get(dst, False):
            reason = "receiver crashed"
        elif self.is_blocked(src, dst):
            reason = "partition"
        elif faults.loss > 0 and self.rng.random() < faults.loss:
            reason = "loss"
        if reason is not None:
            self._emit(src, "rpc_drop", "SimNetwork.send", id=rpc_id, rpc=rpc, dir=dir, **{"from": src}, to=dst,
                       reason=reason)
            return reason
        copies = 2 if faults.duplicate > 0 and self.rng.random() < faults.duplicate else 1
        delays = [self._delay(faults) + self._slow_down(src, dst, rpc, dir) for _ in range(copies)]
        for rule in self.echoes:
            if rule.matches(rpc, dir) and self.rng.random() < rule.probability:
                delays.append(self._delay(faults) + self.rng.uniform(rule.min_delay, rule.max_delay))
        fields: dict[str, Any] = {"id": rpc_id, "rpc": rpc, "dir": dir, "to": dst, "copies": len(delays)}
        if summary is not None:
            fields["msg"] = summary
        self._emit(src, "rpc_send", "SimNetwork.send", **fields)
        for delay in delays:
            self._launch(InFlight(rpc_id, src, dst, rpc, dir, payload, deliver, now, now + delay), loop)
        return None

    def _delay(self, faults: LinkFaults) -> float:
        delay = faults.delay + (2 * self.rng.random() - 1) * faults.jitter
        if faults.reorder > 0 and self.rng.random() < faults.reorder:
            delay += faults.reorder_delay
        return max(delay, 0.0)

    def _slow_down(self, src: str, dst: str, rpc: str, dir: str) -> float:
        extra = 0.0
        for rule in self.slow:
            if rule.matches(src, dst, rpc, dir):
                extra += self.rng.uniform(rule.min_delay, rule.max_delay)
        return extra

    def _launch(self, flight: InFlight, loop: asyncio.AbstractEventLoop) -> int:
        flight_id = self._next_flight
        self._next_flight += 1
        self.in_flight[flight_id] = flight
        flight.handle = loop.call_at(flight.arrives_at, self._arrive, flight_id)
        return flight_id

    def _arrive(self, flight_id: int) -> None:
        flight = self.in_flight.pop(flight_id)
        reason = None
        if self.down.get(flight.dst, False):
            reason = "receiver crashed"
        elif self.is_blocked(flight.src, flight.dst):
            reason = "partition"
        if reason is not None:
            self._emit(flight.dst, "rpc_drop", "SimNetwork.arrive", id=flight.id, rpc=flight.rpc, dir=flight.dir,
                       **{"from": flight.src}, to=flight.dst, reason=reason)
            return
        held = self.stalled.get(flight.dst)
        if held is not None:
            held.append(flight)
            return
        self._emit(flight.dst, "rpc_deliver", "SimNetwork.arrive", id=flight.id, rpc=flight.rpc, dir=flight.dir,
                   **{"from": flight.src})
        flight.deliver(flight.payload)

    # -- interventions on messages in flight -----------------------------------------

    def drop(self, flight_id: int) -> bool:
        """Lose a message in flight; False if it already arrived."""
        flight = self.in_flight.pop(flight_id, None)
        if flight is None:
            return False
        assert flight.handle is not None
        flight.handle.cancel()
        self._emit(flight.src, "rpc_drop", "SimNetwork.drop", id=flight.id, rpc=flight.rpc, dir=flight.dir,
                   **{"from": flight.src}, to=flight.dst, reason="dropped by user")
        return True

    def duplicate(self, flight_id: int) -> int | None:
        """Send another copy of a message in flight; returns the new copy's flight id."""
        flight = self.in_flight.get(flight_id)
        if flight is None:
            return None
        loop = self.loop or asyncio.get_running_loop()
        copy = replace(flight, arrives_at=loop.time() + self._delay(self.faults_for(flight.src, flight.dst)),
                       handle=None)
        self._emit(flight.src, "rpc_send", "SimNetwork.duplicate", id=flight.id, rpc=flight.rpc, dir=flight.dir,
                   to=flight.dst, copies=1, reason="duplicated by user")
        return self._launch(copy, loop)

    def _emit(self, node: str, kind: str, func: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(node, kind, func, **fields)
