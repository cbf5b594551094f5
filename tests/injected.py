"""Hand-made RPCs for one follower: put exact messages, in an exact order, in front of a node.

The fault simulator finds message orders by chance; a regression test wants
one order for sure. ``lone_follower`` builds a two-server cluster in which
only the follower ``f`` runs, with timeouts so long that it never campaigns;
the other server, ``L``, never starts, and the test speaks for it by putting
requests straight into ``f``'s RPC channel with ``inject``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import msgpack

from raft.commands import AppendEntriesRequest, InstallSnapshotRequest, RPCHeader
from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage, encode_configuration
from raft.log import Log, LogType
from raft.sim import Cluster
from raft.transport import RPC, RPCResponse

LEADER = RPCHeader(id="L", addr="L")
CONFIGURATION = encode_configuration(Configuration([Server(ServerSuffrage.Voter, "f", "f"),
                                                    Server(ServerSuffrage.Voter, "L", "L")]))


@dataclass
class Replies:
    """The answers ``f`` gave, in the order it gave them."""

    answers: list[RPCResponse] = field(default_factory=list)

    def __call__(self, response: RPCResponse) -> None:
        self.answers.append(response)


def lone_follower(monotonic: bool = False, seed: int = 0, **config: Any) -> Cluster:
    """A bootstrapped two-server cluster where only ``f`` runs; its log holds entry 1 (term 1)."""
    conf = Config(heartbeat_timeout=100.0, election_timeout=100.0, leader_lease_timeout=50.0, **config)
    cluster = Cluster(["f", "L"], seed, config=conf, start=False, monotonic_logs=monotonic)
    cluster.start("f")
    cluster.run_for(0.01)
    return cluster


def inject(cluster: Cluster, *requests: Any, snapshot: bytes = b"") -> Replies:
    """Queue ``requests`` for ``f`` at once, in order; an InstallSnapshot carries ``snapshot``."""
    replies = Replies()
    node = cluster.node("f")
    for request in requests:
        reader = io.BytesIO(snapshot) if isinstance(request, InstallSnapshotRequest) else None
        node.rpc_ch.send_nowait(RPC(request, replies, reader))
    return replies


def commands(first: int, last: int, term: int = 1) -> list[Log]:
    """Command entries ``first..last`` whose data names their index (``b"e7"``)."""
    return [Log(index=i, term=term, type=LogType.LogCommand, data=b"e%d" % i) for i in range(first, last + 1)]


def append(first: int, last: int, commit: int, term: int = 1) -> AppendEntriesRequest:
    """AppendEntries from ``L`` carrying entries ``first..last`` of ``term`` after entry ``first - 1``."""
    return AppendEntriesRequest(LEADER, term=term, prev_log_entry=first - 1, prev_log_term=1 if first > 1 else 0,
                                entries=commands(first, last, term), leader_commit_index=commit)


def mock_snapshot(commands_in_it: list[bytes]) -> bytes:
    """The bytes of a MockFSM snapshot holding ``commands_in_it``."""
    data: bytes = msgpack.packb(commands_in_it, use_bin_type=True)
    return data


def install(index: int, data: bytes, term: int = 1) -> InstallSnapshotRequest:
    """InstallSnapshot from ``L`` for a snapshot ending at ``index`` (term ``term``)."""
    return InstallSnapshotRequest(LEADER, term=term, last_log_index=index, last_log_term=term,
                                  configuration=CONFIGURATION, configuration_index=1, size=len(data))
