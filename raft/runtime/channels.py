"""Go channels and ``select`` on asyncio.

hashicorp/raft is written with goroutines that talk over channels. To keep the
Python code shaped like the Go code, this module gives asyncio the same two
tools:

``Chan``
    A channel with a capacity (0 means unbuffered: a send waits until a
    receiver takes the value, the "rendezvous" of Go). ``send`` and ``recv``
    wait; ``try_send`` and ``try_recv`` never wait (Go's ``select`` with a
    ``default`` case); ``close`` wakes every receiver, which from then on gets
    ``None`` at once. ``async for value in chan`` is Go's ``for v := range ch``.

``select``
    Waits on several channel operations and performs exactly one of them. When
    several are ready at the same moment it picks one with the caller's seeded
    random generator, as Go picks at random; that keeps the choice fair *and*
    reproducible from a seed.

Theory of operation
-------------------
Every operation runs on the event loop's thread, so a channel needs no locks:
checking that a case is ready and performing it happen without interruption.
A task that has to wait leaves a *waiter* (Go calls it a ``sudog``) in the
queue of every channel it waits on. The first counterpart to arrive completes
the waiter's future, handing the value over directly; the waiter then removes
itself from all the other queues. A waiter whose future is already done is
skipped, so a cancelled task can never swallow a value.

A ``None`` in place of a channel is Go's nil channel: that case is never ready.
Go code uses this to switch a ``select`` case off (``prevoteCh = nil``).

The blocking rule
-----------------
Where Go blocks on a channel send, the Python mirror blocks too: ``await
ch.send(v)``, or ``select([Send(ch, v), shutdown_ch])`` where Go's ``select``
also waits for shutdown. A blocking send is back-pressure: it is what keeps a
fast producer (the main loop committing entries) from running ahead of a slow
consumer (the FSM task), and what keeps two values sent one after the other
in order. A non-blocking ``try_send`` is allowed in exactly two cases, and
the line that uses it says which:

* it mirrors Go's ``select { case ch <- v: default: }`` (``asyncNotifyCh``,
  a timer firing, an observer that drops when full), where losing the value
  is the intended behaviour; or
* the send cannot wait: use ``send_nowait``, which raises instead of
  dropping if that belief is ever wrong (a one-slot channel written once,
  a vote channel sized for every voter).

Never "try to send, and if that fails start a task that sends later": the
task loses the order of values and the back-pressure both.

Seeing who waits
----------------
``blocked_on(task)`` tells which channel operations a task is blocked in,
and ``describe_task`` adds where in the code. A simulation that stops making
progress uses them to name every blocked task and its channels.

A slow consumer
---------------
``set_select_cost(task, seconds)`` makes every ``select`` of one task wait
that long first, as if the work it does per message took time. The fault
simulator uses it for a state machine slower than its log; in virtual time
work is otherwise free, and a consumer would drain its channel in one step.

Mirrors: Go's runtime ``chan`` and ``select`` (runtime/chan.go, runtime/select.go).
Differs: channels belong to one event loop and must not be touched from other
threads; use ``loop.call_soon_threadsafe``. Sending on a closed channel raises
``ChannelClosedError`` where Go panics.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ChannelClosedError(RuntimeError):
    """A value was sent on a closed channel (a panic in Go)."""


class ChannelFullError(RuntimeError):
    """``send_nowait`` found no room: a send believed never to wait would have waited."""


class _Waiter:
    """One blocked ``select``: a future completed by whichever case fires first."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[tuple[int, Any]]) -> None:
        self.future = future


class _Sudog:
    """A waiter's registration on one channel: which case it is and, for sends, the value."""

    __slots__ = ("case_index", "value", "waiter")

    def __init__(self, waiter: _Waiter, case_index: int, value: Any = None) -> None:
        self.waiter = waiter
        self.case_index = case_index
        self.value = value

    @property
    def alive(self) -> bool:
        return not self.waiter.future.done()


class _Closed:
    """Marker handed to receivers of a closed channel, turned into ``None`` for callers."""

    def __repr__(self) -> str:
        return "<closed>"


_CLOSED: Any = _Closed()


class _NoQueue(deque[Any]):
    """The shared, always empty queue of a channel that has not needed one of its own yet.

    A client with 100,000 commands in flight holds 100,000 futures, each
    with a one-slot answer channel; three real deques per channel cost
    about 1.6 KB each and most are never used. Reading this queue works
    like reading any empty deque; adding to it is a bug, so it raises.
    """

    def append(self, value: Any) -> None:
        raise AssertionError("internal error: a channel added to its shared empty queue")


_NO_QUEUE: deque[Any] = _NoQueue()


def _pop_alive(queue: deque[_Sudog]) -> _Sudog | None:
    while queue:
        sudog = queue.popleft()
        if sudog.alive:
            return sudog
    return None


