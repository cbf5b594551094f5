"""Tests for raft/configuration.py and raft/config.py.

Mirrors: configuration_test.go (cluster membership) and the validation rules of
config.go (ValidateConfig, DefaultConfig, ReloadableConfig).
"""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raft.config import Config, ReloadableConfig, default_config, validate_config
from raft.configuration import (
    AddStaging,
    Configuration,
    ConfigurationChangeCommand,
    ConfigurationChangeRequest,
    Configurations,
    Server,
    ServerSuffrage,
    check_configuration,
    decode_configuration,
    encode_configuration,
    has_vote,
    in_configuration,
    next_configuration,
)
from raft.errors import ConfigError

Voter = ServerSuffrage.Voter
Nonvoter = ServerSuffrage.Nonvoter
Staging = ServerSuffrage.Staging

AddVoter = ConfigurationChangeCommand.AddVoter
AddNonvoter = ConfigurationChangeCommand.AddNonvoter
DemoteVoter = ConfigurationChangeCommand.DemoteVoter
RemoveServer = ConfigurationChangeCommand.RemoveServer
Promote = ConfigurationChangeCommand.Promote


def servers(*triples: tuple[ServerSuffrage, str, str]) -> Configuration:
    """Build a configuration from (suffrage, id, address) triples."""
    return Configuration([Server(suffrage, server_id, address) for suffrage, server_id, address in triples])


def sample_configuration() -> Configuration:
    """One server of each suffrage, voter in the middle."""
    return servers((Nonvoter, "id0", "addr0"), (Voter, "id1", "addr1"), (Staging, "id2", "addr2"))


# Starting points of the next_configuration table. Addresses end in "x" so
# that a change which rewrites an address is visible in the result.
EMPTY = servers()
SINGLE_SERVER = servers((Voter, "id1", "addr1x"))
ONE_OF_EACH = servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2x"), (Nonvoter, "id3", "addr3x"))
VOTER_PAIR = servers((Voter, "id1", "addr1x"), (Voter, "id2", "addr2x"))


# -- Configuration and Configurations -------------------------------------------------


def test_configuration_configuration_clone() -> None:
    """A cloned Configuration is equal to the original but shares no server list with it."""
    original = sample_configuration()
    cloned = original.clone()
    assert cloned == original
    assert cloned.servers is not original.servers
    cloned.servers[1] = dataclasses.replace(cloned.servers[1], id="scribble")
    cloned.servers.append(Server(Voter, "id9", "addr9"))
    assert original == sample_configuration()


def test_configuration_configurations_clone() -> None:
    """A cloned Configurations copies both indexes and shares neither server list."""
    configs = Configurations(
        committed=sample_configuration(), committed_index=1, latest=sample_configuration(), latest_index=2
    )
    cloned = configs.clone()
    assert cloned == configs
    assert cloned.committed_index == 1
    assert cloned.latest_index == 2
    cloned.committed.servers[1] = dataclasses.replace(cloned.committed.servers[1], id="scribble")
    cloned.latest.servers[1] = dataclasses.replace(cloned.latest.servers[1], id="scribble")
    assert configs.committed == sample_configuration()
    assert configs.latest == sample_configuration()


