"""The simulated-clock event loop (raft/runtime/virtual_loop.py).

Only two tests here look at the wall clock: the one that measures the
``speed`` factor and the one where a second thread wakes an idle loop.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from raft.runtime import Chan, TaskGroup, VirtualTimeLoop, after, run_paused, select


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


# -- the clock ------------------------------------------------------------------------


def test_clock_starts_at_zero(loop: VirtualTimeLoop) -> None:
    """A new loop's time() is 0."""
    assert loop.time() == 0


def test_long_sleep_jumps_the_clock(loop: VirtualTimeLoop) -> None:
    """asyncio.sleep(3600) ends at exactly t=3600 and takes well under a second of wall time."""
    started = time.monotonic()
    loop.run_until_complete(asyncio.sleep(3600))
    assert time.monotonic() - started < 1.0
    assert loop.time() == 3600


def test_sleep_longer_than_a_day_lands_exactly(loop: VirtualTimeLoop) -> None:
    """A sleep longer than asyncio's one-day select cap still ends exactly on its due time."""
    loop.run_until_complete(asyncio.sleep(200_000.25))
    assert loop.time() == 200_000.25


def test_clock_does_not_move_without_timers(loop: VirtualTimeLoop) -> None:
    """Callbacks and tasks that never sleep leave the clock where it was."""

    async def main() -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert loop.time() == 0


def test_equal_deadlines_fire_in_scheduling_order(loop: VirtualTimeLoop) -> None:
    """50 callbacks due at the same instant run in the order they were scheduled, whatever else is in the heap."""
    rng = random.Random(2024)
    labels = list(range(50))
    rng.shuffle(labels)
    order: list[int] = []
    noise: list[float] = []
    for label in labels:
        loop.call_at(5.0, order.append, label)
        # Unrelated timers at other times churn the heap between the equal ones.
        loop.call_at(rng.choice([1.0, 2.5, 7.0, 9.0]), noise.append, 0.0)
    loop.run_until_complete(asyncio.sleep(10))
    assert order == labels
    assert len(noise) == 50


def test_equal_deadlines_created_at_different_times_keep_creation_order(loop: VirtualTimeLoop) -> None:
    """Timers due at the same instant but created at different times (call_at and call_later) fire in creation order."""
    order: list[str] = []

    async def main() -> None:
        loop.call_at(5.0, order.append, "a")
        loop.call_later(5.0, order.append, "b")
        await asyncio.sleep(2)
        loop.call_later(3.0, order.append, "c")
        loop.call_at(5.0, order.append, "d")
        await asyncio.sleep(0.5)
        loop.call_later(2.5, order.append, "e")
        await asyncio.sleep(10)

    loop.run_until_complete(main())
    assert order == ["a", "b", "c", "d", "e"]


def test_cancelled_timer_does_not_run(loop: VirtualTimeLoop) -> None:
    """A cancelled timer handle never runs its callback."""
    ran: list[str] = []
    handle = loop.call_at(1.0, ran.append, "cancelled")
    loop.call_at(1.0, ran.append, "kept")
    handle.cancel()
    loop.run_until_complete(asyncio.sleep(2))
    assert ran == ["kept"]


# -- threads and real time -------------------------------------------------------------


def test_call_soon_threadsafe_wakes_an_idle_loop() -> None:
    """A call_soon_threadsafe from another thread wakes a loop that has nothing scheduled at all."""
    loop = VirtualTimeLoop()
    idle = threading.Event()
    futures: list[asyncio.Future[int]] = []
    results: list[int] = []

    async def main() -> int:
        future: asyncio.Future[int] = loop.create_future()
        futures.append(future)
        idle.set()
        return await future  # nothing else is scheduled: the loop must block in its selector

    def run_loop() -> None:
        results.append(loop.run_until_complete(main()))

    runner = threading.Thread(target=run_loop, daemon=True)
    runner.start()
    try:
        assert idle.wait(5)
        time.sleep(0.05)  # let the loop thread reach its blocking select
        assert runner.is_alive()
        assert not loop._scheduled, "the loop is idle with no timer that could wake it"
        loop.call_soon_threadsafe(futures[0].set_result, 42)
        runner.join(5)
        assert not runner.is_alive(), "the loop did not wake up"
        assert results == [42]
        assert loop.time() == 0, "no virtual time passes while waiting for another thread"
    finally:
        if not runner.is_alive():
            loop.close()


