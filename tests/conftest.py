"""Shared fixtures: clusters that are always shut down at the end of a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from raft.testing import Cluster


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
