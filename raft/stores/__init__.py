"""Durable stores beyond hashicorp/raft's in-memory ones.

Mirrors: hashicorp/raft-boltdb, a separate repository in Go: the log and
stable store a real deployment writes to disk. Here: ``sqlite_store``.
"""
