"""Timers that deliver on a channel, read from the event loop's clock.

Go's ``time.After(d)`` returns a channel that receives the current time once
``d`` has passed. The Raft loops ``select`` on such channels next to their RPC
channels, so we give asyncio the same shape. Time is always
``loop.time()``: in virtual time that is the simulated clock, in real time the
monotonic clock. Protocol code never reads the wall clock.

Mirrors: Go's ``time.After`` and ``time.Timer``.
Differs: a timer that nobody waits for any more can be stopped with
``Timer.stop()`` so it does not keep a simulation busy; Go's garbage collector
does the equivalent.
"""

from __future__ import annotations

import asyncio

from raft.runtime.channels import Chan


class Timer:
    """A one-shot timer whose channel ``c`` receives the loop time when it fires."""

    def __init__(self, delay: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        self.c: Chan[float] = Chan(1, name=f"timer({delay:.6f})")
        self.deadline = loop.time() + max(delay, 0.0)
        self._handle: asyncio.TimerHandle | None = loop.call_at(self.deadline, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        self.c.try_send(loop.time())  # Go's runtime sends the tick with a select default too

    def stop(self) -> bool:
        """Cancel the timer; True if it had not fired yet."""
        if self._handle is None:
            return False
        self._handle.cancel()
        self._handle = None
        return True


def after(delay: float) -> Chan[float]:
    """Go's ``time.After``: a channel that receives the time once ``delay`` seconds pass."""
    return Timer(delay).c
