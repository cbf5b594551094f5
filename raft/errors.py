"""Every error the library reports, in one place.

Go declares these as ``errors.New`` values, mostly in api.go. We make each one
an exception class with the Go name, so ``isinstance(err, ErrNotLeader)`` reads
like Go's ``err == ErrNotLeader`` and the mirror stays greppable. Futures
*return* these (``future.error()``), as in Go; the library raises them only
where Go would panic or where Python code calls a store or transport.

The tree::

    RaftError
    ├── ErrLeader, ErrNotLeader, ErrNotVoter, ErrLeadershipLost,
    │   ErrAbortedByRestore, ErrRaftShutdown, ErrEnqueueTimeout,
    │   ErrNothingNewToSnapshot, ErrUnsupportedProtocol, ErrCantBootstrap,
    │   ErrLeadershipTransferInProgress            (api.go)
    ├── ErrLogNotFound, ErrPipelineReplicationNotSupported  (replication.go)
    ├── ErrTransportShutdown, ErrPipelineShutdown  (net_transport.go)
    ├── TransportError    a failed RPC: timeout, no route, remote error
    ├── CodecError        bytes that do not decode to a valid message
    │   └── FrameError    a malformed TCP frame (net_frames.py)
    ├── ConfigError       invalid Config or Configuration (Go: fmt.Errorf)
    │   └── ErrNotAdvertisable  a bind address peers cannot reach (tcp_transport.py)
    └── StoreError        a log or stable store failed

Mirrors: the ``Err*`` variables of api.go, replication.go and net_transport.go.
Differs: exception classes instead of sentinel values; ``TransportError``,
``CodecError``, ``ConfigError`` and ``StoreError`` name the families Go builds with ``fmt.Errorf``.
"""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error in this library."""

    message = "raft error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class ErrLeader(RaftError):
    message = "node is the leader"


class ErrNotLeader(RaftError):
    message = "node is not the leader"


class ErrNotVoter(RaftError):
    message = "node is not a voter"


class ErrLeadershipLost(RaftError):
    """The leader was deposed before the entry committed: its outcome is unknown."""

    message = "leadership lost while committing log"


class ErrAbortedByRestore(RaftError):
    message = "snapshot restored while committing log"


class ErrRaftShutdown(RaftError):
    message = "raft is already shutdown"


class ErrEnqueueTimeout(RaftError):
    message = "timed out enqueuing operation"


class ErrNothingNewToSnapshot(RaftError):
    message = "nothing new to snapshot"


class ErrUnsupportedProtocol(RaftError):
    message = "operation not supported with current protocol version"


class ErrCantBootstrap(RaftError):
    message = "bootstrap only works on new clusters"


class ErrLeadershipTransferInProgress(RaftError):
    message = "leadership transfer in progress"


class ErrLogNotFound(RaftError):
    message = "log not found"


class ErrPipelineReplicationNotSupported(RaftError):
    message = "pipeline replication not supported"


class ErrTransportShutdown(RaftError):
    message = "transport shutdown"


class ErrPipelineShutdown(RaftError):
    message = "append pipeline closed"


class TransportError(RaftError):
    """An RPC failed: the peer is unknown, it timed out, or the remote returned an error."""

    message = "transport error"


class CodecError(RaftError, ValueError):
    """Bytes that are not a well-formed message: truncated, mistyped or unknown."""

    message = "malformed message"


class ConfigError(RaftError, ValueError):
    """A ``Config`` or a cluster ``Configuration`` is invalid."""

    message = "invalid configuration"


class StoreError(RaftError):
    """A log, stable or snapshot store could not do what was asked."""

    message = "store error"


class FSMError(RaftError):
    """The application's state machine raised while applying a committed entry; the node stopped.

    Differs: hashicorp has no such error: a Go FSM that panics in Apply takes
    the whole process down. ``index`` is the first entry not applied.
    """

    message = "the state machine failed"

    def __init__(self, message: str | None = None, index: int = 0) -> None:
        super().__init__(message)
        self.index = index
