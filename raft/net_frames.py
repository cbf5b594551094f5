"""The bytes NetworkTransport puts on a connection: request and response frames.

Mirrors: the framing in net_transport.go (sendRPC, decodeResponse and the first
         half of handleCommand).
Read before: commands.py (the messages and their msgpack encoding).
Read next: net_transport.py (who sends and reads these frames, and when).

Integers are unsigned and big-endian. ``message`` is ``commands.encode_message``
of the request or response: a msgpack array that repeats the type code, so a
server also checks that the type byte and the message agree.

::

    request   = type:u8  length:u32  message[length]
                (InstallSnapshot only:) exactly `size` raw snapshot bytes follow
    response  = error_length:u32  error[error_length]    UTF-8; empty on success
                length:u32  message[length]               empty when there is an error

    type  request                 response
    0     AppendEntriesRequest    AppendEntriesResponse
    1     RequestVoteRequest      RequestVoteResponse
    2     InstallSnapshotRequest  InstallSnapshotResponse
    3     TimeoutNowRequest       TimeoutNowResponse
    4     RequestPreVoteRequest   RequestPreVoteResponse

A part longer than ``max_frame_size`` (16 MiB by default) is refused before
it is read, so a corrupt or hostile length cannot make a server allocate
gigabytes. An unknown type byte, and a body that is not the message its type
byte names, are refused too (``FrameError``); a stream that ends inside a
frame raises ``asyncio.IncompleteReadError``. The server closes the
connection in each case.

Differs: not wire-compatible with Go, which writes one type byte and then bare
msgpack values with Go's field names and no lengths. Length prefixes let a
server know a frame's size before it reads it.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from raft.commands import (
    REQUEST_TYPES,
    AppendEntriesRequest,
    InstallSnapshotRequest,
    RequestPreVoteRequest,
    RequestVoteRequest,
    TimeoutNowRequest,
    decode_message,
    encode_message,
)
from raft.errors import CodecError, TransportError

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024  # 64 entries of the suggested 512 KiB would not fit; 16 MiB is roomy

U32 = struct.Struct(">I")

# The RPC type byte of each request (Go: rpcAppendEntries = 0, ... rpcRequestPreVote = 4).
RPC_APPEND_ENTRIES = AppendEntriesRequest.TYPE
RPC_REQUEST_VOTE = RequestVoteRequest.TYPE
RPC_INSTALL_SNAPSHOT = InstallSnapshotRequest.TYPE
RPC_TIMEOUT_NOW = TimeoutNowRequest.TYPE
RPC_REQUEST_PRE_VOTE = RequestPreVoteRequest.TYPE


class FrameError(CodecError):
    """Bytes on a connection that are not a frame we accept: the connection is closed."""

    message = "malformed frame"


def encode_request(message: Any, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """A request frame: the type byte, the length, the encoded message.

    Refusing an oversized request here, before anything is written, keeps the
    connection usable and gives the caller a clear error rather than a peer
    that hangs up.
    """
    body = encode_message(message)
    if len(body) > max_frame_size:
        raise TransportError(f"{type(message).__name__} of {len(body)} bytes exceeds the frame size limit "
                             f"of {max_frame_size} bytes")
    return bytes([message.TYPE]) + U32.pack(len(body)) + body


def encode_response(error: str, message: Any) -> bytes:
    """A response frame: the error string, then the response (left empty when there is an error)."""
    error_bytes = error.encode("utf-8")
    body = b"" if error or message is None else encode_message(message)
    return U32.pack(len(error_bytes)) + error_bytes + U32.pack(len(body)) + body


async def read_part(reader: asyncio.StreamReader, max_frame_size: int, what: str) -> bytes:
    """One length-prefixed part of a frame; an oversized part is refused before it is read."""
    (length,) = U32.unpack(await reader.readexactly(U32.size))
    if length > max_frame_size:
        raise FrameError(f"{what} of {length} bytes exceeds the frame size limit of {max_frame_size} bytes")
    return await reader.readexactly(length)


async def read_request(reader: asyncio.StreamReader, max_frame_size: int, timeout: float | None) -> Any:
    """The next request on a connection, or None if the peer closed it between requests.

    There is no deadline for the first byte: an idle pooled connection waits
    there until its owner needs it. Once a frame has begun, the rest must
    arrive within ``timeout`` seconds (None: no limit).
    """
    first = await reader.read(1)
    if not first:
        return None
    request_type = REQUEST_TYPES.get(first[0])
    if request_type is None:
        raise FrameError(f"unknown rpc type {first[0]}")
    async with asyncio.timeout(timeout):
        body = await read_part(reader, max_frame_size, request_type.__name__)
    try:
        return decode_message(body, request_type)
    except CodecError as err:
        raise FrameError(f"malformed {request_type.__name__}: {err}") from err


async def read_response(reader: asyncio.StreamReader, expected: type[Any], max_frame_size: int) -> tuple[str, Any]:
    """(error, response) from a response frame; the response is None when the error is not empty.

    A response of another type than ``expected`` raises CodecError: the
    connection is out of step with its requests.
    """
    error = (await read_part(reader, max_frame_size, "response error")).decode("utf-8", "replace")
    body = await read_part(reader, max_frame_size, "response")
    if error:
        return error, None
    return "", decode_message(body, expected)