def _has_alive(queue: deque[_Sudog]) -> bool:
    for sudog in queue:  # noqa: SIM110 - a plain loop is faster, and this runs on every select
        if not sudog.waiter.future.done():
            return True
    return False


class Chan(Generic[T]):
    """A Go channel: ``Chan(0)`` is unbuffered, ``Chan(n)`` holds up to n values."""

    __slots__ = ("_buffer", "_receivers", "_senders", "capacity", "closed", "name")

    def __init__(self, capacity: int = 0, name: str = "") -> None:
        if capacity < 0:
            raise ValueError(f"channel capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.name = name
        self.closed = False
        # Each queue is the shared empty one until the channel first needs its own.
        self._buffer: deque[T] = _NO_QUEUE
        self._receivers: deque[_Sudog] = _NO_QUEUE
        self._senders: deque[_Sudog] = _NO_QUEUE

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._buffer)}/{self.capacity}"
        return f"<Chan {self.name or hex(id(self))} {state}>"

    def __len__(self) -> int:
        """Values waiting in the buffer, like Go's ``len(ch)``."""
        return len(self._buffer)

    # -- readiness, checked without side effects -------------------------

    def _can_send(self) -> bool:
        if self.closed:
            raise ChannelClosedError(f"send on closed channel {self!r}")
        return len(self._buffer) < self.capacity or (bool(self._receivers) and _has_alive(self._receivers))

    def _can_recv(self) -> bool:
        return bool(self._buffer) or self.closed or (bool(self._senders) and _has_alive(self._senders))

    # -- the operations themselves ----------------------------------------

    def try_send(self, value: T) -> bool:
        """Send without waiting; False if nobody is ready and the buffer is full.

        This is Go's ``select { case ch <- v: default: }``: use it only where
        the Go code has that ``default`` (see "The blocking rule" above).
        """
        if not self._can_send():
            return False
        receiver = _pop_alive(self._receivers)
        if receiver is not None:
            receiver.waiter.future.set_result((receiver.case_index, value))
        else:
            if self._buffer is _NO_QUEUE:
                self._buffer = deque()
            self._buffer.append(value)
        return True

    def send_nowait(self, value: T) -> None:
        """A send that cannot wait: raise ``ChannelFullError`` rather than drop ``value``.

        For a send that Go writes as blocking but that can never block where
        it is used, such as the one answer put in a one-slot channel. If the
        reasoning is ever wrong, this fails loudly instead of losing a value.
        """
        if not self.try_send(value):
            raise ChannelFullError(f"send_nowait on full channel {self!r}: this send was expected never to wait")

    def try_recv(self) -> tuple[T | None, bool]:
        """Receive without waiting: ``(value, True)``, or ``(None, False)`` if nothing is ready.

        On a closed, drained channel this returns ``(None, True)``: the
        receive happened and yielded the zero value, as in Go. Use
        ``recv_ok`` when the difference matters.
        """
        value, ready = self._try_recv_raw()
        return (None if value is _CLOSED else value), ready

    def _try_recv_raw(self) -> tuple[Any, bool]:
        if self._buffer:
            value = self._buffer.popleft()
            sender = _pop_alive(self._senders)
            if sender is not None:  # a blocked sender may now use the freed slot
                self._buffer.append(sender.value)
                sender.waiter.future.set_result((sender.case_index, None))
            return value, True
        sender = _pop_alive(self._senders)
        if sender is not None:
            sender.waiter.future.set_result((sender.case_index, None))
            return sender.value, True
        if self.closed:
            return _CLOSED, True
        return None, False

    async def send(self, value: T) -> None:
        """Send, waiting for a receiver or for room in the buffer."""
        await _select_raw([Send(self, value)], None, False)

    async def recv(self) -> T | None:
        """Receive, waiting for a value; ``None`` once the channel is closed and drained."""
        value, _ = await self.recv_ok()
        return value

    async def recv_ok(self) -> tuple[T | None, bool]:
        """Go's ``v, ok := <-ch``: ``ok`` is False when the channel is closed and drained."""
        value, ready = self._try_recv_raw()
        if not ready:
            _, value = await _select_raw([self], None, False)
        if value is _CLOSED:
            return None, False
        return value, True

    def close(self) -> None:
        """Close the channel: all receivers wake with ``None``; senders fail."""
        if self.closed:
            raise ChannelClosedError(f"close of closed channel {self!r}")
        self.closed = True
        while (receiver := _pop_alive(self._receivers)) is not None:
            receiver.waiter.future.set_result((receiver.case_index, _CLOSED))
        while (sender := _pop_alive(self._senders)) is not None:
            sender.waiter.future.set_exception(ChannelClosedError(f"send on closed channel {self!r}"))

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            value, ok = await self.recv_ok()
            if not ok:
                return
            yield value  # type: ignore[misc]


