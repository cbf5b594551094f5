"""A durable log store and stable store in one SQLite file.

Paper:   Figure 2, "Persistent state on all servers (updated on stable storage
         before responding to RPCs)": currentTerm, votedFor, log[].
Mirrors: hashicorp/raft-boltdb (bolt_store.go), the store hashicorp's users run
         behind LogCache; it is a separate Go module, not part of hashicorp/raft.
Read before: log.py and stable.py (the two interfaces), inmem_store.py.
Read next: log_cache.py (put one in front of this store).

Durability is the whole point. Raft may answer an RPC only once the state
that answer depends on is on disk: a follower that acknowledged entries, or a
server that voted, and then forgot it in a crash could let two leaders be
elected or a committed entry be lost. So:

* the database runs in WAL mode with ``synchronous=FULL``: a transaction has
  been fsynced when its COMMIT returns;
* every ``store_logs`` call is *one* transaction, whatever the batch size. The
  leader writes a whole batch of client commands with one call (group commit),
  so a batch costs one fsync, and a crash keeps all of it or none of it;
* every call returns only when it is durable, and Raft calls the store
  directly from its event loop thread. That blocks the loop for the length of
  an fsync, deliberately: nothing may answer before the write is on disk, and
  Go blocks its main goroutine the same way.

Tables, with the schema version in SQLite's ``user_version`` header field and
``application_id`` marking the file as ours::

    logs(idx INTEGER PRIMARY KEY, entry BLOB)   entry = msgpack [term, type, data, extensions, appended_at]
    stable(key BLOB PRIMARY KEY, value BLOB)    as raft-boltdb's "conf" bucket; set_uint64 stores 8 bytes big-endian

The file is opened in SQLite's exclusive locking mode, the counterpart of the
file lock bolt takes: a second store (or process) opening the same file gets
``StoreError`` instead of two nodes writing one log. Any failure of SQLite,
including a file that is not a database or is corrupt, becomes ``StoreError``.

Differs: msgpack-encoded entries and SQLite instead of bolt; a closed store
raises ``StoreError`` (bolt returns ErrDatabaseNotOpen).
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import msgpack

from raft.errors import ErrLogNotFound, StoreError
from raft.log import Log, LogType

SCHEMA_VERSION = 1
APPLICATION_ID = 0x52414654  # "RAFT" in ASCII: marks a file as one of ours
MAX_INDEX = 2**63 - 1  # SQLite integers are signed 64-bit
_UINT64 = struct.Struct(">Q")

_SCHEMA = (
    "CREATE TABLE logs (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL)",
    "CREATE TABLE stable (key BLOB PRIMARY KEY, value BLOB NOT NULL)",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)


def encode_entry(log: Log) -> bytes:
    """An entry's stored bytes; its index is the row key, so it is not repeated."""
    packed: bytes = msgpack.packb([log.term, int(log.type), log.data, log.extensions, log.appended_at],
                                  use_bin_type=True)
    return packed


def decode_entry(index: int, raw: bytes) -> Log:
    """The entry at ``index`` from its stored bytes; StoreError if they are not a valid entry."""
    try:
        fields = msgpack.unpackb(raw, raw=False)
        term, kind, data, extensions, appended_at = fields
        if not (isinstance(term, int) and isinstance(data, bytes) and isinstance(extensions, bytes)
                and isinstance(appended_at, (int, float))):
            raise ValueError("wrong field types")
        return Log(index, term, LogType(kind), data, extensions, float(appended_at))
    except Exception as err:  # msgpack, unpacking and LogType all raise their own types
        raise StoreError(f"corrupt log entry at index {index}: {err}") from err


