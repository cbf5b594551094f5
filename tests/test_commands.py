"""Tests for raft/commands.py: the messages and their msgpack codec.

Mirrors: commands.go (the message types) and the heartbeat test of
net_transport.go; the codec itself has no Go twin (Go relies on go-msgpack).

The claim throughout: every message survives encode/decode unchanged, and
decode_message turns *any* malformed input into CodecError, never into
another exception type that would crash a handler.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raft.commands import (
    MESSAGE_TYPES,
    REQUEST_TYPES,
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestPreVoteRequest,
    RequestPreVoteResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    RPCHeader,
    TimeoutNowRequest,
    TimeoutNowResponse,
    decode_message,
    encode_message,
    is_heartbeat,
    round_trip,
)
from raft.errors import CodecError
from raft.log import Log, LogType

# No deadline: a wall-clock limit per example is a timed test, and it fails on a loaded machine.
HYPOTHESIS = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


def header(node: str = "n1") -> RPCHeader:
    return RPCHeader(protocol_version=3, id=node, addr=f"{node}:8300")


# One message of every type, every field set to something other than its default.
SAMPLES: list[Any] = [
    AppendEntriesRequest(
        header=header(), term=10, prev_log_entry=100, prev_log_term=4,
        entries=[
            Log(101, 4, LogType.LogNoop, b"", b"", 1.5),
            Log(102, 4, LogType.LogCommand, b"set x 1", b"ext", 2.25),
            Log(103, 4, LogType.LogConfiguration, b"\x81\xa7servers\x90", b"", 3.0),
            Log(104, 4, LogType.LogBarrier, b"", b"\x00", 0.0),
            Log(105, 4, LogType.LogAddPeerDeprecated, b"a", b"", 0.0),
            Log(106, 4, LogType.LogRemovePeerDeprecated, b"r", b"", 0.0),
        ],
        leader_commit_index=90,
    ),
    AppendEntriesResponse(header=header("n2"), term=4, last_log=90, success=True, no_retry_backoff=True),
    RequestVoteRequest(header=header(), term=20, last_log_index=100, last_log_term=19, leadership_transfer=True),
    RequestVoteResponse(header=header("n2"), term=100, granted=True),
    RequestPreVoteRequest(header=header(), term=21, last_log_index=100, last_log_term=19),
    RequestPreVoteResponse(header=header("n2"), term=20, granted=True),
    InstallSnapshotRequest(
        header=header(), snapshot_version=1, term=10, last_log_index=100, last_log_term=9,
        configuration=b"\x81\xa7servers\x90", configuration_index=50, size=10,
    ),
    InstallSnapshotResponse(header=header("n2"), term=10, success=True),
    TimeoutNowRequest(header=header()),
    TimeoutNowResponse(header=header("n2")),
]


def sample_id(message: Any) -> str:
    return type(message).__name__


def wire(message: Any) -> tuple[int, dict[str, Any]]:
    """The plain msgpack structure of an encoded message: (type code, body)."""
    code, body = msgpack.unpackb(encode_message(message), raw=False)
    return code, body


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def assert_codec_error(buf: bytes, expected: type[Any] | None = None) -> None:
    """decode_message must raise CodecError, and nothing else, on ``buf``."""
    with pytest.raises(CodecError):
        decode_message(buf, expected)


def decodes_or_codec_error(buf: bytes) -> None:
    """decode_message returns a message or raises CodecError; any other outcome fails the test."""
    try:
        result = decode_message(buf)
    except CodecError:
        return
    assert type(result) in MESSAGE_TYPES.values()


# -- round trips ---------------------------------------------------------------------


def test_samples_cover_every_message_type() -> None:
    """The samples include one message of every registered type, and every entry type."""
    assert {type(m) for m in SAMPLES} == set(MESSAGE_TYPES.values())
    assert {e.type for e in SAMPLES[0].entries} == set(LogType)


def test_type_codes_match_go() -> None:
    """Requests use Go's rpc type numbers and each response is its request's code plus 64."""
    assert {code: cls.__name__ for code, cls in REQUEST_TYPES.items()} == {
        0: "AppendEntriesRequest", 1: "RequestVoteRequest", 2: "InstallSnapshotRequest",
        3: "TimeoutNowRequest", 4: "RequestPreVoteRequest",
    }
    pairs = {AppendEntriesRequest: AppendEntriesResponse, RequestVoteRequest: RequestVoteResponse,
             RequestPreVoteRequest: RequestPreVoteResponse, InstallSnapshotRequest: InstallSnapshotResponse,
             TimeoutNowRequest: TimeoutNowResponse}
    for request, response in pairs.items():
        assert response.TYPE == request.TYPE + 64


@pytest.mark.parametrize("message", SAMPLES, ids=sample_id)
def test_round_trip(message: Any) -> None:
    """A message decoded from its own encoding is a different object with equal fields."""
    decoded = round_trip(message)
    assert type(decoded) is type(message)
    assert decoded == message
    assert decoded is not message
    assert decoded.header is not message.header


@pytest.mark.parametrize("message_type", list(MESSAGE_TYPES.values()), ids=lambda cls: cls.__name__)
def test_round_trip_defaults(message_type: type[Any]) -> None:
    """A message with every field at its default round-trips too."""
    message = message_type()
    assert round_trip(message) == message
    assert decode_message(encode_message(message)) == message


def test_round_trip_copies_entries() -> None:
    """The decoded entries are new objects: changing them cannot touch the sender's."""
    message = SAMPLES[0]
    original = copy.deepcopy(message)
    decoded = round_trip(message)
    decoded.entries[0].term = 99
    decoded.entries.append(Log(200, 5))
    assert message == original