@dataclass(frozen=True)
class Send(Generic[T]):
    """A send case for ``select``: ``Send(ch, value)`` is Go's ``case ch <- value:``."""

    chan: Chan[T] | None
    value: T


Case = Chan[Any] | Send[Any] | None


def _ready(case: Case) -> bool:
    if case is None:
        return False
    if isinstance(case, Send):
        return case.chan is not None and case.chan._can_send()
    return case._can_recv()


def _perform(case: Chan[Any] | Send[Any]) -> Any:
    if isinstance(case, Send):
        assert case.chan is not None
        sent = case.chan.try_send(case.value)
        assert sent, "select invariant: a ready send case must succeed"
        return None
    value, received = case._try_recv_raw()
    assert received, "select invariant: a ready receive case must succeed"
    return value


# How many selects in a row may complete without any task waiting, before the
# runtime calls it a livelock. The heavy fuzz scenarios peak near 500.
MAX_SELECTS_WITHOUT_WAITING = 100_000
_selects_without_waiting = 0


class LivelockError(RuntimeError):
    """Work went on for ever without time passing: a task that never waits, or a loop that never advances."""


async def select(
    cases: Sequence[Case],
    rng: random.Random | None = None,
    default: bool = False,
) -> tuple[Case, Any]:
    """Perform exactly one of ``cases`` and return ``(case, value)``.

    A case is a channel to receive from, ``Send(ch, value)``, or ``None`` (a
    nil channel, never ready). The returned ``case`` is the very object that
    was passed in, so callers dispatch with ``if case is r.rpc_ch: ...``. For a
    send case the value is ``None``.

    When more than one case is ready, ``rng`` chooses among them (Go chooses
    uniformly at random); without ``rng`` the first ready case wins. With
    ``default=True`` and nothing ready, returns ``(None, None)`` at once,
    which is Go's ``default:`` clause.
    """
    case, value = await _select_raw(cases, rng, default)
    return case, (None if value is _CLOSED else value)


async def _select_raw(
    cases: Sequence[Case], rng: random.Random | None, default: bool
) -> tuple[Case, Any]:
    if _SELECT_COSTS:
        cost = _SELECT_COSTS.get(asyncio.current_task())  # type: ignore[arg-type]
        if cost:
            await asyncio.sleep(cost)
    ready: list[Chan[Any] | Send[Any]] = []
    for case in cases:  # inlined _ready(): this is the hottest loop of a simulation
        if case is None:
            continue
        if isinstance(case, Chan):
            if case._buffer or case.closed or (case._senders and _has_alive(case._senders)):
                ready.append(case)
        elif _ready(case):
            ready.append(case)
    if ready or default:
        # Nothing waits: count it. A task that loops through ready selects
        # and never waits holds the event loop for ever (a livelock); see
        # MAX_SELECTS_WITHOUT_WAITING.
        global _selects_without_waiting
        _selects_without_waiting += 1
        if _selects_without_waiting > MAX_SELECTS_WITHOUT_WAITING:
            _selects_without_waiting = 0
            raise LivelockError(f"livelock: {MAX_SELECTS_WITHOUT_WAITING} selects in a row found a case ready "
                                f"and nothing ever waited; this task loops without blocking")
        if not ready:
            return None, None
        chosen = ready[0] if len(ready) == 1 or rng is None else rng.choice(ready)
        assert chosen is not None
        return chosen, _perform(chosen)

    _selects_without_waiting = 0
    loop = asyncio.get_running_loop()
    waiter = _Waiter(loop.create_future())
    registrations = _register(cases, waiter)
    task = asyncio.current_task(loop)
    if task is not None:
        _BLOCKED[task] = cases
    try:
        index, value = await waiter.future
    except BaseException:
        _unregister(registrations, None)  # cancelled, or the channel closed under a send
        raise
    finally:
        if task is not None:
            del _BLOCKED[task]
    _unregister(registrations, index)
    return cases[index], value


def _register(cases: Sequence[Case], waiter: _Waiter) -> list[tuple[deque[_Sudog], _Sudog]]:
    """Put ``waiter`` in the queue of every channel of ``cases``; the (queue, sudog) pairs, to take it out again."""
    registrations: list[tuple[deque[_Sudog], _Sudog]] = []
    for index, case in enumerate(cases):
        if case is None:
            continue
        if isinstance(case, Chan):
            if case._receivers is _NO_QUEUE:
                case._receivers = deque()
            queue = case._receivers
            sudog = _Sudog(waiter, index)
        elif case.chan is None:
            continue  # a send on a nil channel never happens
        else:
            if case.chan._senders is _NO_QUEUE:
                case.chan._senders = deque()
            queue = case.chan._senders
            sudog = _Sudog(waiter, index, case.value)
        queue.append(sudog)
        registrations.append((queue, sudog))
    if not registrations:
        raise RuntimeError("select with no cases and no default would block forever")
    return registrations


