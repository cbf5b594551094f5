"""The helpers hashicorp's tests are built on: a state machine that remembers, short timeouts.

Mirrors: testing.go (MockFSM, MockSnapshot, MockFSMConfigStore,
         MockMonotonicLogStore, inmemConfig).
Read before: fsm.py (the FSM interface these implement).
Differs: testing.go also holds ``MakeCluster`` and the ``cluster`` type with
         its wait helpers. Here that cluster runs in virtual time, with a
         simulated network and faults on demand, so it lives with the
         simulator: ``raft.sim.Cluster`` (raft/sim/cluster.py).
"""

from __future__ import annotations

from typing import Any, BinaryIO

import msgpack

from raft.config import Config
from raft.configuration import Configuration
from raft.inmem_store import InmemStore
from raft.log import Log
from raft.snapshot import SnapshotSink


class MockSnapshot:
    """The FSM snapshot of ``MockFSM``: the list of applied commands (Mirrors: MockSnapshot)."""

    def __init__(self, logs: list[bytes], max_index: int) -> None:
        self.logs = logs
        self.max_index = max_index

    def persist(self, sink: SnapshotSink) -> None:
        sink.write(msgpack.packb(self.logs[: self.max_index], use_bin_type=True))
        sink.close()

    def release(self) -> None:
        pass


class MockFSM:
    """Remembers every command applied, in order (Mirrors: testing.go MockFSM).

    ``apply`` returns how many commands have been applied, so a client can
    tell which position its command took.
    """

    def __init__(self) -> None:
        self.logs: list[bytes] = []
        self.configurations: list[Configuration] = []

    def apply(self, log: Log) -> Any:
        self.logs.append(log.data)
        return len(self.logs)

    def snapshot(self) -> MockSnapshot:
        return MockSnapshot(list(self.logs), len(self.logs))

    def restore(self, source: BinaryIO) -> None:
        data = msgpack.unpackb(source.read(), raw=False)
        if not isinstance(data, list) or not all(isinstance(x, bytes) for x in data):
            raise ValueError("MockFSM snapshot is not a list of byte strings")
        self.logs = data


class MockMonotonicLogStore(InmemStore):
    """An InmemStore that declares itself monotonic (Mirrors: MockMonotonicLogStore).

    Raft must then remove all old entries after a snapshot install or
    restore, instead of leaving a gap in the indexes.
    """

    def is_monotonic(self) -> bool:
        return True


class MockFSMConfigStore(MockFSM):
    """A MockFSM that also records committed configurations (Mirrors: MockFSMConfigStore)."""

    def store_configuration(self, index: int, configuration: Configuration) -> None:
        self.configurations.append(configuration)



def inmem_config(local_id: str) -> Config:
    """Short timeouts for fast tests (Mirrors: testing.go inmemConfig)."""
    return Config(local_id=local_id, heartbeat_timeout=0.050, election_timeout=0.050,
                  leader_lease_timeout=0.050, commit_timeout=0.005)