class SQLiteStore:
    """``LogStore`` and ``StableStore`` in one SQLite database file (Mirrors: raft-boltdb BoltStore).

    ``lock_timeout`` is how long to wait for another holder of the file to let
    go before giving up. The store may be called from any thread; calls are
    serialised.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = 1.0) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            self.conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=lock_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open {self.path}: {err}") from err
        try:
            self._prepare(self.conn)
        except sqlite3.Error as err:
            self.conn.close()
            self.conn = None
            if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise StoreError(f"cannot open {self.path}: another store or process has it open") from err
            raise StoreError(f"cannot open {self.path}: {err}") from err
        except StoreError:
            self.conn.close()
            self.conn = None
            raise

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Set durability and locking, then create the schema or check the one that is there."""
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # set before WAL: no shared-memory index, one owner
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")  # takes the lock now; exclusive mode keeps it until close
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id == 0 and version == 0 and tables == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
            elif app_id != APPLICATION_ID:
                raise StoreError(f"{self.path} is a SQLite database but not a Raft store")
            elif version != SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}; this code reads {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the file; later calls raise StoreError. Harmless when repeated."""
        with self._lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """The open connection, with any SQLite failure reported as StoreError."""
        with self._lock:
            if self.conn is None:
                raise StoreError(f"{action}: store is closed")
            try:
                yield self.conn
            except sqlite3.Error as err:
                raise StoreError(f"{action} failed: {err}") from err

    @contextmanager
    def _writing(self, action: str) -> Iterator[sqlite3.Connection]:
        """One transaction: committed (and fsynced) if the block succeeds, rolled back if anything fails."""
        with self._reading(action) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as err:
                conn.execute("ROLLBACK")
                if isinstance(err, (sqlite3.Error, StoreError)) or not isinstance(err, Exception):
                    raise
                raise StoreError(f"{action} failed: {err!r}") from err

    # -- LogStore ------------------------------------------------------------------------------

    def first_index(self) -> int:
        with self._reading("first_index") as conn:
            return int(conn.execute("SELECT min(idx) FROM logs").fetchone()[0] or 0)

    def last_index(self) -> int:
        with self._reading("last_index") as conn:
            return int(conn.execute("SELECT max(idx) FROM logs").fetchone()[0] or 0)

    def get_log(self, index: int) -> Log:
        if not 0 <= index <= MAX_INDEX:
            raise ErrLogNotFound()
        with self._reading("get_log") as conn:
            row = conn.execute("SELECT entry FROM logs WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise ErrLogNotFound()
        return decode_entry(index, row[0])

    def store_log(self, log: Log) -> None:
        self.store_logs([log])

    def store_logs(self, logs: list[Log]) -> None:
        """Store a batch in one transaction: one fsync, and all of it or nothing."""
        with self._writing("store_logs") as conn:
            # Entries are encoded as SQLite asks for rows, inside the transaction:
            # one that fails to encode rolls back those before it too.
            conn.executemany("INSERT OR REPLACE INTO logs (idx, entry) VALUES (?, ?)",
                             (_row(entry) for entry in logs))

    def delete_range(self, min_index: int, max_index: int) -> None:
        with self._writing("delete_range") as conn:
            conn.execute("DELETE FROM logs WHERE idx BETWEEN ? AND ?",
                         (max(min_index, 0), min(max_index, MAX_INDEX)))

    # -- StableStore -----------------------------------------------------------------------------

    def set(self, key: bytes, value: bytes) -> None:
        with self._writing("set") as conn:
            conn.execute("INSERT OR REPLACE INTO stable (key, value) VALUES (?, ?)", (bytes(key), bytes(value)))

    def get(self, key: bytes) -> bytes | None:
        with self._reading("get") as conn:
            row = conn.execute("SELECT value FROM stable WHERE key = ?", (bytes(key),)).fetchone()
        return None if row is None else bytes(row[0])

    def set_uint64(self, key: bytes, value: int) -> None:
        if not 0 <= value < 2**64:
            raise StoreError(f"set_uint64: {value} does not fit in 64 unsigned bits")
        self.set(key, _UINT64.pack(value))

    def get_uint64(self, key: bytes) -> int:
        raw = self.get(key)
        if raw is None:
            return 0
        if len(raw) != _UINT64.size:
            raise StoreError(f"get_uint64: the value under {bytes(key)!r} is {len(raw)} bytes, not 8")
        value: int = _UINT64.unpack(raw)[0]
        return value


def _row(entry: Log) -> tuple[int, bytes]:
    if not 0 <= entry.index <= MAX_INDEX:
        raise StoreError(f"log index {entry.index} out of range")
    return entry.index, encode_entry(entry)
