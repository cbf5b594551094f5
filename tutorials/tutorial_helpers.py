"""Small helpers the tutorials share: step headers, event listings and pictures of logs.

Every tutorial imports this file, and the documentation shows it in full, so
nothing a tutorial does is hidden. The helpers only read a cluster; they never
change it.
"""

from __future__ import annotations

from collections.abc import Iterable

from raft.events import Event
from raft.sim import Cluster


def step(name: str, title: str) -> None:
    """Print the header of one step of a tutorial.

    The documentation build cuts a tutorial's output at these header lines,
    so each step's output appears under that step's code.
    """
    print(f"\n=== [{name}] {title} ===")


def show(events: Iterable[Event], *kinds: str, nodes: Iterable[str] | None = None) -> None:
    """Print the events of the given kinds (all kinds if none are given), one per line."""
    wanted_nodes = None if nodes is None else set(nodes)
    for event in events:
        if kinds and event.kind not in kinds:
            continue
        if wanted_nodes is not None and event.node not in wanted_nodes:
            continue
        print(f"  {event}")


def log_terms(cluster: Cluster, node_id: str) -> list[int]:
    """The term of every entry in a node's log, read from its store (which survives a crash)."""
    store = cluster.handles[node_id].store
    first, last = store.first_index(), store.last_index()
    if last == 0:
        return []
    return [store.get_log(index).term for index in range(first, last + 1)]


def print_logs(cluster: Cluster, node_ids: Iterable[str] | None = None) -> None:
    """Print each node's log as a row of terms, with its commit index.

    A row reads ``n1  1 1 2 2 2  (commit 5)``: entry 1 has term 1, entry 3
    has term 2, and so on. When a snapshot has replaced the start of the log,
    the row says so first: ``(snapshot at 82; log from 78) 2 2 2 2 2``.
    """
    shown = list(node_ids or cluster.ids)
    width = max(len(node_id) for node_id in shown)
    for node_id in shown:
        handle = cluster.handles[node_id]
        terms = _terms_text(log_terms(cluster, node_id))
        snapshots = handle.snapshots.list()  # newest first
        prefix = ""
        if snapshots:
            first = handle.store.first_index()
            start = f"; log from {first}" if first else "; log empty"
            prefix = f"(snapshot at {snapshots[0].index}{start}) "
        elif not terms:
            terms = "(empty log)"
        status = f"commit {handle.raft.commit_index()}" if handle.raft is not None else "not running"
        print(f"  {node_id:<{width}}  {(prefix + terms).strip()}  ({status})")


def _terms_text(terms: list[int]) -> str:
    """``1 1 2 2 2`` for a short log; runs such as ``1×3 2×60`` for a long one."""
    if len(terms) <= 16:
        return " ".join(str(term) for term in terms)
    runs: list[list[int]] = []
    for term in terms:
        if runs and runs[-1][0] == term:
            runs[-1][1] += 1
        else:
            runs.append([term, 1])
    return " ".join(f"{term}×{count}" for term, count in runs)