def test_configuration_server_is_immutable() -> None:
    """A Server is frozen, so a clone that shares Server objects cannot be changed through them."""
    server = sample_configuration().servers[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        server.id = "other"  # type: ignore[misc]


def test_configuration_has_vote() -> None:
    """Only a Voter has a vote; nonvoters, staging servers and strangers do not."""
    configuration = sample_configuration()
    assert not has_vote(configuration, "id0")
    assert has_vote(configuration, "id1")
    assert not has_vote(configuration, "id2")
    assert not has_vote(configuration, "someotherid")


def test_configuration_in_configuration() -> None:
    """Every member counts as in the configuration, whatever its suffrage."""
    configuration = sample_configuration()
    assert all(in_configuration(configuration, f"id{i}") for i in range(3))
    assert not in_configuration(configuration, "someotherid")


# -- check_configuration ---------------------------------------------------------------


def test_configuration_check_configuration_valid() -> None:
    """A configuration with distinct IDs and addresses and at least one voter passes."""
    check_configuration(servers((Nonvoter, "id0", "addr0"), (Voter, "id1", "addr1")))
    check_configuration(sample_configuration())


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        pytest.param(servers(), "at least one voter", id="empty"),
        pytest.param(servers((Nonvoter, "id0", "addr0")), "at least one voter", id="no-voter"),
        pytest.param(servers((Nonvoter, "id0", "a0"), (Staging, "id1", "a1")), "at least one voter", id="staging-only"),
        pytest.param(servers((Voter, "", "addr0")), "empty ID", id="empty-id"),
        pytest.param(servers((Voter, "id0", "")), "empty address", id="empty-address"),
        pytest.param(servers((Nonvoter, "id0", "addr0"), (Voter, "id0", "addr1")), "duplicate ID", id="duplicate-id"),
        pytest.param(
            servers((Nonvoter, "id0", "addr0"), (Voter, "id1", "addr0")), "duplicate address", id="duplicate-address"
        ),
    ],
)
def test_configuration_check_configuration_invalid(configuration: Configuration, message: str) -> None:
    """Each way a configuration can be unusable raises ConfigError naming the problem."""
    with pytest.raises(ConfigError, match=message):
        check_configuration(configuration)


# -- next_configuration -----------------------------------------------------------------

# The whole matrix of commands × the server's starting state (absent, Voter,
# Staging, Nonvoter). Each row applies `command` for server N with address
# "addrN" (no trailing "x") to `start`, at index 1 with prev_index 0.
NEXT_CONFIGURATION_TABLE: list[tuple[str, Configuration, ConfigurationChangeCommand, int, Configuration]] = [
    # AddStaging (an alias of AddVoter)
    ("AddStaging absent, empty", EMPTY, AddStaging, 1, servers((Voter, "id1", "addr1"))),
    ("AddStaging absent", SINGLE_SERVER, AddStaging, 2, servers((Voter, "id1", "addr1x"), (Voter, "id2", "addr2"))),
    ("AddStaging Voter", SINGLE_SERVER, AddStaging, 1, servers((Voter, "id1", "addr1"))),
    (
        "AddStaging Staging", ONE_OF_EACH, AddStaging, 2,
        servers((Voter, "id1", "addr1x"), (Voter, "id2", "addr2"), (Nonvoter, "id3", "addr3x")),
    ),
    (
        "AddStaging Nonvoter", ONE_OF_EACH, AddStaging, 3,
        servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2x"), (Voter, "id3", "addr3")),
    ),
    # AddVoter
    ("AddVoter absent, empty", EMPTY, AddVoter, 1, servers((Voter, "id1", "addr1"))),
    ("AddVoter absent", SINGLE_SERVER, AddVoter, 2, servers((Voter, "id1", "addr1x"), (Voter, "id2", "addr2"))),
    ("AddVoter Voter", SINGLE_SERVER, AddVoter, 1, servers((Voter, "id1", "addr1"))),
    (
        "AddVoter Staging", ONE_OF_EACH, AddVoter, 2,
        servers((Voter, "id1", "addr1x"), (Voter, "id2", "addr2"), (Nonvoter, "id3", "addr3x")),
    ),
    (
        "AddVoter Nonvoter", ONE_OF_EACH, AddVoter, 3,
        servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2x"), (Voter, "id3", "addr3")),
    ),
    # AddNonvoter: a server that already votes keeps its vote, only its address changes
    (
        "AddNonvoter absent", SINGLE_SERVER, AddNonvoter, 2,
        servers((Voter, "id1", "addr1x"), (Nonvoter, "id2", "addr2")),
    ),
    ("AddNonvoter Voter", SINGLE_SERVER, AddNonvoter, 1, servers((Voter, "id1", "addr1"))),
    (
        "AddNonvoter Staging", ONE_OF_EACH, AddNonvoter, 2,
        servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2"), (Nonvoter, "id3", "addr3x")),
    ),
    (
        "AddNonvoter Nonvoter", ONE_OF_EACH, AddNonvoter, 3,
        servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2x"), (Nonvoter, "id3", "addr3")),
    ),
    # DemoteVoter: the address is never touched
    ("DemoteVoter absent", SINGLE_SERVER, DemoteVoter, 2, servers((Voter, "id1", "addr1x"))),
    (
        "DemoteVoter Voter", VOTER_PAIR, DemoteVoter, 2,
        servers((Voter, "id1", "addr1x"), (Nonvoter, "id2", "addr2x")),
    ),
    (
        "DemoteVoter Staging", ONE_OF_EACH, DemoteVoter, 2,
        servers((Voter, "id1", "addr1x"), (Nonvoter, "id2", "addr2x"), (Nonvoter, "id3", "addr3x")),
    ),
    (
        "DemoteVoter Nonvoter", ONE_OF_EACH, DemoteVoter, 3,
        servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2x"), (Nonvoter, "id3", "addr3x")),
    ),
    # RemoveServer
    ("RemoveServer absent", SINGLE_SERVER, RemoveServer, 2, servers((Voter, "id1", "addr1x"))),
    ("RemoveServer Voter", VOTER_PAIR, RemoveServer, 2, servers((Voter, "id1", "addr1x"))),
    (
        "RemoveServer Staging", ONE_OF_EACH, RemoveServer, 2,
        servers((Voter, "id1", "addr1x"), (Nonvoter, "id3", "addr3x")),
    ),
    (
        "RemoveServer Nonvoter", ONE_OF_EACH, RemoveServer, 3,
        servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2x")),
    ),
    # Promote: only a staging server changes, and its address stays
    ("Promote absent", SINGLE_SERVER, Promote, 2, servers((Voter, "id1", "addr1x"))),
    ("Promote Voter", SINGLE_SERVER, Promote, 1, servers((Voter, "id1", "addr1x"))),
    (
        "Promote Staging", ONE_OF_EACH, Promote, 2,
        servers((Voter, "id1", "addr1x"), (Voter, "id2", "addr2x"), (Nonvoter, "id3", "addr3x")),
    ),
    (
        "Promote Nonvoter", ONE_OF_EACH, Promote, 3,
        servers((Voter, "id1", "addr1x"), (Staging, "id2", "addr2x"), (Nonvoter, "id3", "addr3x")),
    ),
]


