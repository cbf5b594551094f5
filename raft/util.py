"""Small helpers used across the library.

Mirrors: util.go.

Randomness always comes from a ``random.Random`` that the caller passes in:
each node owns one, seeded from the simulation seed, so that a run can be
replayed exactly. Nothing here reads the global ``random`` module or the clock.
"""

from __future__ import annotations

import random

from raft.runtime.channels import Chan
from raft.runtime.timers import after


def random_timeout(min_value: float, rng: random.Random) -> Chan[float] | None:
    """A timer channel that fires after a random delay in [min_value, 2*min_value).

    Paper:   §5.2 ("election timeouts are chosen randomly from a fixed interval").
    Mirrors: util.go randomTimeout.
    Differs: takes the node's seeded generator instead of Go's global one.

    Random delays make it unlikely that two followers time out together and
    split the vote. Returns ``None`` (Go's nil channel, which never fires) when
    ``min_value`` is 0.
    """
    if min_value <= 0:
        return None
    return after(random_delay(min_value, rng))


def random_delay(min_value: float, rng: random.Random) -> float:
    """The delay ``random_timeout`` waits: uniform in [min_value, 2*min_value)."""
    return min_value + rng.random() * min_value


def generate_uuid(rng: random.Random) -> str:
    """A random UUID-shaped string (Mirrors: generateUUID), reproducible from ``rng``."""
    raw = rng.getrandbits(128).to_bytes(16, "big").hex()
    return f"{raw[0:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


def async_notify_ch(ch: Chan[bool]) -> None:
    """Poke ``ch`` without waiting; a poke already pending is enough (Mirrors: asyncNotifyCh)."""
    ch.try_send(True)


def drain_notify_ch(ch: Chan[bool]) -> bool:
    """Take a pending poke off ``ch``, if any (Mirrors: drainNotifyCh)."""
    _, received = ch.try_recv()
    return received


def async_notify_bool(ch: Chan[bool], value: bool) -> None:
    """Send ``value`` on ``ch`` unless that would wait (Mirrors: asyncNotifyBool)."""
    ch.try_send(value)


def override_notify_bool(ch: Chan[bool], value: bool) -> None:
    """Put ``value`` in the one-slot channel ``ch``, replacing an unread value.

    Mirrors: util.go overrideNotifyBool.

    Used for ``leader_ch``: a reader that falls behind should see the newest
    leadership state, not a stale one.
    """
    assert ch.capacity == 1, "override_notify_bool needs a channel with one slot"
    if not ch.try_send(value):
        ch.try_recv()
        sent = ch.try_send(value)
        assert sent, "override_notify_bool: channel refilled concurrently"


def backoff(base: float, round_: int, limit: int) -> float:
    """Exponential backoff: ``base`` for the first two rounds, then doubling up to ``limit``.

    Mirrors: util.go backoff.
    """
    power = min(round_, limit)
    while power > 2:
        base *= 2
        power -= 1
    return base


def capped_exponential_backoff(base: float, round_: int, limit: int, cap: float) -> float:
    """Like ``backoff`` but never longer than ``cap`` (Mirrors: cappedExponentialBackoff)."""
    power = min(round_, limit)
    while power > 2:
        if base > cap:
            return cap
        base *= 2
        power -= 1
    return min(base, cap)
