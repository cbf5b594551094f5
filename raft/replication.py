"""The leader's per-follower replication: log entries, heartbeats and the commit index.

Paper:   Figure 2 ("Volatile state on leaders": nextIndex, matchIndex;
         "Rules for Servers", Leaders); §5.3; §5.5 (retrying forever).
Mirrors: replication.go.
Read before: raft.py ``start_stop_replication`` (which starts these tasks).
Read next: commitment.py (where match indexes turn into a commit index).

Theory of operation
-------------------
For each other server the leader runs two tasks:

``replicate``
    Sends AppendEntries with the entries the follower lacks, starting at its
    ``next_index``. On a mismatch it steps ``next_index`` back and retries
    (§5.3). It wakes when the leader appends (``trigger_ch``) and also every
    CommitTimeout even when idle: heartbeats carry no commit index, so this
    idle round is how followers learn that entries committed (hashicorp #28).
    After a successful round it switches to *pipeline* mode when the
    transport offers it, sending without waiting for each answer.

``heartbeat``
    Sends an empty AppendEntries every HeartbeatTimeout/10 so the follower
    does not start an election, independently of replication: a long batch
    of entries in flight must not delay the heartbeat.

Either task that sees a newer term in a reply tells the leader to step down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from raft.commands import AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest
from raft.commitment import Commitment
from raft.config import Config
from raft.configuration import Server, encode_configuration
from raft.errors import ErrLogNotFound, ErrPipelineReplicationNotSupported, RaftError
from raft.events import ReplicationRejected, SnapshotSent
from raft.future import DeferError, VerifyFuture
from raft.log import Log, last_index_of_term
from raft.observer import FailedHeartbeatObservation, ResumedHeartbeatObservation
from raft.runtime.channels import Chan, select
from raft.runtime.timers import after
from raft.transport import AppendPipeline
from raft.util import async_notify_ch, backoff, capped_exponential_backoff, random_timeout

if TYPE_CHECKING:
    from raft.api import Raft  # only for ``self: Raft``; api.py builds Raft from this module's mixin

MAX_FAILURE_SCALE = 12  # backoff doubles at most this many times
FAILURE_WAIT = 0.010  # base backoff after a failed RPC


def heartbeat_deadline(config: Config, round_trip: RoundTrip | None = None) -> float:
    """How long one heartbeat waits for its answer before it counts as lost.

    Paper:   §5.6 (the broadcast time must be well below the election timeout).
    Differs: Go waits the transport's timeout (see ``heartbeat``).

    The follower's usual round trip plus four times its variation, as TCP
    sets its retransmission timeout (``RoundTrip``); never less than a
    heartbeat period (heartbeat_timeout/10, 100 ms by default), so that a
    fast, steady network does not give up on answers that are only a
    little late, and never more than half the leader lease, so that the
    next heartbeat still has time to get through before the lease ends.
    """
    longest = config.leader_lease_timeout / 2
    if round_trip is None or round_trip.samples == 0:
        return longest
    return min(longest, max(config.heartbeat_timeout / 10, round_trip.timeout()))


@dataclass
class RoundTrip:
    """The smoothed round trip of a follower's heartbeat answers, to tell a lost answer from a late one.

    Paper:   none; RFC 6298 (TCP's retransmission timer), section 2.
    Mirrors: nothing in hashicorp/raft, whose heartbeats run over TCP,
             where a message is never lost alone.

    ``timeout()`` is the average round trip plus four times its mean
    deviation: an answer later than that is very probably lost.
    """

    average: float = 0.0  # RFC 6298's SRTT
    deviation: float = 0.0  # RFC 6298's RTTVAR
    samples: int = 0

    def sample(self, seconds: float) -> None:
        """Take one measured round trip into the averages (RFC 6298, 2.2 and 2.3)."""
        if self.samples == 0:
            self.average, self.deviation = seconds, seconds / 2
        else:
            self.deviation = 0.75 * self.deviation + 0.25 * abs(self.average - seconds)
            self.average = 0.875 * self.average + 0.125 * seconds
        self.samples += 1

    def timeout(self) -> float:
        return self.average + 4 * self.deviation


@dataclass(eq=False)
class FollowerReplication:
    """The leader's view of one follower (Mirrors: replication.go followerReplication)."""

    peer: Server
    commitment: Commitment
    current_term: int  # the leader's term; never changes for this replicator
    # Figure 2: nextIndex[], the next entry to send to this follower.
    next_index: int
    last_contact: float  # clock time of the last reply, for the leader lease
    step_down: Chan[int]  # the leader's step-down channel: a reply's newer term goes here
    # Closed to stop; a value first asks for one last replication up to that index.
    stop_ch: Chan[int] = field(default_factory=lambda: Chan(1, name="stop"))
    trigger_ch: Chan[bool] = field(default_factory=lambda: Chan(1, name="trigger"))
    # Replicate now and report the result (used by leadership transfer).
    trigger_defer_error_ch: Chan[DeferError] = field(default_factory=lambda: Chan(1, name="triggerDeferError"))
    failures: int = 0  # consecutive failed RPCs, for backoff
    # Poked to send a heartbeat at once (VerifyLeader, config reload).
    notify_ch: Chan[bool] = field(default_factory=lambda: Chan(1, name="notify"))
    # VerifyLeader requests waiting for this follower's next heartbeat answer.
    notify: dict[VerifyFuture, None] = field(default_factory=dict)
    allow_pipeline: bool = False
    round_trip: RoundTrip = field(default_factory=RoundTrip)  # of heartbeat answers, for their deadline
    # Poked by the heartbeat when the follower answers while replication is backing off (see replicate_to).
    reachable_ch: Chan[bool] = field(default_factory=lambda: Chan(1, name="reachable"))

    async def notify_all(self, leader: bool) -> None:
        """Tell every waiting VerifyLeader whether this follower still accepts us (Mirrors: notifyAll).

        A vote that settles a VerifyLeader waits until the leader loop takes
        it, as in Go, so no answer is ever lost.
        """
        waiting, self.notify = self.notify, {}
        for verify in waiting:
            await verify.vote(leader)

    def clean_notify(self, verify: VerifyFuture) -> None:
        self.notify.pop(verify, None)

    def set_last_contact(self, now: float) -> None:
        self.last_contact = now


class Replication:
    """The replication methods of ``Raft`` (Mirrors: replication.go)."""

    async def replicate(self: Raft, s: FollowerReplication) -> None:
        """Keep one follower's log in step with ours until told to stop.

        Paper:   Figure 2, Leaders: "If last log index >= nextIndex for a
                 follower: send AppendEntries RPC with log entries starting at nextIndex".
        Mirrors: replication.go replicate.
        """
        stop_heartbeat: Chan[bool] = Chan(0, name="stopHeartbeat")
        self.go_func(self.heartbeat(s, stop_heartbeat), f"heartbeat:{s.peer.id}")
        try:
            while True:
                if await self._replicate_rpc_mode(s):
                    return
                s.allow_pipeline = False
                try:
                    await self.pipeline_replicate(s)
                except ErrPipelineReplicationNotSupported:
                    pass
                except RaftError as err:
                    self.logger.error("failed to start pipeline replication to %s: %s", s.peer.id, err)
        finally:
            stop_heartbeat.close()

    async def _replicate_rpc_mode(self: Raft, s: FollowerReplication) -> bool:
        """One AppendEntries at a time; True when replication should end for good."""
        should_stop = False
        while not should_stop:
            commit_timer = random_timeout(self.config().commit_timeout, self.rng)
            case, value = await select([s.stop_ch, s.trigger_defer_error_ch, s.trigger_ch, commit_timer], self.rng)
            if case is s.stop_ch:
                if value:
                    await self.replicate_to(s, value)  # a last round for a removed server
                return True
            should_stop = await self.replicate_to(s, self.get_last_log()[0])
            if case is s.trigger_defer_error_ch:
                value.respond(RaftError("replication failed") if should_stop else None)
            if not should_stop and s.allow_pipeline:
                return False
        return True

    async def replicate_to(self: Raft, s: FollowerReplication, last_index: int) -> bool:
        """Send the follower what it lacks, up to ``last_index``; True if we must stop.

        Paper:   Figure 2, Leaders: "If AppendEntries fails because of log
                 inconsistency: decrement nextIndex and retry"; §5.3.
        Mirrors: replication.go replicateTo.
        Differs: the backoff after failures ends early, and starts again
        from the shortest wait, as soon as a heartbeat answer shows the
        follower is reachable (``reachable_ch``). In Go each failure doubles
        the wait, up to 10.24 s, whatever the heartbeats say: after a
        partition heals, or after a few lost messages, a follower that
        answers every heartbeat can wait seconds for its entries or its
        snapshot.
        """
        while True:
            if s.failures > 0:
                case, _ = await select([after(backoff(FAILURE_WAIT, s.failures, MAX_FAILURE_SCALE)), s.reachable_ch,
                                        self.shutdown_ch], self.rng)
                if case is s.reachable_ch:
                    s.failures = 0
            peer = s.peer
            try:
                req = self.setup_append_entries(s, s.next_index, last_index)
            except ErrLogNotFound:
                # The entries were compacted away: only a snapshot can help.
                stop, err = await self.send_latest_snapshot(s)
                if stop:
                    return True
                if err is not None:
                    self.logger.error("failed to send snapshot to %s: %s", peer.id, err)
                    return False
            except RaftError as err:
                # Our own store failed. Go returns and lets the next trigger or
                # commit timeout try again; the replicator keeps running.
                self.logger.error("failed to set up AppendEntries for %s: %s", peer.id, err)
                return False
            else:
                try:
                    resp = await self.trans.append_entries(peer.id, peer.address, req)
                except RaftError as err:
                    self.logger.error("failed to appendEntries to %s: %s", peer.id, err)
                    s.failures += 1
                    return False
                if resp.term > req.term:
                    await self.handle_stale_term(s, resp.term)
                    return True
                s.set_last_contact(self.now())
                if resp.success:
                    await update_last_appended(s, req)
                    s.failures = 0
                    s.allow_pipeline = True
                else:
                    s.next_index = self.next_index_after_rejection(s.next_index, resp)
                    s.failures = 0 if resp.no_retry_backoff else s.failures + 1
                    self.observe(ReplicationRejected(peer.id, s.next_index, resp.last_log, resp.conflict_term,
                                                     resp.conflict_index))
            if s.stop_ch.closed or len(s.stop_ch) > 0:
                return True
            if s.next_index > last_index:
                return False

    def next_index_after_rejection(self: Raft, next_index: int, resp: AppendEntriesResponse) -> int:
        """Where to try next after a follower refused the entries before ``next_index``.

        Paper:   Figure 2, Leaders: "decrement nextIndex and retry"; the end
                 of §5.3 sketches the faster backup used with a hint.
        Mirrors: the rejection branch of replication.go replicateTo (step back
                 one, or to just after the follower's last entry: LastLog).
        Differs: with ``Config.fast_log_backup`` (the default) the follower
        also names the term of its conflicting entry and the first index it
        holds for that term. If we hold entries of that term, we resume
        after our last one (the logs agree up to there, or the next
        rejection says so); if not, we skip the follower's whole term. One
        round trip per term instead of one per entry.
        """
        step = min(next_index - 1, resp.last_log + 1)  # hashicorp's rule
        if self.config().fast_log_backup and resp.conflict_index > 0:
            candidate = resp.conflict_index
            if resp.conflict_term > 0:
                lowest = max(self.get_last_snapshot()[0] + 1, self.logs.first_index())
                try:
                    ours = last_index_of_term(self.logs, resp.conflict_term, lowest, next_index - 1)
                except ErrLogNotFound:
                    ours = 0  # compacted under us: the follower's hint is the best we have
                if ours:
                    candidate = ours + 1
            step = min(step, candidate)
        return max(step, 1)

    async def send_latest_snapshot(self: Raft, s: FollowerReplication) -> tuple[bool, RaftError | None]:
        """Send our newest snapshot to a follower we can no longer catch up from the log.

        Paper:   §7, Figure 13 ("the leader must occasionally send snapshots
                 to followers that lag behind").
        Mirrors: replication.go sendLatestSnapshot.
        Returns (stop, error): stop is True if replication must stop (the
        follower has a newer term); error says why nothing was sent or the
        send failed, and then the caller gives up until the next trigger, as
        in Go (retrying at once would spin: during shutdown the backoff
        does not wait).
        """
        snapshots = self.snapshots.list()
        if not snapshots:
            return False, RaftError("no snapshots found")
        snapshot_id = snapshots[0].id
        try:
            meta, reader = self.snapshots.open(snapshot_id)
        except RaftError as err:
            return False, RaftError(f"failed to open snapshot {snapshot_id}: {err}")
        req = InstallSnapshotRequest(self.get_rpc_header(), snapshot_version=meta.version, term=s.current_term,
                                     last_log_index=meta.index, last_log_term=meta.term,
                                     configuration=encode_configuration(meta.configuration),
                                     configuration_index=meta.configuration_index, size=meta.size)
        peer = s.peer
        self.observe(SnapshotSent(peer.id, meta.index, meta.term, meta.size))
        try:
            resp = await self.trans.install_snapshot(peer.id, peer.address, req, reader)
        except RaftError as err:
            s.failures += 1
            return False, RaftError(f"failed to install snapshot {snapshot_id}: {err}")
        finally:
            reader.close()
        if resp.term > req.term:
            await self.handle_stale_term(s, resp.term)
            return True, None
        s.set_last_contact(self.now())
        if resp.success:
            s.next_index = meta.index + 1
            s.commitment.match(peer.id, meta.index)
            s.failures = 0
            await s.notify_all(True)
        else:
            s.failures += 1
            self.logger.warning("installSnapshot rejected by %s", peer.id)
        return False, None

    async def heartbeat(self: Raft, s: FollowerReplication, stop_ch: Chan[bool]) -> None:
        """Assert leadership to one follower at a steady beat.

        Paper:   §5.2 ("Leaders send periodic heartbeats (AppendEntries RPCs
                 that carry no log entries) to all followers").
        Mirrors: replication.go heartbeat.
        Differs: (1) each heartbeat waits for its answer only as long as
        ``heartbeat_deadline`` (about the follower's usual round trip, at
        most half the leader lease), however long the transport's own
        timeout. In Go the loop waits the transport's timeout, so one lost
        answer stops this follower's heartbeats for that long; when that is
        as long as the lease, the leader counts the follower as silent for a
        whole lease, and a second such loss elsewhere costs the leadership.
        (2) After an answer that did not come in time, the next heartbeat
        goes out as soon as the backoff ends, not a heartbeat period later:
        waiting deadline, backoff and a period, two lost answers in a row
        would leave the follower silent for longer than the lease. After an
        error (the follower is down or cut off), the loop waits as in Go.

        The heartbeat carries only our term and address, so a follower can
        handle it without touching its disk.
        """
        failures = 0
        retry_now = False  # the last answer did not come in time: send again without waiting a period
        req = AppendEntriesRequest(self.get_rpc_header(), term=s.current_term)
        while True:
            if retry_now:
                if stop_ch.closed:
                    return
            else:
                timer = random_timeout(self.config().heartbeat_timeout / 10, self.rng)
                case, _ = await select([s.notify_ch, timer, stop_ch], self.rng)
                if case is stop_ch:
                    return
            peer = s.peer
            sent = self.now()
            try:
                async with asyncio.timeout(heartbeat_deadline(self.config(), s.round_trip)):
                    resp: AppendEntriesResponse = await self.trans.append_entries(peer.id, peer.address, req)
            except (RaftError, TimeoutError) as err:
                retry_now = isinstance(err, TimeoutError)
                wait = capped_exponential_backoff(FAILURE_WAIT, failures, MAX_FAILURE_SCALE,
                                                  self.config().heartbeat_timeout / 2)
                self.logger.debug("failed to heartbeat to %s: %s", peer.address, err)
                self.observe(FailedHeartbeatObservation(peer.id, s.last_contact))
                failures += 1
                case, _ = await select([after(wait), stop_ch], self.rng)
                if case is stop_ch:
                    return
                continue
            retry_now = False
            if failures > 0:
                self.observe(ResumedHeartbeatObservation(peer.id))
            if s.failures > 0:
                async_notify_ch(s.reachable_ch)  # replication is backing off: the follower answers again
            s.round_trip.sample(self.now() - sent)
            s.set_last_contact(self.now())
            failures = 0
            await s.notify_all(resp.success)

    async def pipeline_replicate(self: Raft, s: FollowerReplication) -> None:
        """Send entries without waiting for each answer, while all goes well.

        Mirrors: replication.go pipelineReplicate.

        A task (``pipeline_decode``) reads the answers in order. Any failure
        ends the pipeline, and ``replicate`` goes back to one-at-a-time RPCs
        to find where the follower's log diverges.

        Between two batches ``pipeline_send`` looks at ``finish_ch`` and
        ``s.stop_ch``: once the decoder has gone (a rejected answer), no one
        takes answers off the pipeline any more, and a sender that kept
        going would fill its in-flight window and wait for ever.
        """
        peer = s.peer
        pipeline = await self.trans.append_entries_pipeline(peer.id, peer.address)
        stop_ch: Chan[bool] = Chan(0, name="pipelineStop")
        finish_ch: Chan[bool] = Chan(0, name="pipelineFinish")
        self.go_func(self.pipeline_decode(s, pipeline, stop_ch, finish_ch), f"pipeline_decode:{peer.id}")
        next_index = s.next_index  # Go's nextIndex, which pipelineSend moves through a pointer
        try:
            should_stop = False
            while not should_stop:
                commit_timer = random_timeout(self.config().commit_timeout, self.rng)
                case, value = await select([finish_ch, s.stop_ch, s.trigger_defer_error_ch, s.trigger_ch,
                                            commit_timer], self.rng)
                if case is finish_ch:
                    break
                if case is s.stop_ch:
                    if value:
                        _, next_index = await self.pipeline_send(s, pipeline, next_index, value, finish_ch)
                    break
                should_stop, next_index = await self.pipeline_send(s, pipeline, next_index, self.get_last_log()[0],
                                                                   finish_ch)
                if case is s.trigger_defer_error_ch:
                    value.respond(RaftError("replication failed") if should_stop else None)
            stop_ch.close()
            await select([finish_ch, self.shutdown_ch], self.rng)
        finally:
            pipeline.close()

    async def pipeline_send(self: Raft, s: FollowerReplication, pipeline: AppendPipeline,
                            next_index: int, last_index: int, finish_ch: Chan[bool]) -> tuple[bool, int]:
        """Send everything up to ``last_index`` down the pipeline.

        Returns whether the pipeline must end, and the next index to send
        (Go moves the caller's ``nextIndex`` through a pointer instead).

        Mirrors: replication.go pipelineSend.
        Differs: Go sends one MaxAppendEntries batch per wake-up and counts on
        one trigger per group commit. Here several group commits can happen
        before this task runs, and their triggers merge into one, so we keep
        sending batches until we reach ``last_index``; the pipeline's
        in-flight limit still applies back-pressure. Before each further
        batch we return to ``pipeline_replicate`` if the decoder has finished
        or we are told to stop, the two events its ``select`` waits for.
        """
        while True:
            try:
                req = self.setup_append_entries(s, next_index, last_index)
                await pipeline.append_entries(req)
            except RaftError as err:
                self.logger.error("failed to pipeline appendEntries to %s: %s", s.peer.id, err)
                return True, next_index
            if not req.entries:
                return False, next_index
            next_index = req.entries[-1].index + 1  # optimistically, before the answer
            if next_index > last_index:
                return False, next_index
            if finish_ch.closed or s.stop_ch.closed or len(s.stop_ch) > 0:
                return False, next_index  # the decoder is gone, or we must stop: pipeline_replicate's select sees it

    async def pipeline_decode(self: Raft, s: FollowerReplication, pipeline: AppendPipeline,
                              stop_ch: Chan[bool], finish_ch: Chan[bool]) -> None:
        """Process pipelined answers in order (Mirrors: replication.go pipelineDecode).

        Differs: when an answer ends the pipeline (an error, a newer term, a
        rejection) we also close the pipeline. Nobody takes answers off it
        after we return, so a sender blocked on its full in-flight window
        would otherwise wait for ever; closing wakes it with
        ``ErrPipelineShutdown``. Go can block the same way and does not.
        """
        stopped = False
        try:
            resp_ch = pipeline.consumer()
            while True:
                case, ready = await select([resp_ch, stop_ch], self.rng)
                if case is stop_ch:
                    stopped = True
                    return
                err = await ready.error()
                req, resp = ready.request(), ready.response()
                if err is not None:
                    return
                if resp.term > req.term:
                    await self.handle_stale_term(s, resp.term)
                    return
                s.set_last_contact(self.now())
                if not resp.success:
                    return
                await update_last_appended(s, req)
        finally:
            if not stopped:
                pipeline.close()
            finish_ch.close()

    def setup_append_entries(self: Raft, s: FollowerReplication, next_index: int,
                             last_index: int) -> AppendEntriesRequest:
        """Build the AppendEntries for a follower whose next entry is ``next_index``.

        Paper:   Figure 2, AppendEntries RPC arguments.
        Mirrors: replication.go setupAppendEntries.
        Raises ``ErrLogNotFound`` when an entry we need has been compacted.
        """
        req = AppendEntriesRequest(self.get_rpc_header(), term=s.current_term,
                                   leader_commit_index=self.get_commit_index())
        self.set_previous_log(req, next_index)
        self.set_new_logs(req, next_index, last_index)
        return req

    def set_previous_log(self: Raft, req: AppendEntriesRequest, next_index: int) -> None:
        """Fill in prevLogIndex/prevLogTerm: the entry just before ``next_index``.

        Mirrors: replication.go setPreviousLog.
        """
        snapshot_index, snapshot_term = self.get_last_snapshot()
        if next_index == 1:
            req.prev_log_entry, req.prev_log_term = 0, 0
        elif next_index - 1 == snapshot_index:
            # That entry is gone from the log but its term is in the snapshot's metadata.
            req.prev_log_entry, req.prev_log_term = snapshot_index, snapshot_term
        else:
            entry = self.logs.get_log(next_index - 1)
            req.prev_log_entry, req.prev_log_term = entry.index, entry.term

    def set_new_logs(self: Raft, req: AppendEntriesRequest, next_index: int, last_index: int) -> None:
        """Attach up to MaxAppendEntries entries from ``next_index`` (Mirrors: setNewLogs)."""
        max_index = min(next_index + self.config().max_append_entries - 1, last_index)
        req.entries = [self.logs.get_log(i) for i in range(next_index, max_index + 1)]

    async def handle_stale_term(self: Raft, s: FollowerReplication, term: int) -> None:
        """A follower has a newer term: we are no longer leader (Mirrors: handleStaleTerm).

        Paper: Figure 2, All Servers: "If RPC request or response contains
        term T > currentTerm: set currentTerm = T, convert to follower".
        Differs: the newer term travels to the leader loop, which adopts it
        as it steps down; hashicorp only steps down and learns the term later.

        The leader loop does the step-down: only it changes our role. If a
        term is already waiting there, ours is dropped (Go's asyncNotifyCh):
        the leader steps down either way.
        """
        self.logger.error("peer %s has newer term, stopping replication", s.peer.id)
        await s.notify_all(False)
        s.step_down.try_send(term)  # Go: asyncNotifyCh, a select with a default


async def update_last_appended(s: FollowerReplication, req: AppendEntriesRequest) -> None:
    """The follower stored the entries of ``req``: advance its indexes.

    Paper:   Figure 2, Leaders: "If successful: update nextIndex and matchIndex for follower".
    Mirrors: replication.go updateLastAppended.
    """
    entries: list[Log] = req.entries
    if entries:
        last = entries[-1]
        s.next_index = last.index + 1
        s.commitment.match(s.peer.id, last.index)
    await s.notify_all(True)