def test_speed_factor_paces_virtual_time() -> None:
    """With speed=10.0, sleeping 0.5 virtual seconds takes about 0.05 wall seconds."""
    loop = VirtualTimeLoop(speed=10.0)
    try:
        started = time.monotonic()
        loop.run_until_complete(asyncio.sleep(0.5))
        elapsed = time.monotonic() - started
    finally:
        loop.close()
    assert 0.03 <= elapsed <= 1.0
    assert loop.time() == 0.5


# -- pausing ---------------------------------------------------------------------------


def test_request_pause_stops_right_after_current_callback(loop: VirtualTimeLoop) -> None:
    """request_pause() makes run_forever return after the running callback; the next run resumes with the rest."""
    order: list[str] = []

    def first() -> None:
        order.append("a")
        loop.request_pause()

    loop.call_soon(first)
    loop.call_soon(order.append, "b")
    loop.call_soon(order.append, "c")
    loop.call_soon(loop.stop)
    run_paused(loop)
    assert order == ["a"]
    assert loop.pending_callbacks == 3
    assert not loop.is_running()
    run_paused(loop)
    assert order == ["a", "b", "c"]
    assert loop.pending_callbacks == 0


def test_request_pause_from_a_timer_keeps_the_clock(loop: VirtualTimeLoop) -> None:
    """A pause requested by a timer callback leaves the clock at that timer's time, and resuming continues from it."""
    seen: list[tuple[float, str]] = []

    def at(label: str) -> Callable[[], None]:
        return lambda: seen.append((loop.time(), label))

    loop.call_at(3.0, at("x"))
    loop.call_at(3.0, loop.request_pause)
    loop.call_at(3.0, at("y"))
    loop.call_at(4.0, at("z"))
    loop.call_at(4.0, loop.stop)
    run_paused(loop)
    assert seen == [(3.0, "x")]
    assert loop.time() == 3.0
    run_paused(loop)
    assert seen == [(3.0, "x"), (3.0, "y"), (4.0, "z")]


Trace = list[tuple[float, str]]


async def _workload(loop: VirtualTimeLoop, trace: Trace) -> None:
    """Producers, consumers, timers with equal deadlines and call_soon callbacks, all writing to ``trace``."""
    rng = random.Random(99)
    group = TaskGroup("w")
    items: Chan[tuple[str, int]] = Chan()
    results: Chan[str] = Chan(2)

    def note(label: str) -> None:
        trace.append((loop.time(), label))

    for i in range(4):  # equal deadlines, interleaved with the tasks' own timers
        loop.call_at(1.0, note, f"timer1.{i}")
        loop.call_at(2.5, note, f"timer2.5.{i}")

    async def producer(name: str, count: int) -> None:
        for i in range(count):
            await asyncio.sleep(0.5)  # every producer wakes at the same instants
            await items.send((name, i))
            note(f"{name} sent {i}")

    async def consumer(name: str) -> None:
        while True:
            tick = after(0.5)  # also due together with the producers' sleeps
            case, value = await select([items, tick], rng)
            if case is tick:
                note(f"{name} tick")
                continue
            if value is None:  # items closed
                note(f"{name} done")
                return
            loop.call_soon(note, f"{name} soon {value}")
            await results.send(f"{name}:{value}")

    async def collector() -> None:
        async for result in results:
            note(f"collected {result}")

    producers = [group.go(producer(f"p{i}", 5), name=f"p{i}") for i in range(3)]
    consumers = [group.go(consumer(f"c{i}"), name=f"c{i}") for i in range(2)]
    collecting = group.go(collector(), name="collector")
    await asyncio.gather(*producers)
    await asyncio.sleep(0.5)
    items.close()
    await asyncio.gather(*consumers)
    results.close()
    await collecting
    await group.wait()
    note("end")


