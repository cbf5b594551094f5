"""Read a cluster's membership from a peers.json file, for manual recovery.

Paper:   none; this is an operator's tool. When a cluster has lost its quorum
         for good, the operator writes the surviving servers into peers.json
         and the library forces that configuration (Go: RecoverCluster).
Mirrors: peersjson.go.
Read before: configuration.py (``Configuration``, ``check_configuration``).

Two formats exist:

* legacy, ``["10.0.0.1:8300", "10.0.0.2:8300"]``: addresses only, from before
  servers had IDs. Every entry becomes a voter whose ID is its address.
* current, ``[{"id": "n1", "address": "10.0.0.1:8300", "non_voter": false}]``:
  ``non_voter`` may be left out and then means a voter, so the common case
  stays short.

Both readers hand the result to ``check_configuration``: a recovery file with
no voters, or two servers at one address, would wedge the cluster for good.
Every failure, from an unreadable file to a wrongly shaped entry, raises
``ConfigError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from raft.configuration import Configuration, Server, ServerSuffrage, check_configuration
from raft.errors import ConfigError


def _load_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value in ``path``; ``ConfigError`` if it cannot be read or parsed.

    Differs: Go returns the operating-system error unchanged and ignores text
    after the first JSON value; we raise ``ConfigError`` for both cases.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as err:
        raise ConfigError(f"cannot read peers file {os.fspath(path)!r}: {err}") from err
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:  # bad UTF-8 and bad JSON are both ValueErrors
        raise ConfigError(f"peers file {os.fspath(path)!r} is not valid JSON: {err}") from None


def _entries(path: str | os.PathLike[str], document: Any) -> list[Any]:
    """The list of peers; JSON ``null`` counts as an empty list, as in Go."""
    if document is None:
        return []
    if not isinstance(document, list):
        raise ConfigError(f"peers file {os.fspath(path)!r} must hold a JSON list, "
                          f"not {type(document).__name__}")
    return document


def read_peers_json(path: str | os.PathLike[str]) -> Configuration:
    """The configuration in a legacy peers.json: a list of addresses.

    Mirrors: peersjson.go ReadPeersJSON.
    Differs: an entry that is not a string raises ``ConfigError`` (Go's decoder
    rejects numbers and objects too, but turns ``null`` into an empty address).
    """
    servers = []
    for position, peer in enumerate(_entries(path, _load_json(path))):
        if not isinstance(peer, str):
            raise ConfigError(f"peers file {os.fspath(path)!r}: entry {position} must be an "
                              f"address string, not {type(peer).__name__}")
        # The old format knew nothing of IDs or suffrage, so the address is
        # the only name a server has and every server votes.
        servers.append(Server(ServerSuffrage.Voter, peer, peer))
    configuration = Configuration(servers)
    check_configuration(configuration)
    return configuration


def _optional(entry: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    """``entry[key]`` checked against ``kind``; absent or ``null`` gives ``default`` (as Go's zero value)."""
    value = entry.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: {key!r} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def read_config_json(path: str | os.PathLike[str]) -> Configuration:
    """The configuration in a current peers.json: a list of {id, address, non_voter}.

    Mirrors: peersjson.go ReadConfigJSON (and its configEntry).
    Differs: keys must be spelled in lower case (Go matches them in any case);
    an entry that is not an object, or a field of the wrong type, raises
    ``ConfigError``. Unknown keys are ignored, as in Go.
    """
    servers = []
    for position, entry in enumerate(_entries(path, _load_json(path))):
        where = f"peers file {os.fspath(path)!r}, entry {position}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object, not {type(entry).__name__}")
        server_id = _optional(entry, "id", str, "", where)
        address = _optional(entry, "address", str, "", where)
        non_voter = _optional(entry, "non_voter", bool, False, where)
        # "non_voter" rather than "voter", so that leaving it out gives the usual case.
        suffrage = ServerSuffrage.Nonvoter if non_voter else ServerSuffrage.Voter
        servers.append(Server(suffrage, server_id, address))
    configuration = Configuration(servers)
    check_configuration(configuration)
    return configuration
