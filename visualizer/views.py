"""What the page shows about a cluster, as plain data, and only what changed.

Read before: cluster.py. Used by: simulation.py.

``StateTracker`` reads a ``VisualCluster`` (only ever from the simulation
thread) and produces two kinds of payload:

* ``full()``: everything, sent to a browser when it connects and to every
  browser after a rewind, a branch or an import;
* ``diff()``: the events since the last call, plus the fields of each node,
  each log, each message in flight and each network setting that changed.
  Sent 25 times a second at most, so a busy cluster costs little bandwidth.

What a node shows follows the paper's Figure 2: *persistent* state (current
term, vote, log) is read from its store and survives a crash; *volatile*
state (role, commit index, last applied, the leader it knows, nextIndex and
matchIndex, the state machine, the configurations it knows) exists only
while it runs. A crashed node's volatile fields are ``None``, which the page
draws as blank. A node's last snapshot lives in its snapshot store, so it is
persistent too.

The cluster's membership is what the leader believes: its latest
configuration (in force as soon as it is in the log, §4.1 of Ongaro's
thesis) and its committed one. Without a leader we show the newest
configuration any running node knows. Servers added while the run goes on
(``Cluster.add_node``) join the views and ``ids`` at once.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from raft.commands import decode_message, summarize
from raft.configuration import ServerSuffrage, decode_configuration
from raft.errors import RaftError
from raft.events import Event
from raft.log import Log, LogType
from raft.raft import KEY_CURRENT_TERM, KEY_LAST_VOTE_CAND, KEY_LAST_VOTE_TERM
from raft.sim.network import InFlight
from raft.state import RaftState
from visualizer.cluster import VisualCluster, fold_kv

FEED_TAIL = 400  # events a full snapshot carries for the feed
# Kinds the feed keeps however many heartbeats follow them: a full snapshot
# carries the newest FEED_TAIL of these on top of its tail (the page keeps
# them too, and draws them in bold).
FEED_KEEPS = frozenset({"state", "crash", "restart", "partition", "election", "commit", "vote", "truncate",
                        "client_request", "configuration", "transfer", "snapshot_taken", "snapshot_send",
                        "snapshot_installed", "compact"})
MAX_EVENTS_PER_DIFF = 1500  # beyond this a diff keeps only the newest (the feed cannot show more anyway)
RPC_KIND_MEMORY = 4096  # request kinds remembered to label their responses

# Which event kinds change what part of a node's extras or log.
_LOG_KINDS = ("append", "truncate", "compact", "snapshot_taken", "snapshot_installed", "restart", "crash")


def entry_row(entry: Log) -> list[Any]:
    """``[index, term, type, text]`` for one log entry: what a cell of the log table shows."""
    if entry.type == LogType.LogCommand:
        text = entry.data.decode("utf-8", "replace")
        text = text if len(text) <= 40 else text[:39] + "…"
    elif entry.type == LogType.LogNoop:
        text = "no-op"
    elif entry.type == LogType.LogConfiguration:
        try:
            servers = decode_configuration(entry.data).servers
            text = "config " + " ".join(f"{s.id}{'' if s.suffrage.name == 'Voter' else '(' + s.suffrage.name + ')'}"
                                        for s in servers)
        except (RaftError, ValueError, TypeError, KeyError):
            text = "config"
    elif entry.type == LogType.LogBarrier:
        text = "barrier"
    else:
        text = entry.type.name
    return [entry.index, entry.term, entry.type.name, text]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class StateTracker:
    """Follows one cluster's events and computes full and incremental views of it."""

    def __init__(self, cluster: VisualCluster) -> None:
        self.cluster = cluster
        self.extras: dict[str, dict[str, Any]] = {node: {} for node in cluster.ids}
        self.apply_times: dict[tuple[str, int], float] = {}
        self.rpc_kinds: dict[int, str] = {}
        self._dirty_logs: dict[str, bool] = {node: True for node in cluster.ids}
        self._sent_views: dict[str, dict[str, Any]] = {}
        self._sent_logs: dict[str, tuple[int, list[list[Any]]]] = {}
        self._sent_flights: dict[int, dict[str, Any]] = {}
        self._flight_rows: dict[int, dict[str, Any]] = {}
        self._sent_links: list[list[str]] = []
        self._sent_faults: dict[str, float] = {}
        self._sent_interventions = 0
        self._sent_ids: list[str] = []
        self._sent_membership: dict[str, Any] | None = None
        self._event_cursor = 0
        self._observed = 0  # events seen by observe, which are cluster.events in order
        self._kept: deque[int] = deque(maxlen=FEED_TAIL)  # indexes of the newest FEED_KEEPS events
        self._kv_cache: dict[str, tuple[tuple[int, int], int, dict[str, str]]] = {}
        for event in cluster.events:
            self.observe(event)

    # -- following the event stream ------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Update the bits of state that only events reveal (timers, vote tallies, kinds of RPC)."""
        kind, node = event.kind, event.node
        if kind in FEED_KEEPS:
            self._kept.append(self._observed)
        self._observed += 1
        if node in self.cluster.handles and node not in self.extras:  # a server added while running
            self.extras[node] = {}
            self._dirty_logs[node] = True
        extras = self.extras.get(node)
        if kind in _LOG_KINDS and extras is not None:
            self._dirty_logs[node] = True
        if kind == "rpc_send" and event.get("dir") == "request":
            self._remember_rpc_kind(event)
        if extras is None:
            return
        if kind == "timer":
            extras["timer"] = {"timer": event["timer"], "timeout": event["timeout"], "deadline": event["deadline"],
                               "fires_at": event.get("fires_at"), "set_at": round(event.t, 6)}
        elif kind == "election":
            extras["tally"] = {"phase": event["phase"], "term": event["term"], "needed": event["needed"],
                               "granted": [], "refused": [], "outcome": ""}
        elif kind == "tally" and "tally" in extras:
            tally = extras["tally"]
            (tally["granted"] if event["granted"] else tally["refused"]).append(event["voter"])
        elif kind == "election_timeout" and "tally" in extras:
            extras["tally"]["outcome"] = "timed out"
        elif kind == "state":
            self._on_state(extras, event)
        elif kind in ("crash", "restart"):
            extras.clear()
        elif kind == "apply":
            self.apply_times[(node, event["index"])] = event.t
        elif kind == "configuration":
            known = extras.setdefault("configuration", {"latest": None, "committed": None})
            known[event["which"]] = configuration_view(event["index"], event["configuration"])

    def _on_state(self, extras: dict[str, Any], event: Event) -> None:
        state = event["state"]
        tally = extras.get("tally")
        if state == "leader":
            extras.pop("timer", None)  # a leader runs no election timer
            if tally is not None:
                tally["outcome"] = "won"
        elif state != "candidate" and tally is not None and not tally["outcome"]:
            tally["outcome"] = "stepped down"

    def _remember_rpc_kind(self, event: Event) -> None:
        msg = event.get("msg") or {}
        rpc = str(event.get("rpc"))
        label = "heartbeat" if rpc == "append_entries" and not msg.get("entries") else rpc
        self.rpc_kinds[int(event["id"])] = label
        if len(self.rpc_kinds) > RPC_KIND_MEMORY:
            del self.rpc_kinds[next(iter(self.rpc_kinds))]

    # -- one node ---------------------------------------------------------------------------

    def node_view(self, node_id: str) -> dict[str, Any]:
        """Everything shown about a node except its log; see the module docstring."""
        handle = self.cluster.handles[node_id]
        store = handle.store
        vote = store.get(KEY_LAST_VOTE_CAND)
        view: dict[str, Any] = {
            "up": handle.raft is not None,
            "term": store.get_uint64(KEY_CURRENT_TERM),  # persistent: read from the "disk"
            "voted_for": vote.decode("utf-8", "replace") if vote else "",
            "voted_term": store.get_uint64(KEY_LAST_VOTE_TERM),
            "incarnation": handle.incarnation,
            "snapshot": _latest_snapshot(handle.snapshots),  # persistent: the snapshot store survives a crash
        }
        raft = handle.raft
        volatile: dict[str, Any] = {"state": "crashed", "commit": None, "applied": None, "leader": None,
                                    "last_contact": None, "kv": None, "next_index": None, "match_index": None,
                                    "timer": None, "tally": None, "heartbeat_timeout": None, "configuration": None}
        if raft is not None:
            state = raft.state()
            _, leader_id = raft.leader_with_id()
            extras = self.extras.get(node_id, {})
            volatile = {
                "state": state.name.lower(),
                "term": raft.current_term(),
                "commit": raft.commit_index(),
                "applied": raft.applied_index(),
                "leader": leader_id,
                "last_contact": _round(raft.last_contact()),
                "kv": self._kv(node_id),
                "next_index": None,
                "match_index": None,
                "timer": extras.get("timer"),
                "tally": extras.get("tally") if state == RaftState.Candidate else None,
                "heartbeat_timeout": raft.config().heartbeat_timeout,
                "configuration": extras.get("configuration"),
            }
            if state == RaftState.Leader:
                leader_state = raft.leader_state
                volatile["next_index"] = {peer: repl.next_index for peer, repl in leader_state.repl_state.items()}
                commitment = leader_state.commitment
                volatile["match_index"] = dict(commitment.match_indexes) if commitment is not None else {}
        view.update(volatile)
        return view

    def _kv(self, node_id: str) -> dict[str, str] | None:
        fsm = self.cluster.fsm(node_id)
        logs = getattr(fsm, "logs", None)
        if not isinstance(logs, list):
            return None
        # A restart builds a new FSM and a snapshot restore a new list: either way, start over.
        owner = (id(fsm), id(logs))
        cached = self._kv_cache.get(node_id)
        if cached is None or cached[0] != owner or cached[1] > len(logs):
            cached = (owner, 0, {})
        kv = fold_kv(logs[cached[1]:], dict(cached[2]))
        self._kv_cache[node_id] = (owner, len(logs), kv)
        return kv

    def membership(self) -> dict[str, Any] | None:
        """The cluster's configurations as the leader sees them; see the module docstring.

        ``{"source": node, "latest": {...}, "committed": {...}}``, each
        configuration ``{"index", "servers": [{"id", "suffrage"}]}``; None
        before any running node knows a configuration.
        """
        leader = self.cluster.leader()
        candidates = [leader] if leader is not None else [r.local_id for r in self.cluster.rafts()]
        best: tuple[int, str] | None = None
        for node in candidates:
            known = self.extras.get(node, {}).get("configuration")
            if known and known["latest"] and (best is None or known["latest"]["index"] > best[0]):
                best = (known["latest"]["index"], node)
        if best is None:
            return None
        known = self.extras[best[1]]["configuration"]
        return {"source": best[1], "latest": known["latest"], "committed": known["committed"]}

    def _log_rows(self, node_id: str, first: int, keep_from: list[list[Any]]) -> tuple[int, list[list[Any]]]:
        """How many of ``keep_from`` still match the stored log, and the stored entries after them."""
        store = self.cluster.handles[node_id].store
        last = store.last_index()
        count = max(0, last - first + 1) if first else 0
        keep = min(len(keep_from), count)
        # A node's log only changes at its tail, and an entry with the same
        # index and term is the same entry (Log Matching), so we walk back
        # from the end until the stored log and the sent one agree.
        while keep > 0 and keep_from[keep - 1][:2] != self._row(store, first + keep - 1)[:2]:
            keep -= 1
        return keep, [self._row(store, index) for index in range(first + keep, first + count)]

    @staticmethod
    def _row(store: Any, index: int) -> list[Any]:
        try:
            return entry_row(store.get_log(index))
        except RaftError:
            return [index, 0, "missing", "(not stored)"]

    # -- messages in flight ----------------------------------------------------------------

    def flight_row(self, flight_id: int, flight: InFlight) -> dict[str, Any]:
        """One message on its way: who, what, when it left and when it lands, and its fields."""
        row = self._flight_rows.get(flight_id)
        if row is not None:
            return row
        try:
            message = decode_message(flight.payload) if flight.payload else None
            fields = summarize(message) if message is not None else {}
        except (RaftError, ValueError, TypeError):
            fields = {}
        kind = self.rpc_kinds.get(flight.id, flight.rpc)
        row = {"flight": flight_id, "id": flight.id, "src": flight.src, "dst": flight.dst, "rpc": flight.rpc,
               "kind": kind, "dir": flight.dir, "sent_at": round(flight.sent_at, 6),
               "arrives_at": round(flight.arrives_at, 6), "msg": fields}
        self._flight_rows[flight_id] = row
        return row

    # -- whole views and differences --------------------------------------------------------

    def _network(self) -> tuple[list[list[str]], dict[str, float]]:
        network = self.cluster.network
        links = [[src, dst] for (src, dst), cut in network.blocked.items() if cut]
        faults = network.faults
        return links, {"delay": faults.delay, "jitter": faults.jitter, "loss": faults.loss,
                       "duplicate": faults.duplicate, "reorder": faults.reorder}

    def full(self) -> dict[str, Any]:
        """Everything the page needs to draw the cluster from nothing."""
        cluster = self.cluster
        nodes = {node: self.node_view(node) for node in cluster.ids}
        logs = {}
        for node in cluster.ids:
            first = cluster.handles[node].store.first_index()
            _, rows = self._log_rows(node, first, [])
            logs[node] = {"first": first, "keep": 0, "entries": rows}
            self._sent_logs[node] = (first, rows)
            self._dirty_logs[node] = False
        flights = {fid: self.flight_row(fid, f) for fid, f in cluster.network.in_flight.items()}
        links, faults = self._network()
        events = cluster.events.events
        self._sent_views = nodes
        self._sent_flights = flights
        self._sent_links, self._sent_faults = links, faults
        self._sent_interventions = len(cluster.interventions)
        self._sent_ids = cluster.ids
        self._sent_membership = membership = self.membership()
        self._event_cursor = len(events)
        tail_start = max(0, len(events) - FEED_TAIL)
        feed = [i for i in self._kept if i < tail_start] + list(range(tail_start, len(events)))
        return {
            "t": round(cluster.now, 6),
            "seed": cluster.seed,
            "ids": cluster.ids,
            "membership": membership,
            "config": {"heartbeat_timeout": cluster.config_template.heartbeat_timeout,
                       "election_timeout": cluster.config_template.election_timeout,
                       "pre_vote": not cluster.config_template.pre_vote_disabled},
            "nodes": nodes,
            "logs": logs,
            "flights": list(flights.values()),
            "links": links,
            "faults": faults,
            "events": [event_dict(events[i], i) for i in feed],
            "important": sorted(FEED_KEEPS),
            "interventions": [i.to_dict() for i in cluster.interventions],
            "clients": [r.to_dict() for r in cluster.client_requests],
        }

    def diff(self) -> dict[str, Any]:
        """What changed since the last ``full`` or ``diff``; empty sections are left out."""
        cluster = self.cluster
        out: dict[str, Any] = {}
        if cluster.ids != self._sent_ids:  # a server was added while the run went on
            out["ids"] = self._sent_ids = cluster.ids
        events = cluster.events.events
        start = max(self._event_cursor, len(events) - MAX_EVENTS_PER_DIFF)
        if start < len(events):
            out["events"] = [event_dict(events[i], i) for i in range(start, len(events))]
        self._event_cursor = len(events)
        nodes = {}
        for node in cluster.ids:
            view = self.node_view(node)
            sent = self._sent_views.get(node, {})
            changed = {key: value for key, value in view.items() if sent.get(key, _MISSING) != value}
            if changed:
                nodes[node] = changed
                self._sent_views[node] = view
        if nodes:
            out["nodes"] = nodes
        logs = self._log_diffs()
        if logs:
            out["logs"] = logs
        flights = self._flight_diff()
        if flights:
            out["flights"] = flights
        links, faults = self._network()
        if links != self._sent_links:
            out["links"] = self._sent_links = links
        if faults != self._sent_faults:
            out["faults"] = self._sent_faults = faults
        membership = self.membership()
        if membership != self._sent_membership:
            out["membership"] = self._sent_membership = membership
        if len(cluster.interventions) > self._sent_interventions:
            out["interventions"] = [i.to_dict() for i in cluster.interventions[self._sent_interventions:]]
            self._sent_interventions = len(cluster.interventions)
        return out

    def _log_diffs(self) -> dict[str, Any]:
        logs = {}
        for node, dirty in self._dirty_logs.items():
            if not dirty:
                continue
            self._dirty_logs[node] = False
            first = self.cluster.handles[node].store.first_index()
            sent_first, sent_rows = self._sent_logs.get(node, (first, []))
            if sent_first != first:
                sent_rows = []
            keep, rows = self._log_rows(node, first, sent_rows)
            if keep == len(sent_rows) and not rows and sent_first == first:
                continue
            logs[node] = {"first": first, "keep": keep, "entries": rows}
            self._sent_logs[node] = (first, sent_rows[:keep] + rows)
        return logs

    def _flight_diff(self) -> dict[str, Any]:
        in_flight = self.cluster.network.in_flight
        added = [self.flight_row(fid, f) for fid, f in in_flight.items() if fid not in self._sent_flights]
        removed = [fid for fid in self._sent_flights if fid not in in_flight]
        if not added and not removed:
            return {}
        for fid in removed:
            del self._sent_flights[fid]
            self._flight_rows.pop(fid, None)
        for row in added:
            self._sent_flights[row["flight"]] = row
        return {"add": added, "remove": removed}


_MISSING = object()


def configuration_view(index: int, configuration: dict[str, Any]) -> dict[str, Any]:
    """A ``configuration`` event's configuration as the page shows it: index, then each server and its vote."""
    servers = [{"id": s["id"], "suffrage": ServerSuffrage(s["suffrage"]).name.lower()}
               for s in configuration.get("servers", [])]
    return {"index": index, "servers": servers}


def _latest_snapshot(store: Any) -> dict[str, int] | None:
    """Index and term of the newest snapshot in ``store`` (Figure 13: lastIncludedIndex and lastIncludedTerm)."""
    try:
        snapshots = store.list()
    except RaftError:
        return None
    if not snapshots:
        return None
    return {"index": snapshots[0].index, "term": snapshots[0].term}


def event_dict(event: Event, seq: int) -> dict[str, Any]:
    """An event as the page receives it: its JSON form plus its position in the stream."""
    data = event.to_dict()
    data["seq"] = seq
    return data
