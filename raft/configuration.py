"""Cluster membership: who is in the cluster and who may vote.

Paper:   §6 (the paper's joint consensus); Thesis §4.1–4.2 (single-server
         changes, which is what hashicorp/raft and this code implement).
Mirrors: configuration.go.
Read next: raft.py (``process_configuration_log_entry``), and for changes,
``next_configuration`` below.

A *configuration* is the list of servers. A *voter* counts towards elections
and commitment; a *nonvoter* receives the log but never votes or leads.
A configuration lives in the log as a ``LogConfiguration`` entry and takes
effect as soon as it is appended, before it commits. So a server keeps two:
the *latest* (possibly uncommitted) and the *committed* one to roll back to
if the latest is truncated away.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack

from raft.errors import ConfigError

ServerID = str  # Go: type ServerID string. A stable name, e.g. "n1".
ServerAddress = str  # Go: type ServerAddress string. Where the transport reaches it.


class ServerSuffrage(enum.IntEnum):
    """Whether a server's vote counts (Mirrors: configuration.go ServerSuffrage)."""

    Voter = 0  # votes in elections and counts for commitment
    Nonvoter = 1  # receives the log, never votes, never becomes leader
    Staging = 2  # deprecated in hashicorp/raft: treated like a nonvoter

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Server:
    """One member of a configuration."""

    suffrage: ServerSuffrage
    id: ServerID
    address: ServerAddress


@dataclass
class Configuration:
    """The servers of a cluster at one point in its log (Mirrors: Configuration)."""

    servers: list[Server] = field(default_factory=list)

    def clone(self) -> Configuration:
        """A copy whose server list can be changed without touching this one."""
        return Configuration(list(self.servers))


class ConfigurationChangeCommand(enum.IntEnum):
    """The changes a leader can make (Mirrors: ConfigurationChangeCommand)."""

    AddVoter = 0  # add a voter, or make an existing server one (was AddStaging)
    AddNonvoter = 1  # add a nonvoter; an existing server keeps its suffrage
    DemoteVoter = 2  # make a voter a nonvoter
    RemoveServer = 3  # remove a server entirely
    Promote = 4  # deprecated: staging to voter

    def __str__(self) -> str:
        return self.name


AddStaging = ConfigurationChangeCommand.AddVoter  # Go keeps the old name as an alias


@dataclass
class ConfigurationChangeRequest:
    """One requested membership change (Mirrors: configurationChangeRequest)."""

    command: ConfigurationChangeCommand
    server_id: ServerID
    server_address: ServerAddress = ""  # only for AddVoter and AddNonvoter
    # When non-zero, the change applies only if the latest configuration is
    # still the one at this index: an optimistic lock against concurrent changes.
    prev_index: int = 0


@dataclass
class Configurations:
    """The committed and latest configurations a server tracks (Mirrors: configurations).

    Invariant: committed_index <= latest_index. They are equal when no
    change is in flight; hashicorp/raft allows at most one uncommitted change.
    """

    committed: Configuration = field(default_factory=Configuration)
    committed_index: int = 0  # log index of the committed configuration entry
    latest: Configuration = field(default_factory=Configuration)
    latest_index: int = 0  # log index of the newest configuration entry, committed or not

    def clone(self) -> Configurations:
        return replace(self, committed=self.committed.clone(), latest=self.latest.clone())


def has_vote(configuration: Configuration, server_id: ServerID) -> bool:
    """True if ``server_id`` is a voter in ``configuration`` (Mirrors: hasVote)."""
    for server in configuration.servers:
        if server.id == server_id:
            return server.suffrage == ServerSuffrage.Voter
    return False


def in_configuration(configuration: Configuration, server_id: ServerID) -> bool:
    """True if ``server_id`` is a member, voting or not (Mirrors: inConfiguration)."""
    return any(server.id == server_id for server in configuration.servers)


def check_configuration(configuration: Configuration) -> None:
    """Raise ``ConfigError`` unless ``configuration`` is usable.

    Mirrors: configuration.go checkConfiguration.

    Every server needs an ID and an address, neither may repeat, and there
    must be at least one voter: with no voters nobody could ever be elected.
    """
    ids: dict[ServerID, bool] = {}
    addresses: dict[ServerAddress, bool] = {}
    voters = 0
    for server in configuration.servers:
        if not server.id:
            raise ConfigError(f"empty ID in configuration: {configuration}")
        if not server.address:
            raise ConfigError(f"empty address in configuration: {server}")
        if server.id in ids:
            raise ConfigError(f"found duplicate ID in configuration: {server.id}")
        ids[server.id] = True
        if server.address in addresses:
            raise ConfigError(f"found duplicate address in configuration: {server.address}")
        addresses[server.address] = True
        if server.suffrage == ServerSuffrage.Voter:
            voters += 1
    if voters == 0:
        raise ConfigError(f"need at least one voter in configuration: {configuration}")


