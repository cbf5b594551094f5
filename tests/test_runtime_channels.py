"""Go channels and ``select`` on asyncio (raft/runtime/channels.py).

Every test that waits runs on a ``VirtualTimeLoop``, so "waiting a second"
costs no wall time and the interleaving of tasks is the same on every run.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from raft.runtime import Chan, ChannelClosedError, Send, VirtualTimeLoop, after, channels, select, set_select_cost

T = TypeVar("T")


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


def run(loop: VirtualTimeLoop, coro: Coroutine[Any, Any, T]) -> T:
    return loop.run_until_complete(coro)


# -- Chan: unbuffered ----------------------------------------------------------


def test_unbuffered_send_waits_for_a_receiver(loop: VirtualTimeLoop) -> None:
    """On an unbuffered channel a send completes only when a receiver takes the value."""

    async def main() -> None:
        ch: Chan[int] = Chan()
        sender = asyncio.create_task(ch.send(7))
        await asyncio.sleep(10)
        assert not sender.done(), "nobody received, so the send must still be waiting"
        assert len(ch) == 0, "an unbuffered channel never stores a value"
        assert await ch.recv() == 7
        await sender
        assert loop.time() == 10, "the hand-over itself takes no time"

    run(loop, main())


def test_unbuffered_recv_waits_for_a_sender(loop: VirtualTimeLoop) -> None:
    """On an unbuffered channel a receive waits until a sender arrives and gets its value."""

    async def main() -> None:
        ch: Chan[str] = Chan()
        receiver = asyncio.create_task(ch.recv())
        await asyncio.sleep(3)
        assert not receiver.done()
        await ch.send("hello")
        assert await receiver == "hello"
        assert loop.time() == 3

    run(loop, main())


def test_unbuffered_try_send_needs_a_waiting_receiver(loop: VirtualTimeLoop) -> None:
    """try_send on an unbuffered channel fails with nobody waiting and succeeds with a waiting receiver."""

    async def main() -> None:
        ch: Chan[int] = Chan()
        assert not ch.try_send(1)
        receiver = asyncio.create_task(ch.recv())
        await asyncio.sleep(0)
        assert ch.try_send(2)
        assert await receiver == 2

    run(loop, main())


def test_waiting_receivers_are_served_in_arrival_order(loop: VirtualTimeLoop) -> None:
    """Values sent on a channel go to waiting receivers first come, first served."""

    async def main() -> None:
        ch: Chan[int] = Chan()
        receivers = []
        for _ in range(3):
            receivers.append(asyncio.create_task(ch.recv()))
            await asyncio.sleep(0)
        for value in (10, 20, 30):
            assert ch.try_send(value)
        assert [await r for r in receivers] == [10, 20, 30]

    run(loop, main())


# -- Chan: buffered -------------------------------------------------------------


def test_buffered_channel_holds_up_to_its_capacity() -> None:
    """A channel of capacity 2 accepts two values without a receiver, refuses a third, and keeps FIFO order."""
    ch: Chan[int] = Chan(2)
    assert ch.try_send(1)
    assert ch.try_send(2)
    assert not ch.try_send(3)
    assert len(ch) == 2
    assert ch.try_recv() == (1, True)
    assert len(ch) == 1
    assert ch.try_recv() == (2, True)
    assert len(ch) == 0


def test_negative_capacity_is_rejected() -> None:
    """A channel cannot be created with a negative capacity."""
    with pytest.raises(ValueError):
        Chan(-1)


def test_send_on_full_buffer_waits_for_room(loop: VirtualTimeLoop) -> None:
    """A send on a full buffered channel waits until a receive frees a slot, then its value joins the queue."""

    async def main() -> None:
        ch: Chan[int] = Chan(1)
        await ch.send(1)
        sender = asyncio.create_task(ch.send(2))
        await asyncio.sleep(5)
        assert not sender.done()
        assert ch.try_recv() == (1, True)
        assert len(ch) == 1, "the waiting sender's value moves into the freed slot at once"
        await sender
        assert await ch.recv() == 2

    run(loop, main())


def test_try_recv_on_empty_channel_reports_not_ready() -> None:
    """try_recv on an empty open channel returns (None, False) without waiting."""
    assert Chan[int](0).try_recv() == (None, False)
    assert Chan[int](3).try_recv() == (None, False)


def test_len_counts_buffered_values_only() -> None:
    """len() is the number of values sitting in the buffer, like Go's len(ch)."""
    ch: Chan[str] = Chan(5)
    assert len(ch) == 0
    for expected, value in enumerate("abc", start=1):
        ch.try_send(value)
        assert len(ch) == expected
    ch.try_recv()
    assert len(ch) == 2


# -- Chan: close ------------------------------------------------------------------


