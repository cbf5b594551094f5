"""Timers that deliver on channels and tracked task groups (raft/runtime/timers.py, tasks.py).

All tests run in virtual time, so deadlines can be compared with ``==``: the
delays used are exact binary fractions and the clock lands exactly on each
timer's due time.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from raft.runtime import Chan, TaskGroup, Timer, VirtualTimeLoop, after


@pytest.fixture
def loop() -> Iterator[VirtualTimeLoop]:
    """A fresh virtual-time loop; tasks a test leaves behind are cancelled before it closes."""
    loop = VirtualTimeLoop()
    yield loop
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


# -- timers -------------------------------------------------------------------------


def test_after_fires_at_exactly_its_delay(loop: VirtualTimeLoop) -> None:
    """after(d) delivers at virtual time d, and the value it delivers is that time."""

    async def main() -> None:
        ch = after(2.5)
        assert await ch.recv() == 2.5
        assert loop.time() == 2.5

    loop.run_until_complete(main())


def test_timer_deadline_counts_from_creation_time(loop: VirtualTimeLoop) -> None:
    """A Timer created at t=1.25 with delay 0.5 has deadline 1.75 and fires exactly then."""

    async def main() -> None:
        await asyncio.sleep(1.25)
        timer = Timer(0.5)
        assert timer.deadline == 1.75
        assert await timer.c.recv() == 1.75
        assert loop.time() == 1.75

    loop.run_until_complete(main())


def test_timer_does_not_fire_early(loop: VirtualTimeLoop) -> None:
    """Just before its deadline a timer's channel is still empty; at the deadline it holds the time."""

    async def main() -> None:
        timer = Timer(3.0)
        await asyncio.sleep(2.9375)
        assert timer.c.try_recv() == (None, False)
        await asyncio.sleep(0.0625)
        assert loop.time() == 3.0
        await asyncio.sleep(0)  # the sleep and the timer are due together; the timer was scheduled first
        assert timer.c.try_recv() == (3.0, True)

    loop.run_until_complete(main())


def test_zero_and_negative_delays_fire_at_the_current_time(loop: VirtualTimeLoop) -> None:
    """Timers with delay 0 or below fire at the current time, but only after the creator yields."""

    async def main() -> None:
        await asyncio.sleep(4)
        zero = Timer(0)
        negative = Timer(-2)
        assert negative.deadline == 4
        assert zero.c.try_recv() == (None, False), "a timer never fires synchronously"
        assert await zero.c.recv() == 4
        assert await negative.c.recv() == 4
        assert loop.time() == 4

    loop.run_until_complete(main())


def test_timer_stop_prevents_firing(loop: VirtualTimeLoop) -> None:
    """A stopped timer never delivers; stop reports True the first time and False afterwards."""

    async def main() -> None:
        timer = Timer(1.0)
        await asyncio.sleep(0.5)
        assert timer.stop()
        await asyncio.sleep(10)
        assert timer.c.try_recv() == (None, False)
        assert not timer.stop()

    loop.run_until_complete(main())


def test_timer_stop_after_firing_returns_false(loop: VirtualTimeLoop) -> None:
    """Stopping a timer that already fired returns False and leaves its value in the channel."""

    async def main() -> None:
        timer = Timer(1.0)
        await asyncio.sleep(2)
        assert not timer.stop()
        assert timer.c.try_recv() == (1.0, True)

    loop.run_until_complete(main())


def test_unread_timers_do_not_block(loop: VirtualTimeLoop) -> None:
    """A timer whose value nobody reads still fires, because its channel has room for one value."""

    async def main() -> None:
        channels = [after(i) for i in range(1, 6)]
        await asyncio.sleep(10)
        assert [len(ch) for ch in channels] == [1] * 5
        assert [ch.try_recv()[0] for ch in channels] == [1, 2, 3, 4, 5]

    loop.run_until_complete(main())


# -- task groups ------------------------------------------------------------------------


def test_go_tracks_running_tasks(loop: VirtualTimeLoop) -> None:
    """TaskGroup.go starts tracked tasks that are counted until they finish."""

    async def main() -> None:
        group = TaskGroup("n1")

        async def work(delay: float) -> float:
            await asyncio.sleep(delay)
            return delay

        tasks = [group.go(work(d), name=f"w{d}") for d in (1, 2, 3)]
        assert len(group) == 3
        assert [t.get_name() for t in tasks] == ["n1:w1", "n1:w2", "n1:w3"]
        await asyncio.sleep(1.5)
        assert len(group) == 2
        await asyncio.sleep(5)
        assert len(group) == 0
        assert [t.result() for t in tasks] == [1, 2, 3]

    loop.run_until_complete(main())


