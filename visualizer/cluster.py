"""``VisualCluster``: the simulated cluster the visualizer drives.

Read before: raft/testing.py (``Cluster``). Read next: simulation.py.

It is a ``raft.sim.Cluster`` with three additions, all invisible to the
protocol:

* it remembers every client request it was asked to ``submit`` with its
  future, so the page can show each reply, even for requests replayed by
  ``import_run`` after a rewind; requests to the leader (``add_voter``,
  ``remove_server``, ``transfer_leadership``) are remembered the same way;
* a subclass made by ``with_setup`` starts from hand-made logs and per-node
  settings (the paper's Figure 7, for example). ``import_run`` builds the
  cluster through ``cls(...)``, so a rewind rebuilds the same starting logs;
* with a teaching bug switched on (a preset's ``cluster.bugs``), the live
  invariant checker is off: the point is to watch what the broken rule leads
  to, and the checker would stop the run, and the narration, at the first
  violation. The captions say what the checker would report.

The key-value state machine of each node is read from ``MockFSM.logs`` (the
commands it applied, in order): ``set KEY VALUE`` and ``del KEY`` change it,
``get KEY`` reads it. A read therefore goes through the log, the simplest
linearizable read in Raft (§8): the value is the one the leader had when the
``get`` entry was applied.
"""

from __future__ import annotations

from asyncio import events as asyncio_events
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raft.config import Config
from raft.configuration import Configuration, Server, ServerSuffrage, encode_configuration
from raft.log import Log, LogType
from raft.raft import KEY_CURRENT_TERM
from raft.sim import Cluster
from raft.sim.network import LinkFaults


@dataclass
class ClientRequest:
    """One command a client sent through ``submit``, and its answer once there is one."""

    seq: int
    t: float
    node: str
    command: str
    future: Any
    answered_at: float | None = None
    ok: bool | None = None
    error: str = ""
    index: int = 0
    value: str | None = None  # what a ``get`` read

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": round(self.t, 6), "node": self.node, "command": self.command,
                "answered_at": None if self.answered_at is None else round(self.answered_at, 6),
                "ok": self.ok, "error": self.error, "index": self.index, "value": self.value}


@dataclass(frozen=True)
class LogSetup:
    """Logs and settings a preset gives its nodes before they start.

    ``logs[node]`` lists the term of each entry from index 1; entry 1 is the
    configuration naming every node as a voter, the others are commands.
    ``terms[node]`` is the node's current term (at least its last entry's).
    """

    logs: dict[str, list[int]] = field(default_factory=dict)
    terms: dict[str, int] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)


class VisualCluster(Cluster):
    """A ``Cluster`` that keeps its client requests; see the module docstring."""

    setup: ClassVar[LogSetup | None] = None

    def __init__(self, nodes: int | Iterable[str] = 3, seed: int = 0, *, config: Config | None = None,
                 bootstrap: bool = True, faults: LinkFaults | None = None, **options: Any) -> None:
        self.client_requests: list[ClientRequest] = []
        bugs = options.get("bugs")
        if bugs is not None and bugs.any():
            options.setdefault("check_invariants", False)  # see the module docstring
        setup = type(self).setup
        if setup is None:
            super().__init__(nodes, seed, config=config, bootstrap=bootstrap, faults=faults, **options)
            return
        base = config or Config()
        configs = {node: Config(**{**_config_fields(base), **overrides}) for node, overrides in setup.configs.items()}
        super().__init__(nodes, seed, config=config, bootstrap=bootstrap, faults=faults, configs=configs,
                         start=False, **options)
        _write_logs(self, setup)
        self.start()

    def submit(self, command: bytes, node_id: str | None = None) -> Any:
        """``Cluster.submit``, remembering the request so its answer can be shown."""
        target = node_id or self.leader()
        future = super().submit(command, node_id)
        assert target is not None  # super() has already refused a missing leader
        return self._remember(target, command.decode("utf-8", "replace"), future)

    def add_voter(self, node_id: str) -> Any:
        """``Cluster.add_voter``, remembering the request so its answer can be shown."""
        leader = self.leader()
        return self._remember(leader, f"add_voter {node_id}", super().add_voter(node_id))

    def remove_server(self, node_id: str) -> Any:
        """``Cluster.remove_server``, remembering the request so its answer can be shown."""
        leader = self.leader()
        return self._remember(leader, f"remove_server {node_id}", super().remove_server(node_id))

    def transfer_leadership(self, target: str | None = None) -> Any:
        """``Cluster.transfer_leadership``, remembering the request so its answer can be shown."""
        leader = self.leader()
        text = "transfer_leadership" + (f" {target}" if target else "")
        return self._remember(leader, text, super().transfer_leadership(target))

    def _remember(self, node: str | None, command: str, future: Any) -> Any:
        assert node is not None  # Cluster has already refused a request without a leader
        self.client_requests.append(ClientRequest(len(self.client_requests) + 1, self.now, node, command, future))
        return future

    def duplicate_message(self, flight_id: int) -> int | None:
        """``Cluster.duplicate_message``, with this cluster's loop standing as the running loop.

        ``SimNetwork.duplicate`` schedules the copy on ``asyncio.get_event_loop()``.
        Between two runs no loop is running, so in the visualizer's own thread
        that call would fail (and elsewhere could pick some other loop). We
        lend it ours, the way ``raft.runtime.virtual_loop.run_paused`` does.
        """
        outer = asyncio_events._get_running_loop()
        asyncio_events._set_running_loop(self.loop)
        try:
            return super().duplicate_message(flight_id)
        finally:
            asyncio_events._set_running_loop(outer)


