"""A log store and stable store in memory, for tests and the simulator.

Mirrors: inmem_store.go.
Read next: log_cache.py (a cache in front of any log store).

Nothing survives the process, but in the simulator a "crash" keeps the
store object, so a restarted node finds its term, vote and log as a disk
would keep them.
"""

from __future__ import annotations

from raft.errors import ErrLogNotFound
from raft.log import Log


class InmemStore:
    """``LogStore`` and ``StableStore`` over dictionaries.

    Mirrors: inmem_store.go InmemStore.
    Differs: entries are copied on the way in and out, so a caller that
    mutates an entry cannot change the stored one (Go stores the pointer).
    """

    def __init__(self) -> None:
        self.low_index = 0
        self.high_index = 0
        self.logs: dict[int, Log] = {}
        self.kv: dict[bytes, bytes] = {}
        self.kv_int: dict[bytes, int] = {}

    # -- LogStore ------------------------------------------------------------

    def first_index(self) -> int:
        return self.low_index

    def last_index(self) -> int:
        return self.high_index

    def get_log(self, index: int) -> Log:
        entry = self.logs.get(index)
        if entry is None:
            raise ErrLogNotFound()
        return entry.copy()

    def store_log(self, log: Log) -> None:
        self.store_logs([log])

    def store_logs(self, logs: list[Log]) -> None:
        for entry in logs:
            self.logs[entry.index] = entry.copy()
            if self.low_index == 0:
                self.low_index = entry.index
            if entry.index > self.high_index:
                self.high_index = entry.index

    def delete_range(self, min_index: int, max_index: int) -> None:
        for index in range(min_index, max_index + 1):
            self.logs.pop(index, None)
        if min_index <= self.low_index:
            self.low_index = max_index + 1
        if max_index >= self.high_index:
            self.high_index = min_index - 1
        if self.low_index > self.high_index:
            self.low_index = 0
            self.high_index = 0

    # -- StableStore -----------------------------------------------------------

    def set(self, key: bytes, value: bytes) -> None:
        self.kv[bytes(key)] = bytes(value)

    def get(self, key: bytes) -> bytes | None:
        return self.kv.get(bytes(key))

    def set_uint64(self, key: bytes, value: int) -> None:
        self.kv_int[bytes(key)] = value

    def get_uint64(self, key: bytes) -> int:
        return self.kv_int.get(bytes(key), 0)
