"""The interface of the store that keeps Raft's durable variables.

Paper:   Figure 2 ("Persistent state on all servers": currentTerm, votedFor); Thesis §3.8.
Mirrors: stable.go.

Raft writes its current term and its vote here *before* it answers any RPC
that depends on them. If a server forgot its vote after a crash it could vote
twice in one term and two leaders could be elected.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class StableStore(Protocol):
    """Durable key/value storage for a few small values.

    Mirrors: stable.go StableStore.
    Differs: ``get`` returns ``None`` for a missing key where Go returns the
    error string "not found", and ``get_uint64`` returns 0, as Go's InmemStore does.
    """

    def set(self, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key``, durably."""
        ...

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, or None."""
        ...

    def set_uint64(self, key: bytes, value: int) -> None:
        """Store an unsigned integer under ``key``, durably."""
        ...

    def get_uint64(self, key: bytes) -> int:
        """The integer under ``key``, or 0 when it was never set."""
        ...