def _run_workload(pause_every_callback: bool) -> tuple[Trace, int]:
    """Run the workload to completion; return its trace and how many times run_paused was called."""
    loop = VirtualTimeLoop()
    trace: Trace = []
    try:
        task = loop.create_task(_workload(loop, trace))
        task.add_done_callback(lambda _: loop.stop())
        if pause_every_callback:
            loop.pause_when = lambda: True
        runs = 0
        while not task.done():
            run_paused(loop)
            runs += 1
        task.result()
    finally:
        loop.close()
    return trace, runs


def test_pausing_after_every_callback_does_not_change_the_run() -> None:
    """A run paused after every single callback records exactly the same events at the same times as an unpaused one."""
    straight, straight_runs = _run_workload(pause_every_callback=False)
    paused, paused_runs = _run_workload(pause_every_callback=True)
    assert straight_runs == 1
    assert paused_runs > len(straight), "the paused run really stopped after (at least) every recorded step"
    assert len(straight) > 60
    assert straight[-1][1] == "end"
    assert paused == straight


def test_workload_is_deterministic() -> None:
    """Two unpaused runs of the same workload produce identical traces."""
    assert _run_workload(False)[0] == _run_workload(False)[0]


def test_run_paused_inside_another_running_loop() -> None:
    """run_paused drives a virtual loop from inside a coroutine of another running loop and restores that loop."""

    async def outer() -> str:
        outer_loop = asyncio.get_running_loop()
        virtual = VirtualTimeLoop()
        try:
            with pytest.raises(RuntimeError):
                virtual.run_forever()  # plain asyncio refuses to nest loops in one thread

            async def inner() -> Any:
                await asyncio.sleep(30)
                return asyncio.get_running_loop()

            task = virtual.create_task(inner())
            task.add_done_callback(lambda _: virtual.stop())
            run_paused(virtual)
            assert task.result() is virtual
            assert virtual.time() == 30
            assert asyncio.get_running_loop() is outer_loop
            await asyncio.sleep(0)  # the outer loop still works afterwards
            return "ok"
        finally:
            virtual.close()

    assert asyncio.run(outer()) == "ok"


def test_run_paused_with_pause_inside_another_running_loop() -> None:
    """A virtual loop can be paused and resumed repeatedly from inside another running loop."""

    async def outer() -> list[float]:
        outer_loop = asyncio.get_running_loop()
        virtual = VirtualTimeLoop()
        times: list[float] = []
        try:

            async def ticker() -> None:
                for _ in range(3):
                    await asyncio.sleep(1)
                    times.append(virtual.time())
                    virtual.request_pause()

            task = virtual.create_task(ticker())
            task.add_done_callback(lambda _: virtual.stop())
            while not task.done():
                run_paused(virtual)
                assert asyncio.get_running_loop() is outer_loop
                await asyncio.sleep(0)
            return times
        finally:
            virtual.close()

    assert asyncio.run(outer()) == [1, 2, 3]


def test_timer_runs_with_clock_exactly_at_its_due_time() -> None:
    """A call_at(when) callback sees loop.time() == when, also after the clock last stopped at an unrelated instant."""
    rng = random.Random(5)
    # The first pair is one where stop_at + (when - stop_at) rounds to one ulp below when.
    pairs = [(0.0938595867742349, 2.834747652200631)]
    pairs += [(rng.uniform(0, 1), rng.uniform(1, 100)) for _ in range(300)]
    wrong: list[tuple[float, float, float]] = []
    for stop_at, when in pairs:
        loop = VirtualTimeLoop()
        seen: list[float] = []

        def fire(lp: VirtualTimeLoop = loop, out: list[float] = seen) -> None:
            out.append(lp.time())
            lp.stop()

        try:
            loop.call_at(when, fire)
            loop.run_until_complete(asyncio.sleep(stop_at))  # the clock rests at stop_at first
            loop.run_forever()
        finally:
            loop.close()
        if seen != [when]:
            wrong.append((stop_at, when, seen[0]))
    assert wrong == [], f"{len(wrong)} of {len(pairs)} timers ran before their due time, e.g. {wrong[:3]}"