def test_round_trip_extreme_integers() -> None:
    """Integers up to 2**64 - 1 (Go's uint64) survive the codec."""
    big = 2**64 - 1
    message = AppendEntriesRequest(header=header(), term=big, prev_log_entry=big, prev_log_term=big,
                                   entries=[Log(big, big, LogType.LogCommand, b"x", b"", 0.0)],
                                   leader_commit_index=big)
    assert round_trip(message) == message


def test_decode_with_expected_type_mismatch() -> None:
    """decode_message with ``expected`` rejects a well-formed message of another type."""
    buf = encode_message(SAMPLES[2])
    assert_codec_error(buf, AppendEntriesRequest)
    assert decode_message(buf, RequestVoteRequest) == SAMPLES[2]


def test_codec_error_is_a_value_error() -> None:
    """CodecError is a ValueError too, so generic callers can catch malformed input."""
    with pytest.raises(ValueError, match="undecodable"):
        decode_message(b"")


# -- malformed frames -----------------------------------------------------------------------


def test_decode_empty_bytes() -> None:
    """Empty input raises CodecError."""
    assert_codec_error(b"")


def test_decode_random_bytes() -> None:
    """Two hundred seeded random byte strings all raise CodecError."""
    rng = random.Random(20240601)
    for _ in range(200):
        assert_codec_error(rng.randbytes(rng.randint(1, 64)))


@pytest.mark.parametrize("message", SAMPLES, ids=sample_id)
def test_decode_every_truncation(message: Any) -> None:
    """Every proper prefix of a valid encoding, including the empty one, raises CodecError."""
    buf = encode_message(message)
    for length in range(len(buf)):
        assert_codec_error(buf[:length])


