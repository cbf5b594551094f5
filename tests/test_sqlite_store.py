"""Tests for raft/stores/sqlite_store.py: the store conformance suite, then what only a disk store must do.

Mirrors: raft-boltdb's bolt_store_test.go (conformance, reopen, a closed
store), plus the durability promises Figure 2 asks of "stable storage".
Every test uses its own file under pytest's ``tmp_path``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_inmem_store import LogStoreConformance, StableStoreConformance, entries, entry

from raft.errors import ErrLogNotFound, StoreError
from raft.log import Log, LogType
from raft.log_cache import LogCache
from raft.stores.sqlite_store import APPLICATION_ID, SCHEMA_VERSION, SQLiteStore


class TestSQLiteStore(LogStoreConformance, StableStoreConformance):
    """The conformance suites run against SQLiteStore."""

    def make_store(self, tmp_path: Path) -> SQLiteStore:
        return SQLiteStore(tmp_path / "raft.db")


class TestSQLiteStoreBehindLogCache(LogStoreConformance):
    """The log conformance suite through a LogCache, the way a node uses the store."""

    def make_store(self, tmp_path: Path) -> LogCache:
        return LogCache(4, SQLiteStore(tmp_path / "raft.db"))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "raft.db"


def test_sqlite_store_settings(db: Path) -> None:
    """The store runs in WAL mode with synchronous=FULL, so a returned COMMIT has been fsynced."""
    with SQLiteStore(db) as store:
        assert store.conn is not None
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


# -- durability ---------------------------------------------------------------------------------


def test_reopen_keeps_logs_and_stable_values(db: Path) -> None:
    """After close and reopen, every entry, term and vote written before is still there (Figure 2: stable storage)."""
    with SQLiteStore(db) as store:
        store.store_logs(entries(1, 10))
        store.delete_range(1, 3)
        store.store_log(Log(11, 2, LogType.LogConfiguration, b"cfg", b"ext", 12.5))
        store.set_uint64(b"CurrentTerm", 2)
        store.set(b"LastVoteCand", b"n2")
    with SQLiteStore(db) as reopened:
        assert (reopened.first_index(), reopened.last_index()) == (4, 11)
        assert reopened.get_log(4) == entry(4)
        assert reopened.get_log(11) == Log(11, 2, LogType.LogConfiguration, b"cfg", b"ext", 12.5)
        assert reopened.get_uint64(b"CurrentTerm") == 2
        assert reopened.get(b"LastVoteCand") == b"n2"


def test_closed_store_raises_store_error(db: Path) -> None:
    """Every call on a closed store raises StoreError; closing twice is harmless."""
    store = SQLiteStore(db)
    store.close()
    store.close()
    calls: list[Callable[[], object]] = [
        store.first_index, store.last_index, lambda: store.get_log(1), lambda: store.store_log(entry(1)),
        lambda: store.delete_range(1, 2), lambda: store.get(b"k"), lambda: store.set(b"k", b"v"),
        lambda: store.get_uint64(b"k"), lambda: store.set_uint64(b"k", 1)]
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            call()


# -- one transaction per store_logs ---------------------------------------------------------------


def test_store_logs_is_one_transaction(db: Path) -> None:
    """A store_logs batch costs one COMMIT, however many entries it holds (one fsync: group commit)."""
    with SQLiteStore(db) as store:
        assert store.conn is not None
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        store.store_logs(entries(1, 64))
        store.conn.set_trace_callback(None)
        assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")] == ["BEGIN IMMEDIATE",
                                                                                             "COMMIT"]
        assert store.last_index() == 64


def test_failure_mid_batch_stores_nothing(db: Path) -> None:
    """If the disk refuses the 5th entry of a batch, entries 1–4 of that batch are not stored either."""
    with SQLiteStore(db) as store:
        assert store.conn is not None
        store.store_logs(entries(1, 2))
        store.conn.execute("CREATE TRIGGER fail_at_5 BEFORE INSERT ON logs WHEN NEW.idx = 5 "
                           "BEGIN SELECT RAISE(ABORT, 'injected disk failure'); END")
        with pytest.raises(StoreError, match="injected disk failure"):
            store.store_logs(entries(3, 8))
        assert (store.first_index(), store.last_index()) == (1, 2)
        with pytest.raises(ErrLogNotFound):
            store.get_log(3)
        store.conn.execute("DROP TRIGGER fail_at_5")
        store.store_logs(entries(3, 8))  # the store is usable afterwards: no transaction left open
        assert store.last_index() == 8


def test_unencodable_entry_mid_batch_stores_nothing(db: Path) -> None:
    """An entry that cannot be encoded, in the middle of a batch, fails the whole batch."""
    with SQLiteStore(db) as store:
        batch = [*entries(1, 3), Log(4, 1, LogType.LogCommand, data=object()), entry(5)]  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            store.store_logs(batch)
        assert (store.first_index(), store.last_index()) == (0, 0)


def test_failed_batch_through_log_cache_is_not_cached(db: Path) -> None:
    """A batch the SQLite store rejected is not served by the LogCache in front of it."""
    store = SQLiteStore(db)
    cache = LogCache(16, store)
    assert store.conn is not None
    store.conn.execute("CREATE TRIGGER fail_at_2 BEFORE INSERT ON logs WHEN NEW.idx = 2 "
                       "BEGIN SELECT RAISE(ABORT, 'injected'); END")
    with pytest.raises(StoreError):
        cache.store_logs(entries(1, 3))
    with pytest.raises(ErrLogNotFound):
        cache.get_log(1)
    store.close()


# -- bad files ---------------------------------------------------------------------------------------


def test_corrupt_file_is_store_error(db: Path) -> None:
    """A file of random bytes is refused with StoreError, not a sqlite3 exception."""
    db.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match="not a database"):
        SQLiteStore(db)


def test_corrupt_entry_is_store_error(db: Path) -> None:
    """An entry whose stored bytes are not a valid entry raises StoreError naming its index."""
    with SQLiteStore(db) as store:
        store.store_logs(entries(1, 3))
        assert store.conn is not None
        store.conn.execute("UPDATE logs SET entry = x'c1ff' WHERE idx = 2")
        assert store.get_log(1) == entry(1)
        with pytest.raises(StoreError, match="corrupt log entry at index 2"):
            store.get_log(2)


def test_malformed_uint64_is_store_error(db: Path) -> None:
    """get_uint64 of a value that is not 8 bytes raises StoreError; values outside uint64 are refused."""
    with SQLiteStore(db) as store:
        store.set(b"CurrentTerm", b"abc")
        with pytest.raises(StoreError, match="not 8"):
            store.get_uint64(b"CurrentTerm")
        for value in (-1, 2**64):
            with pytest.raises(StoreError):
                store.set_uint64(b"CurrentTerm", value)


def test_foreign_database_is_refused(db: Path) -> None:
    """A SQLite database that some other program made is refused rather than written into."""
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE accounts (id INTEGER)")
    other.commit()
    other.close()
    with pytest.raises(StoreError, match="not a Raft store"):
        SQLiteStore(db)


def test_newer_schema_version_is_refused(db: Path) -> None:
    """A store written by a different schema version is refused with both versions in the message."""
    SQLiteStore(db).close()
    other = sqlite3.connect(db)
    other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    other.commit()
    other.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        SQLiteStore(db)


def test_unreadable_path_is_store_error(tmp_path: Path) -> None:
    """A path in a directory that does not exist raises StoreError."""
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "missing" / "raft.db")


# -- opening a store twice ------------------------------------------------------------------------


def test_second_open_while_in_use_is_refused(db: Path) -> None:
    """While one store has the file open, a second open fails with StoreError: two nodes never share a log."""
    first = SQLiteStore(db)
    first.store_logs(entries(1, 3))
    with pytest.raises(StoreError, match="another store or process"):
        SQLiteStore(db, lock_timeout=0.05)
    assert first.last_index() == 3  # the first store is unharmed
    first.close()
    with SQLiteStore(db) as second:  # and once it is closed the file can be opened again
        assert second.last_index() == 3


def test_reopen_from_another_thread(db: Path) -> None:
    """A store closed in one thread can be reopened and used in another (as a restarted node would)."""
    with SQLiteStore(db) as store:
        store.store_logs(entries(1, 5))
    found: list[int] = []

    def reopen() -> None:
        with SQLiteStore(db) as again:
            again.store_log(entry(6))
            found.append(again.last_index())

    worker = threading.Thread(target=reopen)
    worker.start()
    worker.join(10)
    assert found == [6]


def test_concurrent_calls_from_threads(db: Path) -> None:
    """Calls from several threads are serialised: every batch is stored whole."""
    with SQLiteStore(db) as store:
        def writer(first: int) -> None:
            for start in range(first, first + 50, 10):
                store.store_logs(entries(start, start + 9))

        threads = [threading.Thread(target=writer, args=(1 + 50 * i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert (store.first_index(), store.last_index()) == (1, 200)
        assert all(store.get_log(i) == entry(i) for i in range(1, 201))
