"""Every message Raft servers send each other, and their msgpack encoding.

Paper:   Figure 2 (AppendEntries RPC, RequestVote RPC), Figure 13
         (InstallSnapshot RPC); Thesis §9.6 (pre-vote), §3.10 (TimeoutNow).
Mirrors: commands.go.
Read next: transport.py (how messages travel), raft.py (who handles them).

Each message is a dataclass; each field's comment names its twin in the
paper's Figure 2 where there is one. Every message starts with an
``RPCHeader`` naming the *sender*, on requests and responses alike.

All messages go through ``encode_message``/``decode_message``, also in the
simulator: a node never receives the very object another node built, so a
handler that mutates a request cannot corrupt the sender, and a field that
msgpack cannot carry fails in the first simulated run rather than on the wire.
Decoding checks every field's type, so a malformed frame becomes a
``CodecError`` instead of a crash deep inside a handler.

Differs: hashicorp's deprecated fields (``Leader``, ``Candidate``, ``Peers``)
are left out because protocol versions below 3 are not implemented. IDs and
addresses are strings rather than byte slices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

from raft.errors import CodecError
from raft.log import Log, LogType


@dataclass
class RPCHeader:
    """Who sent a message and which protocol version it speaks (Mirrors: RPCHeader)."""

    protocol_version: int = 3
    id: str = ""  # the sender's ServerID
    addr: str = ""  # the sender's ServerAddress


@dataclass
class AppendEntriesRequest:
    """Replicate entries, or with no entries, assert leadership (Figure 2: AppendEntries RPC)."""

    TYPE: ClassVar[int] = 0  # Go: rpcAppendEntries
    header: RPCHeader = field(default_factory=RPCHeader)
    term: int = 0  # Figure 2: term, the leader's term
    prev_log_entry: int = 0  # Figure 2: prevLogIndex, the entry just before the new ones
    prev_log_term: int = 0  # Figure 2: prevLogTerm
    entries: list[Log] = field(default_factory=list)  # Figure 2: entries[]
    leader_commit_index: int = 0  # Figure 2: leaderCommit


@dataclass
class AppendEntriesResponse:
    """A follower's answer to AppendEntries (Figure 2: results)."""

    TYPE: ClassVar[int] = 64
    header: RPCHeader = field(default_factory=RPCHeader)
    term: int = 0  # Figure 2: term, so a stale leader learns it is stale
    last_log: int = 0  # not in Figure 2: our last index, a hint to skip back faster
    success: bool = False  # Figure 2: success
    # Not in Figure 2: the failure was a log mismatch, not a fault, so the
    # leader should retry at once rather than back off.
    no_retry_backoff: bool = False
    # Not in hashicorp (end of §5.3, accelerated log backup): on a mismatch,
    # the term of our entry at prevLogIndex (0 if we have none there) and the
    # first index we hold with that term (our log's length + 1 if none).
    conflict_term: int = 0
    conflict_index: int = 0


@dataclass
class RequestVoteRequest:
    """A candidate asks for a vote (Figure 2: RequestVote RPC)."""

    TYPE: ClassVar[int] = 1  # Go: rpcRequestVote
    header: RPCHeader = field(default_factory=RPCHeader)
    term: int = 0  # Figure 2: term, the candidate's term
    last_log_index: int = 0  # Figure 2: lastLogIndex
    last_log_term: int = 0  # Figure 2: lastLogTerm
    # Not in Figure 2 (Thesis §3.10): the old leader asked for this election,
    # so voters should ignore that they still know a leader.
    leadership_transfer: bool = False


@dataclass
class RequestVoteResponse:
    """A server's answer to RequestVote (Figure 2: results)."""

    TYPE: ClassVar[int] = 65
    header: RPCHeader = field(default_factory=RPCHeader)
    term: int = 0  # Figure 2: term
    granted: bool = False  # Figure 2: voteGranted


@dataclass
class RequestPreVoteRequest:
    """Would you vote for me? Asked before a real election (Thesis §9.6).

    The term is the one the candidate *would* use; nobody changes its term
    for a pre-vote, so a server cut off from the cluster cannot inflate terms.
    The candidate is identified by the header.
    """

    TYPE: ClassVar[int] = 4  # Go: rpcRequestPreVote
    header: RPCHeader = field(default_factory=RPCHeader)
    term: int = 0  # the candidate's current term + 1
    last_log_index: int = 0
    last_log_term: int = 0


@dataclass
class RequestPreVoteResponse:
    """A server's answer to RequestPreVote."""

    TYPE: ClassVar[int] = 68
    header: RPCHeader = field(default_factory=RPCHeader)
    term: int = 0
    granted: bool = False