def test_close_wakes_every_waiting_receiver(loop: VirtualTimeLoop) -> None:
    """Closing a channel wakes all waiting receivers at once, each with (None, False)."""

    async def main() -> None:
        ch: Chan[int] = Chan()
        receivers = [asyncio.create_task(ch.recv_ok()) for _ in range(4)]
        plain = asyncio.create_task(ch.recv())
        await asyncio.sleep(2)
        assert not any(r.done() for r in receivers)
        ch.close()
        assert [await r for r in receivers] == [(None, False)] * 4
        assert await plain is None
        assert loop.time() == 2

    run(loop, main())


def test_recv_ok_drains_buffer_then_reports_closed(loop: VirtualTimeLoop) -> None:
    """After close, buffered values are still delivered with ok=True, then every receive gives (None, False)."""

    async def main() -> None:
        ch: Chan[int] = Chan(2)
        ch.try_send(1)
        ch.try_send(2)
        ch.close()
        assert await ch.recv_ok() == (1, True)
        assert await ch.recv_ok() == (2, True)
        for _ in range(3):
            assert await ch.recv_ok() == (None, False)
        assert await ch.recv() is None
        assert ch.try_recv() == (None, True), "a receive on a closed channel happens, yielding the zero value"

    run(loop, main())


def test_send_on_closed_channel_raises(loop: VirtualTimeLoop) -> None:
    """Sending on a closed channel, with try_send or send, raises ChannelClosedError."""
    ch: Chan[int] = Chan(1)
    ch.close()
    with pytest.raises(ChannelClosedError):
        ch.try_send(1)
    with pytest.raises(ChannelClosedError):
        run(loop, ch.send(1))


def test_close_fails_a_waiting_sender(loop: VirtualTimeLoop) -> None:
    """A sender blocked on a channel gets ChannelClosedError when the channel is closed."""

    async def main() -> None:
        ch: Chan[int] = Chan()
        sender = asyncio.create_task(ch.send(1))
        await asyncio.sleep(1)
        ch.close()
        with pytest.raises(ChannelClosedError):
            await sender

    run(loop, main())


def test_close_twice_raises() -> None:
    """Closing an already closed channel raises ChannelClosedError, as Go panics."""
    ch: Chan[int] = Chan()
    ch.close()
    with pytest.raises(ChannelClosedError):
        ch.close()


def test_async_for_ends_when_channel_closes(loop: VirtualTimeLoop) -> None:
    """``async for`` yields every value sent and ends once the channel is closed."""

    async def main() -> list[int]:
        ch: Chan[int] = Chan()

        async def produce() -> None:
            for i in range(5):
                await asyncio.sleep(1)
                await ch.send(i)
            ch.close()

        producer = asyncio.create_task(produce())
        received = [value async for value in ch]
        await producer
        return received

    assert run(loop, main()) == [0, 1, 2, 3, 4]
    assert loop.time() == 5


# -- select -------------------------------------------------------------------------


def test_select_picks_the_ready_case(loop: VirtualTimeLoop) -> None:
    """select returns the one ready case, as the very object passed in, with its value."""

    async def main() -> None:
        a: Chan[str] = Chan(1)
        b: Chan[str] = Chan(1)
        b.try_send("x")
        case, value = await select([a, b])
        assert case is b
        assert value == "x"
        assert len(b) == 0, "the chosen receive is performed"

    run(loop, main())


def test_select_waits_for_the_first_case_to_become_ready(loop: VirtualTimeLoop) -> None:
    """A select with nothing ready waits and returns the case that becomes ready first."""

    async def main() -> None:
        a: Chan[int] = Chan()
        b: Chan[int] = Chan()

        async def later() -> None:
            await asyncio.sleep(4)
            await b.send(99)

        sender = asyncio.create_task(later())
        case, value = await select([a, b])
        assert (case, value) == (b, 99)
        assert loop.time() == 4
        await sender

    run(loop, main())


def test_select_without_rng_takes_first_ready_case(loop: VirtualTimeLoop) -> None:
    """Without an rng, select always performs the first ready case in list order."""

    async def main() -> None:
        a: Chan[int] = Chan(10)
        b: Chan[int] = Chan(10)
        for i in range(5):
            a.try_send(i)
            b.try_send(i)
        for _ in range(5):
            case, _ = await select([a, b])
            assert case is a

    run(loop, main())


def _choices(loop: VirtualTimeLoop, seed: int, trials: int) -> list[int]:
    """Indices of the case select picks when all three are ready, over ``trials`` selects."""

    async def main() -> list[int]:
        rng = random.Random(seed)
        chans: list[Chan[int]] = [Chan(1) for _ in range(3)]
        picks = []
        for _ in range(trials):
            for ch in chans:
                if len(ch) == 0:
                    ch.try_send(0)
            case, _ = await select(chans, rng)
            picks.append(chans.index(case))  # type: ignore[arg-type]
        return picks

    return run(loop, main())