@pytest.mark.parametrize("message", SAMPLES, ids=sample_id)
def test_decode_trailing_garbage(message: Any) -> None:
    """A valid encoding followed by extra bytes raises CodecError."""
    assert_codec_error(encode_message(message) + b"\x00")


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(3, id="int"),
        pytest.param("AppendEntriesRequest", id="str"),
        pytest.param({"type": 0}, id="map"),
        pytest.param([], id="empty-list"),
        pytest.param([0], id="type-only"),
        pytest.param([0, {}, 1], id="three-items"),
        pytest.param([0, []], id="body-list"),
        pytest.param([0, None], id="body-nil"),
        pytest.param([None, None], id="nils"),
    ],
)
def test_decode_wrong_frame_shape(frame: Any) -> None:
    """Valid msgpack that is not a [type, body] pair raises CodecError."""
    assert_codec_error(pack(frame))


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(5, id="5"), pytest.param(63, id="63"), pytest.param(69, id="69"),
        pytest.param(128, id="128"), pytest.param(-1, id="negative"), pytest.param(2**64 - 1, id="huge"),
        pytest.param("0", id="str"), pytest.param(b"\x00", id="bytes"), pytest.param(None, id="nil"),
        pytest.param(1.0, id="float"), pytest.param([1], id="list"),
    ],
)
def test_decode_unknown_type_code(code: Any) -> None:
    """A frame whose type code is not one of the ten message codes raises CodecError."""
    _, body = wire(SAMPLES[2])  # a RequestVoteRequest body, which would fit code 1
    assert_codec_error(pack([code, body]))


@pytest.mark.parametrize(("code", "message"), [(True, SAMPLES[2]), (False, SAMPLES[0])], ids=["true", "false"])
def test_decode_bool_type_code(code: bool, message: Any) -> None:
    """A bool in place of the type code raises CodecError: msgpack's true is not the integer 1."""
    _, body = wire(message)
    assert_codec_error(pack([code, body]))


def field_cases() -> list[Any]:
    return [pytest.param(m, f.name, id=f"{sample_id(m)}.{f.name}") for m in SAMPLES for f in dataclasses.fields(m)]


@pytest.mark.parametrize(("message", "name"), field_cases())
def test_decode_missing_field(message: Any, name: str) -> None:
    """A body that lacks any one field raises CodecError."""
    code, body = wire(message)
    del body[name]
    assert_codec_error(pack([code, body]))


@pytest.mark.parametrize("message", SAMPLES, ids=sample_id)
def test_decode_extra_field(message: Any) -> None:
    """A body with a field the message does not have raises CodecError."""
    code, body = wire(message)
    body["bogus"] = 1
    assert_codec_error(pack([code, body]))


@pytest.mark.parametrize("message", SAMPLES, ids=sample_id)
def test_decode_field_name_as_bytes(message: Any) -> None:
    """A field name sent as a msgpack bin instead of a str is not that field, and raises CodecError."""
    code, body = wire(message)
    body[b"term" if "term" in body else b"header"] = body.pop("term" if "term" in body else "header")
    assert_codec_error(pack([code, body]))


# Values that are not acceptable for a field of each annotated type.
WRONG_VALUES: dict[str, list[Any]] = {
    "int": [True, False, -1, -(2**63), 1.0, "1", b"1", None, [1]],
    "bool": [1, 0, "true", b"\x01", None, 1.0, []],
    "bytes": ["abc", "", 1, None, [], True],
}


def scalar_cases() -> list[Any]:
    cases = []
    for message in SAMPLES:
        for f in dataclasses.fields(message):
            if f.name in ("header", "entries"):
                continue
            for value in WRONG_VALUES[str(f.type)]:
                cases.append(pytest.param(message, f.name, value, id=f"{sample_id(message)}.{f.name}={value!r}"))
    return cases


@pytest.mark.parametrize(("message", "name", "value"), scalar_cases())
def test_decode_wrong_scalar_type(message: Any, name: str, value: Any) -> None:
    """A field holding a value of the wrong type (bool for int, negative int, str for bytes, ...) raises CodecError."""
    code, body = wire(message)
    body[name] = value
    assert_codec_error(pack([code, body]))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="nil"),
        pytest.param({"id": "n1"}, id="map"),
        pytest.param([3, "n1"], id="two-items"),
        pytest.param([3, "n1", "a", "x"], id="four-items"),
        pytest.param([-1, "n1", "a"], id="negative-version"),
        pytest.param([True, "n1", "a"], id="bool-version"),
        pytest.param(["3", "n1", "a"], id="str-version"),
        pytest.param([3, 1, "a"], id="int-id"),
        pytest.param([3, "n1", b"a"], id="bytes-addr"),
        pytest.param([3, None, "a"], id="nil-id"),
    ],
)
def test_decode_malformed_header(value: Any) -> None:
    """A header that is not [uint version, str id, str addr] raises CodecError, for every message type."""
    for message in SAMPLES:
        code, body = wire(message)
        body["header"] = value
        assert_codec_error(pack([code, body]))


