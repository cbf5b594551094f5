"""The key-value service built on the library: the project's own application of Raft.

Mirrors: nothing in hashicorp/raft, which leaves the application to its user.

Reading order: ``store`` (the state machine, its commands, linearizable
reads), ``service`` (``raft-kv``: one node per process, HTTP for clients,
TCP between nodes), ``metrics`` (its ``/metrics`` page).
"""

from raft.kv.store import OPERATIONS, Command, KVError, KVSnapshot, KVStore, Result, read

__all__ = ["OPERATIONS", "Command", "KVError", "KVSnapshot", "KVStore", "Result", "read"]