@dataclass
class InstallSnapshotRequest:
    """Replace a lagging follower's state with a snapshot (Figure 13: InstallSnapshot RPC).

    The snapshot bytes do not travel in this message: the transport streams
    ``size`` bytes after it.
    """

    TYPE: ClassVar[int] = 2  # Go: rpcInstallSnapshot
    header: RPCHeader = field(default_factory=RPCHeader)
    snapshot_version: int = 1
    term: int = 0  # Figure 13: term
    last_log_index: int = 0  # Figure 13: lastIncludedIndex
    last_log_term: int = 0  # Figure 13: lastIncludedTerm
    configuration: bytes = b""  # the membership as of the snapshot (encode_configuration)
    configuration_index: int = 0  # the log index of that membership
    size: int = 0  # how many snapshot bytes follow


@dataclass
class InstallSnapshotResponse:
    """A follower's answer to InstallSnapshot (Figure 13: results)."""

    TYPE: ClassVar[int] = 66
    header: RPCHeader = field(default_factory=RPCHeader)
    term: int = 0  # Figure 13: term
    success: bool = False


@dataclass
class TimeoutNowRequest:
    """Start an election now: the leader is handing over (Thesis §3.10)."""

    TYPE: ClassVar[int] = 3  # Go: rpcTimeoutNow
    header: RPCHeader = field(default_factory=RPCHeader)
    # The leader's term. Not in hashicorp: it lets a follower refuse a stale copy.
    term: int = 0


@dataclass
class TimeoutNowResponse:
    """Acknowledges TimeoutNow."""

    TYPE: ClassVar[int] = 67
    header: RPCHeader = field(default_factory=RPCHeader)


Message = (
    AppendEntriesRequest
    | AppendEntriesResponse
    | RequestVoteRequest
    | RequestVoteResponse
    | RequestPreVoteRequest
    | RequestPreVoteResponse
    | InstallSnapshotRequest
    | InstallSnapshotResponse
    | TimeoutNowRequest
    | TimeoutNowResponse
)

MESSAGE_TYPES: dict[int, type[Any]] = {
    cls.TYPE: cls
    for cls in (
        AppendEntriesRequest,
        AppendEntriesResponse,
        RequestVoteRequest,
        RequestVoteResponse,
        RequestPreVoteRequest,
        RequestPreVoteResponse,
        InstallSnapshotRequest,
        InstallSnapshotResponse,
        TimeoutNowRequest,
        TimeoutNowResponse,
    )
}

REQUEST_TYPES = {code: cls for code, cls in MESSAGE_TYPES.items() if code < 64}


# -- encoding ---------------------------------------------------------------------
#
# A message is the msgpack array [TYPE, body] where body maps field names to
# values. The header is [protocol_version, id, addr]; an entry is
# [index, term, type, data, extensions, appended_at].


_LOG_TYPES = frozenset(int(t) for t in LogType)


def _entry_to_wire(entry: Log) -> list[Any]:
    return [entry.index, entry.term, int(entry.type), entry.data, entry.extensions, entry.appended_at]


def _entry_from_wire(raw: Any) -> Log:
    if not isinstance(raw, list) or len(raw) != 6:
        raise CodecError(f"malformed log entry: {raw!r:.80}")
    index, term, kind, data, extensions, appended_at = raw
    _expect_uint("entry index", index)
    _expect_uint("entry term", term)
    if not isinstance(kind, int) or isinstance(kind, bool) or kind not in _LOG_TYPES:
        raise CodecError(f"unknown log entry type {kind!r}")
    if not isinstance(data, bytes) or not isinstance(extensions, bytes):
        raise CodecError("log entry data and extensions must be bytes")
    if not isinstance(appended_at, (int, float)) or isinstance(appended_at, bool):
        raise CodecError("log entry appended_at must be a number")
    return Log(index, term, LogType(kind), data, extensions, float(appended_at))