def test_select_with_rng_spreads_over_ready_cases(loop: VirtualTimeLoop) -> None:
    """With an rng and several ready cases, select picks each of them at some point over many trials."""
    picks = _choices(loop, seed=1, trials=300)
    assert set(picks) == {0, 1, 2}
    assert all(picks.count(i) > 50 for i in range(3)), "the choice should be roughly uniform"


def test_select_choice_is_reproducible_from_seed(loop: VirtualTimeLoop) -> None:
    """The same seed gives the same sequence of choices; a different seed gives a different one."""
    first = _choices(loop, seed=42, trials=100)
    again = _choices(loop, seed=42, trials=100)
    other = _choices(loop, seed=43, trials=100)
    assert first == again
    assert first != other


def test_nil_cases_never_fire(loop: VirtualTimeLoop) -> None:
    """None and Send(None, v) cases are never chosen, however long the select waits."""

    async def main() -> None:
        timer = after(1000)
        nil_send: Send[int] = Send(None, 1)
        case, value = await select([None, nil_send, timer, None], random.Random(0))
        assert case is timer
        assert value == 1000
        case, value = await select([None, nil_send], default=True)
        assert (case, value) == (None, None)

    run(loop, main())


def test_select_on_only_nil_cases_refuses_to_block_forever(loop: VirtualTimeLoop) -> None:
    """A select whose cases are all nil and that has no default raises instead of hanging."""
    with pytest.raises(RuntimeError):
        run(loop, select([None, Send(None, 0)]))


def test_select_default_returns_none_none_when_nothing_ready(loop: VirtualTimeLoop) -> None:
    """With default=True and no ready case, select returns (None, None) at once and leaves no waiter behind."""

    async def main() -> None:
        a: Chan[int] = Chan()
        b: Chan[int] = Chan(1)
        b.try_send(1)  # full, so a send on it is not ready
        assert await select([a, Send(b, 2)], default=True) == (None, None)
        assert len(a._receivers) == 0
        assert len(b._senders) == 0
        assert loop.time() == 0

    run(loop, main())


def test_select_default_still_performs_a_ready_case(loop: VirtualTimeLoop) -> None:
    """default=True only applies when nothing is ready; a ready case is still performed."""

    async def main() -> None:
        a: Chan[int] = Chan(1)
        a.try_send(5)
        assert await select([a], default=True) == (a, 5)

    run(loop, main())


def test_select_leaves_no_waiter_on_channels_that_never_fire(loop: VirtualTimeLoop) -> None:
    """After 1000 selects that waited on a never-firing channel, that channel's waiter queues are empty."""

    async def main() -> None:
        never: Chan[int] = Chan()
        never_full: Chan[int] = Chan(1)
        never_full.try_send(0)  # full: a send on it never becomes ready
        ch: Chan[int] = Chan()

        async def feed() -> None:
            for i in range(1000):
                await asyncio.sleep(1)  # the select below is already waiting when this send comes
                await ch.send(i)

        feeder = asyncio.create_task(feed())
        for i in range(1000):
            case, value = await select([never, Send(never_full, 1), ch])
            assert (case, value) == (ch, i)
            assert len(never._receivers) == 0
        await feeder
        assert len(never._receivers) == 0
        assert len(never_full._senders) == 0
        assert len(ch._receivers) == 0
        assert len(ch._senders) == 0

    run(loop, main())


def test_cancelled_select_leaves_no_waiter(loop: VirtualTimeLoop) -> None:
    """A select that is cancelled while waiting removes its waiter from every channel it waited on."""

    async def main() -> None:
        never: Chan[int] = Chan()
        for _ in range(1000):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(select([never, Send(never, 1)]), timeout=1)
        assert len(never._receivers) == 0
        assert len(never._senders) == 0
        assert loop.time() == 1000

    run(loop, main())


def test_cancelled_receiver_does_not_swallow_a_later_value(loop: VirtualTimeLoop) -> None:
    """A value sent right after a waiting receiver is cancelled goes to the next receiver, not the cancelled one."""

    async def main() -> None:
        ch: Chan[str] = Chan()
        first = asyncio.create_task(ch.recv())
        await asyncio.sleep(0)
        second = asyncio.create_task(ch.recv())
        await asyncio.sleep(0)
        first.cancel()  # no yield in between: first has not even run its cleanup yet
        assert ch.try_send("v")
        assert await second == "v"
        with pytest.raises(asyncio.CancelledError):
            await first

    run(loop, main())


