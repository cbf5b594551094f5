"""The public face of a Raft node: creating it, bootstrapping it, and what clients call.

Mirrors: api.go.
Read before: nothing; start here to use the library.
Read next: raft.py (what the node does once started).

Creating a node::

    r = new_raft(config, fsm, log_store, stable_store, snapshot_store, transport)

starts three tasks on the running event loop: ``run`` (the protocol),
``run_fsm`` (applies committed entries) and ``run_snapshots``.
Client calls such as ``apply`` return at once with a future; ``await
future.error()`` waits for the outcome, as Go's ``Error()`` blocks.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from dataclasses import replace
from typing import Any, BinaryIO

from raft.config import (
    Config,
    ProtocolVersionMax,
    ProtocolVersionMin,
    ReloadableConfig,
    SnapshotVersionMax,
    SnapshotVersionMin,
    validate_config,
)
from raft.configuration import (
    Configuration,
    ConfigurationChangeCommand,
    ConfigurationChangeRequest,
    Configurations,
    ServerSuffrage,
    check_configuration,
    encode_configuration,
    has_vote,
)
from raft.errors import (
    ErrCantBootstrap,
    ErrEnqueueTimeout,
    ErrNotVoter,
    ErrRaftShutdown,
    RaftError,
    StoreError,
)
from raft.events import (
    EventLog,
    NodeEvents,
    SnapshotRestored,
    StateChanged,
    protocol_function,
    reset_started_by,
    started_by,
)
from raft.fsm import FSM, CommitTuple, FSMRunner
from raft.future import (
    BootstrapFuture,
    ConfigurationChangeFuture,
    ConfigurationsFuture,
    DeferError,
    ErrorFuture,
    LeadershipTransferFuture,
    LogFuture,
    ReqSnapshotFuture,
    RestoreFuture,
    ShutdownFuture,
    UserRestoreFuture,
    UserSnapshotFuture,
    VerifyFuture,
)
from raft.log import Log, LogStore, LogType
from raft.observer import Observer, ObserverMixin
from raft.raft import KEY_CURRENT_TERM, LeaderState, RaftLoops
from raft.replication import Replication
from raft.runtime.channels import Chan, Send, select, select_soon
from raft.runtime.timers import Timer
from raft.runtime.virtual_loop import VirtualTimeLoop
from raft.snapshot import SnapshotMeta, SnapshotRunner, SnapshotStore
from raft.stable import StableStore
from raft.state import RaftState, RaftStateVars
from raft.transport import RPC, Transport, WithPreVote
from raft.util import async_notify_ch

SUGGESTED_MAX_DATA_SIZE = 512 * 1024  # advisory: larger entries delay heartbeats behind them


def bootstrap_cluster(config: Config, logs: LogStore, stable: StableStore, snaps: SnapshotStore,
                      trans: Transport, configuration: Configuration) -> None:
    """Give a brand-new server its first configuration (Mirrors: api.go BootstrapCluster).

    Writes term 1 and log entry 1, a ``LogConfiguration`` entry listing the
    servers. Every initial voter may be bootstrapped with the same
    configuration; they all write the identical entry, so their logs agree.
    Raises ``ErrCantBootstrap`` if the server already has state.
    """
    validate_config(config)
    check_configuration(configuration)
    if has_existing_state(logs, stable, snaps):
        raise ErrCantBootstrap()
    try:
        stable.set_uint64(KEY_CURRENT_TERM, 1)
    except RaftError as err:
        raise StoreError(f"failed to save current term: {err}") from err
    entry = Log(index=1, term=1, type=LogType.LogConfiguration, data=encode_configuration(configuration))
    try:
        logs.store_log(entry)
    except RaftError as err:
        raise StoreError(f"failed to append configuration entry to log: {err}") from err


def has_existing_state(logs: LogStore, stable: StableStore, snaps: SnapshotStore) -> bool:
    """True if this server has been part of a cluster before (Mirrors: HasExistingState).

    A term, a log entry or a snapshot each count.
    """
    if stable.get_uint64(KEY_CURRENT_TERM) > 0:
        return True
    if logs.last_index() > 0:
        return True
    return len(snaps.list()) > 0


def recover_cluster(config: Config, fsm: FSM, logs: LogStore, stable: StableStore, snaps: SnapshotStore,
                    trans: Transport, configuration: Configuration) -> None:
    """Force a new configuration on a stopped server after the cluster lost its quorum.

    Mirrors: api.go RecoverCluster.

    Manual disaster recovery: the server's state (newest usable snapshot
    plus every command in its log) is folded into a new snapshot that
    carries ``configuration``, and the log is deleted. Run it on every
    surviving server with the same configuration, then start them.

    Warning: this treats every entry in the log as committed, which may
    commit entries that were never acknowledged to a client.
    """
    validate_config(config)
    check_configuration(configuration)
    if not has_existing_state(logs, stable, snaps):
        raise RaftError("refused to recover cluster with no initial state, this is probably an operator error")
    snapshots = snaps.list()
    snapshot_index = snapshot_term = 0
    logger = config.get_or_create_logger()
    for meta in snapshots:
        try:
            _, source = snaps.open(meta.id)
        except RaftError as err:
            logger.error("recover: cannot open snapshot %s: %s", meta.id, err)
            continue
        try:
            fsm.restore(source)
        except Exception as err:  # the application could not read this snapshot
            logger.error("recover: cannot restore snapshot %s: %s", meta.id, err)
            continue
        finally:
            source.close()
        snapshot_index, snapshot_term = meta.index, meta.term
        break
    if snapshots and snapshot_index == 0:
        raise StoreError("failed to restore any of the available snapshots")
    last_index, last_term = snapshot_index, snapshot_term
    last_log_index = logs.last_index()
    for index in range(snapshot_index + 1, last_log_index + 1):
        entry = logs.get_log(index)
        if entry.type == LogType.LogCommand:
            fsm.apply(entry)
        last_index, last_term = entry.index, entry.term
    fsm_snapshot = fsm.snapshot()
    sink = snaps.create(1, last_index, last_term, configuration, 1, trans)
    try:
        fsm_snapshot.persist(sink)
    except Exception as err:  # the application could not write its state
        sink.cancel()
        raise StoreError(f"failed to persist snapshot: {err}") from err
    finally:
        fsm_snapshot.release()
    sink.close()
    first_log_index = logs.first_index()
    if last_log_index > 0:
        logs.delete_range(first_log_index, last_log_index)


def get_configuration(config: Config, fsm: FSM, logs: LogStore, stable: StableStore, snaps: SnapshotStore,
                      trans: Transport) -> Configuration:
    """The latest configuration in a stopped server's stores (Mirrors: api.go GetConfiguration)."""
    conf = replace(config, skip_startup=True)
    clock_only = VirtualTimeLoop()  # the node is never started; it only needs a clock
    try:
        node = Raft(conf, fsm, logs, stable, snaps, trans, loop=clock_only)
        return node.get_configuration().configuration()
    finally:
        clock_only.close()


