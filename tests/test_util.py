"""Small helpers, ported from hashicorp's util_test.go (raft/util.py).

Go's TestMsgpackEncodeTime, TestNewSeed, TestMin and TestMax have no
counterpart here: the Python code has no msgpack time encoding, no seed
helper, and uses the built-in ``min``/``max``.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator

import pytest

from raft.runtime import Chan, VirtualTimeLoop, after, select
from raft.util import (
    async_notify_bool,
    async_notify_ch,
    backoff,
    capped_exponential_backoff,
    drain_notify_ch,
    generate_uuid,
    override_notify_bool,
    random_timeout,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MS = 0.001


@pytest.fixture
def loop() -> Iterator[VirtualTimeLoop]:
    """A fresh virtual-time loop, closed after the test."""
    loop = VirtualTimeLoop()
    yield loop
    loop.close()


# -- random_timeout ------------------------------------------------------------------


def test_random_timeout_fires_within_d_and_2d(loop: VirtualTimeLoop) -> None:
    """random_timeout(d) fires no earlier than d and strictly before 2d after it was created."""
    d = 0.5

    async def one(seed: int) -> tuple[float, float]:
        ch = random_timeout(d, random.Random(seed))
        assert ch is not None
        value = await ch.recv()
        assert value is not None
        return value, loop.time()

    async def main() -> list[tuple[float, float]]:
        return await asyncio.gather(*(one(seed) for seed in range(200)))

    fired = loop.run_until_complete(main())
    for value, now in fired:
        assert d <= now < 2 * d
        assert value == now, "the channel carries the time it fired at"
    assert len({now for _, now in fired}) > 150, "different seeds give different timeouts"


def test_random_timeout_fires_before_a_longer_timer(loop: VirtualTimeLoop) -> None:
    """Like Go's TestRandomTimeout: a 1ms random timeout wins a select against a 3ms timer, and never before 1ms."""

    async def main() -> None:
        rng = random.Random(3)
        for _ in range(50):
            start = loop.time()
            timeout = random_timeout(1 * MS, rng)
            guard = after(3 * MS)
            case, _ = await select([timeout, guard])
            assert case is timeout
            assert loop.time() - start >= 1 * MS * (1 - 1e-9)

    loop.run_until_complete(main())


def test_random_timeout_is_reproducible_from_seed(loop: VirtualTimeLoop) -> None:
    """Two generators with the same seed give timeouts that fire at the same instant."""

    async def fire_time(seed: int) -> float | None:
        ch = random_timeout(2.0, random.Random(seed))
        assert ch is not None
        return await ch.recv()

    async def main() -> tuple[float | None, float | None, float | None]:
        results = await asyncio.gather(fire_time(11), fire_time(11), fire_time(12))
        return results[0], results[1], results[2]

    first, again, other = loop.run_until_complete(main())
    assert first == again
    assert first != other


def test_random_timeout_zero_is_nil() -> None:
    """random_timeout(0) returns None, Go's nil channel that never fires."""
    assert random_timeout(0, random.Random(0)) is None


def test_random_timeout_zero_never_fires_in_select(loop: VirtualTimeLoop) -> None:
    """The None from random_timeout(0) can sit in a select and is never chosen."""

    async def main() -> None:
        nil = random_timeout(0, random.Random(0))
        timer = after(60)
        case, _ = await select([nil, timer])
        assert case is timer

    loop.run_until_complete(main())


# -- generate_uuid ----------------------------------------------------------------------


def test_generate_uuid_format_and_uniqueness() -> None:
    """generate_uuid returns 8-4-4-4-12 lowercase hex strings that differ from one call to the next."""
    rng = random.Random(0)
    ids = [generate_uuid(rng) for _ in range(100)]
    for uuid in ids:
        assert UUID.fullmatch(uuid), uuid
    assert len(set(ids)) == len(ids)


def test_generate_uuid_keeps_leading_zeros() -> None:
    """Each field keeps its full width even when the random bits start with zeros."""

    class ZeroRandom(random.Random):
        def getrandbits(self, k: int) -> int:
            return 1

    assert generate_uuid(ZeroRandom()) == "00000000-0000-0000-0000-000000000001"


def test_generate_uuid_is_reproducible_from_seed() -> None:
    """The same seed gives the same sequence of UUIDs; another seed gives different ones."""
    assert generate_uuid(random.Random(7)) == generate_uuid(random.Random(7))
    rng_a, rng_b = random.Random(8), random.Random(8)
    assert [generate_uuid(rng_a) for _ in range(10)] == [generate_uuid(rng_b) for _ in range(10)]
    assert generate_uuid(random.Random(8)) != generate_uuid(random.Random(9))


