"""Tests for the snapshot stores: inmem_snapshot.py, file_snapshot.py, discard_snapshot.py.

``SnapshotStoreConformance`` states what Raft needs from any store that keeps
snapshots (§7: a snapshot must come back exactly as written, and only once it
is complete). It is not collected on its own; a store gets the suite by
subclassing it and providing ``make_store``. ``TestInmemSnapshotStore`` and
``TestFileSnapshotStore`` run it; the latter adds the cases of hashicorp's
file_snapshot_test.go and the crash and corruption cases a disk brings.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from raft.configuration import Configuration, Server, ServerSuffrage
from raft.discard_snapshot import DiscardSnapshotSink, DiscardSnapshotStore
from raft.errors import StoreError
from raft.file_snapshot import (
    MAX_META_BYTES,
    FileSnapshotSink,
    FileSnapshotStore,
    crc64_update,
    snapshot_name,
)
from raft.inmem_snapshot import InmemSnapshotStore
from raft.snapshot import SnapshotMeta, SnapshotSink, SnapshotStore


def one_server() -> Configuration:
    return Configuration([Server(ServerSuffrage.Voter, "my id", "over here")])


class Ticker:
    """A clock that moves one second per reading, so snapshot names are deterministic and distinct."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def read_all(store: Any, snapshot_id: str) -> tuple[SnapshotMeta, bytes]:
    meta, reader = store.open(snapshot_id)
    with reader:
        return meta, reader.read()


def take(store: Any, index: int, term: int = 3, data: bytes = b"", configuration_index: int = 0) -> str:
    """Write and close one snapshot; return its id."""
    sink = store.create(1, index, term, Configuration(), configuration_index, None)
    sink.write(data)
    sink.close()
    return str(sink.id())


class SnapshotStoreConformance:
    """What Raft relies on from every snapshot store. Subclasses provide ``make_store``."""

    def make_store(self, tmp_path: Path) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        return self.make_store(tmp_path)

    def test_implements_the_protocols(self, store: Any) -> None:
        """The store and its sinks satisfy SnapshotStore and SnapshotSink."""
        assert isinstance(store, SnapshotStore)
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        assert isinstance(sink, SnapshotSink)
        sink.cancel()

    def test_new_store_lists_nothing(self, store: Any) -> None:
        """A store that has never closed a sink lists no snapshots."""
        assert store.list() == []

    def test_round_trip_of_metadata_and_bytes(self, store: Any) -> None:
        """A closed snapshot is listed with its metadata and opens to exactly the bytes written."""
        sink = store.create(1, 10, 3, one_server(), 2, None)
        assert sink.write(b"first\n") == 6
        assert sink.write(b"second\n") == 7
        sink.close()

        snapshots = store.list()
        assert len(snapshots) == 1
        latest = snapshots[0]
        assert (latest.version, latest.id, latest.index, latest.term) == (1, sink.id(), 10, 3)
        assert latest.configuration == one_server()
        assert latest.configuration_index == 2
        assert latest.size == 13
        meta, data = read_all(store, latest.id)
        assert meta == latest
        assert data == b"first\nsecond\n"

    def test_not_listed_before_close(self, store: Any) -> None:
        """§7: a snapshot still being written is not offered to anyone."""
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        sink.write(b"partial")
        assert store.list() == []
        sink.close()
        assert [m.index for m in store.list()] == [10]

    def test_cancel_removes_it(self, store: Any) -> None:
        """A cancelled snapshot is never listed and cannot be opened."""
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        sink.write(b"doomed")
        sink.cancel()
        assert store.list() == []
        with pytest.raises(StoreError):
            store.open(sink.id())

    def test_open_twice(self, store: Any) -> None:
        """Opening a snapshot does not consume it: a second open reads the same bytes."""
        snapshot_id = take(store, 10, data=b"data\n")
        assert read_all(store, snapshot_id)[1] == b"data\n"
        assert read_all(store, snapshot_id)[1] == b"data\n"

    def test_open_unknown_id_fails(self, store: Any) -> None:
        """Opening an id the store never had raises StoreError."""
        with pytest.raises(StoreError):
            store.open("9-99-123")

    def test_rejects_unsupported_version(self, store: Any) -> None:
        """Only snapshot version 1 can be created."""
        with pytest.raises(StoreError, match="version"):
            store.create(2, 10, 3, Configuration(), 0, None)

    def test_write_after_close_fails(self, store: Any) -> None:
        """A closed sink refuses further bytes instead of silently changing the snapshot."""
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        sink.close()
        with pytest.raises(StoreError):
            sink.write(b"late")

    def test_close_twice_is_harmless(self, store: Any) -> None:
        """Closing a sink a second time changes nothing."""
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        sink.write(b"x")
        sink.close()
        sink.close()
        assert [m.size for m in store.list()] == [1]

    def test_newer_snapshot_is_listed_first(self, store: Any) -> None:
        """The newest snapshot comes first in the list."""
        take(store, 10)
        take(store, 20)
        assert store.list()[0].index == 20