@pytest.mark.parametrize(
    ("start", "command", "server", "expected"),
    [pytest.param(start, command, server, expected, id=name)
     for name, start, command, server, expected in NEXT_CONFIGURATION_TABLE],
)
def test_configuration_next_configuration_table(
    start: Configuration, command: ConfigurationChangeCommand, server: int, expected: Configuration
) -> None:
    """Each command applied to a server in each starting state gives hashicorp's resulting configuration."""
    before = start.clone()
    change = ConfigurationChangeRequest(command, f"id{server}", f"addr{server}")
    assert next_configuration(start, 1, change) == expected
    assert start == before  # the current configuration is never modified in place


def test_configuration_add_staging_is_add_voter() -> None:
    """AddStaging is kept only as another name for AddVoter, as in hashicorp/raft."""
    assert AddStaging is ConfigurationChangeCommand.AddVoter


def test_configuration_next_configuration_table_covers_every_command_and_state() -> None:
    """The table has a row for every command and every starting state of the target server."""
    def state(start: Configuration, server: int) -> str:
        found = [s.suffrage.name for s in start.servers if s.id == f"id{server}"]
        return found[0] if found else "absent"

    seen = {(command.name, state(start, server)) for _, start, command, server, _ in NEXT_CONFIGURATION_TABLE}
    wanted = {(command.name, st) for command in ConfigurationChangeCommand
              for st in ("absent", "Voter", "Staging", "Nonvoter")}
    assert seen == wanted