def new_raft(config: Config, fsm: FSM, logs: LogStore, stable: StableStore, snaps: SnapshotStore,
             trans: Transport, *, events: EventLog | None = None, rng: random.Random | None = None,
             loop: asyncio.AbstractEventLoop | None = None) -> Raft:
    """Build a node from its stores and start it (Mirrors: api.go NewRaft).

    Differs: ``events`` receives the node's event stream, ``rng`` drives
    every random choice the node makes (seed it for a reproducible run) and
    ``loop`` is the event loop to run on (default: the running one).
    """
    return Raft(config, fsm, logs, stable, snaps, trans, events=events, rng=rng, loop=loop)


class Raft(RaftStateVars, RaftLoops, Replication, FSMRunner, SnapshotRunner, ObserverMixin):
    """One Raft server (Mirrors: api.go Raft).

    The methods come from several modules, as in Go: raft.py (the loops and
    RPC handlers), replication.py, fsm.py and observer.py. The fields are
    declared here, like Go's struct; Go's comments on them are condensed
    into the names and the notes below.
    """

    loop: asyncio.AbstractEventLoop  # the event loop all of this node's tasks run on
    rng: random.Random  # every random choice (timeouts, select) comes from here
    logger: logging.Logger
    events: NodeEvents  # where this node's events go (see events.py)
    conf: Config  # current settings; replaced whole by reload_config
    protocol_version: int
    local_id: str
    local_addr: str
    fsm: FSM  # the application; only run_fsm touches it
    logs: LogStore  # Figure 2: log[]
    stable: StableStore  # Figure 2: currentTerm and votedFor, durably
    snapshots: SnapshotStore
    trans: Transport

    apply_ch: Chan[LogFuture]  # client commands to the leader loop
    fsm_mutate_ch: Chan[list[CommitTuple] | RestoreFuture]  # committed entries to run_fsm
    fsm_snapshot_ch: Chan[ReqSnapshotFuture]
    leader_ch: Chan[bool]  # True when we become leader, False when we stop; newest wins
    configuration_change_ch: Chan[ConfigurationChangeFuture]
    rpc_ch: Chan[RPC]  # requests from peers, from the transport
    shutdown_ch: Chan[bool]  # closed on shutdown; every loop selects on it
    user_snapshot_ch: Chan[UserSnapshotFuture]
    user_restore_ch: Chan[UserRestoreFuture]
    verify_ch: Chan[VerifyFuture]
    configurations_ch: Chan[ConfigurationsFuture]
    bootstrap_ch: Chan[BootstrapFuture]
    leadership_transfer_ch: Chan[LeadershipTransferFuture]
    leader_notify_ch: Chan[bool]  # poke the leader after a configuration reload
    follower_notify_ch: Chan[bool]  # poke a follower or candidate after a reload

    _last_contact: float | None  # clock time we last heard from a leader; None: never
    leader_addr: str  # who we believe leads ("" if unknown)
    leader_id: str
    leader_state: LeaderState  # used only while we are leader
    # We became candidate because the leader asked us to (TimeoutNow): our
    # RequestVote then overrides the voters' "sticky leader" rule.
    candidate_from_leadership_transfer: bool
    configurations: Configurations  # committed and latest membership
    latest_configuration: Configuration  # a copy readable from outside the main loop
    shutdown_flag: bool
    observers: dict[int, Observer]
    pre_vote_disabled: bool
    _step_down_pending: bool  # our removal committed: leave the leader loop
    fsm_enqueued_index: int  # last index handed to run_fsm (commands, barriers, configurations)
    fsm_applied_index: int  # last index run_fsm has finished with
    fsm_error: str | None  # why the state machine stopped this node (see fsm_failure)
    _left_leader_loop: Chan[bool]  # closed when the leader loop exits (for transfers)

    def __init__(self, config: Config, fsm: FSM, logs: LogStore, stable: StableStore, snaps: SnapshotStore,
                 trans: Transport, *, events: EventLog | None = None, rng: random.Random | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        validate_config(config)
        self.loop = loop or _running_loop(config.skip_startup)
        super().__init__(task_group_name=config.local_id)
        self.routines_group.loop = self.loop
        self.rng = rng or random.Random()
        self.logger: logging.Logger = config.get_or_create_logger()
        self.events = NodeEvents(events, config.local_id)

        self.conf = config
        self.protocol_version = config.protocol_version
        self.local_id: str = config.local_id
        self.local_addr: str = trans.local_addr()
        self.fsm = fsm
        self.logs = logs
        self.stable = stable
        self.snapshots = snaps
        self.trans = trans

        # The channels of Go's Raft struct, with Go's capacities.
        self.apply_ch: Chan[LogFuture] = Chan(config.max_append_entries if config.batch_apply_ch else 0,
                                              name="apply")
        self.fsm_mutate_ch: Chan[list[CommitTuple] | RestoreFuture] = Chan(128, name="fsmMutate")
        self.fsm_snapshot_ch: Chan[ReqSnapshotFuture] = Chan(0, name="fsmSnapshot")
        self.leader_ch: Chan[bool] = Chan(1, name="leader")
        self.configuration_change_ch: Chan[ConfigurationChangeFuture] = Chan(0, name="configurationChange")
        self.rpc_ch: Chan[RPC] = trans.consumer()
        self.shutdown_ch: Chan[bool] = Chan(0, name="shutdown")
        self.user_snapshot_ch: Chan[UserSnapshotFuture] = Chan(0, name="userSnapshot")
        self.user_restore_ch: Chan[UserRestoreFuture] = Chan(0, name="userRestore")
        self.verify_ch: Chan[VerifyFuture] = Chan(64, name="verify")
        self.configurations_ch: Chan[ConfigurationsFuture] = Chan(8, name="configurations")
        self.bootstrap_ch: Chan[BootstrapFuture] = Chan(0, name="bootstrap")
        self.leadership_transfer_ch: Chan[LeadershipTransferFuture] = Chan(1, name="leadershipTransfer")
        self.leader_notify_ch: Chan[bool] = Chan(1, name="leaderNotify")
        self.follower_notify_ch: Chan[bool] = Chan(1, name="followerNotify")

        self._last_contact: float | None = None  # None: never heard from a leader
        self.leader_addr = ""
        self.leader_id = ""
        self.leader_state = LeaderState()
        self.candidate_from_leadership_transfer = False
        self.configurations = Configurations()
        self.latest_configuration = Configuration()
        self.shutdown_flag = False
        self.observers: dict[int, Observer] = {}
        self.pre_vote_disabled = config.pre_vote_disabled or not isinstance(trans, WithPreVote)
        if not isinstance(trans, WithPreVote) and not config.pre_vote_disabled:
            self.logger.warning("pre-vote is disabled because it is not supported by the Transport")
        self._step_down_pending = False
        self._left_leader_loop: Chan[bool] = Chan(0, name="leftLeaderLoop")
        self.fsm_enqueued_index = 0
        self.fsm_applied_index = 0
        self.fsm_error = None
        self._applied_waiters: list[tuple[int, int, asyncio.Future[None]]] = []  # heap: (index, seq, future)
        self._applied_waiter_seq = 0

        self._restore_from_stores()
        trans.set_heartbeat_handler(self.process_heartbeat)
        if config.skip_startup:
            return
        self.go_func(self.run(), "run")
        self.go_func(self.run_fsm(), "run_fsm")
        self.go_func(self.run_snapshots(), "run_snapshots")

    def _restore_from_stores(self) -> None:
        """Load term, last entry, snapshot and configuration from the stores (part of NewRaft).

        Paper: Figure 2, "Persistent state on all servers": what survives a crash.
        """
        self._set_state_var(RaftState.Follower)
        self._current_term = self.stable.get_uint64(KEY_CURRENT_TERM)
        last_index = self.logs.last_index()
        last_log = self.logs.get_log(last_index) if last_index > 0 else Log()
        self.set_last_log(last_log.index, last_log.term)
        self.restore_snapshot()
        snapshot_index, _ = self.get_last_snapshot()
        for index in range(snapshot_index + 1, last_log.index + 1):
            self.process_configuration_log_entry(self.logs.get_log(index))
        self.logger.info("initial configuration: index=%d servers=%s", self.configurations.latest_index,
                         self.configurations.latest.servers)
        self.observe(StateChanged("follower", self._current_term, f"started; the log ends at index {last_log.index}"))

    def restore_snapshot(self) -> None:
        """Load the newest snapshot that opens and restores cleanly (Mirrors: restoreSnapshot).

        Paper: §7.

        A damaged snapshot (bad checksum, truncated file, a
        restore that fails) is skipped with a logged reason and the next
        older one is tried; if there are snapshots but none works, starting
        would silently lose state, so we refuse.
        """
        snapshots = self.snapshots.list()
        for meta in snapshots:
            if not self.try_restore_single_snapshot(meta):
                continue
            self.set_last_applied(meta.index)
            self.fsm_applied_index = self.fsm_enqueued_index = meta.index  # the FSM now holds the snapshot's state
            self.set_last_snapshot(meta.index, meta.term)
            self.set_committed_configuration(meta.configuration, meta.configuration_index)
            self.set_latest_configuration(meta.configuration, meta.configuration_index)
            if meta.index > self.get_commit_index():
                self.set_commit_index(meta.index)
            self.observe(SnapshotRestored(meta.index, meta.term, meta.id, "start-up"))
            return
        if snapshots:
            raise StoreError("failed to load any existing snapshots")

    def try_restore_single_snapshot(self, meta: SnapshotMeta) -> bool:
        """Restore the FSM from one snapshot; False, with a logged reason, if that fails.

        Mirrors: api.go tryRestoreSingleSnapshot.
        """
        if self.conf.no_snapshot_restore_on_start:
            return True
        try:
            _, source = self.snapshots.open(meta.id)
        except RaftError as err:
            self.logger.error("failed to open snapshot %s, trying an older one: %s", meta.id, err)
            return False
        try:
            self.fsm.restore(source)
        except Exception as err:  # the application's restore failed on this data
            self.logger.error("failed to restore snapshot %s, trying an older one: %s", meta.id, err)
            return False
        finally:
            source.close()
        self.logger.info("restored from snapshot %s", meta.id)
        return True

    # -- small helpers ----------------------------------------------------------------

    def _hand_over(self, ch: Chan[Any], future: DeferError, timeout: float, name: str) -> None:
        """Give ``future`` to the main loop, waiting in Go's blocking ``select`` as its caller would.

        Mirrors: the enqueue ``select`` of Apply, Barrier, VerifyLeader,
        Snapshot and BootstrapCluster in api.go: the channel, the
        caller's timeout (``ErrEnqueueTimeout``) and shutdown
        (``ErrRaftShutdown``).
        Differs: in Go the caller blocks in that ``select``; here the caller
        gets the future at once and the ``select`` waits in its place
        (``select_soon``), without a task. Every waiting request is a
        waiting sender on the channel, in the order the requests were
        made, so the leader's group commit finds them all, as in Go. A task
        per request did the same, but a client with 20,000 commands in
        flight then started 20,000 tasks at once and held the event loop
        for longer than the leader lease: the leader stepped down and
        nothing ever committed.
        """
        timer = Timer(timeout, self.loop) if timeout > 0 else None
        select_soon(self.loop, [timer.c if timer else None, Send(ch, future), self.shutdown_ch], self.rng,
                    lambda case, _: self._enqueue_ended(future, case, timer))

    def now(self) -> float:
        """The node's clock: virtual seconds in a simulation (never the wall clock in protocol code)."""
        return self.loop.time()

    def config(self) -> Config:
        """The current configuration (Mirrors: config())."""
        return self.conf

    def go_func(self, coro: Any, name: str = "") -> asyncio.Task[Any]:
        """Start a tracked task (Mirrors: state.go goFunc).

        Differs: the task remembers which protocol function started it, for
        the ``func`` of the events it emits (events.py ``started_by``).
        """
        token = started_by(protocol_function())
        try:
            return self.routines_group.go(coro, name)
        finally:
            reset_started_by(token)

    def __repr__(self) -> str:
        return f"Node at {self.local_addr} [{self.get_state()}]"

    # -- configuration reload ------------------------------------------------------------

    def reload_config(self, rc: ReloadableConfig) -> None:
        """Change the reloadable settings of a running node (Mirrors: ReloadConfig).

        Raises ``ConfigError`` and changes nothing if the result is invalid.
        """
        old = self.conf
        new = rc.apply(old)
        validate_config(new)
        self.conf = new
        if rc.heartbeat_timeout < old.heartbeat_timeout:
            # Make running timers pick up the shorter timeout now.
            async_notify_ch(self.leader_notify_ch)
            async_notify_ch(self.follower_notify_ch)

    def reloadable_config(self) -> ReloadableConfig:
        return ReloadableConfig.from_config(self.conf)

    # -- client requests ----------------------------------------------------------------

    def bootstrap_cluster(self, configuration: Configuration) -> BootstrapFuture | ErrorFuture:
        """Live bootstrap of a running, empty node (Mirrors: (*Raft).BootstrapCluster)."""
        if self.shutdown_ch.closed:
            return ErrorFuture(ErrRaftShutdown())
        future = BootstrapFuture(configuration, self.shutdown_ch)
        self._hand_over(self.bootstrap_ch, future, 0, "bootstrap")
        return future

    def live_bootstrap(self, configuration: Configuration) -> RaftError | None:
        """Bootstrap a running, empty node (Mirrors: raft.go liveBootstrap).

        Differs: defined here, beside ``bootstrap_cluster`` which it calls,
        and not in raft.py as in Go: api.py builds ``Raft`` from raft.py's
        ``RaftLoops``, so raft.py cannot import api.py.

        Only a voter of the new configuration may do it: otherwise it would
        write a configuration in which it could never be elected.
        """
        if not has_vote(configuration, self.local_id):
            return ErrNotVoter()
        try:
            bootstrap_cluster(self.config(), self.logs, self.stable, self.snapshots, self.trans, configuration)
        except RaftError as err:
            return err
        entry = self.logs.get_log(1)
        self.set_current_term(1)
        self.set_last_log(entry.index, entry.term)
        self.process_configuration_log_entry(entry)
        return None

    def leader(self) -> str:
        """The leader's address, or "" (Mirrors: Leader, deprecated in Go)."""
        return self.leader_addr

    def leader_with_id(self) -> tuple[str, str]:
        """(address, ID) of the leader we know of, or ("", "") (Mirrors: LeaderWithID)."""
        return self.leader_addr, self.leader_id

    def apply(self, cmd: bytes, timeout: float = 0.0) -> LogFuture | ErrorFuture:
        """Replicate ``cmd`` and apply it to the FSM (Mirrors: Apply).

        ``timeout`` bounds only the wait to hand the command to the main loop
        (``ErrEnqueueTimeout``), not the commit. Only the leader accepts it.
        Differs: the hand-over runs in a task; its errors arrive through the future.
        Go's Apply blocks its caller until the main loop takes the command;
        this one returns at once, so a single task that calls it many times
        without awaiting anything keeps the node from running meanwhile
        (about 4 µs a call: 100,000 calls hold it for most of a leader
        lease). Such a client should ``await asyncio.sleep(0)`` every
        thousand calls or so, as ``bench/raft_node.py`` does.
        """
        if self.shutdown_ch.closed:
            return ErrorFuture(ErrRaftShutdown())
        future = LogFuture(Log(type=LogType.LogCommand, data=cmd), self.shutdown_ch)
        self._hand_over(self.apply_ch, future, timeout, "apply")
        return future

    def apply_log(self, log: Log, timeout: float = 0.0) -> LogFuture | ErrorFuture:
        """Like ``apply``, taking ``data`` and ``extensions`` from ``log`` (Mirrors: ApplyLog)."""
        if self.shutdown_ch.closed:
            return ErrorFuture(ErrRaftShutdown())
        future = LogFuture(Log(type=LogType.LogCommand, data=log.data, extensions=log.extensions),
                           self.shutdown_ch)
        self._hand_over(self.apply_ch, future, timeout, "apply")
        return future

    def barrier(self, timeout: float = 0.0) -> LogFuture | ErrorFuture:
        """Resolve once every earlier entry is applied to the FSM (Mirrors: Barrier)."""
        if self.shutdown_ch.closed:
            return ErrorFuture(ErrRaftShutdown())
        future = LogFuture(Log(type=LogType.LogBarrier), self.shutdown_ch)
        self._hand_over(self.apply_ch, future, timeout, "barrier")
        return future

    def verify_leader(self) -> VerifyFuture | ErrorFuture:
        """Confirm with a quorum that we are still leader (Mirrors: VerifyLeader)."""
        if self.shutdown_ch.closed:
            return ErrorFuture(ErrRaftShutdown())
        future = VerifyFuture(self.shutdown_ch)
        self._hand_over(self.verify_ch, future, 0, "verify")
        return future

    def get_configuration(self) -> ConfigurationsFuture:
        """The latest configuration, read without the main loop (Mirrors: GetConfiguration).

        As in hashicorp, ``index()`` of this future is 0.
        """
        future = ConfigurationsFuture(self.shutdown_ch)
        future.configurations = Configurations(latest=self.get_latest_configuration())
        future.respond(None)
        return future

    def _change_configuration(self, command: ConfigurationChangeCommand, server_id: str, address: str,
                              prev_index: int, timeout: float) -> ConfigurationChangeFuture | ErrorFuture:
        if self.shutdown_ch.closed:
            return ErrorFuture(ErrRaftShutdown())
        req = ConfigurationChangeRequest(command, server_id, address, prev_index)
        future = ConfigurationChangeFuture(req, self.shutdown_ch)
        self.go_func(self.request_config_change(future, timeout), "config-change")
        return future

    def add_voter(self, server_id: str, address: str, prev_index: int = 0,
                  timeout: float = 0.0) -> ConfigurationChangeFuture | ErrorFuture:
        """Add a voting member, or make a member a voter (Mirrors: AddVoter)."""
        return self._change_configuration(ConfigurationChangeCommand.AddVoter, server_id, address,
                                           prev_index, timeout)

    def add_nonvoter(self, server_id: str, address: str, prev_index: int = 0,
                     timeout: float = 0.0) -> ConfigurationChangeFuture | ErrorFuture:
        """Add a member that receives the log but does not vote (Mirrors: AddNonvoter)."""
        return self._change_configuration(ConfigurationChangeCommand.AddNonvoter, server_id, address,
                                           prev_index, timeout)

    def remove_server(self, server_id: str, prev_index: int = 0,
                      timeout: float = 0.0) -> ConfigurationChangeFuture | ErrorFuture:
        """Remove a member (Mirrors: RemoveServer)."""
        return self._change_configuration(ConfigurationChangeCommand.RemoveServer, server_id, "",
                                           prev_index, timeout)

    def demote_voter(self, server_id: str, prev_index: int = 0,
                     timeout: float = 0.0) -> ConfigurationChangeFuture | ErrorFuture:
        """Take a member's vote away (Mirrors: DemoteVoter)."""
        return self._change_configuration(ConfigurationChangeCommand.DemoteVoter, server_id, "",
                                           prev_index, timeout)

    def shutdown(self) -> ShutdownFuture:
        """Stop the node; ``await future.error()`` waits for its tasks (Mirrors: Shutdown).

        Calling it again is harmless.
        """
        if not self.shutdown_flag:
            self.shutdown_ch.close()
            self.shutdown_flag = True
            self.set_state(RaftState.Shutdown, "shutdown requested")
            return ShutdownFuture(self)
        return ShutdownFuture(None)

    def snapshot(self) -> UserSnapshotFuture:
        """Take a snapshot now; ``future.open()`` then reads it (Mirrors: Snapshot).

        Answers ``ErrNothingNewToSnapshot`` if nothing has been applied since start.
        """
        future = UserSnapshotFuture(self.shutdown_ch)
        if self.shutdown_ch.closed:
            future.respond(ErrRaftShutdown())
            return future
        self._hand_over(self.user_snapshot_ch, future, 0, "snapshot")
        return future

    def restore(self, meta: SnapshotMeta, reader: BinaryIO, timeout: float = 0.0) -> DeferError:
        """Replace the whole cluster's state with an external snapshot (Mirrors: Restore).

        Leader only. The returned future resolves once the restore is done
        *and* a no-op after it has committed, so a quorum holds the new state.
        Differs: Go's Restore blocks and returns the error; here it is a future.
        """
        result = DeferError(self.shutdown_ch)
        if self.shutdown_ch.closed:
            result.respond(ErrRaftShutdown())
            return result
        self.go_func(self._restore(meta, reader, timeout, result), "restore")
        return result

    async def _restore(self, meta: SnapshotMeta, reader: BinaryIO, timeout: float, result: DeferError) -> None:
        restore = UserRestoreFuture(meta, reader, self.shutdown_ch)
        await self._enqueue(self.user_restore_ch, restore, timeout)
        err = await restore.error()
        if err is not None:
            result.respond(err)
            return
        noop = LogFuture(Log(type=LogType.LogNoop), self.shutdown_ch)
        await self._enqueue(self.apply_ch, noop, timeout)
        result.respond(await noop.error())

    def leadership_transfer(self) -> LeadershipTransferFuture | ErrorFuture:
        """Hand leadership to the most up-to-date voter (Mirrors: LeadershipTransfer)."""
        return self.initiate_leadership_transfer(None, None)

    def leadership_transfer_to_server(self, server_id: str, address: str) -> LeadershipTransferFuture | ErrorFuture:
        """Hand leadership to ``server_id`` (Mirrors: LeadershipTransferToServer)."""
        return self.initiate_leadership_transfer(server_id, address)

    def initiate_leadership_transfer(self, server_id: str | None,
                                     address: str | None) -> LeadershipTransferFuture | ErrorFuture:
        """Queue a transfer for the leader loop without waiting (Mirrors: initiateLeadershipTransfer)."""
        future = LeadershipTransferFuture(server_id, address, self.shutdown_ch)
        if server_id is not None and server_id == self.local_id:
            future.respond(RaftError("cannot transfer leadership to itself"))
            return future
        if self.shutdown_ch.closed:
            return ErrorFuture(ErrRaftShutdown())
        if not self.leadership_transfer_ch.try_send(future):  # Go: a select whose default refuses
            return ErrorFuture(ErrEnqueueTimeout())
        return future

    # -- reading state --------------------------------------------------------------------

    def state(self) -> RaftState:
        """Our role (Mirrors: State)."""
        return self.get_state()

    def last_contact(self) -> float | None:
        """Clock time we last heard from a leader, or None (Mirrors: LastContact)."""
        return self._last_contact

    def current_term(self) -> int:
        """Our current term (Mirrors: CurrentTerm)."""
        return self.get_current_term()

    def last_index(self) -> int:
        """Our last log index, including a snapshot's (Mirrors: LastIndex)."""
        return self.get_last_index()

    def commit_index(self) -> int:
        """The highest index we know to be committed (Mirrors: CommitIndex)."""
        return self.get_commit_index()

    def applied_index(self) -> int:
        """The last index handed to the FSM task (Mirrors: AppliedIndex)."""
        return self.get_last_applied()

    async def wait_applied(self, index: int, timeout: float) -> bool:
        """Wait until the state machine has applied ``index`` (or restored past it); False on timeout or shutdown.

        Paper:   Thesis §6.4, read index step 4 ("wait for its state machine
                 to advance at least as far as the readIndex").
        Differs: not in hashicorp, whose applications poll or keep their own
        index. The FSM task wakes the waiters as it finishes each batch (and
        ``process_logs`` when it passes entries that never reach the FSM, such
        as a leader's no-op), so a read-index read (kv.read) answers the
        moment its index is applied, without polling.
        """
        if self._fsm_reflects(index):
            return True
        if self.shutdown_ch.closed or timeout <= 0:
            return False
        future: asyncio.Future[None] = self.loop.create_future()
        self._applied_waiter_seq += 1
        heapq.heappush(self._applied_waiters, (index, self._applied_waiter_seq, future))
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            return False
        return self._fsm_reflects(index)

    def _fsm_reflects(self, index: int) -> bool:
        """Has the state machine seen every entry up to ``index`` that was meant for it?"""
        if self.fsm_applied_index >= index:
            return True
        # Entries after the last one handed to the FSM (no-ops) need no applying.
        return self.get_last_applied() >= index and self.fsm_applied_index >= self.fsm_enqueued_index

    def _wake_applied(self, everyone: bool = False) -> None:
        """Wake every ``wait_applied`` whose index the state machine has now reached (all of them: at shutdown)."""
        waiters = self._applied_waiters
        while waiters and (everyone or self._fsm_reflects(waiters[0][0])):
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    def fsm_failure(self) -> str | None:
        """Why the state machine stopped this node, or None while it is healthy.

        Differs: not in hashicorp, where an FSM that panics takes the process
        with it. Here the node shuts down and keeps the reason (see
        ``run_fsm``'s ``_fsm_fail``).
        """
        return self.fsm_error

    def fsm_pending_applies(self) -> bool:
        """True while the FSM task still has entries to apply that were handed to it.

        Differs: not in hashicorp. With ``applied_index()`` it tells when the
        FSM really reflects every entry up to an index (read-index reads).
        """
        return self.fsm_applied_index < self.fsm_enqueued_index

    def committed_in_current_term(self) -> bool:
        """As leader: has an entry of our own term committed yet? (Thesis §6.4, step 1).

        Differs: not in hashicorp, which leaves reads to the application.
        Until this is true a new leader does not know the full commit index.
        """
        return (self.get_state() == RaftState.Leader
                and self.get_commit_index() >= self.leader_state.commitment.start_index)

    def stats(self) -> dict[str, str]:
        """Diagnostic counters as strings, with hashicorp's keys (Mirrors: Stats)."""
        last_log_index, last_log_term = self.get_last_log()
        last_snap_index, last_snap_term = self.get_last_snapshot()
        s = {
            "state": str(self.get_state()),
            "term": str(self.get_current_term()),
            "last_log_index": str(last_log_index),
            "last_log_term": str(last_log_term),
            "commit_index": str(self.get_commit_index()),
            "applied_index": str(self.get_last_applied()),
            "fsm_pending": str(len(self.fsm_mutate_ch)),
            "last_snapshot_index": str(last_snap_index),
            "last_snapshot_term": str(last_snap_term),
            "protocol_version": str(self.protocol_version),
            "protocol_version_min": str(ProtocolVersionMin),
            "protocol_version_max": str(ProtocolVersionMax),
            "snapshot_version_min": str(SnapshotVersionMin),
            "snapshot_version_max": str(SnapshotVersionMax),
        }
        future = self.get_configuration()
        configuration = future.configuration()
        s["latest_configuration_index"] = str(future.index())
        s["latest_configuration"] = str([f"{x.id}@{x.address}({x.suffrage})" for x in configuration.servers])
        voters = [x.id for x in configuration.servers if x.suffrage == ServerSuffrage.Voter]
        s["num_peers"] = str(len(voters) - 1 if self.local_id in voters else 0)
        if self.get_state() == RaftState.Leader:
            s["last_contact"] = "0"
        elif self._last_contact is None:
            s["last_contact"] = "never"
        else:
            s["last_contact"] = f"{self.now() - self._last_contact:.6f}s"
        return s


async def wait_for_leadership(r: Raft, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``r.leader_ch`` to report True (a helper for tests)."""
    timer = Timer(timeout)
    try:
        while True:
            case, value = await select([r.leader_ch, timer.c])
            if case is timer.c:
                return False
            if value:
                return True
    finally:
        timer.stop()


def _running_loop(optional: bool) -> asyncio.AbstractEventLoop:
    """The running loop; a node that will never start may live without one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        hint = " (a node built with skip_startup still needs a clock)" if optional else ""
        raise RuntimeError(f"new_raft needs a running asyncio event loop, or pass loop={hint}") from None
