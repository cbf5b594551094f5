"""A replicated key-value store: the state machine, its commands, and linearizable reads.

Paper:   §8 (client interaction); Thesis §6.3 (sessions: each command takes
         effect once), §6.4 (read-only queries with a read index).
Read before: fsm.py (what an FSM is), api.py (apply, verify_leader).
Used by: the fault simulator (fuzz.py), the visualizer, and the raft-kv service.

The store maps string keys to string values; a missing key reads as "".
Four operations: ``get``, ``put``, ``append`` (concatenate) and ``cas``
(compare-and-set: replace the value only if it equals ``expected``).

Exactly once. A client that gets no answer (its leader crashed, a message was
lost) must retry, and the first attempt may have committed after all. Every
command therefore carries the client's ID and a sequence number; the store
remembers, per client, the last sequence number it applied and the answer it
gave, and answers a repeat from that memory instead of applying it again.

Refusing without raising. A committed entry is applied by every server, and
again after every restart, so a command the store cannot accept (an older
sequence number than the client's last, bytes that are not a command) is
answered with ``Result.error`` and changes nothing. Raising instead would
stop every server at the same entry, for good (see fsm.py, ``_fsm_fail``).

Reads. ``read`` offers two ways, both linearizable:

* ``through_log=True``: the read is a log entry like any write. Simple, and
  costs a replication round and a disk write.
* the default, the *read index* of Thesis §6.4: the leader (1) waits until it
  has committed an entry of its own term (its no-op), so its commit index is
  at least as high as any committed entry; (2) notes that commit index;
  (3) confirms with a quorum that it is still leader (``verify_leader``);
  (4) waits until its state machine has applied the noted index (the FSM
  task wakes the reader: ``Raft.wait_applied``); then reads its state
  machine. No log entry, no disk write.

Mirrors: nothing in hashicorp/raft, which leaves the application to the user.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import msgpack

from raft.errors import ErrNotLeader, ErrRaftShutdown, RaftError
from raft.log import Log
from raft.snapshot import SnapshotSink

if TYPE_CHECKING:
    from raft.api import Raft

OPERATIONS = ("get", "put", "append", "cas")


class KVError(RaftError):
    """A malformed command or snapshot for the key-value store."""

    message = "invalid key-value command"


@dataclass(frozen=True)
class Command:
    """One client request. ``(client, seq)`` identifies it across retries."""

    op: str
    key: str
    value: str = ""
    expected: str = ""  # only for cas
    client: str = ""
    seq: int = 0

    def encode(self) -> bytes:
        packed: bytes = msgpack.packb([self.op, self.key, self.value, self.expected, self.client, self.seq],
                                      use_bin_type=True)
        return packed

    @classmethod
    def decode(cls, data: bytes) -> Command:
        try:
            raw = msgpack.unpackb(data, raw=False)
        except Exception as err:  # msgpack raises several unrelated exception types
            raise KVError(f"undecodable command: {err}") from err
        if (not isinstance(raw, list) or len(raw) != 6 or raw[0] not in OPERATIONS
                or not all(isinstance(x, str) for x in raw[1:5])
                or not isinstance(raw[5], int) or isinstance(raw[5], bool) or raw[5] < 0):
            raise KVError(f"malformed command: {raw!r:.80}")
        return cls(*raw)

    def describe(self) -> str:
        if self.op == "get":
            return f"get({self.key!r})"
        if self.op == "cas":
            return f"cas({self.key!r}, {self.expected!r} -> {self.value!r})"
        return f"{self.op}({self.key!r}, {self.value!r})"


@dataclass(frozen=True)
class Result:
    """What the store answers: the value read (get), whether it swapped (cas), else nothing."""

    value: str | None = None
    swapped: bool | None = None
    duplicate: bool = False  # answered from the session memory, not applied again
    error: str | None = None  # the command was refused and changed nothing

    def output(self, op: str) -> Any:
        """The answer in the form the linearizability checker expects."""
        if op == "get":
            return self.value
        if op == "cas":
            return self.swapped
        return None


class KVStore:
    """The key-value state machine (an FSM, see fsm.py)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        # client -> (last sequence number applied, its result)
        self.sessions: dict[str, tuple[int, Result]] = {}
        self.applied_index = 0

    def apply(self, log: Log) -> Result:
        """Apply one committed command; refuse (with ``Result.error``) what cannot be applied, never raise.

        Paper:   Figure 2, All Servers: "apply log[lastApplied] to state machine"; Thesis §6.3
                 (a client's command applies once: a repeated sequence number gets the first answer).
        Mirrors: nothing in hashicorp/raft. This is the ``FSM.Apply`` of the project's own application.
        """
        self.applied_index = log.index
        try:
            command = Command.decode(log.data)
        except KVError as err:
            return Result(error=str(err))
        if command.client:
            last = self.sessions.get(command.client)
            if last is not None and command.seq <= last[0]:
                seq, result = last
                if command.seq == seq:
                    return Result(result.value, result.swapped, duplicate=True)
                return Result(error=f"client {command.client!r} sent seq {command.seq} after seq {seq}: "
                                    "sequence numbers must grow (a restarted client needs a new id)")
        result = self._execute(command)
        if command.client:
            self.sessions[command.client] = (command.seq, result)
        return result

    def _execute(self, command: Command) -> Result:
        current = self.data.get(command.key, "")
        if command.op == "get":
            return Result(value=current)
        if command.op == "put":
            self.data[command.key] = command.value
            return Result()
        if command.op == "append":
            self.data[command.key] = current + command.value
            return Result()
        swapped = current == command.expected
        if swapped:
            self.data[command.key] = command.value
        return Result(swapped=swapped)

    def get(self, key: str) -> str:
        """Read local state directly; linearizable only through ``read``."""
        return self.data.get(key, "")

    def snapshot(self) -> KVSnapshot:
        sessions = {c: [seq, r.value, r.swapped] for c, (seq, r) in self.sessions.items()}
        return KVSnapshot(msgpack.packb([dict(self.data), sessions], use_bin_type=True))

    def restore(self, source: BinaryIO) -> None:
        try:
            data, sessions = msgpack.unpackb(source.read(), raw=False)
            restored = {str(k): str(v) for k, v in data.items()}
            restored_sessions = {str(c): (int(s[0]), Result(s[1], s[2])) for c, s in sessions.items()}
        except Exception as err:  # any malformed snapshot: refuse rather than half-restore
            raise KVError(f"corrupt key-value snapshot: {err}") from err
        self.data = restored
        self.sessions = restored_sessions