def test_configuration_next_configuration_prev_index() -> None:
    """A stale prev_index is refused; a current or zero prev_index is accepted."""
    stale = ConfigurationChangeRequest(AddVoter, "id1", "addr1", prev_index=1)
    with pytest.raises(ConfigError, match="changed"):
        next_configuration(SINGLE_SERVER, 2, stale)

    current = ConfigurationChangeRequest(AddVoter, "id2", "addr2", prev_index=2)
    assert has_vote(next_configuration(SINGLE_SERVER, 2, current), "id2")

    unconditional = ConfigurationChangeRequest(AddVoter, "id3", "addr3", prev_index=0)
    assert has_vote(next_configuration(SINGLE_SERVER, 2, unconditional), "id3")


def test_configuration_next_configuration_prev_index_ahead() -> None:
    """A prev_index newer than the latest configuration is stale too: it must match exactly."""
    ahead = ConfigurationChangeRequest(AddVoter, "id2", "addr2", prev_index=3)
    with pytest.raises(ConfigError):
        next_configuration(SINGLE_SERVER, 2, ahead)


def test_configuration_next_configuration_check_configuration() -> None:
    """Adding only a nonvoter to an empty configuration fails because nobody could vote."""
    change = ConfigurationChangeRequest(AddNonvoter, "id1", "addr1")
    with pytest.raises(ConfigError, match="at least one voter"):
        next_configuration(Configuration(), 1, change)


@pytest.mark.parametrize(
    ("start", "change", "message"),
    [
        pytest.param(SINGLE_SERVER, ConfigurationChangeRequest(RemoveServer, "id1"), "at least one voter",
                     id="remove-only-voter"),
        pytest.param(SINGLE_SERVER, ConfigurationChangeRequest(DemoteVoter, "id1"), "at least one voter",
                     id="demote-only-voter"),
        pytest.param(SINGLE_SERVER, ConfigurationChangeRequest(AddVoter, "id2", "addr1x"), "duplicate address",
                     id="add-reusing-address"),
        pytest.param(SINGLE_SERVER, ConfigurationChangeRequest(AddVoter, "id2", ""), "empty address",
                     id="add-without-address"),
        pytest.param(SINGLE_SERVER, ConfigurationChangeRequest(AddNonvoter, "", "addr2"), "empty ID",
                     id="add-without-id"),
    ],
)
def test_configuration_next_configuration_result_is_validated(
    start: Configuration, change: ConfigurationChangeRequest, message: str
) -> None:
    """A change whose result would be an invalid configuration raises ConfigError instead."""
    with pytest.raises(ConfigError, match=message):
        next_configuration(start, 1, change)


# -- encoding ---------------------------------------------------------------------------


def test_configuration_encode_decode_configuration() -> None:
    """A configuration survives encode_configuration followed by decode_configuration unchanged."""
    configuration = sample_configuration()
    encoded = encode_configuration(configuration)
    assert isinstance(encoded, bytes)
    assert decode_configuration(encoded) == configuration


def test_configuration_encode_decode_empty_configuration() -> None:
    """An empty configuration round-trips to an empty configuration."""
    assert decode_configuration(encode_configuration(Configuration())) == Configuration()


@pytest.mark.parametrize(
    "buf",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="reserved-byte"),
        pytest.param(b"\x92\x01", id="truncated-array"),
        pytest.param(b"garbage!", id="trailing-data"),
        pytest.param(b"\xa3\xff\xfe\xfd", id="invalid-utf8"),
        pytest.param(b"\xde\xad\xbe\xef" * 4, id="deadbeef"),
        pytest.param(msgpack.packb([1, 2, 3]), id="list"),
        pytest.param(msgpack.packb({"servers": "nope"}), id="servers-not-list"),
        pytest.param(msgpack.packb({"other": []}), id="no-servers"),
        pytest.param(msgpack.packb({"servers": [1]}), id="server-not-map"),
        pytest.param(msgpack.packb({"servers": [{"suffrage": 9, "id": "a", "address": "b"}]}), id="bad-suffrage"),
        pytest.param(msgpack.packb({"servers": [{"suffrage": 0, "id": 1, "address": "b"}]}), id="int-id"),
        pytest.param(msgpack.packb({"servers": [{"suffrage": 0, "id": "a"}]}), id="no-address"),
        pytest.param(msgpack.packb({"servers": [{"suffrage": "Voter", "id": "a", "address": "b"}]}),
                     id="str-suffrage"),
    ],
)
def test_configuration_decode_configuration_garbage(buf: bytes) -> None:
    """Bytes that are not an encoded configuration raise ConfigError, not a msgpack or type error."""
    with pytest.raises(ConfigError):
        decode_configuration(buf)


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64))
def test_configuration_decode_configuration_arbitrary_bytes(buf: bytes) -> None:
    """For any bytes, decode_configuration returns a Configuration or raises ConfigError, nothing else."""
    try:
        result = decode_configuration(buf)
    except ConfigError:
        return
    assert isinstance(result, Configuration)