def with_setup(setup: LogSetup | None) -> type[VisualCluster]:
    """A ``VisualCluster`` class whose every instance starts from ``setup``."""
    if setup is None:
        return VisualCluster
    return type("PresetCluster", (VisualCluster,), {"setup": setup})


def _config_fields(config: Config) -> dict[str, Any]:
    names = ("heartbeat_timeout", "election_timeout", "commit_timeout", "max_append_entries",
             "leader_lease_timeout", "pre_vote_disabled")
    return {name: getattr(config, name) for name in names}


def _write_logs(cluster: Cluster, setup: LogSetup) -> None:
    """Store each node's preset log and term, as a disk would hold them after earlier terms."""
    servers = [Server(ServerSuffrage.Voter, node, node) for node in cluster.ids]
    membership = encode_configuration(Configuration(servers))
    for node, terms in setup.logs.items():
        store = cluster.handles[node].store
        entries = [Log(1, terms[0], LogType.LogConfiguration, membership)]
        entries += [Log(index, term, LogType.LogCommand, f"set k{index} t{term}".encode())
                    for index, term in enumerate(terms[1:], start=2)]
        store.store_logs(entries)
        store.set_uint64(KEY_CURRENT_TERM, max(setup.terms.get(node, 0), terms[-1]))


# -- the key-value state machine, read from the commands each node applied -------------


def parse_kv(command: str) -> tuple[str, str, str] | None:
    """``("set", key, value)``, ``("del", key, "")`` or ``("get", key, "")``; None for anything else."""
    parts = command.split(" ", 2)
    if len(parts) == 3 and parts[0] == "set":
        return "set", parts[1], parts[2]
    if len(parts) == 2 and parts[0] in ("del", "get"):
        return parts[0], parts[1], ""
    return None


def fold_kv(commands: Iterable[bytes], kv: dict[str, str] | None = None) -> dict[str, str]:
    """Apply ``commands`` in order to ``kv`` (a new dict by default) and return it."""
    state = {} if kv is None else kv
    for raw in commands:
        parsed = parse_kv(raw.decode("utf-8", "replace"))
        if parsed is None:
            continue
        op, key, value = parsed
        if op == "set":
            state[key] = value
        elif op == "del":
            state.pop(key, None)
    return state


def settle_client_requests(cluster: VisualCluster, apply_times: dict[tuple[str, int], float]) -> list[ClientRequest]:
    """Fill in the answers of requests whose futures resolved; return those newly answered.

    The answer time is when the entry was applied on the node that took the
    request (from ``apply_times``), so it does not depend on how often we look.
    """
    answered = []
    for request in cluster.client_requests:
        if request.ok is not None or not request.future.done:
            continue
        error = request.future.error_now()
        request.ok = error is None
        request.error = "" if error is None else str(error) or type(error).__name__
        request.index = request.future.index() if hasattr(request.future, "index") else 0
        request.answered_at = apply_times.get((request.node, request.index), cluster.now)
        if request.ok and request.command.startswith("get "):
            request.value = _read_value(cluster, request)
        answered.append(request)
    return answered


def _read_value(cluster: VisualCluster, request: ClientRequest) -> str | None:
    position = request.future.response()  # MockFSM: how many commands it had applied, this one included
    logs = getattr(cluster.fsm(request.node), "logs", None)
    if not isinstance(position, int) or logs is None or len(logs) < position:
        return None
    parsed = parse_kv(request.command)
    assert parsed is not None
    return fold_kv(logs[: position - 1]).get(parsed[1])