GOOD_ENTRY = [101, 4, 0, b"data", b"", 1.5]


def entry_with(position: int, value: Any) -> list[Any]:
    changed = list(GOOD_ENTRY)
    changed[position] = value
    return changed


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(None, id="nil"),
        pytest.param({"0": GOOD_ENTRY}, id="map"),
        pytest.param(b"entries", id="bytes"),
        pytest.param([None], id="nil-entry"),
        pytest.param([GOOD_ENTRY[:5]], id="five-items"),
        pytest.param([[*GOOD_ENTRY, 0]], id="seven-items"),
        pytest.param([{"index": 1}], id="entry-map"),
        pytest.param([entry_with(0, -1)], id="negative-index"),
        pytest.param([entry_with(0, True)], id="bool-index"),
        pytest.param([entry_with(1, "4")], id="str-term"),
        pytest.param([entry_with(1, False)], id="bool-term"),
        pytest.param([entry_with(2, 6)], id="unknown-log-type"),
        pytest.param([entry_with(2, 255)], id="unknown-log-type-255"),
        pytest.param([entry_with(2, -1)], id="negative-log-type"),
        pytest.param([entry_with(2, True)], id="bool-log-type"),
        pytest.param([entry_with(2, "LogCommand")], id="str-log-type"),
        pytest.param([entry_with(3, "data")], id="str-data"),
        pytest.param([entry_with(3, None)], id="nil-data"),
        pytest.param([entry_with(4, "ext")], id="str-extensions"),
        pytest.param([entry_with(5, "now")], id="str-appended-at"),
        pytest.param([entry_with(5, True)], id="bool-appended-at"),
        pytest.param([entry_with(5, None)], id="nil-appended-at"),
        pytest.param([GOOD_ENTRY, entry_with(2, 9)], id="second-entry-bad"),
    ],
)
def test_decode_malformed_entries(entries: Any) -> None:
    """AppendEntries whose entries are not a list of well-formed six-item entries raises CodecError."""
    code, body = wire(SAMPLES[0])
    body["entries"] = entries
    assert_codec_error(pack([code, body]))


def test_decode_good_entry_helper_is_valid() -> None:
    """The unmodified entry used by the malformed-entry cases decodes, so each case fails for its one change."""
    code, body = wire(SAMPLES[0])
    body["entries"] = [GOOD_ENTRY]
    decoded = decode_message(pack([code, body]))
    assert decoded.entries == [Log(101, 4, LogType.LogCommand, b"data", b"", 1.5)]


def test_decode_integer_appended_at_becomes_float() -> None:
    """An entry's appended_at sent as an integer is accepted and read as a float."""
    code, body = wire(SAMPLES[0])
    body["entries"] = [entry_with(5, 7)]
    decoded = decode_message(pack([code, body]))
    assert decoded.entries[0].appended_at == 7.0
    assert isinstance(decoded.entries[0].appended_at, float)


# -- property tests ---------------------------------------------------------------------------

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=8) | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=20,
)


@HYPOTHESIS
@given(st.binary(max_size=128))
def test_decode_arbitrary_bytes(buf: bytes) -> None:
    """For arbitrary bytes, decode_message returns a message object or raises CodecError."""
    decodes_or_codec_error(buf)


@HYPOTHESIS
@given(msgpack_values)
def test_decode_arbitrary_msgpack(value: Any) -> None:
    """For any msgpack value, decode_message returns a message object or raises CodecError."""
    decodes_or_codec_error(pack(value))


