"""The Raft state machine: follower, candidate and leader loops, and the RPC handlers.

Paper:   Figure 2 (all four boxes), Figure 4 (role changes), §5.1–§5.4;
         Thesis §9.6 (pre-vote), §3.10 (leadership transfer).
Mirrors: raft.go.
Read before: state.py, commands.py, configuration.py.
Read next: replication.py (what a leader's per-follower tasks do),
commitment.py, fsm.py.

Theory of operation
-------------------
``run`` is the node's main task. It loops over the three roles; each role
has its own loop (``run_follower``, ``run_candidate``, ``run_leader``) that
waits in a ``select`` on the incoming RPC channel, the client request
channels and its timers, and returns when the role changes. Everything that
changes Raft's core state (term, vote, log, commit index, configuration)
happens in this one task, so those changes never interleave.

The sections below follow raft.go: helpers; the follower and candidate
loops; the leader; the RPC handlers; elections and small setters.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from raft.commands import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestPreVoteRequest,
    RequestPreVoteResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    RPCHeader,
    TimeoutNowRequest,
    TimeoutNowResponse,
)
from raft.commitment import Commitment
from raft.config import ProtocolVersionMax, ProtocolVersionMin, SnapshotVersionMax, SnapshotVersionMin
from raft.configuration import (
    Configuration,
    ServerSuffrage,
    configuration_to_dict,
    decode_configuration,
    encode_configuration,
    has_vote,
    in_configuration,
    next_configuration,
)
from raft.errors import (
    ConfigError,
    ErrAbortedByRestore,
    ErrCantBootstrap,
    ErrEnqueueTimeout,
    ErrLeadershipLost,
    ErrLeadershipTransferInProgress,
    ErrLogNotFound,
    ErrNotLeader,
    ErrRaftShutdown,
    ErrUnsupportedProtocol,
    RaftError,
    StoreError,
    TransportError,
)
from raft.events import (
    CommitIndexChanged,
    ConfigurationChanged,
    ElectionStarted,
    ElectionTimedOut,
    EntriesAppended,
    LeaseLost,
    LogTruncated,
    SnapshotIgnored,
    SnapshotInstalled,
    SnapshotRestored,
    StateChanged,
    TermChanged,
    TimeoutNowRefused,
    TimerSet,
    TransferFinished,
    TransferStarted,
    VoteDecided,
    VoteTallied,
)
from raft.fsm import CommitTuple
from raft.future import (
    ConfigurationChangeFuture,
    DeferError,
    LeadershipTransferFuture,
    LogFuture,
    RestoreFuture,
    VerifyFuture,
)
from raft.log import Log, LogType, MonotonicLogStore, first_index_of_term, term_runs
from raft.observer import LeaderObservation, PeerObservation
from raft.replication import FollowerReplication
from raft.runtime.channels import Chan, Send, select
from raft.runtime.timers import Timer, after
from raft.snapshot import SnapshotMeta
from raft.state import RaftState
from raft.transport import RPC, WithPreVote
from raft.util import async_notify_ch, override_notify_bool, random_delay

if TYPE_CHECKING:
    from raft.api import Raft  # only for ``self: Raft``; api.py builds Raft from RaftLoops

MIN_CHECK_INTERVAL = 0.010  # shortest wait between two leader-lease checks
SNAPSHOT_CHUNK = 64 * 1024  # snapshot data is copied this many bytes at a time
RPC_UNEXPECTED_COMMAND_ERROR = "unexpected command"

# Keys of the durable variables in the StableStore (Figure 2: "Persistent state").
KEY_CURRENT_TERM = b"CurrentTerm"  # Figure 2: currentTerm
KEY_LAST_VOTE_TERM = b"LastVoteTerm"  # the term of votedFor
KEY_LAST_VOTE_CAND = b"LastVoteCand"  # Figure 2: votedFor


# Entry kinds looked up once: an enum member access is slow in a hot loop.
_FOR_THE_FSM = frozenset((LogType.LogBarrier, LogType.LogCommand, LogType.LogConfiguration))
_NOT_FOR_THE_FSM = frozenset((LogType.LogNoop, LogType.LogAddPeerDeprecated, LogType.LogRemovePeerDeprecated))
_CONFIGURATION = LogType.LogConfiguration


@dataclass
class LeaderState:
    """What a server keeps only while it is leader (Mirrors: raft.go leaderState).

    Paper: Figure 2, "Volatile state on leaders" (nextIndex and matchIndex
    live in ``repl_state`` and ``commitment``).
    """

    leadership_transfer_in_progress: bool = False
    commit_ch: Chan[bool] = field(default_factory=lambda: Chan(1, name="commit"))
    # setup_leader_state gives each term its own; until then an empty one, which commits nothing.
    commitment: Commitment = field(default_factory=lambda: Commitment(Chan(1), Configuration(), 0))
    # Futures of entries stored but not yet committed, in index order.
    inflight: deque[LogFuture] = field(default_factory=deque)
    # One replicator per other server, voters and nonvoters alike.
    repl_state: dict[str, FollowerReplication] = field(default_factory=dict)
    # VerifyLeader requests waiting for a quorum of heartbeats (a dict as an ordered set).
    notify: dict[VerifyFuture, None] = field(default_factory=dict)
    # A replicator that saw a newer term sends it here to make us step down.
    step_down: Chan[int] = field(default_factory=lambda: Chan(1, name="stepDown"))


@dataclass
class VoteResult:
    """One answer to our (pre-)vote request, tagged with who sent it (Mirrors: voteResult)."""

    term: int
    granted: bool
    voter_id: str


class RaftLoops:
    """The protocol methods of ``Raft`` that live in raft.go."""

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def get_rpc_header(self: Raft) -> RPCHeader:
        """The header we put on every request and response (Mirrors: getRPCHeader)."""
        return RPCHeader(
            protocol_version=self.config().protocol_version,
            id=self.local_id,
            addr=self.trans.encode_peer(self.local_id, self.local_addr),
        )

    def check_rpc_header(self: Raft, rpc: RPC) -> None:
        """Raise ``ErrUnsupportedProtocol`` for a message we cannot process.

        Mirrors: raft.go checkRPCHeader.

        We accept our own protocol version and the one before it, so a
        cluster can be upgraded one server at a time.
        """
        header = getattr(rpc.command, "header", None)
        if not isinstance(header, RPCHeader):
            raise RaftError("RPC does not have a header")
        version = header.protocol_version
        if version < ProtocolVersionMin or version > ProtocolVersionMax:
            raise ErrUnsupportedProtocol()
        if version < self.config().protocol_version - 1:
            raise ErrUnsupportedProtocol()

    def set_leader(self: Raft, leader_addr: str, leader_id: str) -> None:
        """Record who we think the leader is, and tell observers if it changed (Mirrors: setLeader)."""
        old_addr, old_id = self.leader_addr, self.leader_id
        self.leader_addr, self.leader_id = leader_addr, leader_id
        if old_addr != leader_addr or old_id != leader_id:
            self.observe(LeaderObservation(leader_addr, leader_id))

    async def request_config_change(self: Raft, future: ConfigurationChangeFuture, timeout: float) -> None:
        """Hand a membership change to the leader loop (Mirrors: requestConfigChange)."""
        await self._enqueue(self.configuration_change_ch, future, timeout)

    async def _enqueue(self: Raft, ch: Chan[Any], future: DeferError, timeout: float) -> None:
        """Send ``future`` to the main loop, answering it ourselves on timeout or shutdown.

        Mirrors: the enqueue ``select`` shared by Apply, Barrier and the
        configuration changes in api.go.
        """
        timer = Timer(timeout) if timeout > 0 else None
        case, _ = await select([timer.c if timer else None, Send(ch, future), self.shutdown_ch], self.rng)
        self._enqueue_ended(future, case, timer)

    def _enqueue_ended(self: Raft, future: DeferError, case: Any, timer: Timer | None) -> None:
        """The enqueue ``select`` fired on ``case``: stop the timer, and answer a request the loop never took.

        Mirrors: the ``shutdownCh`` and timer cases of the enqueue ``select``
        in api.go (``ErrRaftShutdown``, ``ErrEnqueueTimeout``).
        """
        if timer is not None:
            timer.stop()
        if case is self.shutdown_ch:
            future.respond(ErrRaftShutdown())
        elif timer is not None and case is timer.c:
            future.respond(ErrEnqueueTimeout())

    # ------------------------------------------------------------------
    # The main loop, follower and candidate
    # ------------------------------------------------------------------

    async def run(self: Raft) -> None:
        """The main task: run the loop of whatever role we are in until shutdown.

        Paper:   Figure 4.
        Mirrors: raft.go run.
        """
        while True:
            if self.shutdown_ch.closed:
                self.set_leader("", "")  # so nobody forwards requests to us
                return
            state = self.get_state()
            if state == RaftState.Follower:
                await self.run_follower()
            elif state == RaftState.Candidate:
                await self.run_candidate()
            elif state == RaftState.Leader:
                await self.run_leader()
            else:
                await self.shutdown_ch.recv()

    async def run_follower(self: Raft) -> None:
        """Answer RPCs; become a candidate if the leader goes quiet.

        Paper:   Figure 2, Rules for Servers, Followers: "If election timeout
                 elapses without receiving AppendEntries RPC from current
                 leader or granting vote to candidate: convert to candidate".
        Mirrors: raft.go runFollower.

        The timer is not reset by each heartbeat: it fires every [HT, 2HT)
        and we then look at how long ago we last heard from a leader. Only a
        voter becomes a candidate (hashicorp #483): a nonvoter that won an
        election would lead a cluster that cannot count its votes. Each of
        the two reasons not to stand is logged once per stay in this loop.
        """
        did_warn = False
        heartbeat_timer = self._random_timer("heartbeat", self.config().heartbeat_timeout)
        while self.get_state() == RaftState.Follower:
            case, value = await select([
                self.rpc_ch, self.configuration_change_ch, self.apply_ch, self.verify_ch,
                self.user_restore_ch, self.leadership_transfer_ch, self.configurations_ch,
                self.bootstrap_ch, self.leader_notify_ch, self.follower_notify_ch,
                heartbeat_timer, self.shutdown_ch,
            ], self.rng)
            if case is self.rpc_ch:
                # Figure 2, Followers: "Respond to RPCs from candidates and leaders".
                await self.process_rpc(value)
            elif case in (self.configuration_change_ch, self.apply_ch, self.verify_ch, self.user_restore_ch,
                          self.leadership_transfer_ch):
                value.respond(ErrNotLeader())  # the five client requests only a leader serves
            elif case is self.configurations_ch:
                value.configurations = self.configurations.clone()
                value.respond(None)
            elif case is self.bootstrap_ch:
                value.respond(self.live_bootstrap(value.configuration))
            elif case is self.leader_notify_ch:
                pass  # only a leader cares about a configuration reload
            elif case is self.follower_notify_ch:
                heartbeat_timer = after(0)  # re-check at once with the reloaded timeout
            elif case is heartbeat_timer:
                timeout = self.config().heartbeat_timeout
                heartbeat_timer = self._random_timer("heartbeat", timeout)
                if self._last_contact is not None and self.now() - self._last_contact < timeout:
                    continue  # we heard from a leader recently enough
                # No leader for a whole heartbeat timeout.
                self.set_leader("", "")
                configurations = self.configurations
                if configurations.latest_index == 0:
                    if not did_warn:
                        self.logger.warning("no known peers, aborting election")
                        did_warn = True
                elif (configurations.latest_index == configurations.committed_index
                      and not has_vote(configurations.latest, self.local_id)):
                    if not did_warn:
                        self.logger.warning("not part of stable configuration, aborting election")
                        did_warn = True
                elif has_vote(configurations.latest, self.local_id):
                    self.logger.warning("heartbeat timeout reached, starting election")
                    self.set_state(RaftState.Candidate, "heartbeat timeout: no leader heard from")
                    return
                elif not did_warn:
                    self.logger.warning("heartbeat timeout reached, not part of a stable configuration "
                                        "or a non-voter, not triggering a leader election")
                    did_warn = True
            elif case is self.shutdown_ch:
                return

    def _random_timer(self: Raft, name: str, timeout: float) -> Chan[float] | None:
        """``random_timeout`` (util.go randomTimeout), plus an event saying when it will fire."""
        if timeout <= 0:
            return None
        delay = random_delay(timeout, self.rng)
        now = self.now()
        self.observe(TimerSet(name, timeout, round(now + timeout, 6), round(now + delay, 6)))
        return after(delay)

    async def run_candidate(self: Raft) -> None:
        """Ask for votes: first a pre-vote round, then the real election.

        Paper:   Figure 2, Rules for Servers, Candidates; §5.2; Thesis §9.6 (pre-vote).
        Mirrors: raft.go runCandidate.

        A pre-vote asks "would you vote for me?" without changing anybody's
        term. Only when a majority says yes do we increment our term and ask
        for real. A server cut off from the cluster thus keeps its term, and
        does not force a healthy leader to step down when it comes back.
        A candidacy requested by a leadership transfer skips the pre-vote.
        """
        term = self.get_current_term() + 1
        vote_ch: Chan[VoteResult] | None = None
        prevote_ch: Chan[VoteResult] | None = None
        if not self.pre_vote_disabled and not self.candidate_from_leadership_transfer:
            prevote_ch = self.pre_elect_self()
        else:
            vote_ch = self.elect_self()
        try:
            election_timeout = self.config().election_timeout
            election_timer = self._random_timer("election", election_timeout)
            pre_granted = pre_refused = granted = 0
            votes_needed = self.quorum_size()
            while self.get_state() == RaftState.Candidate:
                case, value = await select([
                    self.rpc_ch, prevote_ch, vote_ch, self.configuration_change_ch, self.apply_ch,
                    self.verify_ch, self.user_restore_ch, self.leadership_transfer_ch,
                    self.configurations_ch, self.bootstrap_ch, self.leader_notify_ch,
                    self.follower_notify_ch, election_timer, self.shutdown_ch,
                ], self.rng)
                if case is self.rpc_ch:
                    await self.process_rpc(value)
                elif case is prevote_ch:
                    if value.term > term:
                        # Figure 2, All Servers: a newer term means we are out of date.
                        self.set_state(RaftState.Follower, f"pre-vote reply from {value.voter_id} has newer term")
                        self.set_current_term(value.term)
                        return
                    if value.granted:
                        pre_granted += 1
                    else:
                        pre_refused += 1
                    self.observe(VoteTallied("pre_vote", value.voter_id, term, value.granted, pre_granted,
                                             pre_refused, votes_needed))
                    if pre_granted >= votes_needed:
                        # The pre-vote is won: now hold the real election.
                        pre_granted = pre_refused = 0
                        election_timer = self._random_timer("election", election_timeout)
                        prevote_ch = None
                        vote_ch = self.elect_self()
                    if pre_refused >= votes_needed:
                        self.logger.info("pre-vote campaign failed, waiting for election timeout")
                elif case is vote_ch:
                    if value.term > self.get_current_term():
                        self.set_state(RaftState.Follower, f"vote reply from {value.voter_id} has newer term")
                        self.set_current_term(value.term)
                        return
                    if value.granted:
                        granted += 1
                    self.observe(VoteTallied("vote", value.voter_id, self.get_current_term(), value.granted,
                                             granted, None, votes_needed))
                    # Figure 2, Candidates: "If votes received from majority of
                    # servers: become leader".
                    if granted >= votes_needed:
                        self.set_state(RaftState.Leader, f"won the election: {granted} votes, "
                                       f"{votes_needed} needed")
                        self.set_leader(self.local_addr, self.local_id)
                        return
                elif case in (self.configuration_change_ch, self.apply_ch, self.verify_ch, self.user_restore_ch,
                              self.leadership_transfer_ch):
                    value.respond(ErrNotLeader())  # the five client requests only a leader serves
                elif case is self.configurations_ch:
                    value.configurations = self.configurations.clone()
                    value.respond(None)
                elif case is self.bootstrap_ch:
                    value.respond(ErrCantBootstrap())
                elif case is self.leader_notify_ch:
                    pass
                elif case is self.follower_notify_ch:
                    if election_timeout != self.config().election_timeout:
                        election_timeout = self.config().election_timeout
                        election_timer = self._random_timer("election", election_timeout)
                elif case is election_timer:
                    # Figure 2, Candidates: "If election timeout elapses: start new election".
                    # Returning re-enters run_candidate, which starts over.
                    self.logger.warning("Election timeout reached, restarting election")
                    self.observe(ElectionTimedOut(self.get_current_term(), "no majority yet, starting over"))
                    return
                elif case is self.shutdown_ch:
                    return
        finally:
            # The transfer privilege covers one candidacy only; it must not
            # let this node override sticky leaders in later elections.
            self.candidate_from_leadership_transfer = False

    # ------------------------------------------------------------------
    # The leader
    # ------------------------------------------------------------------

    def set_leadership_transfer_in_progress(self: Raft, value: bool) -> None:
        self.leader_state.leadership_transfer_in_progress = value

    def get_leadership_transfer_in_progress(self: Raft) -> bool:
        return self.leader_state.leadership_transfer_in_progress

    def setup_leader_state(self: Raft) -> None:
        """Fresh leader bookkeeping for a new term (Mirrors: setupLeaderState).

        Paper: Figure 2, "Volatile state on leaders (reinitialized after election)".
        """
        state = LeaderState()
        # Entries from here on belong to our term; only those may be
        # committed by counting replicas (§5.4.2).
        state.commitment = Commitment(state.commit_ch, self.configurations.latest, self.get_last_index() + 1)
        self.leader_state = state

    async def run_leader(self: Raft) -> None:
        """Lead: start replicators, append a no-op, then serve in ``leader_loop``.

        Paper:   Figure 2, Rules for Servers, Leaders; §5.4.2 and §8 (the no-op).
        Mirrors: raft.go runLeader.

        The no-op entry is how a new leader learns what is committed: its own
        term's first entry commits only once a majority has it, and with it
        every earlier entry (Log Matching). It also lets the leader commit
        entries left over from older terms, which Figure 8 forbids it to
        count replicas for.
        """
        override_notify_bool(self.leader_ch, True)
        notify = self.config().notify_ch
        if notify is not None:
            await self._notify_leadership(notify, True)
        self.setup_leader_state()
        try:
            self.start_stop_replication()
            self.dispatch_logs([LogFuture(Log(type=LogType.LogNoop), self.shutdown_ch)])
            await self.leader_loop()
        finally:
            await self._leave_leader(notify)

    async def _notify_leadership(self: Raft, notify: Chan[bool], value: bool) -> None:
        """Blocking send on Config.notify_ch, but never past shutdown (best effort then)."""
        case, _ = await select([Send(notify, value), self.shutdown_ch], self.rng)
        if case is self.shutdown_ch:
            notify.try_send(value)  # Go: a second select with a default, best effort at shutdown

    async def _leave_leader(self: Raft, notify: Chan[bool] | None) -> None:
        """Undo leadership: stop replicators, fail what cannot finish (Mirrors: runLeader's defer)."""
        self.set_last_contact()  # a deposed leader counts as having heard from one
        for repl in self.leader_state.repl_state.values():
            repl.stop_ch.close()
        for future in self.leader_state.inflight:
            future.respond(ErrLeadershipLost())
        for verify in self.leader_state.notify:
            verify.respond(ErrLeadershipLost())
        self.leader_state = LeaderState()
        if self.leader_addr == self.local_addr and self.leader_id == self.local_id:
            self.set_leader("", "")
        override_notify_bool(self.leader_ch, False)
        if notify is not None:
            await self._notify_leadership(notify, False)

    def start_stop_replication(self: Raft) -> None:
        """Make the set of replicators match the latest configuration.

        Paper:   Figure 2, Leaders: nextIndex starts at "leader last log index + 1".
        Mirrors: raft.go startStopReplication.

        Nonvoters get a replicator too: they need the log, they just do not
        count for commitment. A removed server gets one last round of
        replication so it learns of its own removal if it can.
        """
        state = self.leader_state
        in_config: dict[str, bool] = {}
        last_index = self.get_last_index()
        for server in self.configurations.latest.servers:
            if server.id == self.local_id:
                continue
            in_config[server.id] = True
            repl = state.repl_state.get(server.id)
            if repl is None:
                repl = FollowerReplication(
                    peer=server, commitment=state.commitment, current_term=self.get_current_term(),
                    next_index=last_index + 1, last_contact=self.now(), step_down=state.step_down,
                )
                state.repl_state[server.id] = repl
                self.go_func(self.replicate(repl), f"replicate:{server.id}")
                async_notify_ch(repl.trigger_ch)
                self.observe(PeerObservation(False, server))
            elif repl.peer.address != server.address:
                repl.peer = server
        for server_id in list(state.repl_state):
            if in_config.get(server_id):
                continue
            repl = state.repl_state.pop(server_id)
            repl.stop_ch.send_nowait(last_index)  # Go blocks here; one value on a one-slot channel never waits
            repl.stop_ch.close()
            self.observe(PeerObservation(True, repl.peer))

    def configuration_change_ch_if_stable(self: Raft) -> Chan[ConfigurationChangeFuture] | None:
        """The configuration-change channel, or None while a change is in flight.

        Paper:   Thesis §4.1 (one change at a time), with Ongaro's 2015
                 correction to it (below).
        Mirrors: raft.go configurationChangeChIfStable.

        A new change may start only when the latest configuration is
        committed and our no-op has committed. The second condition closes a
        hole in single-server changes that Diego Ongaro reported after the
        thesis was published (raft-dev mailing list, "bug in single-server
        membership changes", July 2015): a new leader that changes the
        membership before committing an entry of its own term can let two
        disjoint majorities decide.
        """
        if (self.configurations.latest_index == self.configurations.committed_index
                and self.get_commit_index() >= self.leader_state.commitment.start_index):
            return self.configuration_change_ch
        return None

    async def leader_loop(self: Raft) -> None:
        """Serve as leader until we step down (Mirrors: raft.go leaderLoop).

        Paper: Figure 2, Rules for Servers, Leaders.

        One ``select`` over everything a leader reacts to, as in Go. While a
        leadership transfer is in progress we accept no new work (hashicorp
        #306): those cases answer ``ErrLeadershipTransferInProgress``.
        """
        lease = after(self.config().leader_lease_timeout)
        state = self.leader_state
        self._step_down_pending = False
        self._left_leader_loop: Chan[bool] = Chan(0, name="leftLeaderLoop")
        try:
            while self.get_state() == RaftState.Leader:
                case, value = await select([
                    self.rpc_ch, state.step_down, self.leadership_transfer_ch, state.commit_ch,
                    self.verify_ch, self.user_restore_ch, self.configurations_ch,
                    self.configuration_change_ch_if_stable(), self.bootstrap_ch, self.apply_ch,
                    lease, self.leader_notify_ch, self.follower_notify_ch, self.shutdown_ch,
                ], self.rng)
                if case is self.rpc_ch:
                    await self.process_rpc(value)

                elif case is state.step_down:
                    # Figure 2, All Servers: "If RPC ... response contains term T >
                    # currentTerm: set currentTerm = T, convert to follower".
                    self.set_state(RaftState.Follower, f"a follower replied with newer term {value}")
                    if value > self.get_current_term():
                        self.set_current_term(value)

                elif case is self.leadership_transfer_ch:
                    # Begin handing leadership to value.id, or to the best follower (Thesis §3.10).
                    if self.get_leadership_transfer_in_progress():
                        value.respond(ErrLeadershipTransferInProgress())
                        continue
                    done_ch: Chan[RaftError | None] = Chan(1, name="transferDone")
                    stop_ch: Chan[bool] = Chan(0, name="transferStop")
                    self.go_func(self._watch_leadership_transfer(value, stop_ch, done_ch), "transfer-watchdog")
                    server_id, address = value.id, value.address
                    if server_id is None:
                        server = self.pick_server()
                        if server is None:
                            done_ch.send_nowait(RaftError("cannot find peer"))  # one answer, one slot: never waits
                            continue
                        server_id, address = server.id, server.address
                    repl = state.repl_state.get(server_id)
                    if repl is None:
                        done_ch.send_nowait(RaftError(f"cannot find replication state for {server_id}"))
                        continue
                    self.set_leadership_transfer_in_progress(True)
                    self.observe(TransferStarted(server_id))
                    self.go_func(self.run_leadership_transfer(server_id, address or "", repl, stop_ch, done_ch),
                                 "leadership_transfer")

                elif case is state.commit_ch:
                    # The commitment moved. Figure 2, Leaders: "set commitIndex = N";
                    # All Servers: apply what is now committed.
                    old_commit_index = self.get_commit_index()
                    commit_index = state.commitment.get_commit_index()
                    self.set_commit_index(commit_index)
                    latest_index = self.configurations.latest_index
                    if old_commit_index < latest_index <= commit_index:
                        self.set_committed_configuration(self.configurations.latest, latest_index)
                        if not has_vote(self.configurations.committed, self.local_id):
                            self._step_down_pending = True  # our own removal (or demotion) just committed
                    ready: dict[int, LogFuture] = {}
                    last_in_group = 0
                    while state.inflight and state.inflight[0].log.index <= commit_index:
                        future = state.inflight.popleft()
                        ready[future.log.index] = future
                        last_in_group = future.log.index
                    if ready:
                        await self.process_logs(last_in_group, ready)
                    if self._step_down_pending:
                        # Differs: answer our own removal now. It is committed, and once we
                        # shut down the FSM task could no longer deliver the answer.
                        for future in ready.values():
                            if isinstance(future, ConfigurationChangeFuture):
                                future.respond(None)
                        if self.config().shutdown_on_remove:
                            self.logger.info("removed ourself, shutting down")
                            self.shutdown()
                        else:
                            self.logger.info("removed ourself, transitioning to follower")
                            self.set_state(RaftState.Follower, "our removal from the cluster committed")

                elif case is self.verify_ch:
                    # A new verify request (quorum_size still 0), or one that has collected its answers.
                    if value.quorum_size == 0:
                        self.start_verify_leader(value)
                        continue
                    state.notify.pop(value, None)
                    for repl in state.repl_state.values():
                        repl.clean_notify(value)
                    if value.votes < value.quorum_size:
                        self.logger.warning("new leader elected, stepping down")
                        self.set_state(RaftState.Follower, "verify_leader: a follower has a newer term")
                        value.respond(ErrNotLeader())
                    else:
                        value.respond(None)

                elif case is self.user_restore_ch:
                    if self.get_leadership_transfer_in_progress():
                        value.respond(ErrLeadershipTransferInProgress())
                        continue
                    value.respond(await self.restore_user_snapshot(value.meta, value.reader))

                elif case is self.configurations_ch:
                    if self.get_leadership_transfer_in_progress():
                        value.respond(ErrLeadershipTransferInProgress())
                        continue
                    value.configurations = self.configurations.clone()
                    value.respond(None)

                elif case is self.configuration_change_ch:
                    if self.get_leadership_transfer_in_progress():
                        value.respond(ErrLeadershipTransferInProgress())
                        continue
                    self.append_configuration_entry(value)

                elif case is self.bootstrap_ch:
                    value.respond(ErrCantBootstrap())

                elif case is self.apply_ch:
                    if self.get_leadership_transfer_in_progress():
                        value.respond(ErrLeadershipTransferInProgress())
                        continue
                    # Group commit: take every waiting request (up to MaxAppendEntries)
                    # into one append; one disk write amortizes the fsync, which is
                    # what limits a leader's throughput.
                    batch = [value]
                    for _ in range(self.config().max_append_entries):
                        queued, received = self.apply_ch.try_recv()
                        if not received:
                            break
                        assert queued is not None
                        batch.append(queued)
                    if self._step_down_pending:
                        for queued in batch:
                            queued.respond(ErrNotLeader())
                    else:
                        self.dispatch_logs(batch)

                elif case is lease:
                    max_diff = self.check_leader_lease()
                    lease = after(max(self.config().leader_lease_timeout - max_diff, MIN_CHECK_INTERVAL))

                elif case is self.leader_notify_ch:
                    for repl in state.repl_state.values():
                        async_notify_ch(repl.notify_ch)

                elif case is self.follower_notify_ch:
                    pass  # only a follower cares about a configuration reload

                elif case is self.shutdown_ch:
                    return
        finally:
            self._left_leader_loop.close()

    def start_verify_leader(self: Raft, v: VerifyFuture) -> None:
        """Confirm we are still leader by hearing from a quorum (Mirrors: raft.go verifyLeader).

        Paper: §8 ("a leader must check whether it has been deposed before
        processing a read-only request"): heartbeats to a majority do that.
        """
        v.votes = 1  # our own
        v.quorum_size = self.quorum_size()
        if v.quorum_size == 1:
            v.respond(None)
            return
        v.notify_ch = self.verify_ch
        self.leader_state.notify[v] = None
        for repl in self.leader_state.repl_state.values():
            repl.notify[v] = None
            async_notify_ch(repl.notify_ch)

    async def _watch_leadership_transfer(self: Raft, future: LeadershipTransferFuture, stop_ch: Chan[bool],
                                         done_ch: Chan[RaftError | None]) -> None:
        """Answer the transfer future: success once we are no longer leader, or a timeout.

        Mirrors: the watchdog goroutine inside leaderLoop (hashicorp #581).
        """
        left = self._left_leader_loop
        result: RaftError | None = None
        try:
            timeout = after(self.config().election_timeout)
            case, err = await select([timeout, left, done_ch], self.rng)
            if case is not done_ch:
                stop_ch.close()
                result = RaftError("leadership transfer timeout") if case is timeout else None
                future.respond(result)
                await done_ch.recv()
            elif err is not None:
                result = err
                future.respond(result)
            else:
                # TimeoutNow was sent; wait for the target to win its election.
                case, _ = await select([after(self.config().election_timeout), left], self.rng)
                result = RaftError("leadership transfer timeout") if case is not left else None
                future.respond(result)
        finally:
            self.set_leadership_transfer_in_progress(False)
            self.observe(TransferFinished("finished", str(result or "")))

    async def run_leadership_transfer(self: Raft, server_id: str, address: str, repl: FollowerReplication,
                                  stop_ch: Chan[bool], done_ch: Chan[RaftError | None]) -> None:
        """Bring the target up to date, then tell it to start an election now.

        Paper:   Thesis §3.10.
        Mirrors: raft.go leadershipTransfer.
        """
        if stop_ch.closed:
            await done_ch.send(None)
            return
        while repl.next_index <= self.get_last_index():
            err = DeferError()
            await repl.trigger_defer_error_ch.send(err)
            case, value = await select([err.err_ch, stop_ch], self.rng)
            if case is stop_ch:
                await done_ch.send(None)
                return
            if value is not None:
                await done_ch.send(value)
                return
        try:
            await self.trans.timeout_now(server_id, address,
                                         TimeoutNowRequest(self.get_rpc_header(), term=repl.current_term))
        except RaftError as err:
            await done_ch.send(RaftError(f"failed to make TimeoutNow RPC to {server_id}: {err}"))
            return
        await done_ch.send(None)

    def check_leader_lease(self: Raft) -> float:
        """Step down if we have not heard from a quorum within the lease; return the longest silence.

        Paper:   §6.2 of the thesis (a leader that cannot reach a majority steps down).
        Mirrors: raft.go checkLeaderLease.

        Without this, a leader cut off in a minority would keep accepting
        requests it can never commit, and clients would wait forever.
        """
        contacted = 0
        lease_timeout = self.config().leader_lease_timeout
        max_diff = 0.0
        now = self.now()
        for server in self.configurations.latest.servers:
            if server.suffrage != ServerSuffrage.Voter:
                continue
            if server.id == self.local_id:
                contacted += 1
                continue
            repl = self.leader_state.repl_state[server.id]
            diff = now - repl.last_contact
            if diff <= lease_timeout:
                contacted += 1
                max_diff = max(max_diff, diff)
        quorum = self.quorum_size()
        if contacted < quorum:
            self.logger.warning("failed to contact quorum of nodes, stepping down")
            self.observe(LeaseLost(contacted, quorum))
            self.set_state(RaftState.Follower, f"leader lease expired: heard from {contacted} of "
                           f"{quorum} voters needed")
        return max_diff

    def quorum_size(self: Raft) -> int:
        """How many votes make a majority of the latest configuration's voters (Mirrors: quorumSize).

        Paper: §5.2 ("votes from a majority of the servers in the full cluster").
        """
        voters = sum(1 for s in self.configurations.latest.servers if s.suffrage == ServerSuffrage.Voter)
        return voters // 2 + 1

    async def restore_user_snapshot(self: Raft, meta: SnapshotMeta, reader: BinaryIO) -> RaftError | None:
        """Replace the cluster's state with an external snapshot (leader only).

        Mirrors: raft.go restoreUserSnapshot.

        We burn one index past anything that exists: the log gets a hole, so
        every follower must fetch the snapshot through InstallSnapshot, and
        any entry in flight is aborted. The caller then commits a no-op so
        that a quorum is known to have the new state.
        """
        if not SnapshotVersionMin <= meta.version <= SnapshotVersionMax:
            return RaftError(f"unsupported snapshot version {meta.version}")
        configurations = self.configurations
        if configurations.committed_index != configurations.latest_index:
            return RaftError(f"cannot restore snapshot now, wait until the configuration entry at "
                             f"{configurations.latest_index} has been applied "
                             f"(have applied {configurations.committed_index})")
        inflight = self.leader_state.inflight
        while inflight:
            inflight.popleft().respond(ErrAbortedByRestore())
        term = self.get_current_term()
        last_index = max(self.get_last_index(), meta.index) + 1
        sink = self.snapshots.create(1, last_index, term, configurations.latest, configurations.latest_index,
                                     self.trans)
        written = 0
        while True:
            chunk = reader.read(SNAPSHOT_CHUNK)
            if not chunk:
                break
            sink.write(chunk)
            written += len(chunk)
        if written != meta.size:
            sink.cancel()
            return RaftError(f"failed to write snapshot, size didn't match ({written} != {meta.size})")
        sink.close()
        restore = RestoreFuture(sink.id(), self.shutdown_ch)
        case, _ = await select([Send(self.fsm_mutate_ch, restore), self.shutdown_ch], self.rng)
        if case is self.shutdown_ch:
            return ErrRaftShutdown()
        err = await restore.error()
        if err is not None:
            # Go panics: the FSM may be half-restored. We stop the node instead.
            self.logger.error("failed to restore snapshot: %s; shutting down", err)
            self.shutdown()
            return StoreError(f"failed to restore snapshot: {err}")
        self.set_last_log(last_index, term)
        self.set_last_applied(last_index)
        self.set_last_snapshot(last_index, term)
        if isinstance(self.logs, MonotonicLogStore) and self.logs.is_monotonic():
            self.remove_old_logs()
        self.observe(SnapshotRestored(last_index, term))
        return None

    def append_configuration_entry(self: Raft, future: ConfigurationChangeFuture) -> None:
        """Append a membership change; it takes effect now, before it commits.

        Paper:   Thesis §4.1 ("a server always uses the latest configuration
                 in its log, regardless of whether the entry is committed").
        Mirrors: raft.go appendConfigurationEntry.
        """
        try:
            configuration = next_configuration(self.configurations.latest, self.configurations.latest_index,
                                               future.req)
        except ConfigError as err:
            future.respond(err)
            return
        self.logger.info("updating configuration: %s %s", future.req.command, future.req.server_id)
        future.log = Log(type=LogType.LogConfiguration, data=encode_configuration(configuration))
        self.dispatch_logs([future])
        index = future.index()
        self.set_latest_configuration(configuration, index)
        self.leader_state.commitment.set_configuration(configuration)
        self.start_stop_replication()

    def dispatch_logs(self: Raft, apply_logs: list[LogFuture]) -> None:
        """Number, store and start replicating new entries (Mirrors: raft.go dispatchLogs).

        Paper: Figure 2, Leaders: "If command received from client: append
        entry to local log"; §5.3.

        The leader's own copy counts towards the majority as soon as it is on
        disk, so we record our match index right after storing.
        """
        now = self.now()
        term = self.get_current_term()
        last_index = self.get_last_index()
        entries = []
        for future in apply_logs:
            future.dispatch = now
            last_index += 1
            future.log.index = last_index
            future.log.term = term
            future.log.appended_at = now
            entries.append(future.log)
            self.leader_state.inflight.append(future)
        try:
            self.logs.store_logs(entries)
        except RaftError as err:
            self.logger.error("failed to commit logs: %s", err)
            for future in apply_logs:
                future.respond(err)
            self.set_state(RaftState.Follower, f"could not store entries: {err}")
            return
        if entries:
            self.observe(EntriesAppended(entries))
        self.leader_state.commitment.match(self.local_id, last_index)
        self.set_last_log(last_index, term)
        for repl in self.leader_state.repl_state.values():
            async_notify_ch(repl.trigger_ch)

    async def process_logs(self: Raft, index: int, futures: dict[int, LogFuture] | None) -> None:
        """Send every entry up to ``index`` that is not yet applied to the FSM task.

        Paper:   Figure 2, All Servers: "If commitIndex > lastApplied: increment
                 lastApplied, apply log[lastApplied] to state machine".
        Mirrors: raft.go processLogs.

        ``last_applied`` moves as soon as the entries are queued for the FSM,
        not when the FSM has run them, as in hashicorp. Each batch is a
        blocking send, as in Go: when the FSM task falls behind, the main
        loop waits for it. That wait is the back-pressure that keeps a fast
        leader from queueing without bound, and it keeps every batch ahead of
        any snapshot restore sent later on the same channel.
        """
        last_applied = self.get_last_applied()
        if index <= last_applied:
            self.logger.warning("skipping application of old log %d", index)
            return
        futures = futures or {}
        max_batch = self.config().max_append_entries
        batch: list[CommitTuple] = []
        for idx in range(last_applied + 1, index + 1):
            future = futures.get(idx)
            entry = future.log if future is not None else self.logs.get_log(idx)
            prepared = self.prepare_log(entry, future)
            if prepared is not None:
                batch.append(prepared)
                if len(batch) >= max_batch:
                    await self._apply_batch(batch)
                    batch = []
            elif future is not None:
                future.respond(None)  # a no-op has nothing to apply
        if batch:
            await self._apply_batch(batch)
        self.set_last_applied(index)
        if self._applied_waiters:  # a reader may wait on entries that never reach the FSM (Raft.wait_applied)
            self._wake_applied()

    async def _apply_batch(self: Raft, batch: list[CommitTuple]) -> None:
        """Hand one batch to the FSM task, waiting for room (Mirrors: processLogs' applyBatch)."""
        self.fsm_enqueued_index = batch[-1].log.index
        case, _ = await select([Send(self.fsm_mutate_ch, batch), self.shutdown_ch], self.rng)
        if case is self.shutdown_ch:
            for item in batch:
                if item.future is not None:
                    item.future.respond(ErrRaftShutdown())

    def prepare_log(self: Raft, entry: Log, future: LogFuture | None) -> CommitTuple | None:
        """What the FSM task should receive for ``entry``, if anything (Mirrors: prepareLog)."""
        if entry.type in _FOR_THE_FSM:
            return CommitTuple(entry, future)
        if entry.type in _NOT_FOR_THE_FSM:
            return None
        raise AssertionError(f"unrecognized log type: {entry!r}")

    # ------------------------------------------------------------------
    # RPC handlers
    # ------------------------------------------------------------------

    async def process_rpc(self: Raft, rpc: RPC) -> None:
        """Dispatch one incoming request to its handler (Mirrors: raft.go processRPC).

        Differs: a coroutine, because InstallSnapshot waits (as in Go, the
        main loop blocks) for the FSM task to restore the snapshot.
        """
        try:
            self.check_rpc_header(rpc)
        except RaftError as err:
            rpc.respond(None, err)
            return
        command = rpc.command
        if isinstance(command, AppendEntriesRequest):
            await self.append_entries(rpc, command)
        elif isinstance(command, RequestVoteRequest):
            self.request_vote(rpc, command)
        elif isinstance(command, RequestPreVoteRequest):
            self.request_pre_vote(rpc, command)
        elif isinstance(command, InstallSnapshotRequest):
            await self.install_snapshot(rpc, command)
        elif isinstance(command, TimeoutNowRequest):
            self.timeout_now(rpc, command)
        else:
            self.logger.error("got unexpected command %r", command)
            rpc.respond(None, RaftError(RPC_UNEXPECTED_COMMAND_ERROR))

    async def process_heartbeat(self: Raft, rpc: RPC) -> None:
        """The transport's fast path for heartbeats (Mirrors: raft.go processHeartbeat).

        It runs on the transport's task, next to the main loop, as in Go: a
        heartbeat carries no entries and no commit index, so it only checks
        the term and notes the leader, and never waits.
        """
        if self.shutdown_ch.closed:
            return
        if isinstance(rpc.command, AppendEntriesRequest):
            await self.append_entries(rpc, rpc.command)
        else:
            rpc.respond(None, RaftError(RPC_UNEXPECTED_COMMAND_ERROR))

    async def append_entries(self: Raft, rpc: RPC, a: AppendEntriesRequest) -> None:
        """Handle AppendEntries: the consistency check, then append, then commit.

        Paper:   Figure 2, AppendEntries RPC, "Receiver implementation" 1–5; §5.3.
        Mirrors: raft.go appendEntries.
        Differs: (1) a ``prevLogIndex`` inside our snapshot always matches.
        Everything in a snapshot is committed, and a committed entry is the
        same in every leader's log (Leader Completeness, then Log Matching),
        so there is nothing to compare. hashicorp looks such an entry up in
        the log, and once it is compacted refuses; with few trailing entries
        kept, the leader then steps back one entry per round trip through
        thousands of entries before it falls back on a snapshot that we,
        having committed further, acknowledge and ignore. etcd/raft accepts
        these too. (2) Rule 5 uses the last *new* entry, as Figure 2 says
        (see the comment there).

        Entries we already have are skipped rather than rewritten: a late,
        duplicated AppendEntries must never truncate entries that a newer one
        added (that would lose acknowledged entries). So are entries our
        snapshot covers: they are committed, hence the same as these.
        """
        resp = AppendEntriesResponse(self.get_rpc_header(), term=self.get_current_term(),
                                     last_log=self.get_last_index())
        try:
            # Rule 1: "Reply false if term < currentTerm".
            if a.term < self.get_current_term():
                return
            if a.term > self.get_current_term() or (self.get_state() != RaftState.Follower
                                                    and not self.candidate_from_leadership_transfer):
                # All Servers: a newer term makes us a follower; and a candidate
                # that hears from a leader of its own term has lost (§5.2).
                self.set_state(RaftState.Follower, f"AppendEntries from leader {a.header.id} in term {a.term}")
                self.set_current_term(a.term)
                resp.term = a.term
            self.set_leader(self.trans.decode_peer(a.header.addr), a.header.id)

            # Rule 2: "Reply false if log doesn't contain an entry at prevLogIndex
            # whose term matches prevLogTerm". This is what makes logs match (§5.3).
            snapshot_index, snapshot_term = self.get_last_snapshot()
            if a.prev_log_entry > 0 and a.prev_log_entry >= snapshot_index:  # below: in our snapshot, matches
                last_index, last_term = self.get_last_entry()
                if a.prev_log_entry == last_index:
                    prev_log_term = last_term  # may come from our snapshot, which the log no longer has
                elif a.prev_log_entry == snapshot_index:
                    prev_log_term = snapshot_term
                else:
                    try:
                        prev_log_term = self.logs.get_log(a.prev_log_entry).term
                    except ErrLogNotFound:
                        self.logger.warning("failed to get previous log %d (last %d)", a.prev_log_entry, last_index)
                        resp.no_retry_backoff = True  # not a fault: the leader should just go back further
                        if self.config().fast_log_backup:  # end of §5.3: "we have nothing there; start at our end"
                            resp.conflict_term, resp.conflict_index = 0, min(a.prev_log_entry, last_index + 1)
                        return
                if a.prev_log_term != prev_log_term:
                    self.logger.warning("previous log term mis-match: ours %d remote %d",
                                        prev_log_term, a.prev_log_term)
                    resp.no_retry_backoff = True
                    if self.config().fast_log_backup:  # end of §5.3: "our entry there has this term, from here on"
                        resp.conflict_term = prev_log_term
                        lowest = max(snapshot_index + 1, self.logs.first_index())
                        resp.conflict_index = (first_index_of_term(self.logs, prev_log_term, lowest, a.prev_log_entry)
                                               if lowest <= a.prev_log_entry else a.prev_log_entry)
                    return

            if a.entries:
                # Rule 3: "If an existing entry conflicts with a new one (same
                # index but different terms), delete the existing entry and all
                # that follow it".
                last_log_index, _ = self.get_last_log()
                new_entries: list[Log] = []
                for i, entry in enumerate(a.entries):
                    if entry.index > last_log_index:
                        new_entries = a.entries[i:]
                        break
                    if entry.index <= snapshot_index:
                        continue  # committed, so the same as ours
                    try:
                        stored = self.logs.get_log(entry.index)
                    except ErrLogNotFound:
                        self.logger.warning("failed to get log entry %d", entry.index)
                        return
                    if entry.term != stored.term:
                        self.logger.warning("clearing log suffix from %d to %d", entry.index, last_log_index)
                        deleted = term_runs(self.logs, entry.index, last_log_index) if self.events.enabled else []
                        try:
                            self.logs.delete_range(entry.index, last_log_index)
                        except RaftError as err:
                            self.logger.error("failed to clear log suffix: %s", err)
                            return
                        self.observe(LogTruncated(entry.index, last_log_index, stored.term, deleted,
                                                  f"conflicts with the leader's entry of term {entry.term}"))
                        if entry.index <= self.configurations.latest_index:
                            # The latest configuration was in the deleted suffix: fall back.
                            self.set_latest_configuration(self.configurations.committed,
                                                          self.configurations.committed_index)
                        new_entries = a.entries[i:]
                        break
                # Rule 4: "Append any new entries not already in the log".
                if new_entries:
                    try:
                        self.logs.store_logs(new_entries)
                    except RaftError as err:
                        self.logger.error("failed to append to logs: %s", err)
                        return
                    self.observe(EntriesAppended(new_entries))
                    for entry in new_entries:
                        self.process_configuration_log_entry(entry)
                    last = new_entries[-1]
                    self.set_last_log(last.index, last.term)

            # Rule 5: "If leaderCommit > commitIndex, set commitIndex =
            # min(leaderCommit, index of last new entry)". Only the entries up
            # to the end of this request are known to match the leader's
            # (rules 2-4 just checked them); our log may run on past them with
            # entries of an older term that the leader overwrote and then
            # committed. Differs: hashicorp takes min(leaderCommit, our last
            # index), which commits that stale tail when a batch ends before
            # it: the follower holds 51-92 of term 4, the leader sends 51-58
            # (which match) with leaderCommit 92, and the follower commits its
            # own 59-92 of term 4 where the leader committed term 5 (found by
            # the fuzzer: MonotonicCrashRestart, seed 139).
            last_new = a.prev_log_entry + len(a.entries)
            index = min(a.leader_commit_index, last_new)
            if index > self.get_commit_index():
                # Differs: hashicorp sets the commit index even when that moves
                # it backwards (possible only with a forged request); we never do.
                self.set_commit_index(index)
                if self.configurations.latest_index <= index:
                    self.set_committed_configuration(self.configurations.latest, self.configurations.latest_index)
                await self.process_logs(index, None)
            resp.success = True
            self.set_last_contact()
        finally:
            rpc.respond(resp, None)

    def process_configuration_log_entry(self: Raft, entry: Log) -> None:
        """A configuration entry takes effect as soon as it is in the log.

        Paper:   Thesis §4.1.
        Mirrors: raft.go processConfigurationLogEntry.
        """
        if entry.type == _CONFIGURATION:
            self.set_committed_configuration(self.configurations.latest, self.configurations.latest_index)
            self.set_latest_configuration(decode_configuration(entry.data), entry.index)

    def request_vote(self: Raft, rpc: RPC, req: RequestVoteRequest) -> None:
        """Decide whether to vote for a candidate.

        Paper:   Figure 2, RequestVote RPC, "Receiver implementation"; §5.2, §5.4.1.
        Mirrors: raft.go requestVote.

        Beyond Figure 2, hashicorp refuses a candidate that is not in our
        configuration (#526) or is not a voter, and refuses anyone while we
        still hear from a leader ("sticky leader"), unless that leader asked
        for the election by a leadership transfer.
        """
        self.observe(req)
        resp = RequestVoteResponse(self.get_rpc_header(), term=self.get_current_term())
        reason = ""  # why we decided as we did, for the event stream
        try:
            candidate = self.trans.decode_peer(req.header.addr)
            candidate_id = req.header.id
            latest = self.configurations.latest
            if latest.servers and not in_configuration(latest, candidate_id):
                reason = "candidate is not in our configuration"
                return
            if self.leader_addr and self.leader_addr != candidate and not req.leadership_transfer:
                reason = f"we still have a leader ({self.leader_id})"
                return
            # Rule 1: "Reply false if term < currentTerm".
            if req.term < self.get_current_term():
                reason = f"stale term {req.term} < our term {self.get_current_term()}"
                return
            if req.term > self.get_current_term():
                # All Servers: "If RPC request contains term T > currentTerm: set
                # currentTerm = T, convert to follower".
                self.set_state(RaftState.Follower, f"RequestVote from {candidate_id} has newer term {req.term}")
                self.set_current_term(req.term)
                resp.term = req.term
            if latest.servers and not has_vote(latest, candidate_id):
                # After the term update, so that a demoted server's high term still
                # reaches the cluster and lets it make progress (#526).
                reason = "candidate is not a voter"
                return
            last_vote_term = self.stable.get_uint64(KEY_LAST_VOTE_TERM)
            last_vote_cand = self.stable.get(KEY_LAST_VOTE_CAND)
            # Rule 2, first half: "If votedFor is null or candidateId ...": one vote per term.
            if last_vote_term == req.term and last_vote_cand is not None:
                if last_vote_cand == req.header.addr.encode():
                    resp.granted = True
                    reason = "already voted for this candidate in this term (duplicate request)"
                    return
                reason = f"already voted for {last_vote_cand.decode()} in term {req.term}"
                return
            # Rule 2, second half: "... and candidate's log is at least as up-to-date
            # as receiver's log, grant vote" (§5.4.1, the election restriction).
            # This is what keeps every committed entry in every future leader's log.
            last_index, last_term = self.get_last_entry()
            if last_term > req.last_log_term:
                reason = f"our last term {last_term} > candidate's {req.last_log_term}"
                return
            if last_term == req.last_log_term and last_index > req.last_log_index:
                reason = f"our log is longer ({last_index} > {req.last_log_index})"
                return
            # Persist before answering: a vote forgotten in a crash could be given twice.
            try:
                self.persist_vote(req.term, req.header.addr.encode())
            except RaftError as err:
                self.logger.error("failed to persist vote: %s", err)
                reason = f"could not persist the vote: {err}"
                return
            self.set_last_contact()  # Followers: granting a vote resets the election timeout
            resp.granted = True
            reason = "candidate's log is at least as up-to-date as ours"
        finally:
            self.observe(VoteDecided("vote", req.header.id, req.term, resp.granted, reason))
            rpc.respond(resp, None)

    def request_pre_vote(self: Raft, rpc: RPC, req: RequestPreVoteRequest) -> None:
        """Say whether we *would* vote for a candidate, changing nothing.

        Paper:   Thesis §9.6.
        Mirrors: raft.go requestPreVote.

        Same checks as a real vote, but we neither adopt the higher term nor
        record a vote, and we do not count this as contact from a leader
        (#609: otherwise a server spamming pre-votes could stop elections).
        """
        self.observe(req)
        resp = RequestPreVoteResponse(self.get_rpc_header(), term=self.get_current_term())
        reason = ""  # why we decided as we did, for the event stream
        try:
            candidate = self.trans.decode_peer(req.header.addr)
            candidate_id = req.header.id
            latest = self.configurations.latest
            if latest.servers and not in_configuration(latest, candidate_id):
                reason = "candidate is not in our configuration"
                return
            # #605: compare with the candidate's address from the header, so our
            # own leader asking for a pre-vote is not refused.
            if self.leader_addr and self.leader_addr != candidate:
                reason = f"we still have a leader ({self.leader_id})"
                return
            if req.term < self.get_current_term():
                reason = f"stale term {req.term} < our term {self.get_current_term()}"
                return
            if req.term > self.get_current_term():
                resp.term = req.term  # echo it, but keep our own term
            if latest.servers and not has_vote(latest, candidate_id):
                reason = "candidate is not a voter"
                return
            last_index, last_term = self.get_last_entry()
            if last_term > req.last_log_term:
                reason = f"our last term {last_term} > candidate's {req.last_log_term}"
                return
            if last_term == req.last_log_term and last_index > req.last_log_index:
                reason = f"our log is longer ({last_index} > {req.last_log_index})"
                return
            resp.granted = True
            reason = "would vote: candidate's log is at least as up-to-date as ours"
        finally:
            self.observe(VoteDecided("pre_vote", req.header.id, req.term, resp.granted, reason))
            rpc.respond(resp, None)

    async def install_snapshot(self: Raft, rpc: RPC, req: InstallSnapshotRequest) -> None:
        """Replace our state with the leader's snapshot.

        Paper:   Figure 13, InstallSnapshot RPC, "Receiver implementation"; §7.
        Mirrors: raft.go installSnapshot.
        Differs: (1) a snapshot that ends at or below our commit index is
        acknowledged and otherwise ignored; hashicorp installs it, and a late
        or duplicated copy then rolls the state machine back (see below).
        (2) After restoring, we apply Figure 13's rules 6 and 7 to our log
        (see ``_keep_or_discard_log``); hashicorp only compacts it, which can
        leave a conflicting entry behind and livelock (hashicorp #697).

        Rules 2-5 (receiving the data in chunks) are the transport's job: it
        hands us the whole snapshot as ``rpc.reader``, which we copy into a
        new snapshot of our own before the FSM task restores from it.
        """
        resp = InstallSnapshotResponse(self.get_rpc_header(), term=self.get_current_term())
        error: RaftError | None = None  # sent back with the response, as Go's rpcErr
        try:
            if not SnapshotVersionMin <= req.snapshot_version <= SnapshotVersionMax:
                error = RaftError(f"unsupported snapshot version {req.snapshot_version}")
                return
            # Rule 1: "Reply immediately if term < currentTerm".
            if req.term < self.get_current_term():
                return
            if req.term > self.get_current_term():
                self.set_state(RaftState.Follower, f"InstallSnapshot from {req.header.id} in newer term {req.term}")
                self.set_current_term(req.term)
                resp.term = req.term
            self.set_leader(self.trans.decode_peer(req.header.addr), req.header.id)
            if req.last_log_index <= self.get_commit_index():
                # §7: a snapshot that describes a prefix of our log must leave the
                # entries after it alone, and one that ends at or below our commit
                # index brings nothing we lack: every entry it covers is committed,
                # so it is in our log or our own snapshot already. Installing it
                # would move the state machine back to an older state. This is
                # what a duplicated or long-delayed InstallSnapshot looks like.
                self.observe(SnapshotIgnored(req.last_log_index, req.last_log_term, req.header.id,
                                             self.get_commit_index(), "the snapshot ends at or below our commit index"))
                resp.success = True
                self.set_last_contact()
                return
            try:
                configuration = decode_configuration(req.configuration)
            except ConfigError as err:
                error = err
                return
            # Rules 2–5: create the snapshot and write the data as it arrives.
            sink = self.snapshots.create(1, req.last_log_index, req.last_log_term, configuration,
                                         req.configuration_index, self.trans)
            received = 0
            reader = rpc.reader
            while received < req.size:
                chunk = reader.read(min(SNAPSHOT_CHUNK, req.size - received)) if reader is not None else b""
                if not chunk:
                    break
                sink.write(chunk)
                received += len(chunk)
            if received != req.size:
                sink.cancel()
                self.logger.error("failed to receive whole snapshot: %d / %d", received, req.size)
                error = RaftError("short read")
                return
            sink.close()
            restore = RestoreFuture(sink.id(), self.shutdown_ch)
            case, _ = await select([Send(self.fsm_mutate_ch, restore), self.shutdown_ch], self.rng)
            if case is self.shutdown_ch:
                error = ErrRaftShutdown()
                return
            err = await restore.error()
            if err is not None:
                self.logger.error("failed to restore snapshot: %s", err)
                error = err
                return
            # Rule 8: "Reset state machine using snapshot contents (and load
            # snapshot's cluster configuration)". The snapshot ends past our commit
            # index (checked above), so lastApplied only moves forward.
            self.set_last_applied(req.last_log_index)
            self.set_last_snapshot(req.last_log_index, req.last_log_term)
            self.set_latest_configuration(configuration, req.configuration_index)
            self.set_committed_configuration(configuration, req.configuration_index)
            self._keep_or_discard_log(req.last_log_index, req.last_log_term)
            # Differs: hashicorp leaves the commit index behind lastApplied here; a
            # snapshot holds only committed entries, so we can move it up.
            if req.last_log_index > self.get_commit_index():
                self.set_commit_index(req.last_log_index)
            self.observe(SnapshotInstalled(req.last_log_index, req.last_log_term, req.size, req.header.id))
            resp.success = True
            self.set_last_contact()
        finally:
            rpc.respond(resp, error)

    def _keep_or_discard_log(self: Raft, index: int, term: int) -> None:
        """Figure 13, rules 6 and 7, after a snapshot covering up to ``index`` was installed.

        Paper:   Figure 13, InstallSnapshot RPC, receiver rules 6 and 7; §7.
        Mirrors: nothing in hashicorp/raft. Its installSnapshot only compacts the log.
        Differs: see ``install_snapshot`` (2), and hashicorp #697.

        Rule 6: "If existing log entry has same index and term as snapshot's
        last included entry, retain log entries following it". Log Matching
        then guarantees that everything we keep agrees with the leader.
        Rule 7: "Discard the entire log" otherwise: an entry that disagrees
        at ``index`` (or any entry past it, after a missing one) could never
        be repaired by AppendEntries, since its predecessor lives only in the
        snapshot; keeping it livelocks replication (hashicorp #697), and
        stale entries below ``index`` could even be sent on by us as leader.

        The caller has made sure ``index`` is past our commit index, hence
        past our own snapshot: a lookup that fails means our log is too
        short, never that the entry was compacted away.

        Differs: hashicorp empties a ``MonotonicLogStore`` here whatever the
        case. Under rule 6 that would throw away the entries after the
        snapshot, which §7 says to keep, while ``last_log`` still pointed at
        them. Compacting the prefix leaves no gap, so monotonic stores keep
        their suffix too; under rule 7 every store is emptied.
        """
        try:
            existing: Log | None = self.logs.get_log(index)
        except ErrLogNotFound:
            existing = None
        if existing is not None and existing.term == term:
            self.compact_logs(index)
            # Entries we keep after the snapshot may hold newer configurations.
            for i in range(index + 1, self.logs.last_index() + 1):
                self.process_configuration_log_entry(self.logs.get_log(i))
            return
        first, last = self.logs.first_index(), self.logs.last_index()
        deleted = term_runs(self.logs, first, last) if last > 0 and self.events.enabled else []
        if last > 0:
            self.logs.delete_range(first, last)
        self.set_last_log(index, term)
        if last > 0:
            self.observe(LogTruncated(first, last, deleted[0][1] if deleted else 0, deleted,
                                      "Figure 13 rule 7: the log does not contain the snapshot's last entry"))

    # ------------------------------------------------------------------
    # Elections and small setters
    # ------------------------------------------------------------------

    def set_last_contact(self: Raft) -> None:
        """Note that we just heard from a leader (Mirrors: setLastContact)."""
        self._last_contact: float | None = self.now()

    def elect_self(self: Raft) -> Chan[VoteResult] | None:
        """Start a real election: new term, vote for ourselves, ask every voter.

        Paper:   Figure 2, Candidates: "On conversion to candidate, start
                 election: increment currentTerm, vote for self, reset
                 election timer, send RequestVote RPCs to all other servers".
        Mirrors: raft.go electSelf.

        Returns None, as Go returns nil, if our own vote cannot be stored:
        the candidate then waits out its election timeout and tries again.
        The channel has a slot for every voter, so no answer ever waits.
        """
        resp_ch: Chan[VoteResult] = Chan(len(self.configurations.latest.servers), name="votes")
        new_term = self.get_current_term() + 1
        self.set_current_term(new_term)
        last_index, last_term = self.get_last_entry()
        req = RequestVoteRequest(self.get_rpc_header(), term=new_term, last_log_index=last_index,
                                 last_log_term=last_term,
                                 leadership_transfer=self.candidate_from_leadership_transfer)
        self.observe(ElectionStarted("vote", new_term, self.quorum_size(), last_index, last_term))
        for server in self.configurations.latest.servers:
            if server.suffrage != ServerSuffrage.Voter:
                continue
            if server.id == self.local_id:
                try:
                    self.persist_vote(req.term, req.header.addr.encode())
                except RaftError as err:
                    self.logger.error("failed to persist vote: %s", err)
                    return None
                resp_ch.send_nowait(VoteResult(req.term, True, self.local_id))
            else:
                self.go_func(self._ask_for_vote(server.id, server.address, req, resp_ch),
                             f"request_vote:{server.id}")
        return resp_ch

    async def _ask_for_vote(self: Raft, server_id: str, address: str, req: RequestVoteRequest,
                            resp_ch: Chan[VoteResult]) -> None:
        try:
            resp = await self.trans.request_vote(server_id, address, req)
            result = VoteResult(resp.term, resp.granted, server_id)
        except RaftError as err:
            self.logger.error("failed to make requestVote RPC to %s: %s", server_id, err)
            result = VoteResult(req.term, False, server_id)
        await resp_ch.send(result)

    def pre_elect_self(self: Raft) -> Chan[VoteResult]:
        """Run a pre-vote: ask every voter whether it would vote for us next term.

        Paper:   Thesis §9.6.
        Mirrors: raft.go preElectSelf.

        Our term does not change and nothing is persisted.
        """
        assert isinstance(self.trans, WithPreVote), "pre-vote needs a transport that supports it"
        resp_ch: Chan[VoteResult] = Chan(len(self.configurations.latest.servers), name="prevotes")
        new_term = self.get_current_term() + 1
        last_index, last_term = self.get_last_entry()
        req = RequestPreVoteRequest(self.get_rpc_header(), term=new_term, last_log_index=last_index,
                                    last_log_term=last_term)
        self.observe(ElectionStarted("pre_vote", new_term, self.quorum_size(), last_index, last_term))
        for server in self.configurations.latest.servers:
            if server.suffrage != ServerSuffrage.Voter:
                continue
            if server.id == self.local_id:
                resp_ch.send_nowait(VoteResult(req.term, True, self.local_id))
            else:
                self.go_func(self._ask_for_pre_vote(server.id, server.address, req, resp_ch),
                             f"request_pre_vote:{server.id}")
        return resp_ch

    async def _ask_for_pre_vote(self: Raft, server_id: str, address: str, req: RequestPreVoteRequest,
                                resp_ch: Chan[VoteResult]) -> None:
        assert isinstance(self.trans, WithPreVote)
        try:
            resp = await self.trans.request_pre_vote(server_id, address, req)
            result = VoteResult(resp.term, resp.granted, server_id)
        except RaftError as err:
            # A peer too old to know pre-vote answers "unexpected command":
            # count it as a yes so mixed-version clusters still elect leaders.
            granted = RPC_UNEXPECTED_COMMAND_ERROR in str(err)
            if not isinstance(err, TransportError) or not granted:
                self.logger.error("failed to make requestPreVote RPC to %s: %s", server_id, err)
            result = VoteResult(req.term, granted, server_id)
        await resp_ch.send(result)

    def persist_vote(self: Raft, term: int, candidate: bytes) -> None:
        """Durably record our vote (Mirrors: raft.go persistVote).

        Paper: Figure 2, "Persistent state": votedFor, "updated on stable
        storage before responding to RPCs".
        """
        self.stable.set_uint64(KEY_LAST_VOTE_TERM, term)
        self.stable.set(KEY_LAST_VOTE_CAND, candidate)

    def set_current_term(self: Raft, term: int) -> None:
        """Durably move to ``term`` (Mirrors: raft.go setCurrentTerm).

        Paper: Figure 2, "Persistent state": currentTerm. Written before the
        node acts in the new term; a node that forgot its term could vote twice.
        """
        try:
            self.stable.set_uint64(KEY_CURRENT_TERM, term)
        except RaftError as err:
            raise StoreError(f"failed to save current term: {err}") from err
        previous = self._current_term
        self._current_term = term
        if term != previous:
            self.observe(TermChanged(term, previous))

    def set_state(self: Raft, state: RaftState, reason: str = "") -> None:
        """Change role; forgetting the known leader first (Mirrors: raft.go setState).

        Paper: Figure 4.
        Differs: takes a ``reason`` for the event stream.
        """
        self.set_leader("", "")
        old = self.get_state()
        self._set_state_var(state)
        if old != state:
            self.observe(StateChanged(state.name.lower(), self.get_current_term(), reason))
            self.observe(state)

    def pick_server(self: Raft) -> Any:
        """The voter most likely to win a transfer: the one with the most of our log.

        Mirrors: raft.go pickServer. Nonvoters are skipped (#398).
        """
        pick = None
        current = 0
        for server in self.configurations.latest.servers:
            if server.id == self.local_id or server.suffrage != ServerSuffrage.Voter:
                continue
            repl = self.leader_state.repl_state.get(server.id)
            if repl is None:
                continue
            if repl.next_index > current:
                current = repl.next_index
                pick = server
        return pick

    def timeout_now(self: Raft, rpc: RPC, req: TimeoutNowRequest) -> None:
        """The leader asks us to start an election at once (Mirrors: raft.go timeoutNow).

        Paper: Thesis §3.10. The flag lets our RequestVote override the
        voters' "sticky leader" refusal and skips the pre-vote.
        Differs: the request carries the leader's term and we refuse one from
        an older term. hashicorp's TimeoutNow has no term, so a duplicated or
        long-delayed copy, or one from a leader deposed since, makes a
        follower disrupt a healthy cluster with a needless election.
        """
        # Figure 2, All Servers: a request from an older term is stale.
        if req.term < self.get_current_term():
            self.observe(TimeoutNowRefused(req.header.id, req.term,
                                           f"stale term {req.term} < our term {self.get_current_term()}"))
            rpc.respond(None, RaftError(f"TimeoutNow from term {req.term} refused: "
                                        f"our term is {self.get_current_term()}"))
            return
        if req.term > self.get_current_term():
            # Figure 2, All Servers: "If RPC request contains term T > currentTerm:
            # set currentTerm = T". The election below then starts at T + 1.
            self.set_state(RaftState.Follower, f"TimeoutNow from {req.header.id} has newer term {req.term}")
            self.set_current_term(req.term)
        self.set_leader("", "")
        self.set_state(RaftState.Candidate, f"TimeoutNow from leader {req.header.id}: leadership transfer")
        self.candidate_from_leadership_transfer = True
        rpc.respond(TimeoutNowResponse(self.get_rpc_header()), None)

    def set_latest_configuration(self: Raft, configuration: Configuration, index: int) -> None:
        """Mirrors: raft.go setLatestConfiguration."""
        self.configurations.latest = configuration
        self.configurations.latest_index = index
        self.latest_configuration = configuration.clone()
        self.observe(ConfigurationChanged("latest", index, configuration_to_dict(configuration)))

    def set_committed_configuration(self: Raft, configuration: Configuration, index: int) -> None:
        """Mirrors: raft.go setCommittedConfiguration."""
        changed = index != self.configurations.committed_index
        self.configurations.committed = configuration
        self.configurations.committed_index = index
        if changed:
            self.observe(ConfigurationChanged("committed", index, configuration_to_dict(configuration)))

    def get_latest_configuration(self: Raft) -> Configuration:
        """A copy of the latest configuration, readable from outside the main loop."""
        return self.latest_configuration.clone()

    def set_commit_index(self: Raft, index: int) -> None:
        """Advance commitIndex (Figure 2: volatile state) and say so on the event stream.

        Mirrors: state.go setCommitIndex.
        """
        previous = self._commit_index
        # Invariant: the commit index never decreases.
        assert index >= previous, \
            f"commit index must never decrease ({previous} -> {index})"
        self._commit_index = index
        if index != previous:
            self.observe(CommitIndexChanged(index, previous))