msgpack_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
                   | st.floats(allow_nan=False) | st.text(max_size=6) | st.binary(max_size=6))
server_like = st.dictionaries(st.sampled_from(["suffrage", "id", "address", "other"]), msgpack_scalars, max_size=4)
configuration_like = st.dictionaries(
    st.sampled_from(["servers", "other"]),
    st.lists(server_like | msgpack_scalars, max_size=4) | msgpack_scalars,
    max_size=2,
)


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(configuration_like)
def test_configuration_decode_configuration_arbitrary_structure(data: object) -> None:
    """For msgpack data shaped almost like a configuration, decoding gives a Configuration or ConfigError."""
    try:
        result = decode_configuration(msgpack.packb(data, use_bin_type=True))
    except ConfigError:
        return
    assert isinstance(result, Configuration)
    assert all(isinstance(s.suffrage, ServerSuffrage) for s in result.servers)


# -- Config (config.go) -------------------------------------------------------------------


def valid_config(**changes: object) -> Config:
    """hashicorp's defaults with a local ID, plus ``changes``."""
    fields: dict[str, object] = {"local_id": "n1", **changes}
    return dataclasses.replace(default_config(), **fields)  # type: ignore[arg-type]


def test_config_defaults_are_hashicorps() -> None:
    """default_config() has the production defaults of hashicorp's DefaultConfig."""
    config = default_config()
    assert config.protocol_version == 3
    assert config.heartbeat_timeout == 1.0
    assert config.election_timeout == 1.0
    assert config.commit_timeout == 0.050
    assert config.max_append_entries == 64
    assert config.shutdown_on_remove is True
    assert config.trailing_logs == 10240
    assert config.snapshot_interval == 120.0
    assert config.snapshot_threshold == 8192
    assert config.leader_lease_timeout == 0.500
    assert config.local_id == ""
    assert config.batch_apply_ch is False
    assert config.pre_vote_disabled is False


def test_config_default_with_local_id_is_valid() -> None:
    """The defaults pass validation once a local ID is set."""
    validate_config(valid_config())


def test_config_boundaries_are_valid() -> None:
    """Every timeout exactly at its minimum, lease equal to heartbeat and 1024 entries are accepted."""
    validate_config(valid_config(
        heartbeat_timeout=0.005, election_timeout=0.005, commit_timeout=0.001,
        snapshot_interval=0.005, leader_lease_timeout=0.005, max_append_entries=1024,
    ))
    validate_config(valid_config(max_append_entries=1))
    validate_config(valid_config(trailing_logs=0, snapshot_threshold=0))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"local_id": ""}, "LocalID cannot be empty", id="empty-local-id"),
        pytest.param({"protocol_version": 2}, "ProtocolVersion 2", id="protocol-2"),
        pytest.param({"protocol_version": 0}, "ProtocolVersion 0", id="protocol-0"),
        pytest.param({"protocol_version": 4}, "ProtocolVersion 4", id="protocol-4"),
        pytest.param({"heartbeat_timeout": 0.004, "leader_lease_timeout": 0.004}, "HeartbeatTimeout is too low",
                     id="heartbeat-too-low"),
        pytest.param({"election_timeout": 0.004}, "ElectionTimeout is too low", id="election-too-low"),
        pytest.param({"commit_timeout": 0.0009}, "CommitTimeout is too low", id="commit-too-low"),
        pytest.param({"snapshot_interval": 0.004}, "SnapshotInterval is too low", id="snapshot-interval-too-low"),
        pytest.param({"leader_lease_timeout": 0.004}, "LeaderLeaseTimeout is too low", id="lease-too-low"),
        pytest.param({"leader_lease_timeout": 1.5}, r"LeaderLeaseTimeout \(1\.5s\).*heartbeat timeout \(1\.0s\)",
                     id="lease-above-heartbeat"),
        pytest.param({"election_timeout": 0.5, "leader_lease_timeout": 0.25},
                     r"ElectionTimeout \(0\.5s\).*Heartbeat Timeout \(1\.0s\)", id="election-below-heartbeat"),
        pytest.param({"max_append_entries": 0}, "MaxAppendEntries must be positive", id="max-append-0"),
        pytest.param({"max_append_entries": -1}, "MaxAppendEntries must be positive", id="max-append-negative"),
        pytest.param({"max_append_entries": 1025}, "MaxAppendEntries is too large", id="max-append-1025"),
        pytest.param({"trailing_logs": -1}, "cannot be negative", id="trailing-logs-negative"),
        pytest.param({"snapshot_threshold": -1}, "cannot be negative", id="snapshot-threshold-negative"),
    ],
)
def test_config_validate_config_invalid(changes: dict[str, object], message: str) -> None:
    """Each unsafe setting raises ConfigError with a message naming the setting and the problem."""
    with pytest.raises(ConfigError, match=message):
        validate_config(valid_config(**changes))


