"""An asyncio event loop that runs on a simulated clock.

Raft is all about time: election timeouts, heartbeats, leases. Waiting for
them in real time would make a test of a leader crash take seconds and would
make every run different. This loop keeps its own clock instead. When no
callback is ready it does not sleep: it moves the clock straight to the next
timer. A 60-second simulation of five nodes runs in well under a second, and
the same inputs always give the same sequence of callbacks.

Theory of operation
-------------------
asyncio asks its *selector* to wait for I/O with a timeout equal to the time
until the next timer. Our selector first polls the real selector without
waiting (so ``call_soon_threadsafe`` from other threads still works); if there
is no I/O it advances the virtual clock to the next timer and returns. With a
``speed`` factor it really waits ``timeout / speed`` seconds first, which gives
slow motion for the visualizer.

Two more changes make a run a pure function of its inputs:

* Timers due at the same instant fire in the order they were scheduled. The
  stock loop keeps timers in a heap ordered by due time only, so ties come
  out in an order that depends on every other timer ever pushed.
* A run can *pause* between two callbacks (``request_pause``). The facade
  uses this to stop right after an event of interest. Pausing never changes
  the order in which later callbacks run, so a run that was paused a hundred
  times matches one that ran straight through.

Mirrors: nothing in hashicorp/raft; this replaces Go's scheduler and clock.
Differs: relies on the CPython 3.11+ ``BaseEventLoop`` internals
(``_ready``, ``_scheduled``, ``_run_once``), which are stable but private.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import selectors
import time
from asyncio import events
from collections.abc import Callable
from typing import Any

from raft.runtime.channels import LivelockError

# Same housekeeping thresholds as asyncio.base_events.
_MIN_SCHEDULED_TIMER_HANDLES = 100
_MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5
_MAXIMUM_SELECT_TIMEOUT = 24 * 3600
# Callbacks allowed at one virtual instant before a run counts as a livelock.
# The fuzz scenarios peak below 10,000 (ApplyBurst, SnapshotRestore, SlowStateMachine);
# a client that makes 100,000 requests at once costs about three callbacks each.
MAX_CALLBACKS_PER_INSTANT = 1_000_000


class _OrderedTimerHandle(asyncio.TimerHandle):
    """A timer handle that breaks ties on the due time by scheduling order."""

    __slots__ = ("_seq",)
    _when: float

    def __init__(self, seq: int, when: float, callback: Callable[..., object], args: Any,
                 loop: asyncio.AbstractEventLoop, context: Any = None) -> None:
        super().__init__(when, callback, args, loop, context=context)
        self._seq = seq

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return (self._when, self._seq) < (other._when, other._seq)
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return (self._when, self._seq) <= (other._when, other._seq)
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return (self._when, self._seq) > (other._when, other._seq)
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return (self._when, self._seq) >= (other._when, other._seq)
        return NotImplemented


class _VirtualSelector(selectors.BaseSelector):
    """A selector that jumps the loop's clock forward instead of blocking."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualTimeLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        loop = self.loop
        assert loop is not None
        if timeout is None:
            # Nothing is scheduled at all: only another thread can give us
            # work, so block until it writes to the loop's self-pipe.
            return self._real.select(None)
        speed = loop.speed
        if speed is not None:
            started = time.monotonic()  # wall clock only to pace slow motion, never seen by Raft
            ready = self._real.select(timeout / speed)
            if ready:
                loop._advance(min(timeout, (time.monotonic() - started) * speed))
                return ready
        loop._advance_to_next_timer(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is a simulated clock starting at 0.

    ``speed=None`` (the default) runs as fast as possible. ``speed=1.0`` runs
    in step with the wall clock, ``speed=0.1`` at a tenth of it.
    """

    def __init__(self, speed: float | None = None) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = 0.0
        self.speed = speed
        self._sequence = itertools.count()
        self._pause_requested = False
        self._leftover = 0  # callbacks of a paused iteration that have not run yet
        # Checked after every callback while set: returning True pauses the loop.
        self.pause_when: Callable[[], bool] | None = None
        # Callbacks run so far, not counting request_pause itself: a position in
        # the run that a replay can stop at exactly (see raft.sim.cluster).
        self.callbacks_run = 0
        # Zero: every timer runs at exactly its own due time. A non-zero
        # resolution would run timers due a hair after a pause at the pause's
        # time, and a replay without that pause would see other clocks.
        self._clock_resolution = 0.0
        # A run that does work forever without the clock moving (a livelock:
        # say, a retry loop whose backoff returns at once) would never reach
        # any deadline of virtual time. After this many callbacks at one
        # instant the loop raises LivelockError instead of running on.
        self.max_callbacks_per_instant = MAX_CALLBACKS_PER_INSTANT
        self._instant = -1.0
        self._callbacks_at_instant = 0

    # -- the clock ----------------------------------------------------------

    def time(self) -> float:
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += max(seconds, 0.0)

    def _advance_to_next_timer(self, timeout: float) -> None:
        # Land exactly on the timer's due time rather than on now + timeout,
        # which can differ from it in the last bit of the float.
        target = self._now + timeout
        scheduled = self._internals._scheduled
        if scheduled and scheduled[0]._when <= target:
            target = scheduled[0]._when
        self._now = max(self._now, target)

    # -- timers in a total order ----------------------------------------------

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                context: Any = None) -> asyncio.TimerHandle:
        base = self._internals
        base._check_closed()
        timer = _OrderedTimerHandle(next(self._sequence), when, callback, args, self, context)
        heapq.heappush(base._scheduled, timer)
        base_timer: Any = timer
        base_timer._scheduled = True
        return timer

    # -- pausing between callbacks --------------------------------------------

    def request_pause(self) -> None:
        """Stop ``run_forever`` right after the callback that is running now."""
        self._pause_requested = True
        self.stop()

    @property
    def pending_callbacks(self) -> int:
        """Callbacks of a paused iteration still waiting to run."""
        return self._leftover

    def run_forever(self) -> None:
        self._pause_requested = False
        super().run_forever()

    def _run_once(self) -> None:
        """One loop iteration, which may end early at a pause.

        Same steps as ``BaseEventLoop._run_once``: drop cancelled timers, poll
        for I/O (which moves the virtual clock), promote due timers to the
        ready queue, then run the callbacks that were ready at the start. If
        a pause is requested in the middle, the rest of this iteration's
        callbacks wait in ``_leftover`` and the next call runs exactly them,
        without polling or promoting timers, as if nothing had happened.
        """
        if self._leftover == 0:
            self._start_iteration()
            self._leftover = len(self._internals._ready)
            if self._now != self._instant:
                self._instant = self._now
                self._callbacks_at_instant = 0
            self._callbacks_at_instant += self._leftover
            if self._callbacks_at_instant > self.max_callbacks_per_instant:
                raise LivelockError(
                    f"livelock: {self._callbacks_at_instant} callbacks ran at virtual time {self._now:.6f} "
                    f"and the clock never moved; some task loops without waiting")
        ready = self._internals._ready
        while self._leftover > 0:
            self._leftover -= 1
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()
                if handle._callback != self.request_pause:
                    self.callbacks_run += 1
                if self.pause_when is not None and self.pause_when():
                    self.request_pause()
            if self._pause_requested:
                break

    @property
    def _internals(self) -> Any:
        """The private ``BaseEventLoop`` state this class works with, untyped."""
        return self

    def _start_iteration(self) -> None:
        base = self._internals
        scheduled = base._scheduled
        if (len(scheduled) > _MIN_SCHEDULED_TIMER_HANDLES
                and base._timer_cancelled_count / len(scheduled) > _MIN_CANCELLED_TIMER_HANDLES_FRACTION):
            live = []
            for handle in scheduled:
                if handle._cancelled:
                    handle._scheduled = False
                else:
                    live.append(handle)
            heapq.heapify(live)
            base._scheduled = scheduled = live
            base._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0]._cancelled:
                base._timer_cancelled_count -= 1
                heapq.heappop(scheduled)._scheduled = False

        timeout: float | None = None
        if base._ready or base._stopping:
            timeout = 0
        elif scheduled:
            timeout = min(max(0.0, scheduled[0]._when - self.time()), _MAXIMUM_SELECT_TIMEOUT)
        base._process_events(base._selector.select(timeout))

        now = self.time()
        while scheduled and scheduled[0]._when <= now:
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            base._ready.append(handle)


def run_paused(loop: VirtualTimeLoop) -> None:
    """Run ``loop`` until it is paused or stopped, even inside another running loop.

    A Jupyter kernel already runs an asyncio loop in the main thread, and
    asyncio refuses to start a second one there. While we drive the virtual
    loop, the outer loop is blocked anyway, so we set it aside and put it back
    afterwards.
    """
    outer = events._get_running_loop()
    events._set_running_loop(None)
    try:
        loop.run_forever()
    finally:
        events._set_running_loop(outer)