def select_soon(loop: asyncio.AbstractEventLoop, cases: Sequence[Case], rng: random.Random | None,
                on_done: Callable[[Case, Any], None]) -> None:
    """Run ``select(cases)`` for a caller that is not a task, and call ``on_done(case, value)`` when it fires.

    A goroutine blocked in a ``select`` costs Go a few hundred bytes; an
    asyncio task costs far more, and starting tens of thousands at once
    holds the event loop for longer than a leader lease. This is the same
    select without a task: its first try runs soon on ``loop`` (when a new
    task's first step would), a case ready then is performed at once, and
    otherwise the caller waits in each channel's queue like any blocked
    select. So a thousand callers parked on one channel are a thousand
    waiting senders, in order, as in Go, and a receiver that drains the
    channel (hashicorp's group commit) finds them all.

    Mirrors: runtime/select.go ``selectgo`` for a goroutine that parks.
    Differs: the caller goes on at once and learns the outcome from
    ``on_done``; nothing is left to wake, so no task is needed.
    """

    def attempt() -> None:
        ready = [case for case in cases if case is not None and _ready(case)]
        if ready:
            chosen = ready[0] if len(ready) == 1 or rng is None else rng.choice(ready)
            on_done(chosen, _perform(chosen))
            return
        waiter = _Waiter(loop.create_future())
        registrations = _register(cases, waiter)

        def fired(future: asyncio.Future[tuple[int, Any]]) -> None:
            if future.cancelled() or future.exception() is not None:
                _unregister(registrations, None)
                future.result()  # raise it here: a send on a closed channel is a bug, as in a task
                return
            index, value = future.result()
            _unregister(registrations, index)
            on_done(cases[index], value)

        waiter.future.add_done_callback(fired)

    loop.call_soon(attempt)


# Tasks blocked in a select right now, and its cases; only for diagnosis.
_BLOCKED: dict[asyncio.Task[Any], Sequence[Case]] = {}

# Tasks that pay for each select in time (see "A slow consumer"); empty outside the simulator.
_SELECT_COSTS: dict[asyncio.Task[Any], float] = {}


def set_select_cost(task: asyncio.Task[Any], seconds: float) -> None:
    """Make every ``select`` of ``task`` first sleep ``seconds`` (0: no cost; a finished task is forgotten)."""
    if seconds > 0 and not task.done():
        _SELECT_COSTS[task] = seconds
    else:
        _SELECT_COSTS.pop(task, None)


def _describe_case(case: Case) -> str:
    if case is None:
        return "nil"
    chan = case.chan if isinstance(case, Send) else case
    if chan is None:
        return "nil"
    name = chan.name or hex(id(chan))
    fill = "closed" if chan.closed else f"{len(chan._buffer)}/{chan.capacity}"
    return f"send {name} ({fill})" if isinstance(case, Send) else f"recv {name} ({fill})"


def blocked_on(task: asyncio.Task[Any]) -> list[str] | None:
    """The channel operations ``task`` is blocked in, e.g. ``["send fsmMutate (128/128)"]``; None if none."""
    cases = _BLOCKED.get(task)
    if cases is None:
        return None
    return [_describe_case(case) for case in cases if case is not None]


def describe_task(task: asyncio.Task[Any]) -> str:
    """One line on what ``task`` waits for and where: its channels, and the innermost caller of the wait."""
    where = ""
    frame = _waiting_frame(task)
    if frame is not None:
        where = f" in {frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno})"
    channels = blocked_on(task)
    what = f"select [{', '.join(channels)}]" if channels is not None else "waiting, not on a channel"
    return f"{task.get_name()}: {what}{where}"


def _waiting_frame(task: asyncio.Task[Any]) -> FrameType | None:
    """The innermost frame of the task's chain of awaits that is not in this module."""
    found: FrameType | None = None
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        if frame.f_code.co_filename != __file__:
            found = frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return found


def _unregister(registrations: list[tuple[deque[_Sudog], _Sudog]], fired: int | None) -> None:
    """Take a finished select's waiters out of every queue it joined.

    Leave no waiter behind: a long-lived channel such as shutdown_ch would
    otherwise collect one per loop iteration. The counterpart that fired
    case ``fired`` has already popped that one, so it is skipped; any other
    may be gone too if a counterpart found it dead and dropped it.
    """
    for queue, sudog in registrations:
        if sudog.case_index == fired:
            continue
        try:  # noqa: SIM105 - a context manager per waiter costs more, and this runs on every wake-up
            queue.remove(sudog)
        except ValueError:
            pass
