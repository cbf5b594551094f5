"""A small cache of recent log entries in front of any log store.

Mirrors: log_cache.go.

The leader reads the entries it has just written, once per follower, to put
them into AppendEntries. Keeping the newest entries in memory saves those
reads from the disk. The cache is a ring: entry ``i`` lives in slot
``i % capacity`` until a newer entry takes the slot.

Writes go to the store first and enter the cache only if the store accepted
them: otherwise the cache could serve an entry the disk never kept, and a
restart would find a hole (hashicorp's CacheLogWithStoreError test).
"""

from __future__ import annotations

from raft.errors import StoreError
from raft.log import Log, LogStore, MonotonicLogStore


class LogCache:
    """A write-through ring cache over ``store`` (Mirrors: LogCache)."""

    def __init__(self, capacity: int, store: LogStore) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.store = store
        self.cache: list[Log | None] = [None] * capacity

    def is_monotonic(self) -> bool:
        """Whatever the wrapped store says (Mirrors: IsMonotonic)."""
        if isinstance(self.store, MonotonicLogStore):
            return self.store.is_monotonic()
        return False

    def get_log(self, index: int) -> Log:
        cached = self.cache[index % len(self.cache)]
        if cached is not None and cached.index == index:
            return cached.copy()
        return self.store.get_log(index)

    def store_log(self, log: Log) -> None:
        self.store_logs([log])

    def store_logs(self, logs: list[Log]) -> None:
        try:
            self.store.store_logs(logs)
        except Exception as err:
            raise StoreError(f"unable to store logs within log store, err: {err!r}") from err
        for entry in logs:
            self.cache[entry.index % len(self.cache)] = entry.copy()

    def first_index(self) -> int:
        return self.store.first_index()

    def last_index(self) -> int:
        return self.store.last_index()

    def delete_range(self, min_index: int, max_index: int) -> None:
        self.cache = [None] * len(self.cache)  # simpler than finding the slots, and rare
        self.store.delete_range(min_index, max_index)