def test_wait_returns_once_all_tasks_finish(loop: VirtualTimeLoop) -> None:
    """TaskGroup.wait returns exactly when the last tracked task returns."""

    async def main() -> None:
        group = TaskGroup("n1")
        for delay in (3, 1, 2):
            group.go(asyncio.sleep(delay))
        await group.wait()
        assert loop.time() == 3
        assert len(group) == 0

    loop.run_until_complete(main())


def test_wait_includes_tasks_started_while_waiting(loop: VirtualTimeLoop) -> None:
    """A task started by a tracked task while wait() is pending is waited for as well."""

    async def main() -> None:
        group = TaskGroup("n1")

        async def parent() -> None:
            await asyncio.sleep(1)
            group.go(asyncio.sleep(5), name="child")

        group.go(parent(), name="parent")
        await group.wait()
        assert loop.time() == 6

    loop.run_until_complete(main())


def test_wait_on_empty_group_returns_at_once(loop: VirtualTimeLoop) -> None:
    """wait() on a group with no tasks returns without any time passing."""
    loop.run_until_complete(TaskGroup("empty").wait())
    assert loop.time() == 0


def test_cancel_all_cancels_every_task(loop: VirtualTimeLoop) -> None:
    """cancel_all cancels every tracked task, after which wait() returns and the group is empty."""

    async def main() -> None:
        group = TaskGroup("n1")
        never: Chan[int] = Chan()
        tasks = [group.go(never.recv()) for _ in range(3)]
        tasks.append(group.go(asyncio.sleep(100)))
        await asyncio.sleep(1)
        group.cancel_all()
        await group.wait()
        assert all(t.cancelled() for t in tasks)
        assert len(group) == 0
        assert loop.time() == 1
        assert len(never._receivers) == 0

    loop.run_until_complete(main())


def test_cancel_all_before_tasks_start_leaves_no_unawaited_coroutine(loop: VirtualTimeLoop) -> None:
    """Tasks cancelled before their first step finish cancelled without a 'coroutine was never awaited' warning."""

    async def main() -> list[asyncio.Task[Any]]:
        group = TaskGroup("n1")
        tasks = [group.go(asyncio.sleep(1)) for _ in range(3)]
        group.cancel_all()  # no yield since go(): none of them has run yet
        await group.wait()
        assert len(group) == 0
        return tasks

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tasks = loop.run_until_complete(main())
        assert all(t.cancelled() for t in tasks)
        del tasks
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


def test_group_with_explicit_loop_starts_tasks_before_loop_runs(loop: VirtualTimeLoop) -> None:
    """A TaskGroup bound to a loop can start tasks before that loop runs."""
    group = TaskGroup("n1", loop=loop)
    task = group.go(asyncio.sleep(2, result="done"))
    assert len(group) == 1
    loop.run_until_complete(group.wait())
    assert task.result() == "done"
    assert loop.time() == 2


def test_failing_task_is_reported_to_exception_handler_immediately(loop: VirtualTimeLoop) -> None:
    """An exception escaping a tracked task reaches the loop's exception handler at the moment it is raised."""
    reports: list[tuple[float, dict[str, Any]]] = []
    loop.set_exception_handler(lambda lp, context: reports.append((lp.time(), context)))
    error = ValueError("boom")

    async def failing() -> None:
        await asyncio.sleep(2)
        raise error

    async def main() -> asyncio.Task[Any]:
        group = TaskGroup("n1")
        task = group.go(failing(), name="failing")
        await asyncio.sleep(0)  # let the task start and schedule its own sleep first
        await asyncio.sleep(2)  # due together with the task's sleep, so it runs right after the raise
        assert len(reports) == 1, "reported before anybody awaits or inspects the task"
        await asyncio.sleep(8)
        assert len(group) == 0
        return task

    task = loop.run_until_complete(main())
    assert len(reports) == 1
    when, context = reports[0]
    assert when == 2
    assert context["exception"] is error
    assert "n1:failing" in context["message"]
    assert task.exception() is error

    del task
    gc.collect()
    assert len(reports) == 1, "no second 'exception was never retrieved' report when the task is collected"


def test_timer_value_is_never_before_its_deadline(loop: VirtualTimeLoop) -> None:
    """A timer delivers exactly its deadline even when the clock last rested at an unrelated instant."""

    async def main() -> None:
        timer = Timer(2.834747652200631)
        await asyncio.sleep(0.0938595867742349)  # 0.0938... + (2.8347... - 0.0938...) rounds below 2.8347...
        fired_at = await timer.c.recv()
        assert fired_at == timer.deadline, f"fired at {fired_at!r}, deadline {timer.deadline!r}"
        assert loop.time() == timer.deadline

    loop.run_until_complete(main())