# -- backoff -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "round_", "limit", "expected"),
    [
        (10 * MS, 1, 8, 10 * MS),
        (20 * MS, 2, 8, 20 * MS),
        (10 * MS, 3, 8, 20 * MS),
        (10 * MS, 8, 8, 640 * MS),
        (10 * MS, 9, 8, 640 * MS),
        (10 * MS, 0, 8, 10 * MS),
    ],
)
def test_backoff(base: float, round_: int, limit: int, expected: float) -> None:
    """backoff keeps the base for rounds up to 2, then doubles per round up to the limit (Go's TestBackoff)."""
    assert backoff(base, round_, limit) == expected


@pytest.mark.parametrize(
    ("base", "round_", "limit", "cap", "expected"),
    [
        (10 * MS, 1, 8, 1.0, 10 * MS),
        (20 * MS, 2, 8, 1.0, 20 * MS),
        (10 * MS, 8, 8, 1.0, 640 * MS),
        (10 * MS, 9, 8, 1.0, 640 * MS),
        (10 * MS, 8, 8, 100 * MS, 100 * MS),
        (10 * MS, 9, 8, 100 * MS, 100 * MS),
        (10 * MS, 5, 8, 100 * MS, 80 * MS),
        (10 * MS, 1, 8, 5 * MS, 5 * MS),
        (10 * MS, 8, 8, 640 * MS, 640 * MS),
    ],
)
def test_capped_exponential_backoff(base: float, round_: int, limit: int, cap: float, expected: float) -> None:
    """capped_exponential_backoff equals backoff until that would exceed the cap, and the cap from then on."""
    assert capped_exponential_backoff(base, round_, limit, cap) == expected


def test_capped_backoff_never_exceeds_cap_or_uncapped_backoff() -> None:
    """For every round, the capped backoff is min(backoff, cap)."""
    for cap in (5 * MS, 30 * MS, 100 * MS, 10.0):
        for round_ in range(12):
            assert capped_exponential_backoff(10 * MS, round_, 8, cap) == min(backoff(10 * MS, round_, 8), cap)


# -- notify channels ------------------------------------------------------------------------


def test_override_notify_bool_keeps_only_newest_value() -> None:
    """override_notify_bool never blocks and leaves only the last value in the one-slot channel (Go's test)."""
    ch: Chan[bool] = Chan(1)
    assert ch.try_recv() == (None, False)

    override_notify_bool(ch, False)
    assert ch.try_recv() == (False, True)

    for _ in range(4):
        override_notify_bool(ch, False)
    override_notify_bool(ch, True)
    assert ch.try_recv() == (True, True)
    assert ch.try_recv() == (None, False)


def test_override_notify_bool_requires_one_slot() -> None:
    """override_notify_bool refuses a channel that does not have exactly one slot."""
    with pytest.raises(AssertionError):
        override_notify_bool(Chan(2), True)


def test_async_notify_ch_coalesces_pokes() -> None:
    """Many async_notify_ch pokes on a one-slot channel never block and leave a single pending poke."""
    ch: Chan[bool] = Chan(1)
    for _ in range(5):
        async_notify_ch(ch)
    assert len(ch) == 1
    assert drain_notify_ch(ch)
    assert not drain_notify_ch(ch)


def test_drain_notify_ch_on_empty_channel() -> None:
    """drain_notify_ch returns False at once when nothing is pending."""
    assert not drain_notify_ch(Chan(1))


def test_async_notify_ch_without_receiver_on_unbuffered_channel_is_dropped() -> None:
    """async_notify_ch on an unbuffered channel with nobody waiting does nothing and does not block."""
    ch: Chan[bool] = Chan()
    async_notify_ch(ch)
    assert ch.try_recv() == (None, False)


def test_async_notify_ch_reaches_a_waiting_receiver(loop: VirtualTimeLoop) -> None:
    """async_notify_ch wakes a receiver that is already waiting on an unbuffered channel."""

    async def main() -> None:
        ch: Chan[bool] = Chan()
        receiver = asyncio.create_task(ch.recv())
        await asyncio.sleep(0)
        async_notify_ch(ch)
        assert await receiver is True

    loop.run_until_complete(main())


def test_async_notify_bool_keeps_first_value_when_full() -> None:
    """async_notify_bool drops a value when the channel is full, so the unread older value stays."""
    ch: Chan[bool] = Chan(1)
    async_notify_bool(ch, True)
    async_notify_bool(ch, False)
    assert ch.try_recv() == (True, True)
    assert ch.try_recv() == (None, False)
