"""raft-kv's ``/metrics``: the figures an operator watches, in the Prometheus text format.

Mirrors: the metrics hashicorp/raft emits through go-metrics (``raft.state.*``,
``raft.commitTime``, ``raft.fsm.apply``, ``raft.rpc.*``, ``raft.snapshot.*``,
``raft.leader.lastContact``...), under Prometheus names.
Differs: hashicorp reports each figure the moment it happens to a metrics
sink; here a registry of the standard ``prometheus_client`` library holds
them, and some are read from the node when ``/metrics`` is scraped.
Read before: kv_service.py (which serves this), events.py (the stream that
most counters come from).

Three sources:

* **the node's state, read at scrape time**: role, term, last/commit/applied
  index, seconds since the leader was last heard from, whether the state
  machine has work queued, whether the node is healthy;
* **the event stream**: leader changes, elections, commits and commit time
  (a leader's entry stored → committed), snapshots taken and installed,
  restores, lost leases, failed heartbeats, rejected replication;
* **the service and the transport**: how long client requests take (reads,
  writes, membership changes), answers by HTTP status, and the RPCs the TCP
  transport sent, received and failed to send.

``MetricsCollector.render()`` gives the text a scrape receives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from raft.events import Event
from raft.state import RaftState

if TYPE_CHECKING:
    from raft.api import Raft
    from raft.net_transport import NetworkTransport

# Client request latency buckets, in seconds: a write costs a replication
# round and an fsync, a read a heartbeat round; both are milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Events counted as they happen: event kind -> (metric name, help).
_EVENT_COUNTERS = {
    "election": ("raft_elections", "Election rounds this node started (pre-vote and vote phases)"),
    "commit": ("raft_commits", "Times this node's commit index advanced"),
    "snapshot_taken": ("raft_snapshots_taken", "Snapshots this node took"),
    "snapshot_installed": ("raft_snapshots_installed", "Snapshots this node installed from a leader"),
    "restore": ("raft_fsm_restores", "Times the state machine was replaced by a snapshot"),
    "lease_lost": ("raft_leader_lease_lost", "Times this node stepped down as leader for want of a quorum"),
    "heartbeat_failed": ("raft_heartbeats_failed", "Heartbeats to a follower that failed (as leader)"),
    "replication_rejected": ("raft_replication_rejected", "AppendEntries a follower refused (log mismatch)"),
    "fsm_failed": ("raft_fsm_failures", "Times the state machine raised and stopped the node"),
}


class MetricsCollector(Collector):
    """Holds a node's metrics; ``on_event`` is subscribed to its event stream."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.raft: Raft | None = None
        self.transport: NetworkTransport | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.requests = Histogram("raftkv_request_seconds", "Client requests, from arrival to answer",
                                  ["kind"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.responses = Counter("raftkv_responses", "HTTP answers, by status code", ["code"],
                                 registry=self.registry)
        self.commit_time = Histogram("raft_commit_seconds", "As leader: from storing an entry to committing it",
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.leader_changes = Counter("raft_leader_changes", "Times the leader this node knows of changed",
                                      registry=self.registry)
        self.counters = {kind: Counter(name, text, registry=self.registry)
                         for kind, (name, text) in _EVENT_COUNTERS.items()}
        self._leader: str | None = None
        self._stored_at: dict[int, float] = {}  # as leader: index -> when stored, until committed

    def attach(self, raft: Raft, transport: NetworkTransport) -> None:
        self.raft, self.transport = raft, transport

    # -- the event stream ------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        kind = event.kind
        counter = self.counters.get(kind)
        if counter is not None:
            counter.inc()
        if kind == "leader":
            leader = event.fields.get("leader") or None
            if leader != self._leader and leader is not None:
                self.leader_changes.inc()
            self._leader = leader
        elif kind == "append" and self.raft is not None and self.raft.state() == RaftState.Leader:
            self._stored_at[event.fields["last"]] = event.t
        elif kind == "commit" and self._stored_at:
            index = event.fields["index"]
            stored = self._stored_at.pop(index, None)
            if stored is not None:
                self.commit_time.observe(max(0.0, event.t - stored))
            for old in [i for i in self._stored_at if i <= index]:
                del self._stored_at[old]
        elif kind == "state" and event.fields.get("state") != "leader":
            self._stored_at.clear()

    # -- read at scrape time -----------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        raft = self.raft
        if raft is None:
            return
        state = GaugeMetricFamily("raft_state", "1 for this node's current role", labels=["state"])
        current = raft.state()
        for role in (RaftState.Follower, RaftState.Candidate, RaftState.Leader, RaftState.Shutdown):
            state.add_metric([role.name], 1.0 if role == current else 0.0)
        yield state
        yield GaugeMetricFamily("raft_term", "Current term", value=raft.current_term())
        yield GaugeMetricFamily("raft_last_index", "Last log index (or snapshot index)", value=raft.last_index())
        yield GaugeMetricFamily("raft_commit_index", "Commit index", value=raft.commit_index())
        yield GaugeMetricFamily("raft_applied_index", "Last index the state machine has finished applying",
                                value=raft.fsm_applied_index)
        yield GaugeMetricFamily("raft_fsm_pending", "1 while the state machine has entries queued",
                                value=1.0 if raft.fsm_pending_applies() else 0.0)
        contact = raft.last_contact()
        yield GaugeMetricFamily("raft_last_contact_seconds",
                                "Seconds since the leader was last heard from (-1: never; 0 on the leader)",
                                value=-1.0 if contact is None else (
                                    0.0 if current == RaftState.Leader else max(0.0, raft.now() - contact)))
        yield GaugeMetricFamily("raft_healthy", "1 unless the node has stopped (state machine failure, shutdown)",
                                value=1.0 if raft.fsm_failure() is None and current != RaftState.Shutdown else 0.0)
        transport = self.transport
        if transport is not None:
            for name, text, counts in (
                    ("raft_rpcs_received", "RPC requests received, by type", transport.rpcs_received),
                    ("raft_rpcs_sent", "RPC requests sent, by type", transport.rpcs_sent),
                    ("raft_rpcs_failed", "RPC requests that failed (no answer, a broken connection)",
                     transport.rpcs_failed)):
                family = CounterMetricFamily(name, text, labels=["type"])
                for kind, count in sorted(counts.items()):
                    family.add_metric([kind], count)
                yield family

    def render(self) -> bytes:
        """The text a Prometheus scrape of ``/metrics`` receives."""
        return generate_latest(self.registry)
