"""A snapshot store that keeps snapshots as files on the local disk.

Paper:   §7 (log compaction: a snapshot stands in for the log up to
         lastIncludedIndex, so it must survive crashes as the log does).
Mirrors: file_snapshot.go (and the CRC-64 of Go's hash/crc64).
Read before: snapshot.py (the protocols), inmem_snapshot.py (the simplest store).
Read next: discard_snapshot.py, peersjson.py.

Theory of operation
-------------------
Each snapshot is one directory named ``<term>-<index>-<unix_ms>``::

    <base_dir>/snapshots/
        5-130350-1700000000123/        finished: listed and openable
            meta.json                  SnapshotMeta, plus the size and CRC of state.bin
            state.bin                  the bytes the FSM wrote, untouched
        36-204917-1700000004567.tmp/   still being written, or left by a crash

A snapshot is born as a ``.tmp`` directory. ``close`` flushes and fsyncs
``state.bin``, records its size and CRC in ``meta.json`` (fsynced too), and
renames the directory to drop the suffix. A rename within one directory is
atomic on POSIX, so a crash leaves either a ``.tmp`` directory, which ``list``
never returns, or a complete snapshot; a half-written one is never restored.
Finally the parent directory is fsynced so the rename itself survives a power
cut, and snapshots beyond ``retain`` are deleted, oldest first.

``open`` re-reads ``state.bin`` before handing it out and compares its size and
CRC with ``meta.json``. A server that restores a damaged snapshot would silently
diverge from its peers, so corruption becomes a ``StoreError`` instead and the
caller falls back to an older snapshot.

The ``meta.json`` format
------------------------
A JSON object, indented so a person can read it::

    {"version": 1, "id": "3-10-1700000000123", "index": 10, "term": 3,
     "configuration": {"servers": [{"suffrage": 0, "id": "n1", "address": "n1"}]},
     "configuration_index": 2, "size": 13, "crc": "1629fd877cce3d6c"}

``crc`` is the CRC-64/ECMA of ``state.bin`` as 16 lowercase hex digits (the
same big-endian bytes Go's ``hash.Sum(nil)`` yields), or ``null`` while the
snapshot is being written. ``suffrage`` uses ``ServerSuffrage``'s numbers.

Differs: Go encodes its struct with Go's field names (``"ID"``, ``"CRC"`` in
base64) and a legacy ``Peers`` field; these files are therefore not
interchangeable with hashicorp's. Everything read back from disk is
type-checked before use, where Go trusts its own JSON.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from raft.config import SnapshotVersionMax, SnapshotVersionMin
from raft.configuration import Configuration, configuration_from_dict, configuration_to_dict
from raft.errors import ConfigError, StoreError
from raft.snapshot import SnapshotMeta

SNAP_PATH = "snapshots"  # the store's own subdirectory of base_dir
META_FILE_PATH = "meta.json"
STATE_FILE_PATH = "state.bin"
TMP_SUFFIX = ".tmp"  # marks a snapshot that is not finished
TEST_PATH = "permTest"  # touched once at start-up to prove we can write

# meta.json holds a handful of numbers and the membership; even a cluster of
# thousands of servers fits in far less. Anything bigger is damage (or an
# attack), and we refuse to read it into memory.
MAX_META_BYTES = 1 << 20
_READ_CHUNK = 1 << 16  # state.bin is hashed in pieces, never loaded whole
_MAX_UINT64 = (1 << 64) - 1  # Go stores index, term and size as uint64


# -- CRC-64/ECMA, as Go's hash/crc64 computes it -------------------------------

CRC64_ECMA = 0xC96C5795D7870F42  # ECMA-182 polynomial, bit-reversed (Go: crc64.ECMA)


def _make_crc64_table(polynomial: int) -> tuple[int, ...]:
    """The remainder of every possible input byte, for a bit-reversed CRC.

    Mirrors: Go hash/crc64 MakeTable (the simple table, without slicing-by-8).
    """
    table = []
    for byte in range(256):
        remainder = byte
        for _ in range(8):
            # Bit-reversed ("reflected") CRCs shift right: the low bit is the
            # highest power of x, and when it falls off we subtract (xor) the
            # polynomial.
            remainder = (remainder >> 1) ^ polynomial if remainder & 1 else remainder >> 1
        table.append(remainder)
    return tuple(table)


_ECMA_TABLE = _make_crc64_table(CRC64_ECMA)


def crc64_update(crc: int, data: bytes) -> int:
    """Extend the checksum ``crc`` (0 for nothing yet) over ``data``.

    Mirrors: Go hash/crc64 Update with the ECMA table.

    The register starts at all ones and is inverted again at the end, so that
    leading zero bytes still change the result; because of that inversion a
    finished checksum can be fed back in to continue it.
    Check values: ``crc64_update(0, b"123456789") == 0x995DC9BBDF1939FA`` (the
    CRC-64/XZ catalogue entry) and ``crc64_update(0, b"hello world") ==
    0x53037ECDEF2352DA``, which Go's ``crc64.Checksum`` also returns.
    """
    table = _ECMA_TABLE
    register = crc ^ _MAX_UINT64
    for byte in data:
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register ^ _MAX_UINT64


# -- metadata on disk ----------------------------------------------------------


@dataclass
class FileSnapshotMeta:
    """The public metadata plus the checksum of state.bin (Mirrors: fileSnapshotMeta).

    ``crc`` is None only while the snapshot is being written.
    """

    meta: SnapshotMeta
    crc: int | None = None


class _CorruptMeta(ValueError):
    """meta.json exists but cannot be trusted; the message says why."""


def _short(value: object, limit: int = 60) -> str:
    """A repr cut to ``limit`` characters: values from disk may be enormous."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _encode_meta(file_meta: FileSnapshotMeta) -> bytes:
    meta = file_meta.meta
    document = {
        "version": meta.version,
        "id": meta.id,
        "index": meta.index,
        "term": meta.term,
        "configuration": configuration_to_dict(meta.configuration),
        "configuration_index": meta.configuration_index,
        "size": meta.size,
        "crc": None if file_meta.crc is None else f"{file_meta.crc:016x}",
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _uint_field(document: dict[str, Any], key: str) -> int:
    value = document.get(key)
    # bool is a subclass of int in Python; "index": true is damage, not 1.
    if type(value) is not int or not 0 <= value <= _MAX_UINT64:
        raise _CorruptMeta(f"{key!r} must be an unsigned 64-bit integer, not {_short(value)}")
    return value


def _crc_field(value: object) -> int:
    if not isinstance(value, str) or len(value) != 16:
        raise _CorruptMeta(f"'crc' must be 16 hex digits, not {_short(value)}")
    try:
        return int(value, 16)
    except ValueError:
        raise _CorruptMeta(f"'crc' must be 16 hex digits, not {_short(value)}") from None


def _decode_meta(raw: bytes) -> FileSnapshotMeta:
    """Parse and check a finished snapshot's meta.json; raise ``_CorruptMeta`` if unusable.

    Mirrors: file_snapshot.go (*FileSnapshotStore).readMeta (the decoding half).
    Differs: every field is type-checked and a finished snapshot must carry a CRC.
    """
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as err:  # bad UTF-8 and bad JSON are both ValueErrors
        raise _CorruptMeta(f"not valid JSON: {_short(str(err), 120)}") from None
    if not isinstance(document, dict):
        raise _CorruptMeta(f"expected a JSON object, not {type(document).__name__}")
    snapshot_id = document.get("id")
    if not isinstance(snapshot_id, str):
        raise _CorruptMeta(f"'id' must be a string, not {_short(snapshot_id)}")
    try:
        configuration = configuration_from_dict(document.get("configuration"))
    except ConfigError as err:
        raise _CorruptMeta(f"bad 'configuration': {_short(str(err), 120)}") from None
    meta = SnapshotMeta(
        version=_uint_field(document, "version"),
        id=snapshot_id,
        index=_uint_field(document, "index"),
        term=_uint_field(document, "term"),
        configuration=configuration,
        configuration_index=_uint_field(document, "configuration_index"),
        size=_uint_field(document, "size"),
    )
    return FileSnapshotMeta(meta, _crc_field(document.get("crc")))


def snapshot_name(term: int, index: int, now: float) -> str:
    """``<term>-<index>-<unix milliseconds>`` (Mirrors: snapshotName).

    Differs: the time is passed in rather than read, see ``FileSnapshotStore``.
    """
    return f"{term}-{index}-{int(now * 1000)}"


def _sync_directory(path: str) -> None:
    """Make a directory's entries (creations, renames) durable.

    Windows cannot open a directory for fsync, and its file systems do not
    need it, so there we skip it as Go does.
    """
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the store -------------------------------------------------------------------


class FileSnapshotStore:
    """Keeps the newest ``retain`` snapshots under ``base_dir/snapshots``.

    Mirrors: file_snapshot.go FileSnapshotStore and NewFileSnapshotStoreWithLogger.
    Differs: ``clock`` (seconds since the epoch, default ``time.time``) is
    injectable; it only names snapshots, and a simulation passes its virtual
    clock so that names, and hence runs, stay deterministic. ``no_sync`` is a
    public keyword (Go: a private field for tests). A ``retain`` below 1 raises
    ``ValueError``; an unusable directory raises ``StoreError``.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        retain: int,
        *,
        logger: logging.Logger | None = None,
        no_sync: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retain < 1:
            raise ValueError("must retain at least one snapshot")
        self.path = os.path.join(os.fspath(base_dir), SNAP_PATH)
        self.retain = retain
        self.logger = logger if logger is not None else logging.getLogger("raft.snapshot")
        self.no_sync = no_sync  # skip fsync: faster, and only safe when crashes do not matter
        self.clock = clock
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as err:
            raise StoreError(f"snapshot path {self.path} not accessible: {err}") from err
        self._test_permissions()

    def _test_permissions(self) -> None:
        """Fail now, not at the first snapshot, if the directory is read-only.

        Mirrors: (*FileSnapshotStore).testPermissions.
        """
        probe = os.path.join(self.path, TEST_PATH)
        try:
            with open(probe, "wb"):
                pass
            os.remove(probe)
        except OSError as err:
            raise StoreError(f"permissions test failed in {self.path}: {err}") from err

    def create(self, version: int, index: int, term: int, configuration: Configuration,
               configuration_index: int, trans: object = None) -> FileSnapshotSink:
        """Start a snapshot in a fresh ``.tmp`` directory (Mirrors: Create).

        Differs: ``trans`` is unused (Go needs it only for the legacy Peers
        field). If the name is taken (same term, index and millisecond) we
        raise rather than write into the other snapshot's directory, and a
        failure part-way removes the directory instead of leaving it behind.
        """
        if version != 1:
            raise StoreError(f"unsupported snapshot version {version}")
        # A negative number would be written but rejected when read back: refuse it now.
        if min(index, term, configuration_index) < 0:
            raise StoreError(f"snapshot index, term and configuration index must not be negative, "
                             f"got {index}, {term}, {configuration_index}")
        name = snapshot_name(term, index, self.clock())
        directory = os.path.join(self.path, name + TMP_SUFFIX)
        self.logger.info("creating new snapshot at %s", directory)
        if os.path.lexists(os.path.join(self.path, name)):
            raise StoreError(f"snapshot {name} already exists")
        try:
            # Creates base_dir/snapshots again too, should it have been removed.
            os.makedirs(directory)
        except FileExistsError as err:
            raise StoreError(f"snapshot {name} is already being written") from err
        except OSError as err:
            self.logger.error("failed to make snapshot directory %s: %s", directory, err)
            raise StoreError(f"failed to make snapshot directory {directory}: {err}") from err

        meta = SnapshotMeta(version, name, index, term, configuration.clone(), configuration_index, 0)
        try:
            return FileSnapshotSink(self, directory, FileSnapshotMeta(meta))
        except OSError as err:
            self.logger.error("failed to start snapshot %s: %s", name, err)
            shutil.rmtree(directory, ignore_errors=True)
            raise StoreError(f"failed to start snapshot {name}: {err}") from err

    def _read_meta(self, name: str) -> FileSnapshotMeta:
        """Load and check ``<name>/meta.json``; raise ``StoreError`` naming the snapshot.

        Mirrors: (*FileSnapshotStore).readMeta.
        Differs: the recorded id must equal the directory name. Reaping
        deletes by id, so a forged id must never point elsewhere.
        """
        path = os.path.join(self.path, name, META_FILE_PATH)
        try:
            with open(path, "rb") as file:
                raw = file.read(MAX_META_BYTES + 1)
        except FileNotFoundError:
            raise StoreError(f"snapshot {name}: meta.json is missing") from None
        except OSError as err:
            raise StoreError(f"snapshot {name}: cannot read meta.json: {err}") from err
        try:
            if len(raw) > MAX_META_BYTES:
                raise _CorruptMeta(f"larger than {MAX_META_BYTES} bytes")
            file_meta = _decode_meta(raw)
            if file_meta.meta.id != name:
                raise _CorruptMeta(f"'id' {_short(file_meta.meta.id)} does not match its directory")
        except _CorruptMeta as err:
            raise StoreError(f"snapshot {name}: meta.json is corrupt: {err}") from None
        return file_meta

    def _get_snapshots(self) -> list[FileSnapshotMeta]:
        """Every finished, readable snapshot, newest first (Mirrors: getSnapshots).

        "Newest" is Go's order: highest term, then highest index, then the
        name, whose last part is the creation time. The clock only breaks ties.
        """
        try:
            entries = list(os.scandir(self.path))
        except OSError as err:
            self.logger.error("failed to scan snapshot directory %s: %s", self.path, err)
            raise StoreError(f"failed to scan snapshot directory {self.path}: {err}") from err
        found = []
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue  # the permission probe, or anything else that is not ours
            if entry.name.endswith(TMP_SUFFIX):
                # Being written now, or orphaned by a crash: never usable.
                self.logger.warning("skipping snapshot %s: it is temporary (unfinished)", entry.name)
                continue
            try:
                file_meta = self._read_meta(entry.name)
            except StoreError as err:
                self.logger.warning("skipping snapshot %s: %s", entry.name, err)
                continue
            version = file_meta.meta.version
            if not SnapshotVersionMin <= version <= SnapshotVersionMax:
                self.logger.warning("skipping snapshot %s: version %d is not supported", entry.name, version)
                continue
            found.append(file_meta)
        found.sort(key=lambda f: (f.meta.term, f.meta.index, f.meta.id), reverse=True)
        return found

    def list(self) -> list[SnapshotMeta]:
        """The usable snapshots, newest first, at most ``retain`` of them (Mirrors: List).

        A directory whose meta.json is missing or corrupt is skipped with a
        warning that names it and the reason; the others are still listed.
        """
        return [file_meta.meta for file_meta in self._get_snapshots()[: self.retain]]

    def open(self, id: str) -> tuple[SnapshotMeta, BinaryIO]:
        """The metadata and a reader for snapshot ``id``, checked first (Mirrors: Open).

        The caller must close the reader. Raises ``StoreError`` if the
        snapshot is missing, its meta.json is corrupt, or state.bin does not
        match the recorded size or CRC.
        Differs: the size is checked too (Go relies on the CRC alone), and an
        id that is not a plain snapshot name is refused.
        """
        if not _is_snapshot_name(id):
            raise StoreError(f"invalid snapshot id {_short(id)}")
        file_meta = self._read_meta(id)
        path = os.path.join(self.path, id, STATE_FILE_PATH)
        try:
            reader = open(path, "rb")  # noqa: SIM115 -- handed to the caller, who closes it
        except OSError as err:
            self.logger.error("failed to open state file %s: %s", path, err)
            raise StoreError(f"snapshot {id}: cannot open state.bin: {err}") from err
        try:
            self._verify_state(id, file_meta, reader)
        except BaseException:
            reader.close()
            raise
        return file_meta.meta, reader

    def _verify_state(self, id: str, file_meta: FileSnapshotMeta, reader: BinaryIO) -> None:
        """Raise ``StoreError`` unless ``reader`` holds exactly what meta.json describes."""
        expected_size = file_meta.meta.size
        try:
            # Compare sizes before reading: a truncated file is reported as
            # such, not as a puzzling CRC mismatch.
            actual_size = os.fstat(reader.fileno()).st_size
            if actual_size != expected_size:
                self.logger.error("snapshot %s: state.bin has %d bytes, meta.json says %d",
                                  id, actual_size, expected_size)
                raise StoreError(f"snapshot {id} is corrupt: state.bin size is {actual_size} bytes but "
                                 f"meta.json records {expected_size} (truncated or overwritten)")
            computed = 0
            while chunk := reader.read(_READ_CHUNK):
                computed = crc64_update(computed, chunk)
            reader.seek(0)
        except OSError as err:
            raise StoreError(f"snapshot {id}: failed to read state.bin: {err}") from err
        if computed != file_meta.crc:
            self.logger.error("snapshot %s: CRC checksum failed (stored %016x, computed %016x)",
                              id, file_meta.crc, computed)
            raise StoreError(f"snapshot {id} is corrupt: CRC mismatch "
                             f"(meta.json records {file_meta.crc:016x}, state.bin hashes to {computed:016x})")

    def reap_snapshots(self) -> None:
        """Delete the snapshots beyond the newest ``retain`` (Mirrors: ReapSnapshots).

        Only snapshots ``list`` would return are counted or deleted: corrupt
        ones and ``.tmp`` leftovers are left for an operator to inspect, as in Go.
        """
        for file_meta in self._get_snapshots()[self.retain:]:
            path = os.path.join(self.path, file_meta.meta.id)
            self.logger.info("reaping snapshot %s", path)
            try:
                shutil.rmtree(path)
            except OSError as err:
                self.logger.error("failed to reap snapshot %s: %s", path, err)
                raise StoreError(f"failed to reap snapshot {path}: {err}") from err


def _is_snapshot_name(name: object) -> bool:
    """True if ``name`` could be a finished snapshot's directory and nothing more.

    Ids arrive from callers; one containing a separator or ``..`` would
    reach outside the store's directory.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or name.endswith(TMP_SUFFIX):
        return False
    separators = {"/", "\0", os.sep} | ({os.altsep} if os.altsep else set())
    return not any(sep in name for sep in separators)


# -- the sink --------------------------------------------------------------------


class FileSnapshotSink:
    """Writes one snapshot into its ``.tmp`` directory (Mirrors: FileSnapshotSink).

    Writes go through Python's buffered file (Go: a bufio.Writer) and into a
    running CRC, so nothing is read back when the snapshot is closed.
    """

    def __init__(self, store: FileSnapshotStore, directory: str, file_meta: FileSnapshotMeta) -> None:
        self.store = store
        self.logger = store.logger
        self.dir = directory
        self.parent_dir = store.path
        self.meta = file_meta
        self.no_sync = store.no_sync
        self._crc = 0
        self._closed = False
        # As in Go, meta.json is written at once (without a CRC yet), so even
        # an abandoned .tmp directory says what it was meant to be.
        self._write_meta()
        self._state_file = open(os.path.join(directory, STATE_FILE_PATH), "wb")  # noqa: SIM115 -- closed in close/cancel

    def id(self) -> str:
        """The name ``open`` will accept once the sink is closed (Mirrors: ID)."""
        return self.meta.meta.id

    def write(self, data: bytes) -> int:
        """Append to state.bin (Mirrors: Write)."""
        if self._closed:
            raise StoreError(f"write to a closed snapshot sink ({self.id()})")
        try:
            self._state_file.write(data)
        except OSError as err:
            raise StoreError(f"snapshot {self.id()}: failed to write state.bin: {err}") from err
        self._crc = crc64_update(self._crc, data)
        return len(data)

    def close(self) -> None:
        """Finish the snapshot and move it into place; a second call does nothing.

        Mirrors: (*FileSnapshotSink).Close.
        Differs: a failure before the rename removes the ``.tmp`` directory
        (Go does so only if finalizing fails). The ``.tmp`` directory is also
        fsynced before the rename so its two files' entries are durable.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._finalize()
            self._write_meta()
            if not self.no_sync:
                _sync_directory(self.dir)
        except OSError as err:
            self.logger.error("failed to finalize snapshot %s: %s", self.id(), err)
            self._discard_directory()
            raise StoreError(f"failed to finalize snapshot {self.id()}: {err}") from err

        final_path = self.dir.removesuffix(TMP_SUFFIX)
        try:
            # The commit point: before this line the snapshot does not exist.
            os.rename(self.dir, final_path)
            if not self.no_sync:
                _sync_directory(self.parent_dir)
        except OSError as err:
            self.logger.error("failed to move snapshot %s into place: %s", self.id(), err)
            raise StoreError(f"failed to move snapshot {self.id()} into place: {err}") from err
        self.store.reap_snapshots()

    def cancel(self) -> None:
        """Throw the snapshot away; after ``close`` this does nothing (Mirrors: Cancel).

        Differs: the state file is closed without a flush or fsync first, as
        its bytes are about to be deleted.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._state_file.close()
        except OSError as err:
            self.logger.warning("closing state file of cancelled snapshot %s: %s", self.id(), err)
        try:
            shutil.rmtree(self.dir)
        except OSError as err:
            raise StoreError(f"failed to remove cancelled snapshot {self.dir}: {err}") from err

    def _finalize(self) -> None:
        """Flush, fsync and close state.bin; record its size and CRC (Mirrors: finalize)."""
        try:
            self._state_file.flush()
            if not self.no_sync:
                os.fsync(self._state_file.fileno())
            size = os.fstat(self._state_file.fileno()).st_size
        finally:
            self._state_file.close()
        self.meta.meta.size = size
        self.meta.crc = self._crc

    def _write_meta(self) -> None:
        """Write meta.json in full, fsynced unless ``no_sync`` (Mirrors: writeMeta)."""
        with open(os.path.join(self.dir, META_FILE_PATH), "wb") as file:
            file.write(_encode_meta(self.meta))
            file.flush()
            if not self.no_sync:
                os.fsync(file.fileno())

    def _discard_directory(self) -> None:
        try:
            shutil.rmtree(self.dir)
        except OSError as err:
            self.logger.error("failed to delete temporary snapshot directory %s: %s", self.dir, err)
