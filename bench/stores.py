"""How fast the log stores take writes: InmemStore against SQLiteStore.

Each run calls ``store_logs`` with batches of 1 and of 64 entries for a fixed
time and reports calls per second and entries per second. A SQLite call is
one transaction and one fsync whatever the batch size, which is why Raft's
group commit (the leader stores a whole batch of client commands with one
call) matters so much for a durable store.

    python -m bench.stores [--seconds 2] [--size 128] [--dir DIR]

``--dir`` picks where the database file goes: fsync on tmpfs costs nothing,
on a real disk it dominates, so say which you measured.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

from raft.inmem_store import InmemStore
from raft.log import Log, LogStore, LogType
from raft.stores.sqlite_store import SQLiteStore


def measure(store: LogStore, batch: int, size: int, seconds: float) -> tuple[float, float]:
    """(store_logs calls per second, entries per second) for ``seconds`` of back-to-back batches."""
    payload = os.urandom(size)
    next_index = store.last_index() + 1
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        store.store_logs([Log(i, 1, LogType.LogCommand, payload) for i in range(next_index, next_index + batch)])
        next_index += batch
        calls += 1
    elapsed = time.perf_counter() - started
    return calls / elapsed, calls * batch / elapsed


def filesystem_of(path: str) -> str:
    """The file system type holding ``path`` (Linux only; "?" elsewhere)."""
    try:
        with open("/proc/mounts") as mounts:
            best = ("", "?")
            for line in mounts:
                _, mount_point, fs_type = line.split()[:3]
                if path.startswith(mount_point) and len(mount_point) > len(best[0]):
                    best = (mount_point, fs_type)
            return best[1]
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--size", type=int, default=128, help="bytes of data per entry")
    parser.add_argument("--dir", default=None, help="directory for the SQLite file (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        makers: list[tuple[str, Callable[[str], LogStore]]] = [
            ("InmemStore", lambda _: InmemStore()),
            ("SQLiteStore", lambda name: SQLiteStore(os.path.join(directory, f"{name}.db"))),
        ]
        print(f"store_logs, {args.size}-byte entries, {args.seconds:g} s per row; "
              f"SQLite file in {directory} ({filesystem_of(os.path.realpath(directory))})")
        print(f"{'store':<12} {'batch':>5} {'calls/s':>12} {'entries/s':>12} {'µs/call':>10}")
        for name, make in makers:
            for batch in (1, 64):
                store = make(f"{name}-{batch}")
                calls, entries = measure(store, batch, args.size, args.seconds)
                close = getattr(store, "close", None)
                if close is not None:
                    close()
                print(f"{name:<12} {batch:>5} {calls:>12,.0f} {entries:>12,.0f} {1e6 / calls:>10,.1f}")


if __name__ == "__main__":
    main()