def test_cancelled_sole_receiver_leaves_value_for_later(loop: VirtualTimeLoop) -> None:
    """With the only receiver cancelled, an unbuffered try_send fails and a buffered one stores the value."""

    async def main() -> None:
        unbuffered: Chan[int] = Chan()
        buffered: Chan[int] = Chan(1)
        waiter = asyncio.create_task(select([unbuffered, buffered]))
        await asyncio.sleep(1)
        waiter.cancel()
        assert not unbuffered.try_send(1), "nobody is left to take the value"
        assert buffered.try_send(2)
        assert len(buffered) == 1, "the value stays in the buffer for the next receiver"
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await buffered.recv() == 2

    run(loop, main())


def test_cancelled_sender_delivers_nothing(loop: VirtualTimeLoop) -> None:
    """A value offered by a sender that was cancelled while waiting is never received."""

    async def main() -> None:
        ch: Chan[int] = Chan()
        sender = asyncio.create_task(ch.send(1))
        await asyncio.sleep(1)
        sender.cancel()
        assert ch.try_recv() == (None, False)
        with pytest.raises(asyncio.CancelledError):
            await sender

    run(loop, main())


def test_select_send_case_into_buffer(loop: VirtualTimeLoop) -> None:
    """A ready Send case is performed: the value lands in the channel and select returns (the Send, None)."""

    async def main() -> None:
        ch: Chan[int] = Chan(1)
        other: Chan[int] = Chan()
        send = Send(ch, 5)
        case, value = await select([other, send])
        assert case is send
        assert value is None
        assert ch.try_recv() == (5, True)

    run(loop, main())


def test_select_send_case_waits_for_receiver(loop: VirtualTimeLoop) -> None:
    """An unbuffered Send case waits in select until a receiver takes its value."""

    async def main() -> None:
        ch: Chan[str] = Chan()
        never: Chan[str] = Chan()
        send = Send(ch, "hi")
        selecting = asyncio.create_task(select([never, send]))
        await asyncio.sleep(2)
        assert not selecting.done()
        assert await ch.recv() == "hi"
        assert await selecting == (send, None)
        assert len(never._receivers) == 0

    run(loop, main())


def test_select_mixes_send_and_receive_cases(loop: VirtualTimeLoop) -> None:
    """In a select with a blocked Send and a receive, whichever counterpart arrives first decides the case."""

    async def main() -> None:
        out: Chan[int] = Chan()
        inbox: Chan[int] = Chan()

        async def deliver() -> None:
            await asyncio.sleep(1)
            await inbox.send(3)

        deliverer = asyncio.create_task(deliver())
        case, value = await select([Send(out, 1), inbox])
        assert (case, value) == (inbox, 3)
        await deliverer
        assert len(out._senders) == 0, "the losing Send must not stay registered"
        assert out.try_recv() == (None, False)

    run(loop, main())


def test_select_send_on_closed_channel_raises(loop: VirtualTimeLoop) -> None:
    """A Send case on a closed channel raises ChannelClosedError from select."""
    ch: Chan[int] = Chan(1)
    ch.close()
    with pytest.raises(ChannelClosedError):
        run(loop, select([Send(ch, 1)]))


def test_select_wakes_on_close_with_none(loop: VirtualTimeLoop) -> None:
    """A select waiting to receive on a channel that gets closed returns that channel with value None."""

    async def main() -> None:
        ch: Chan[int] = Chan()
        selecting = asyncio.create_task(select([ch, None]))
        await asyncio.sleep(1)
        ch.close()
        assert await selecting == (ch, None)

    run(loop, main())


# -- a slow consumer -----------------------------------------------------------


def test_a_task_with_a_select_cost_pays_it_for_every_message(loop: VirtualTimeLoop) -> None:
    """set_select_cost: each select waits that long first, so a backlog drains one message per cost."""
    ch: Chan[int] = Chan(8)
    for value in range(4):
        ch.send_nowait(value)
    times: list[float] = []

    async def consume() -> None:
        for _ in range(4):
            await select([ch])
            times.append(loop.time())

    async def main() -> None:
        task = asyncio.ensure_future(consume())
        set_select_cost(task, 0.5)
        await task

    run(loop, main())
    assert times == [0.5, 1.0, 1.5, 2.0]


def test_a_select_cost_of_zero_or_a_finished_task_is_forgotten(loop: VirtualTimeLoop) -> None:
    """Setting the cost to 0 removes it; a task that has finished is never kept."""
    ch: Chan[int] = Chan(8)
    for value in range(2):
        ch.send_nowait(value)

    async def consume() -> float:
        await select([ch])
        await select([ch])
        return loop.time()

    async def main() -> float:
        task = asyncio.ensure_future(consume())
        set_select_cost(task, 3.0)
        set_select_cost(task, 0)
        return await task

    assert run(loop, main()) == 0.0
    done = loop.create_task(asyncio.sleep(0))
    run(loop, done)
    set_select_cost(done, 1.0)
    assert done not in channels._SELECT_COSTS
