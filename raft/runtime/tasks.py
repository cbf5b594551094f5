"""Tracked tasks: Go's ``go f()`` plus the ``sync.WaitGroup`` that waits for them.

hashicorp/raft starts every goroutine through ``goFunc`` so that ``Shutdown``
can wait until all of them have returned. ``TaskGroup.go`` is that helper: it
starts an asyncio task, remembers it until it finishes, and
``TaskGroup.wait`` returns once every tracked task is done.

A task that raises is a bug (in Go it would be a panic that kills the
process). We do not let the exception vanish into a log line: it is passed to
the event loop's exception handler, which the simulation runner turns into a
failed run.

Mirrors: state.go ``goFunc`` and ``waitShutdown``.
Differs: ``cancel_all`` exists for the simulator's "crash" fault, which stops a
node abruptly; Go has no way to kill a goroutine.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from typing import Any


class TaskGroup:
    """The set of tasks one Raft node has started, in start order."""

    def __init__(self, name: str = "", loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.name = name
        self.loop = loop  # None: the running loop at the time of each ``go``
        self._tasks: dict[int, asyncio.Task[Any]] = {}  # a dict keeps start order; a set would not
        self._coros: dict[int, Coroutine[Any, Any, Any]] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks still running, in start order (to report what a stalled node waits for)."""
        return list(self._tasks.values())

    def go(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        """Start ``coro`` as a tracked task (Go: ``r.goFunc(f)``)."""
        task_id = self._next_id
        self._next_id += 1
        label = f"{self.name}:{name or getattr(coro, '__name__', 'task')}"
        loop = self.loop or asyncio.get_running_loop()
        task = loop.create_task(_report_failure(coro, label, loop), name=label)
        self._tasks[task_id] = task
        self._coros[task_id] = coro
        task.add_done_callback(lambda t: self._finished(task_id, t))
        return task

    def _finished(self, task_id: int, task: asyncio.Task[Any]) -> None:
        del self._tasks[task_id]
        coro = self._coros.pop(task_id)
        if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            coro.close()  # cancelled before it ever ran: close it so Python does not warn
        if not task.cancelled():
            task.exception()  # already reported by _report_failure; mark it retrieved

    async def wait(self) -> None:
        """Return once every tracked task has finished (Go: ``waitShutdown``)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    def cancel_all(self) -> None:
        """Cancel every tracked task at once; used only to simulate a crash."""
        for task in list(self._tasks.values()):
            task.cancel()


async def _report_failure(coro: Coroutine[Any, Any, Any], label: str, loop: asyncio.AbstractEventLoop) -> Any:
    """Run ``coro``; report an exception to the loop the moment it escapes, then re-raise it."""
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        loop.call_exception_handler({"message": f"task {label} failed", "exception": error})
        raise