class TestInmemSnapshotStore(SnapshotStoreConformance):
    """The conformance suite run against InmemSnapshotStore."""

    def make_store(self, tmp_path: Path) -> InmemSnapshotStore:
        return InmemSnapshotStore()


class TestFileSnapshotStore(SnapshotStoreConformance):
    """The conformance suite, and file_snapshot_test.go, run against FileSnapshotStore."""

    def make_store(self, tmp_path: Path, retain: int = 3) -> FileSnapshotStore:
        return FileSnapshotStore(tmp_path / "raft", retain, clock=Ticker())

    def snapshot_dirs(self, store: FileSnapshotStore) -> list[str]:
        return sorted(entry.name for entry in os.scandir(store.path))

    # -- file_snapshot_test.go ---------------------------------------------------

    def test_sink_is_a_snapshot_sink(self, store: FileSnapshotStore) -> None:
        """TestFileSnapshotSinkImpl: FileSnapshotSink satisfies SnapshotSink."""
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        assert isinstance(sink, FileSnapshotSink)
        assert isinstance(sink, SnapshotSink)
        sink.cancel()

    def test_create_snapshot_missing_parent_dir(self, tmp_path: Path) -> None:
        """TestFileSS_CreateSnapshotMissingParentDir: create rebuilds a base directory removed after start-up."""
        parent = tmp_path / "parent"
        store = FileSnapshotStore(parent / "raft", 3, clock=Ticker())
        shutil.rmtree(parent)
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        sink.close()
        assert [m.index for m in store.list()] == [10]

    def test_create_snapshot(self, store: FileSnapshotStore) -> None:
        """TestFileSS_CreateSnapshot: the finished snapshot sits in snapshots/<term>-<index>-<ms>."""
        sink = store.create(1, 10, 3, one_server(), 2, None)
        sink.write(b"first\nsecond\n")
        assert self.snapshot_dirs(store) == [sink.id() + ".tmp"]
        sink.close()
        assert sink.id() == "3-10-1700000001000"
        assert self.snapshot_dirs(store) == [sink.id()]
        assert sorted(os.listdir(os.path.join(store.path, sink.id()))) == ["meta.json", "state.bin"]

    def test_cancel_snapshot(self, store: FileSnapshotStore) -> None:
        """TestFileSS_CancelSnapshot: cancel deletes the temporary directory from disk."""
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        sink.cancel()
        assert self.snapshot_dirs(store) == []
        assert store.list() == []

    def test_retention(self, tmp_path: Path) -> None:
        """TestFileSS_Retention: with retain=2 only the two newest of five snapshots remain."""
        store = self.make_store(tmp_path, retain=2)
        for index in range(10, 15):
            take(store, index)
        assert [m.index for m in store.list()] == [14, 13]
        assert len(self.snapshot_dirs(store)) == 2

    def test_retain_below_one_is_rejected(self, tmp_path: Path) -> None:
        """A store must keep at least one snapshot."""
        with pytest.raises(ValueError, match="must retain at least one snapshot"):
            FileSnapshotStore(tmp_path, 0)

    @pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0,
                        reason="root (and Windows) ignore directory permissions")
    def test_bad_perm(self, tmp_path: Path) -> None:
        """TestFileSS_BadPerm: a directory we may not write to is refused at start-up."""
        locked = tmp_path / "badperm"
        locked.mkdir()
        locked.chmod(0o000)
        try:
            with pytest.raises(StoreError):
                FileSnapshotStore(locked, 3)
        finally:
            locked.chmod(0o755)

    def test_base_dir_under_a_regular_file(self, tmp_path: Path) -> None:
        """A base directory that cannot be created (its parent is a file) raises StoreError, even for root."""
        blocker = tmp_path / "not-a-directory"
        blocker.write_bytes(b"")
        with pytest.raises(StoreError, match="not accessible"):
            FileSnapshotStore(blocker / "raft", 3)

    def test_missing_parent_dir(self, tmp_path: Path) -> None:
        """TestFileSS_MissingParentDir: the base directory and its missing parents are created."""
        store = FileSnapshotStore(tmp_path / "gone" / "raft", 3)
        assert os.path.isdir(store.path)

    def test_ordering(self, store: FileSnapshotStore) -> None:
        """TestFileSS_Ordering: the higher term is newer even when its name would sort first as text."""
        take(store, 130350, term=5)
        take(store, 204917, term=36)
        assert [m.term for m in store.list()] == [36, 5]

    def test_ordering_ignores_creation_time(self, tmp_path: Path) -> None:
        """Newest means highest (term, index), whatever the clock said when each was taken."""
        times = iter([3000.0, 2000.0, 1000.0])
        store = FileSnapshotStore(tmp_path, 3, clock=lambda: next(times))
        take(store, 10, term=2)
        take(store, 20, term=2)
        take(store, 5, term=3)
        assert [(m.term, m.index) for m in store.list()] == [(3, 5), (2, 20), (2, 10)]

    # -- the CRC ---------------------------------------------------------------

    @pytest.mark.parametrize(("data", "expected"), [
        (b"", 0),
        (b"a", 0x330284772E652B05),  # Go's hash/crc64 golden table
        (b"abc", 0x2CD8094A1A277627),  # Go's hash/crc64 golden table
        (b"123456789", 0x995DC9BBDF1939FA),  # the CRC-64/XZ catalogue check value
        (b"hello world", 0x53037ECDEF2352DA),  # crc64.Checksum(..., crc64.MakeTable(crc64.ECMA))
    ])
    def test_crc64_check_values(self, data: bytes, expected: int) -> None:
        """crc64_update computes Go's CRC-64/ECMA (the CRC-64/XZ parameters)."""
        assert crc64_update(0, data) == expected

    def test_crc64_can_be_continued(self) -> None:
        """Feeding a checksum back in continues it, so a sink can hash write by write."""
        assert crc64_update(crc64_update(0, b"hello "), b"world") == 0x53037ECDEF2352DA

    def test_meta_json_is_readable_and_records_the_crc(self, store: FileSnapshotStore) -> None:
        """meta.json is plain JSON holding the metadata and the CRC of state.bin as 16 hex digits."""
        snapshot_id = take(store, 10, data=b"hello world", configuration_index=4)
        with open(os.path.join(store.path, snapshot_id, "meta.json")) as file:
            document = json.load(file)
        assert document["crc"] == "53037ecdef2352da"
        assert {key: document[key] for key in ("version", "id", "index", "term", "configuration_index", "size")} == {
            "version": 1, "id": snapshot_id, "index": 10, "term": 3, "configuration_index": 4, "size": 11,
        }
        assert document["configuration"] == {"servers": []}

    def test_no_sync_still_round_trips(self, tmp_path: Path) -> None:
        """Skipping fsync changes durability, not what is stored."""
        store = FileSnapshotStore(tmp_path, 3, no_sync=True, clock=Ticker())
        snapshot_id = take(store, 7, data=b"quick")
        assert read_all(store, snapshot_id)[1] == b"quick"

    def test_snapshot_name(self) -> None:
        """A snapshot is named <term>-<index>-<unix milliseconds>."""
        assert snapshot_name(3, 10, 1_700_000_000.123) == "3-10-1700000000123"

    def test_name_collision_is_refused(self, tmp_path: Path) -> None:
        """Two snapshots with one name (same term, index and millisecond) cannot share a directory."""
        store = FileSnapshotStore(tmp_path, 3, clock=lambda: 1000.0)
        first = store.create(1, 10, 3, Configuration(), 0, None)
        with pytest.raises(StoreError, match="already being written"):
            store.create(1, 10, 3, Configuration(), 0, None)
        first.close()
        with pytest.raises(StoreError, match="already exists"):
            store.create(1, 10, 3, Configuration(), 0, None)

    def test_write_after_cancel_fails(self, store: FileSnapshotStore) -> None:
        """A cancelled sink refuses further bytes."""
        sink = store.create(1, 10, 3, Configuration(), 0, None)
        sink.cancel()
        with pytest.raises(StoreError):
            sink.write(b"late")

    def test_negative_index_is_refused(self, store: FileSnapshotStore) -> None:
        """A snapshot that could never be read back (negative index) is refused at create."""
        with pytest.raises(StoreError, match="negative"):
            store.create(1, -1, 3, Configuration(), 0, None)

    # -- crashes and corruption ------------------------------------------------

    def two_snapshots(self, store: FileSnapshotStore) -> tuple[str, str]:
        """An older and a newer snapshot with different contents."""
        return take(store, 10, data=b"older state"), take(store, 20, data=b"newer state")

    def test_flipped_byte_fails_the_crc(self, store: FileSnapshotStore) -> None:
        """One flipped bit in state.bin makes open raise StoreError naming the snapshot and the CRC."""
        older, newer = self.two_snapshots(store)
        path = os.path.join(store.path, newer, "state.bin")
        data = bytearray(Path(path).read_bytes())
        data[3] ^= 0x01
        Path(path).write_bytes(bytes(data))
        with pytest.raises(StoreError, match=f"{newer}.*CRC mismatch"):
            store.open(newer)
        assert read_all(store, older)[1] == b"older state"  # the fallback still works

    def test_truncated_state_fails_the_size_check(self, store: FileSnapshotStore) -> None:
        """A state.bin shorter than meta.json's size makes open raise StoreError about the size."""
        _, newer = self.two_snapshots(store)
        with open(os.path.join(store.path, newer, "state.bin"), "r+b") as file:
            file.truncate(4)
        with pytest.raises(StoreError, match=f"{newer}.*size.*truncated"):
            store.open(newer)

    def test_missing_state_file_fails(self, store: FileSnapshotStore) -> None:
        """A snapshot whose state.bin is gone cannot be opened."""
        _, newer = self.two_snapshots(store)
        os.remove(os.path.join(store.path, newer, "state.bin"))
        with pytest.raises(StoreError, match=r"state\.bin"):
            store.open(newer)

    def test_garbage_meta_is_skipped(self, store: FileSnapshotStore, caplog: pytest.LogCaptureFixture) -> None:
        """A snapshot whose meta.json is not JSON is skipped with a warning, and the older one is still listed."""
        older, newer = self.two_snapshots(store)
        Path(store.path, newer, "meta.json").write_bytes(b"\x00{garbage")
        with caplog.at_level(logging.WARNING, logger="raft.snapshot"):
            assert [m.id for m in store.list()] == [older]
        assert f"skipping snapshot {newer}" in caplog.text
        assert "not valid JSON" in caplog.text
        with pytest.raises(StoreError, match="corrupt"):
            store.open(newer)

    def test_missing_meta_is_skipped(self, store: FileSnapshotStore, caplog: pytest.LogCaptureFixture) -> None:
        """A snapshot directory without meta.json is skipped with a warning saying it is missing."""
        older, newer = self.two_snapshots(store)
        os.remove(os.path.join(store.path, newer, "meta.json"))
        with caplog.at_level(logging.WARNING, logger="raft.snapshot"):
            assert [m.id for m in store.list()] == [older]
        assert "meta.json is missing" in caplog.text

    @pytest.mark.parametrize(("field", "value", "reason"), [
        ("index", -1, "'index' must be an unsigned 64-bit integer"),
        ("term", "3", "'term' must be an unsigned 64-bit integer"),
        ("size", True, "'size' must be an unsigned 64-bit integer"),
        ("size", 1 << 64, "'size' must be an unsigned 64-bit integer"),
        ("configuration_index", 1.5, "'configuration_index' must be an unsigned 64-bit integer"),
        ("crc", None, "'crc' must be 16 hex digits"),
        ("crc", "zz" * 8, "'crc' must be 16 hex digits"),
        ("id", "9-99-1", "does not match its directory"),
        ("id", 7, "'id' must be a string"),
        ("configuration", {"servers": [{"id": 1}]}, "bad 'configuration'"),
        ("version", 7, "version 7 is not supported"),
    ])
    def test_malformed_meta_is_treated_as_corrupt(
        self, store: FileSnapshotStore, caplog: pytest.LogCaptureFixture, field: str, value: Any, reason: str
    ) -> None:
        """A meta.json with a field of the wrong type or range is skipped, with the reason logged."""
        older, newer = self.two_snapshots(store)
        meta_path = Path(store.path, newer, "meta.json")
        document = json.loads(meta_path.read_text())
        document[field] = value
        meta_path.write_text(json.dumps(document))
        with caplog.at_level(logging.WARNING, logger="raft.snapshot"):
            assert [m.id for m in store.list()] == [older]
        assert reason in caplog.text

    def test_meta_that_is_not_an_object_is_skipped(self, store: FileSnapshotStore) -> None:
        """A meta.json holding valid JSON of the wrong shape (a list) is corrupt."""
        older, newer = self.two_snapshots(store)
        Path(store.path, newer, "meta.json").write_text("[1, 2, 3]")
        assert [m.id for m in store.list()] == [older]
        with pytest.raises(StoreError, match="expected a JSON object"):
            store.open(newer)

    def test_oversized_meta_is_not_read(self, store: FileSnapshotStore) -> None:
        """A meta.json larger than MAX_META_BYTES is refused without being parsed."""
        older, newer = self.two_snapshots(store)
        Path(store.path, newer, "meta.json").write_bytes(b" " * (MAX_META_BYTES + 1))
        assert [m.id for m in store.list()] == [older]
        with pytest.raises(StoreError, match="larger than"):
            store.open(newer)

    def test_leftover_tmp_directory_is_never_listed(self, store: FileSnapshotStore) -> None:
        """A complete-looking .tmp directory left by a crash before the rename is neither listed nor opened."""
        older, newer = self.two_snapshots(store)
        os.rename(os.path.join(store.path, newer), os.path.join(store.path, newer + ".tmp"))
        assert [m.id for m in store.list()] == [older]
        with pytest.raises(StoreError):
            store.open(newer + ".tmp")

    def test_abandoned_sink_is_never_listed_or_reaped_into(self, tmp_path: Path) -> None:
        """A sink that is never closed (its writer crashed) stays invisible while others come and go."""
        store = self.make_store(tmp_path, retain=1)
        abandoned = store.create(1, 99, 9, Configuration(), 0, None)
        abandoned.write(b"half")
        take(store, 10)
        take(store, 11)
        assert [m.index for m in store.list()] == [11]
        assert abandoned.id() + ".tmp" in self.snapshot_dirs(store)

    def test_stray_files_are_ignored(self, store: FileSnapshotStore) -> None:
        """A plain file in the snapshots directory is not mistaken for a snapshot."""
        snapshot_id = take(store, 10)
        Path(store.path, "notes.txt").write_text("hello")
        assert [m.id for m in store.list()] == [snapshot_id]

    @pytest.mark.parametrize("bad_id", ["", ".", "..", "../raft", "a/b", "3-10-1.tmp"])
    def test_open_refuses_ids_that_are_not_snapshot_names(self, store: FileSnapshotStore, bad_id: str) -> None:
        """An id that is a path, not a snapshot name, is refused before touching the disk."""
        with pytest.raises(StoreError, match="invalid snapshot id"):
            store.open(bad_id)

    def test_corrupt_snapshots_do_not_count_towards_retention(self, tmp_path: Path) -> None:
        """Reaping counts only usable snapshots, so a corrupt one never pushes out a good one."""
        store = self.make_store(tmp_path, retain=2)
        first = take(store, 10)
        second = take(store, 20)
        Path(store.path, second, "meta.json").write_text("{}")
        third = take(store, 30)
        assert [m.id for m in store.list()] == [third, first]
        assert second in self.snapshot_dirs(store)  # left for an operator to inspect


class TestDiscardSnapshotStore:
    """discard_snapshot_test.go and the rest of DiscardSnapshotStore's contract."""

    def test_implements_the_protocols(self) -> None:
        """TestDiscardSnapshotStoreImpl/SinkImpl: the store and its sink satisfy the protocols."""
        store = DiscardSnapshotStore()
        assert isinstance(store, SnapshotStore)
        assert isinstance(store.create(1, 10, 3, Configuration(), 0, None), SnapshotSink)

    def test_create_accepts_and_keeps_nothing(self) -> None:
        """Writes report full success, yet a closed snapshot is never listed."""
        store = DiscardSnapshotStore()
        sink = store.create(1, 10, 3, one_server(), 2, None)
        assert isinstance(sink, DiscardSnapshotSink)
        assert sink.write(b"first\n") == 6
        sink.close()
        sink.cancel()
        assert sink.id() == "discard"
        assert store.list() == []

    def test_open_is_not_supported(self) -> None:
        """Opening any snapshot raises StoreError, since nothing was kept."""
        store = DiscardSnapshotStore()
        store.create(1, 10, 3, Configuration(), 0, None).close()
        with pytest.raises(StoreError, match="not supported"):
            store.open("discard")
