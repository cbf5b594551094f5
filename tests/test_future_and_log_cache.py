"""Futures (future_test.go) and the LogCache (log_cache_test.go)."""

from __future__ import annotations

import asyncio

import pytest

from raft.errors import ErrLogNotFound, ErrRaftShutdown, RaftError, StoreError
from raft.future import DeferError, ErrorFuture, LogFuture
from raft.inmem_store import InmemStore
from raft.log import Log, MonotonicLogStore
from raft.log_cache import LogCache
from raft.runtime.channels import Chan
from raft.runtime.virtual_loop import VirtualTimeLoop


@pytest.fixture
def loop() -> VirtualTimeLoop:
    loop = VirtualTimeLoop()
    yield loop  # type: ignore[misc]
    loop.close()


def test_defer_future_success(loop: VirtualTimeLoop) -> None:
    """A future answered with success reports None, every time it is asked."""
    f = DeferError()
    f.respond(None)
    assert f.done
    assert loop.run_until_complete(f.error()) is None
    assert loop.run_until_complete(f.error()) is None
    assert f.error_now() is None


def test_defer_future_error(loop: VirtualTimeLoop) -> None:
    """A future answered with an error reports that same error object, every time."""
    want = RaftError("x")
    f = DeferError()
    f.respond(want)
    assert loop.run_until_complete(f.error()) is want
    assert loop.run_until_complete(f.error()) is want


def test_defer_future_concurrent(loop: VirtualTimeLoop) -> None:
    """A caller already waiting wakes when another task answers."""
    want = RaftError("x")
    f = DeferError()

    async def answer_later() -> None:
        await asyncio.sleep(1)
        f.respond(want)

    async def wait() -> RaftError | None:
        loop.create_task(answer_later())
        assert not f.done
        return await f.error()

    assert loop.run_until_complete(wait()) is want
    assert loop.time() == 1


def test_only_the_first_answer_counts(loop: VirtualTimeLoop) -> None:
    """respond() twice keeps the first answer, as Go's deferError does."""
    f = DeferError()
    f.respond(None)
    f.respond(RaftError("late"))
    assert loop.run_until_complete(f.error()) is None


def test_shutdown_answers_a_waiting_future(loop: VirtualTimeLoop) -> None:
    """A future whose node shuts down before answering reports ErrRaftShutdown instead of hanging."""
    shutdown: Chan[bool] = Chan(0)
    f = LogFuture(Log(), shutdown)

    async def close_soon() -> None:
        await asyncio.sleep(0.5)
        shutdown.close()

    loop.create_task(close_soon())
    assert isinstance(loop.run_until_complete(f.error()), ErrRaftShutdown)
    assert f.done and isinstance(f.error_now(), ErrRaftShutdown)


def test_error_now_refuses_an_unanswered_future() -> None:
    """error_now() on a future without an answer is a usage error, not a silent None."""
    with pytest.raises(RuntimeError, match="no answer yet"):
        DeferError().error_now()


def test_error_future_is_answered_from_the_start(loop: VirtualTimeLoop) -> None:
    """An ErrorFuture is done, reports its error, and has index 0 and no response."""
    f = ErrorFuture(ErrRaftShutdown())
    assert f.done and isinstance(loop.run_until_complete(f.error()), ErrRaftShutdown)
    assert f.index() == 0 and f.response() is None


def test_log_cache() -> None:
    """The cache reads through, writes through, serves recent entries, and forgets on delete_range."""
    store = InmemStore()
    cache = LogCache(16, store)
    for i in range(32):
        store.store_log(Log(index=i + 1))
    assert cache.first_index() == 1
    assert cache.last_index() == 32
    assert cache.get_log(1).index == 1  # a miss, read through to the store
    cache.store_logs([Log(index=33), Log(index=34)])
    assert cache.last_index() == 34
    assert store.get_log(33).index == 33 and store.get_log(34).index == 34  # written through
    store.delete_range(33, 34)
    assert cache.get_log(33).index == 33  # still served from the cache
    assert cache.get_log(34).index == 34
    cache.delete_range(33, 34)
    with pytest.raises(ErrLogNotFound):
        cache.get_log(33)
    with pytest.raises(ErrLogNotFound):
        cache.get_log(34)


def test_log_cache_returns_copies() -> None:
    """Changing an entry read from the cache does not change the cached one."""
    cache = LogCache(4, InmemStore())
    cache.store_log(Log(index=1, data=b"a"))
    entry = cache.get_log(1)
    entry.data = b"changed"
    assert cache.get_log(1).data == b"a"


class ErrorStore(InmemStore):
    """An InmemStore whose next ``fail_max`` writes fail."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_max = 0

    def store_logs(self, logs: list[Log]) -> None:
        if self.fail_max > 0:
            self.fail_max -= 1
            raise StoreError("some error")
        super().store_logs(logs)


def test_log_cache_with_backend_store_error() -> None:
    """Entries the store refused are not cached: reading them gives ErrLogNotFound, not ghost data."""
    store = ErrorStore()
    cache = LogCache(16, store)
    for i in range(4):
        cache.store_log(Log(index=i + 1))
    store.fail_max = 1
    with pytest.raises(StoreError, match="unable to store logs within log store"):
        cache.store_log(Log(index=5))
    with pytest.raises(ErrLogNotFound):
        cache.get_log(5)


def test_log_cache_passes_is_monotonic_through() -> None:
    """LogCache reports the wrapped store's is_monotonic, and False for a plain store (TestRaft_LogStoreIsMonotonic)."""

    class Monotonic(InmemStore):
        def is_monotonic(self) -> bool:
            return True

    assert not isinstance(InmemStore(), MonotonicLogStore)
    assert LogCache(4, InmemStore()).is_monotonic() is False
    assert LogCache(4, Monotonic()).is_monotonic() is True


def test_log_cache_rejects_a_zero_capacity() -> None:
    """A cache needs at least one slot."""
    with pytest.raises(ValueError, match="capacity must be positive"):
        LogCache(0, InmemStore())