def test_config_validate_config_error_is_a_value_error() -> None:
    """ConfigError is also a ValueError, so generic callers can catch bad settings."""
    with pytest.raises(ValueError, match="LocalID"):
        validate_config(default_config())


# -- ReloadableConfig ------------------------------------------------------------------------


def test_reloadable_config_from_config() -> None:
    """from_config copies exactly the five reloadable settings."""
    config = valid_config(trailing_logs=7, snapshot_interval=3.0, snapshot_threshold=9,
                          heartbeat_timeout=0.2, election_timeout=0.4, leader_lease_timeout=0.1)
    assert ReloadableConfig.from_config(config) == ReloadableConfig(
        trailing_logs=7, snapshot_interval=3.0, snapshot_threshold=9, heartbeat_timeout=0.2, election_timeout=0.4
    )


def test_reloadable_config_apply() -> None:
    """apply returns a copy with the five settings replaced and leaves the original and other settings alone."""
    config = valid_config()
    reload = ReloadableConfig(trailing_logs=1, snapshot_interval=2.0, snapshot_threshold=3,
                              heartbeat_timeout=4.0, election_timeout=5.0)
    applied = reload.apply(config)
    assert applied is not config
    assert config == valid_config()
    assert (applied.trailing_logs, applied.snapshot_interval, applied.snapshot_threshold,
            applied.heartbeat_timeout, applied.election_timeout) == (1, 2.0, 3, 4.0, 5.0)
    others = [f.name for f in dataclasses.fields(Config) if f.name not in {
        "trailing_logs", "snapshot_interval", "snapshot_threshold", "heartbeat_timeout", "election_timeout"}]
    assert all(getattr(applied, name) == getattr(config, name) for name in others)


def test_reloadable_config_apply_copies_zero_values() -> None:
    """Zero values are applied too, rather than being treated as 'leave unchanged'."""
    reload = ReloadableConfig(trailing_logs=0, snapshot_interval=0.0, snapshot_threshold=0,
                              heartbeat_timeout=0.0, election_timeout=0.0)
    applied = reload.apply(valid_config())
    assert ReloadableConfig.from_config(applied) == reload


def test_reloadable_config_round_trip() -> None:
    """from_config(apply(c)) gives back the reloadable settings, and apply(from_config(c)) gives back c."""
    config = valid_config(trailing_logs=11, snapshot_threshold=22)
    assert ReloadableConfig.from_config(config).apply(config) == config
    reload = ReloadableConfig(trailing_logs=5, snapshot_interval=6.0, snapshot_threshold=7,
                              heartbeat_timeout=0.3, election_timeout=0.6)
    assert ReloadableConfig.from_config(reload.apply(config)) == reload