@HYPOTHESIS
@given(st.sampled_from(SAMPLES), st.data())
def test_decode_valid_body_with_one_arbitrary_field(message: Any, data: st.DataObject) -> None:
    """Replacing one field of a valid body with any msgpack value gives a message or CodecError."""
    code, body = wire(message)
    name = data.draw(st.sampled_from(sorted(body)))
    body[name] = data.draw(msgpack_values)
    decodes_or_codec_error(pack([code, body]))


@HYPOTHESIS
@given(st.sampled_from(SAMPLES), st.data())
def test_decode_flipped_byte(message: Any, data: st.DataObject) -> None:
    """A valid encoding with one byte changed decodes to a message or raises CodecError."""
    buf = bytearray(encode_message(message))
    position = data.draw(st.integers(0, len(buf) - 1))
    buf[position] = data.draw(st.integers(0, 255))
    decodes_or_codec_error(bytes(buf))


uints = st.integers(min_value=0, max_value=2**64 - 1)
headers = st.builds(RPCHeader, uints, st.text(max_size=10), st.text(max_size=10))
logs = st.builds(Log, uints, uints, st.sampled_from(list(LogType)), st.binary(max_size=16), st.binary(max_size=4),
                 st.floats(allow_nan=False))


@HYPOTHESIS
@given(st.builds(AppendEntriesRequest, headers, uints, uints, uints, st.lists(logs, max_size=4), uints)
       | st.builds(AppendEntriesResponse, headers, uints, uints, st.booleans(), st.booleans())
       | st.builds(RequestVoteRequest, headers, uints, uints, uints, st.booleans())
       | st.builds(RequestVoteResponse, headers, uints, st.booleans())
       | st.builds(RequestPreVoteRequest, headers, uints, uints, uints)
       | st.builds(RequestPreVoteResponse, headers, uints, st.booleans())
       | st.builds(InstallSnapshotRequest, headers, uints, uints, uints, uints, st.binary(max_size=16), uints, uints)
       | st.builds(InstallSnapshotResponse, headers, uints, st.booleans())
       | st.builds(TimeoutNowRequest, headers)
       | st.builds(TimeoutNowResponse, headers))
def test_round_trip_arbitrary_messages(message: Any) -> None:
    """Any message with in-range field values round-trips to an equal message."""
    assert round_trip(message) == message


# -- is_heartbeat -------------------------------------------------------------------------------


def heartbeat(**changes: Any) -> AppendEntriesRequest:
    """What a leader's heartbeat carries: its term and address, nothing else."""
    fields: dict[str, Any] = {"header": RPCHeader(3, "n1", "n1:8300"), "term": 5, **changes}
    return AppendEntriesRequest(**fields)


def test_is_heartbeat_true() -> None:
    """An AppendEntries with a term and a leader address and nothing else is a heartbeat."""
    assert is_heartbeat(heartbeat())
    assert is_heartbeat(heartbeat(header=RPCHeader(3, "", "n1:8300")))  # the ID plays no part


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"term": 0}, id="term-zero"),
        pytest.param({"header": RPCHeader(3, "n1", "")}, id="no-addr"),
        pytest.param({"prev_log_entry": 1}, id="prev-log-entry"),
        pytest.param({"prev_log_term": 1}, id="prev-log-term"),
        pytest.param({"entries": [Log(1, 5)]}, id="entries"),
        pytest.param({"leader_commit_index": 1}, id="leader-commit"),
    ],
)
def test_is_heartbeat_false_when_any_condition_fails(changes: dict[str, Any]) -> None:
    """Changing any one of Go's heartbeat conditions makes the message not a heartbeat."""
    assert not is_heartbeat(heartbeat(**changes))


@pytest.mark.parametrize("message", SAMPLES[1:], ids=sample_id)
def test_is_heartbeat_only_for_append_entries(message: Any) -> None:
    """No other message type is ever a heartbeat, whatever its fields."""
    assert not is_heartbeat(message)
    assert not is_heartbeat(type(message)(header=RPCHeader(3, "n1", "n1:8300")))


def test_is_heartbeat_survives_round_trip() -> None:
    """A heartbeat is still a heartbeat after crossing the wire."""
    assert is_heartbeat(round_trip(heartbeat()))