def _expect_uint(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CodecError(f"field {name} must be a non-negative integer, got {value!r:.40}")


def _field_table(cls: type[Any]) -> tuple[tuple[tuple[str, Any], ...], frozenset[str]]:
    pairs = tuple((f.name, f.type) for f in dataclasses.fields(cls))
    return pairs, frozenset(name for name, _ in pairs)


# Each message class's (name, annotation) pairs in order, and the set of
# names, looked up once: every RPC goes through here on both sides.
_FIELDS = {cls: _field_table(cls) for cls in MESSAGE_TYPES.values()}


def encode_message(message: Message) -> bytes:
    """Serialize any message to bytes."""
    body: dict[str, Any] = {}
    for name, _ in _FIELDS[type(message)][0]:
        value = getattr(message, name)
        if name == "header":
            value = [value.protocol_version, value.id, value.addr]
        elif name == "entries":
            value = [_entry_to_wire(entry) for entry in value]
        body[name] = value
    return msgpack.packb([message.TYPE, body], use_bin_type=True)  # type: ignore[no-any-return]


def decode_message(buf: bytes, expected: type[Any] | None = None) -> Any:
    """Parse bytes made by ``encode_message``; raise ``CodecError`` if they are not valid.

    With ``expected``, the message must also be of that class.
    """
    try:
        raw = msgpack.unpackb(buf, raw=False, strict_map_key=True)
    except Exception as err:  # msgpack raises several unrelated exception types
        raise CodecError(f"undecodable message: {err}") from err
    if not isinstance(raw, list) or len(raw) != 2 or not isinstance(raw[1], dict):
        raise CodecError("a message must be [type, body]")
    code, body = raw
    cls = MESSAGE_TYPES.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    if cls is None:
        raise CodecError(f"unknown message type {code!r:.40}")
    if expected is not None and cls is not expected:
        raise CodecError(f"expected {expected.__name__}, got {cls.__name__}")
    return _build(cls, body)


def _build(cls: type[Any], body: dict[Any, Any]) -> Any:
    pairs, names = _FIELDS[cls]
    if body.keys() != names:
        missing = sorted(names - set(body))
        extra = sorted(str(k) for k in set(body) - names)
        raise CodecError(f"{cls.__name__}: missing fields {missing}, unknown fields {extra}")
    values: dict[str, Any] = {}
    for name, annotation in pairs:
        value = body[name]
        if name == "header":
            if (
                not isinstance(value, list)
                or len(value) != 3
                or not isinstance(value[1], str)
                or not isinstance(value[2], str)
            ):
                raise CodecError(f"{cls.__name__}: malformed header")
            _expect_uint("header.protocol_version", value[0])
            value = RPCHeader(value[0], value[1], value[2])
        elif name == "entries":
            if not isinstance(value, list):
                raise CodecError(f"{cls.__name__}: entries must be a list")
            value = [_entry_from_wire(raw) for raw in value]
        else:
            _check_scalar(cls, name, annotation, value)
        values[name] = value
    return cls(**values)


def _check_scalar(cls: type[Any], name: str, annotation: Any, value: Any) -> None:
    if annotation == "bool":
        ok = isinstance(value, bool)
    elif annotation == "bytes":
        ok = isinstance(value, bytes)
    elif annotation == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    else:  # pragma: no cover - a new field type needs a rule here
        raise AssertionError(f"no codec rule for {cls.__name__}.{name}: {annotation}")
    if not ok:
        raise CodecError(f"{cls.__name__}.{name} must be {annotation}, got {value!r:.40}")


def round_trip(message: Message) -> Any:
    """Encode and decode ``message``: what a receiver sees after the wire."""
    return decode_message(encode_message(message), type(message))


RPC_NAMES: dict[type[Any], str] = {
    AppendEntriesRequest: "append_entries",
    AppendEntriesResponse: "append_entries",
    RequestVoteRequest: "request_vote",
    RequestVoteResponse: "request_vote",
    RequestPreVoteRequest: "request_pre_vote",
    RequestPreVoteResponse: "request_pre_vote",
    InstallSnapshotRequest: "install_snapshot",
    InstallSnapshotResponse: "install_snapshot",
    TimeoutNowRequest: "timeout_now",
    TimeoutNowResponse: "timeout_now",
}


def is_heartbeat(message: Any) -> bool:
    """An AppendEntries that carries only the leader's term and address.

    Mirrors: the heartbeat test in net_transport.go (handleCommand).
    """
    return (
        isinstance(message, AppendEntriesRequest)
        and message.term != 0
        and bool(message.header.addr)
        and message.prev_log_entry == 0
        and message.prev_log_term == 0
        and not message.entries
        and message.leader_commit_index == 0
    )


def summarize(message: Any) -> dict[str, Any]:
    """The fields of a message as plain data for the event stream.

    Entries are reduced to their index, term and type so that a trace stays
    small; the entries themselves appear in "append" events.
    """
    data: dict[str, Any] = {}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if f.name == "header":
            continue
        if f.name == "entries":
            data["entries"] = [[e.index, e.term, e.type.name] for e in value]
        elif isinstance(value, bytes):
            data[f.name] = len(value)
        else:
            data[f.name] = value
    return data
