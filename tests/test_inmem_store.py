"""Tests for raft/inmem_store.py and raft/log.py (oldest_log).

``LogStoreConformance`` and ``StableStoreConformance`` state what Raft needs
from any store; they are not collected on their own. A new store gets the
whole suite by subclassing them and providing ``make_store``::

    class TestSQLiteStore(LogStoreConformance, StableStoreConformance):
        def make_store(self, tmp_path):
            return SQLiteStore(tmp_path / "raft.db")

``TestInmemStore`` below is the suite run against ``InmemStore``. The
delete_range cases follow the bookkeeping of hashicorp's InmemStore
(inmem_store.go): deleting a prefix moves the first index, deleting a suffix
moves the last index, deleting everything resets both to 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raft.errors import ErrLogNotFound, StoreError
from raft.inmem_store import InmemStore
from raft.log import Log, LogStore, LogType, oldest_log
from raft.stable import StableStore


def entry(index: int, term: int = 1, **changes: Any) -> Log:
    """A command entry whose data names its index, so mix-ups show."""
    fields: dict[str, Any] = {"data": f"cmd-{index}".encode(), **changes}
    return Log(index=index, term=term, **fields)


def entries(first: int, last: int, term: int = 1) -> list[Log]:
    return [entry(i, term) for i in range(first, last + 1)]


class LogStoreConformance:
    """What Raft relies on from every LogStore. Subclasses provide ``make_store``."""

    def make_store(self, tmp_path: Path) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        return self.make_store(tmp_path)

    def filled(self, store: Any, first: int = 1, last: int = 10) -> Any:
        store.store_logs(entries(first, last))
        return store

    def present(self, store: Any, first: int, last: int) -> list[int]:
        """The indexes in [first, last] that get_log finds."""
        found = []
        for index in range(first, last + 1):
            try:
                store.get_log(index)
            except ErrLogNotFound:
                continue
            found.append(index)
        return found

    # -- shape and empty store ---------------------------------------------------

    def test_log_store_satisfies_protocol(self, store: Any) -> None:
        """The store has every method of the LogStore protocol."""
        assert isinstance(store, LogStore)

    def test_empty_store_indexes_are_zero(self, store: Any) -> None:
        """An empty store reports 0 as both its first and last index."""
        assert store.first_index() == 0
        assert store.last_index() == 0

    def test_empty_store_get_log_not_found(self, store: Any) -> None:
        """get_log on an empty store raises ErrLogNotFound, also for index 0."""
        for index in (0, 1, 100):
            with pytest.raises(ErrLogNotFound):
                store.get_log(index)

    # -- storing and reading -------------------------------------------------------

    def test_store_log_then_get_log(self, store: Any) -> None:
        """A single stored entry is returned by get_log with every field intact."""
        log = Log(index=1, term=3, type=LogType.LogConfiguration, data=b"\x00\x01cfg", extensions=b"ext",
                  appended_at=12.5)
        store.store_log(log)
        assert store.get_log(1) == log
        assert store.first_index() == 1
        assert store.last_index() == 1

    def test_store_logs_batch(self, store: Any) -> None:
        """store_logs stores every entry of a batch and moves the first and last index accordingly."""
        batch = [entry(1, 1), entry(2, 1, type=LogType.LogNoop, data=b""), entry(3, 2, type=LogType.LogBarrier)]
        store.store_logs(batch)
        assert store.first_index() == 1
        assert store.last_index() == 3
        assert [store.get_log(i) for i in (1, 2, 3)] == batch

    def test_store_logs_in_several_batches(self, store: Any) -> None:
        """Appending batch after batch extends the last index and keeps the first."""
        store.store_logs(entries(1, 5))
        store.store_logs(entries(6, 10, term=2))
        assert (store.first_index(), store.last_index()) == (1, 10)
        assert store.get_log(6).term == 2

    def test_store_logs_empty_batch(self, store: Any) -> None:
        """Storing an empty batch changes nothing."""
        store.store_logs([])
        assert (store.first_index(), store.last_index()) == (0, 0)

    def test_log_may_start_after_one(self, store: Any) -> None:
        """After a snapshot a log can start at any index, and first_index reports it."""
        store.store_logs([entry(1234, 1), entry(1235, 1), entry(1236, 2)])
        assert (store.first_index(), store.last_index()) == (1234, 1236)
        with pytest.raises(ErrLogNotFound):
            store.get_log(1233)

    def test_get_log_missing_index(self, store: Any) -> None:
        """get_log raises ErrLogNotFound for an index before, after or between stored entries."""
        self.filled(store, 1, 5)
        store.store_logs(entries(8, 9))  # a gap at 6 and 7
        for index in (0, 6, 7, 10, 1000):
            with pytest.raises(ErrLogNotFound):
                store.get_log(index)
        assert self.present(store, 0, 12) == [1, 2, 3, 4, 5, 8, 9]

    def test_store_log_overwrites_same_index(self, store: Any) -> None:
        """Storing an entry at an index that exists replaces the old entry."""
        self.filled(store, 1, 3)
        store.store_log(entry(3, 5, data=b"new"))
        assert store.get_log(3) == entry(3, 5, data=b"new")
        assert (store.first_index(), store.last_index()) == (1, 3)

    # -- delete_range --------------------------------------------------------------

    def test_delete_range_prefix(self, store: Any) -> None:
        """Deleting a prefix (log compaction) moves the first index past it and keeps the last."""
        self.filled(store)
        store.delete_range(1, 3)
        assert (store.first_index(), store.last_index()) == (4, 10)
        assert self.present(store, 1, 10) == list(range(4, 11))

    def test_delete_range_prefix_twice(self, store: Any) -> None:
        """Two compactions in a row leave the first index after the second one."""
        self.filled(store)
        store.delete_range(1, 3)
        store.delete_range(4, 6)
        assert (store.first_index(), store.last_index()) == (7, 10)
        assert self.present(store, 1, 10) == [7, 8, 9, 10]

    def test_delete_range_prefix_from_zero(self, store: Any) -> None:
        """A prefix deletion that starts below the first index behaves like one that starts at it."""
        self.filled(store, 5, 10)
        store.delete_range(0, 6)
        assert (store.first_index(), store.last_index()) == (7, 10)

    def test_delete_range_suffix(self, store: Any) -> None:
        """Deleting a suffix (a conflicting tail) moves the last index before it and keeps the first."""
        self.filled(store)
        store.delete_range(8, 10)
        assert (store.first_index(), store.last_index()) == (1, 7)
        assert self.present(store, 1, 10) == list(range(1, 8))

    def test_delete_range_suffix_beyond_last(self, store: Any) -> None:
        """A suffix deletion that runs past the last index behaves like one that ends at it."""
        self.filled(store)
        store.delete_range(6, 1_000)
        assert (store.first_index(), store.last_index()) == (1, 5)

    def test_delete_range_suffix_then_append(self, store: Any) -> None:
        """After truncating a tail, new entries at the freed indexes are stored and readable."""
        self.filled(store)
        store.delete_range(8, 10)
        store.store_logs(entries(8, 9, term=2))
        assert (store.first_index(), store.last_index()) == (1, 9)
        assert store.get_log(8).term == 2
        with pytest.raises(ErrLogNotFound):
            store.get_log(10)

    def test_delete_range_everything(self, store: Any) -> None:
        """Deleting exactly every entry leaves an empty store with indexes 0 and 0."""
        self.filled(store)
        store.delete_range(1, 10)
        assert (store.first_index(), store.last_index()) == (0, 0)
        assert self.present(store, 0, 11) == []

    def test_delete_range_wider_than_store(self, store: Any) -> None:
        """A range that covers more than the store also empties it."""
        self.filled(store, 5, 10)
        store.delete_range(0, 100)
        assert (store.first_index(), store.last_index()) == (0, 0)

    def test_delete_everything_then_store(self, store: Any) -> None:
        """An emptied store takes new entries at any index, as after installing a snapshot."""
        self.filled(store)
        store.delete_range(1, 10)
        store.store_logs(entries(50, 52))
        assert (store.first_index(), store.last_index()) == (50, 52)
        assert store.get_log(50) == entry(50)

    def test_delete_range_middle(self, store: Any) -> None:
        """Deleting from the middle removes those entries and leaves the first and last index alone."""
        self.filled(store)
        store.delete_range(4, 6)
        assert (store.first_index(), store.last_index()) == (1, 10)
        assert self.present(store, 1, 10) == [1, 2, 3, 7, 8, 9, 10]

    def test_delete_range_single_entry(self, store: Any) -> None:
        """Deleting the range [i, i] removes exactly entry i."""
        self.filled(store)
        store.delete_range(10, 10)
        assert (store.first_index(), store.last_index()) == (1, 9)
        store.delete_range(1, 1)
        assert (store.first_index(), store.last_index()) == (2, 9)

    def test_delete_range_on_empty_store(self, store: Any) -> None:
        """Deleting from an empty store leaves it empty."""
        store.delete_range(1, 5)
        assert (store.first_index(), store.last_index()) == (0, 0)

    # -- copies ----------------------------------------------------------------------

    def test_returned_entry_is_a_copy(self, store: Any) -> None:
        """Mutating an entry returned by get_log does not change the stored entry."""
        store.store_log(entry(1, 1))
        got = store.get_log(1)
        got.term = 99
        got.data = b"changed"
        got.type = LogType.LogNoop
        assert store.get_log(1) == entry(1, 1)
        assert store.get_log(1) is not store.get_log(1)

    def test_stored_entry_is_a_copy(self, store: Any) -> None:
        """Mutating an entry after passing it to store_log or store_logs does not change the stored entry."""
        single = entry(1, 1)
        batch = entries(2, 3)
        store.store_log(single)
        store.store_logs(batch)
        single.term = 42
        batch[0].data = b"changed"
        batch.append(entry(4))
        assert store.get_log(1) == entry(1, 1)
        assert store.get_log(2) == entry(2, 1)
        assert store.last_index() == 3

    # -- oldest_log (log.go) -------------------------------------------------------------

    def test_oldest_log_empty(self, store: Any) -> None:
        """oldest_log of an empty store raises ErrLogNotFound."""
        with pytest.raises(ErrLogNotFound):
            oldest_log(store)

    def test_oldest_log_simple(self, store: Any) -> None:
        """oldest_log returns the entry at the first index."""
        store.store_logs([entry(1234, 1), entry(1235, 1), entry(1236, 2)])
        assert oldest_log(store) == entry(1234, 1)

    def test_oldest_log_after_compaction(self, store: Any) -> None:
        """After a prefix is deleted, oldest_log returns the new first entry."""
        self.filled(store)
        store.delete_range(1, 4)
        assert oldest_log(store).index == 5


class StableStoreConformance:
    """What Raft relies on from every StableStore. Subclasses provide ``make_store``."""

    def make_store(self, tmp_path: Path) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def stable(self, tmp_path: Path) -> Any:
        return self.make_store(tmp_path)

    def test_stable_store_satisfies_protocol(self, stable: Any) -> None:
        """The store has every method of the StableStore protocol."""
        assert isinstance(stable, StableStore)

    def test_get_missing_key_is_none(self, stable: Any) -> None:
        """get of a key that was never set returns None."""
        assert stable.get(b"LastVoteCand") is None

    def test_get_uint64_missing_key_is_zero(self, stable: Any) -> None:
        """get_uint64 of a key that was never set returns 0."""
        assert stable.get_uint64(b"CurrentTerm") == 0

    def test_set_then_get(self, stable: Any) -> None:
        """get returns the bytes last set under a key, and keys are independent."""
        stable.set(b"LastVoteCand", b"n1")
        stable.set(b"other", b"\x00\xff")
        assert stable.get(b"LastVoteCand") == b"n1"
        stable.set(b"LastVoteCand", b"n2")
        assert stable.get(b"LastVoteCand") == b"n2"
        assert stable.get(b"other") == b"\x00\xff"

    def test_set_empty_value(self, stable: Any) -> None:
        """An empty value is stored as empty bytes, distinct from a missing key."""
        stable.set(b"k", b"")
        assert stable.get(b"k") == b""

    def test_set_value_is_copied(self, stable: Any) -> None:
        """Changing a bytearray after passing it to set does not change the stored value."""
        value = bytearray(b"n1")
        stable.set(b"LastVoteCand", value)
        value[:] = b"zz"
        assert stable.get(b"LastVoteCand") == b"n1"

    def test_set_uint64_then_get_uint64(self, stable: Any) -> None:
        """get_uint64 returns the integer last set under a key, up to 2**64 - 1."""
        stable.set_uint64(b"CurrentTerm", 7)
        assert stable.get_uint64(b"CurrentTerm") == 7
        stable.set_uint64(b"CurrentTerm", 8)
        assert stable.get_uint64(b"CurrentTerm") == 8
        stable.set_uint64(b"LastVoteTerm", 2**64 - 1)
        assert stable.get_uint64(b"LastVoteTerm") == 2**64 - 1
        assert stable.get_uint64(b"CurrentTerm") == 8


class TestInmemStore(LogStoreConformance, StableStoreConformance):
    """The conformance suites run against InmemStore."""

    def make_store(self, tmp_path: Path) -> InmemStore:
        return InmemStore()


# -- InmemStore bookkeeping that mirrors inmem_store.go exactly ------------------------------
#
# These pin down hashicorp's arithmetic for inputs Raft never produces
# (out-of-order stores, deletions of absent ranges). A different store need
# not reproduce them, so they are not part of the conformance suite.


def test_inmem_store_first_index_is_first_stored() -> None:
    """Like Go, first_index is the first entry stored into an empty store, even if a lower index follows."""
    store = InmemStore()
    store.store_log(entry(5))
    store.store_log(entry(3))
    assert (store.first_index(), store.last_index()) == (5, 5)
    assert store.get_log(3) == entry(3)


def test_inmem_store_delete_below_first_index() -> None:
    """Like Go, a deletion that starts at or below the first index sets the first index to max_index + 1."""
    store = InmemStore()
    store.store_logs(entries(4, 10))
    store.delete_range(1, 2)
    assert (store.first_index(), store.last_index()) == (3, 10)


def test_inmem_store_delete_above_last_index() -> None:
    """Like Go, a deletion that ends at or past the last index sets the last index to min_index - 1."""
    store = InmemStore()
    store.store_logs(entries(1, 5))
    store.delete_range(8, 9)
    assert (store.first_index(), store.last_index()) == (1, 7)


# -- oldest_log with a store that changes underneath it -----------------------------------


class CompactingStore(InmemStore):
    """A store in which a compaction runs between oldest_log's two calls, ``compactions`` times."""

    def __init__(self, compactions: int) -> None:
        super().__init__()
        self.compactions = compactions
        self.get_calls: list[int] = []

    def get_log(self, index: int) -> Log:
        self.get_calls.append(index)
        if self.compactions > 0:
            self.compactions -= 1
            self.delete_range(self.first_index(), self.first_index())
        return super().get_log(index)


def test_oldest_log_retries_after_concurrent_compaction() -> None:
    """If the first entry is deleted between first_index and get_log, oldest_log retries with the new first index."""
    store = CompactingStore(compactions=2)
    store.store_logs(entries(1, 5))
    assert oldest_log(store) == entry(3)
    assert store.get_calls == [1, 2, 3]


class StuckStore(InmemStore):
    """A store whose first_index names an entry that get_log cannot find."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.get_calls = 0

    def first_index(self) -> int:
        return 7

    def get_log(self, index: int) -> Log:
        self.get_calls += 1
        raise self.error


def test_oldest_log_gives_up_when_first_index_does_not_move() -> None:
    """If get_log fails and first_index has not moved since, oldest_log raises that error instead of looping forever."""
    error = ErrLogNotFound("gone")
    store = StuckStore(error)
    with pytest.raises(ErrLogNotFound) as raised:
        oldest_log(store)
    assert raised.value is error
    assert store.get_calls == 1


def test_oldest_log_propagates_store_errors() -> None:
    """An error from get_log other than ErrLogNotFound reaches the caller unchanged."""
    store = StuckStore(StoreError("disk on fire"))
    with pytest.raises(StoreError, match="disk on fire"):
        oldest_log(store)