def next_configuration(
    current: Configuration, current_index: int, change: ConfigurationChangeRequest
) -> Configuration:
    """The configuration that results from applying ``change`` to ``current``.

    Paper:   Thesis §4.1 (one server at a time keeps any two majorities overlapping).
    Mirrors: configuration.go nextConfiguration.

    Raises ``ConfigError`` if ``prev_index`` is stale or the result is not a
    valid configuration. Adding a server that is already there updates it in
    place; removing or demoting one that is absent changes nothing.
    """
    if change.prev_index > 0 and change.prev_index != current_index:
        raise ConfigError(
            f"configuration changed since {change.prev_index} (latest is {current_index})"
        )
    servers = list(current.servers)
    position = next((i for i, s in enumerate(servers) if s.id == change.server_id), None)
    command = change.command
    if command == ConfigurationChangeCommand.AddVoter:
        wanted = Server(ServerSuffrage.Voter, change.server_id, change.server_address)
        if position is None:
            servers.append(wanted)
        elif servers[position].suffrage == ServerSuffrage.Voter:
            servers[position] = replace(servers[position], address=change.server_address)
        else:
            servers[position] = wanted
    elif command == ConfigurationChangeCommand.AddNonvoter:
        wanted = Server(ServerSuffrage.Nonvoter, change.server_id, change.server_address)
        if position is None:
            servers.append(wanted)
        elif servers[position].suffrage != ServerSuffrage.Nonvoter:
            # A voter (or staging server) keeps its vote; only the address moves.
            servers[position] = replace(servers[position], address=change.server_address)
        else:
            servers[position] = wanted
    elif command == ConfigurationChangeCommand.DemoteVoter:
        if position is not None:
            servers[position] = replace(servers[position], suffrage=ServerSuffrage.Nonvoter)
    elif command == ConfigurationChangeCommand.RemoveServer:
        if position is not None:
            del servers[position]
    elif command == ConfigurationChangeCommand.Promote:
        if position is not None and servers[position].suffrage == ServerSuffrage.Staging:
            servers[position] = replace(servers[position], suffrage=ServerSuffrage.Voter)
    configuration = Configuration(servers)
    check_configuration(configuration)
    return configuration


def configuration_to_dict(configuration: Configuration) -> dict[str, Any]:
    """A plain-data form used by the codec, the event stream and JSON."""
    return {
        "servers": [
            {"suffrage": int(s.suffrage), "id": s.id, "address": s.address}
            for s in configuration.servers
        ]
    }


def configuration_from_dict(data: Any) -> Configuration:
    """Inverse of ``configuration_to_dict``; raises ``ConfigError`` on malformed input."""
    if not isinstance(data, dict) or not isinstance(data.get("servers"), list):
        raise ConfigError(f"malformed configuration: {data!r}")
    servers = []
    for item in data["servers"]:
        if not isinstance(item, dict):
            raise ConfigError(f"malformed server in configuration: {item!r}")
        suffrage, server_id, address = item.get("suffrage"), item.get("id"), item.get("address")
        if (
            not isinstance(suffrage, int)
            or isinstance(suffrage, bool)
            or suffrage not in tuple(ServerSuffrage)
            or not isinstance(server_id, str)
            or not isinstance(address, str)
        ):
            raise ConfigError(f"malformed server in configuration: {item!r}")
        servers.append(Server(ServerSuffrage(suffrage), server_id, address))
    return Configuration(servers)


def encode_configuration(configuration: Configuration) -> bytes:
    """Serialize a configuration with msgpack (Mirrors: EncodeConfiguration)."""
    return msgpack.packb(configuration_to_dict(configuration), use_bin_type=True)  # type: ignore[no-any-return]


def decode_configuration(buf: bytes) -> Configuration:
    """Inverse of ``encode_configuration`` (Mirrors: DecodeConfiguration).

    Differs: raises ``ConfigError`` where Go panics.
    """
    try:
        data = msgpack.unpackb(buf, raw=False)
    except Exception as err:  # msgpack raises several unrelated exception types
        raise ConfigError(f"failed to decode configuration: {err}") from err
    return configuration_from_dict(data)
