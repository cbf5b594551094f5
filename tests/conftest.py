"""Shared fixtures: clusters that are always shut down at the end of a test; where the shared data lives."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from raft.sim import Cluster


@pytest.fixture
def make() -> Iterator[Callable[..., Cluster]]:
    """Build clusters with ``make(nodes, seed=..., **options)``; all are closed afterwards."""
    built: list[Cluster] = []

    def factory(nodes: Any = 3, seed: int = 0, **options: Any) -> Cluster:
        cluster = Cluster(nodes, seed, **options)
        built.append(cluster)
        return cluster

    yield factory
    for cluster in built:
        cluster.dispose()


def shared_data_dir() -> Path:
    """The project's read-only reference data (``../shared/data`` next to the checkout).

    ``RAFT_SHARED_DATA`` overrides it; a clone made elsewhere on this machine
    (CI clones into a temporary folder) falls back to the workspace's copy.
    """
    candidates = [os.environ.get("RAFT_SHARED_DATA", ""),
                  str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                  "/work/shared/data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path(candidates[1])
