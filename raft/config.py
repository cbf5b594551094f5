"""Tunable settings of a Raft node, with hashicorp/raft's defaults.

Paper:   §5.2 and §5.6 (election timeouts and the timing requirement
         broadcastTime << electionTimeout << MTBF).
Mirrors: config.go.

All durations are in seconds (floats) on the event loop's clock: virtual
seconds in a simulation, real ones on a live node. The defaults are
hashicorp's production defaults; the simulator can afford them because
virtual time costs nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from raft.errors import ConfigError
from raft.runtime.channels import Chan

ProtocolVersionMin = 0  # oldest version a peer may speak on the wire
ProtocolVersionMax = 3  # newest version, and the only one this port runs
SnapshotVersionMin = 0
SnapshotVersionMax = 1


@dataclass
class Config:
    """Settings for one node (Mirrors: config.go Config).

    Differs: protocol versions below 3 are not implemented, so
    ``protocol_version`` must be 3. ``logger`` is a standard ``logging.Logger``
    instead of hclog; ``log_output`` and ``log_level`` are not needed.
    """

    protocol_version: int = ProtocolVersionMax
    # A follower that hears nothing from a leader for this long starts an
    # election (after a random extra delay of up to the same again).
    heartbeat_timeout: float = 1.0
    # A candidate that has not won within this long (plus jitter) starts over.
    election_timeout: float = 1.0
    # An idle leader still sends an AppendEntries this often so followers
    # learn the commit index (heartbeats do not carry it; hashicorp #28).
    commit_timeout: float = 0.050
    # Most entries in one AppendEntries, one group commit and one FSM batch.
    max_append_entries: int = 64
    # Buffer the apply channel to max_append_entries (weakens the enqueue timeout).
    batch_apply_ch: bool = False
    # Shut down, rather than stay a follower, once our own removal commits.
    shutdown_on_remove: bool = True
    # Entries to keep after a snapshot so slow followers can catch up from the log.
    trailing_logs: int = 10240
    # How often to check whether a snapshot is due (jittered up to 2x).
    snapshot_interval: float = 120.0
    # Take a snapshot once this many entries follow the last one.
    snapshot_threshold: int = 8192
    # A leader that cannot reach a quorum for this long steps down.
    leader_lease_timeout: float = 0.500
    # Our server ID; must be unique in the cluster and never change.
    local_id: str = ""
    # Receives True when we become leader and False when we stop (blocking send).
    notify_ch: Chan[bool] | None = None
    logger: logging.Logger | None = None
    # Keep the FSM empty at start-up even if a snapshot exists (the metadata still counts).
    no_snapshot_restore_on_start: bool = False
    # Skip the pre-vote round (Thesis §9.6) before real elections.
    pre_vote_disabled: bool = False
    # Accelerated log backup (end of §5.3): a rejecting follower names the
    # conflicting term and where it starts, and the leader skips whole terms.
    # Not in hashicorp, which steps back one entry per rejection (off: that).
    fast_log_backup: bool = True
    # Internal: build the node but do not start its goroutines (GetConfiguration).
    skip_startup: bool = False

    def get_or_create_logger(self) -> logging.Logger:
        """The configured logger, or one named ``raft.<local_id>``."""
        if self.logger is None:
            self.logger = logging.getLogger(f"raft.{self.local_id or 'node'}")
        return self.logger


def default_config() -> Config:
    """hashicorp's production defaults (Mirrors: DefaultConfig)."""
    return Config()


def validate_config(config: Config) -> None:
    """Raise ``ConfigError`` if ``config`` could not run safely.

    Mirrors: config.go ValidateConfig.
    Differs: only protocol version 3 is accepted.
    """
    if config.protocol_version != ProtocolVersionMax:
        raise ConfigError(
            f"ProtocolVersion {config.protocol_version} is not supported: "
            f"this implementation speaks only version {ProtocolVersionMax}"
        )
    if not config.local_id:
        raise ConfigError("LocalID cannot be empty")
    if config.heartbeat_timeout < 0.005:
        raise ConfigError("HeartbeatTimeout is too low (minimum 5ms)")
    if config.election_timeout < 0.005:
        raise ConfigError("ElectionTimeout is too low (minimum 5ms)")
    if config.commit_timeout < 0.001:
        raise ConfigError("CommitTimeout is too low (minimum 1ms)")
    if config.max_append_entries <= 0:
        raise ConfigError("MaxAppendEntries must be positive")
    if config.max_append_entries > 1024:
        raise ConfigError("MaxAppendEntries is too large (maximum 1024)")
    if config.snapshot_interval < 0.005:
        raise ConfigError("SnapshotInterval is too low (minimum 5ms)")
    if config.leader_lease_timeout < 0.005:
        raise ConfigError("LeaderLeaseTimeout is too low (minimum 5ms)")
    if config.leader_lease_timeout > config.heartbeat_timeout:
        raise ConfigError(
            f"LeaderLeaseTimeout ({config.leader_lease_timeout}s) cannot be larger "
            f"than heartbeat timeout ({config.heartbeat_timeout}s)"
        )
    if config.election_timeout < config.heartbeat_timeout:
        raise ConfigError(
            f"ElectionTimeout ({config.election_timeout}s) must be equal or greater "
            f"than Heartbeat Timeout ({config.heartbeat_timeout}s)"
        )
    if config.trailing_logs < 0 or config.snapshot_threshold < 0:
        raise ConfigError("TrailingLogs and SnapshotThreshold cannot be negative")


@dataclass
class ReloadableConfig:
    """The settings that may change while a node runs (Mirrors: ReloadableConfig)."""

    trailing_logs: int
    snapshot_interval: float
    snapshot_threshold: int
    heartbeat_timeout: float
    election_timeout: float

    def apply(self, to: Config) -> Config:
        """A copy of ``to`` with these five fields replaced, zero values included."""
        return replace(
            to,
            trailing_logs=self.trailing_logs,
            snapshot_interval=self.snapshot_interval,
            snapshot_threshold=self.snapshot_threshold,
            heartbeat_timeout=self.heartbeat_timeout,
            election_timeout=self.election_timeout,
        )

    @classmethod
    def from_config(cls, config: Config) -> ReloadableConfig:
        return cls(
            trailing_logs=config.trailing_logs,
            snapshot_interval=config.snapshot_interval,
            snapshot_threshold=config.snapshot_threshold,
            heartbeat_timeout=config.heartbeat_timeout,
            election_timeout=config.election_timeout,
        )