class KVSnapshot:
    """A serialized copy of the store, written out by ``persist``."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def persist(self, sink: SnapshotSink) -> None:
        try:
            sink.write(self.payload)
        except Exception:
            sink.cancel()
            raise
        sink.close()

    def release(self) -> None:
        pass


async def read(raft: Raft, key: str, *, through_log: bool = False, timeout: float = 5.0) -> str:
    """A linearizable read of ``key`` on ``raft``, which must be the leader.

    Paper: Thesis §6.4. Raises ``ErrNotLeader`` (or another ``RaftError``)
    when the node cannot serve it; the caller retries elsewhere.
    """
    if through_log:
        future = raft.apply(Command("get", key).encode(), timeout)
        err = await future.error()
        if err is not None:
            raise err
        result = future.response()
        assert isinstance(result, Result)
        return result.value or ""
    deadline = raft.now() + timeout
    # (1) Until our no-op commits, our commit index may lag the true one.
    while not raft.committed_in_current_term():
        if raft.state().name != "Leader":
            raise ErrNotLeader()
        if raft.now() >= deadline:
            raise RaftError("read timed out waiting for the leader's first commit")
        await asyncio.sleep(raft.config().commit_timeout)
    if raft.state().name != "Leader":
        raise ErrNotLeader()
    read_index = raft.commit_index()  # (2)
    err = await raft.verify_leader().error()  # (3)
    if err is not None:
        raise err
    # (4) The FSM task wakes us the moment it has applied read_index: no polling.
    if not await raft.wait_applied(read_index, deadline - raft.now()):
        if raft.shutdown_ch.closed:
            raise ErrRaftShutdown()
        raise RaftError("read timed out waiting for the state machine")
    fsm = raft.fsm
    assert isinstance(fsm, KVStore)
    return fsm.get(key)
