"""Tests for raft/peersjson.py: peersjson_test.go, plus the malformed files an operator can write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from raft.configuration import Configuration, Server, ServerSuffrage
from raft.errors import ConfigError
from raft.peersjson import read_config_json, read_peers_json

Voter, Nonvoter = ServerSuffrage.Voter, ServerSuffrage.Nonvoter
Reader = Callable[[Path], Configuration]


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "peers.json"
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


# -- peersjson_test.go ---------------------------------------------------------


def test_bad_configuration(tmp_path: Path) -> None:
    """TestPeersJSON_BadConfiguration: a legacy file holding null has no voters and is rejected."""
    with pytest.raises(ConfigError, match="at least one voter"):
        read_peers_json(write(tmp_path, "null"))


def test_read_peers_json(tmp_path: Path) -> None:
    """TestPeersJSON_ReadPeersJSON: each legacy address becomes a voter whose ID is that address."""
    path = write(tmp_path, '\n["127.0.0.1:123",\n "127.0.0.2:123",\n "127.0.0.3:123"]\n')
    assert read_peers_json(path) == Configuration([
        Server(Voter, "127.0.0.1:123", "127.0.0.1:123"),
        Server(Voter, "127.0.0.2:123", "127.0.0.2:123"),
        Server(Voter, "127.0.0.3:123", "127.0.0.3:123"),
    ])


def test_read_config_json(tmp_path: Path) -> None:
    """TestPeersJSON_ReadConfigJSON: entries give ID, address and suffrage; a missing non_voter means voter."""
    path = write(tmp_path, """
[
  {"id": "adf4238a-882b-9ddc-4a9d-5b6758e4159e", "address": "127.0.0.1:123", "non_voter": false},
  {"id": "8b6dda82-3103-11e7-93ae-92361f002671", "address": "127.0.0.2:123"},
  {"id": "97e17742-3103-11e7-93ae-92361f002671", "address": "127.0.0.3:123", "non_voter": true}
]
""")
    assert read_config_json(path) == Configuration([
        Server(Voter, "adf4238a-882b-9ddc-4a9d-5b6758e4159e", "127.0.0.1:123"),
        Server(Voter, "8b6dda82-3103-11e7-93ae-92361f002671", "127.0.0.2:123"),
        Server(Nonvoter, "97e17742-3103-11e7-93ae-92361f002671", "127.0.0.3:123"),
    ])


# -- what check_configuration catches ------------------------------------------


def test_config_json_null_has_no_voter(tmp_path: Path) -> None:
    """A current-format file holding null has no voters and is rejected."""
    with pytest.raises(ConfigError, match="at least one voter"):
        read_config_json(write(tmp_path, "null"))


@pytest.mark.parametrize("reader", [read_peers_json, read_config_json])
def test_empty_list_has_no_voter(tmp_path: Path, reader: Reader) -> None:
    """An empty list of peers is rejected: nobody could ever be elected."""
    with pytest.raises(ConfigError, match="at least one voter"):
        reader(write(tmp_path, "[]"))


def test_only_nonvoters_is_rejected(tmp_path: Path) -> None:
    """A configuration of nonvoters alone cannot elect a leader and is rejected."""
    path = write(tmp_path, '[{"id": "a", "address": "x:1", "non_voter": true}]')
    with pytest.raises(ConfigError, match="at least one voter"):
        read_config_json(path)


def test_duplicate_address_is_rejected(tmp_path: Path) -> None:
    """Two legacy entries with one address are rejected as duplicates."""
    with pytest.raises(ConfigError, match="duplicate"):
        read_peers_json(write(tmp_path, '["x:1", "x:1"]'))


def test_missing_id_is_rejected(tmp_path: Path) -> None:
    """An entry without an id gets Go's empty ID, which check_configuration rejects."""
    with pytest.raises(ConfigError, match="empty ID"):
        read_config_json(write(tmp_path, '[{"address": "x:1"}]'))


def test_null_address_counts_as_missing(tmp_path: Path) -> None:
    """A null address is read as Go's zero value, the empty string, and rejected."""
    with pytest.raises(ConfigError, match="empty address"):
        read_config_json(write(tmp_path, '[{"id": "a", "address": null}]'))


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    """Keys other than id, address and non_voter are ignored, as Go's decoder does."""
    path = write(tmp_path, '[{"id": "a", "address": "x:1", "comment": "the old leader"}]')
    assert read_config_json(path) == Configuration([Server(Voter, "a", "x:1")])


# -- malformed files -----------------------------------------------------------


@pytest.mark.parametrize("reader", [read_peers_json, read_config_json])
@pytest.mark.parametrize("content", ["", "[", '["a:1",]', "not json", b"\xff\xfe[]"])
def test_invalid_json_is_a_config_error(tmp_path: Path, reader: Reader, content: str | bytes) -> None:
    """A file that is not valid JSON raises ConfigError saying so."""
    with pytest.raises(ConfigError, match="not valid JSON"):
        reader(write(tmp_path, content))


@pytest.mark.parametrize("reader", [read_peers_json, read_config_json])
@pytest.mark.parametrize("content", ['{"a": 1}', '"a:1"', "42", "true"])
def test_top_level_must_be_a_list(tmp_path: Path, reader: Reader, content: str) -> None:
    """A JSON value other than a list (or null) raises ConfigError."""
    with pytest.raises(ConfigError, match="must hold a JSON list"):
        reader(write(tmp_path, content))


@pytest.mark.parametrize("content", ["[1]", '[["a:1"]]', '[{"id": "a"}]', "[null]"])
def test_legacy_entries_must_be_strings(tmp_path: Path, content: str) -> None:
    """A legacy entry that is not an address string raises ConfigError naming its position."""
    with pytest.raises(ConfigError, match="entry 0 must be an address string"):
        read_peers_json(write(tmp_path, content))


@pytest.mark.parametrize("content", ['["a:1"]', "[1]", "[null]"])
def test_config_entries_must_be_objects(tmp_path: Path, content: str) -> None:
    """A current-format entry that is not an object raises ConfigError naming its position."""
    with pytest.raises(ConfigError, match="entry 0 must be an object"):
        read_config_json(write(tmp_path, content))


@pytest.mark.parametrize(("entry", "message"), [
    ('{"id": 1, "address": "x:1"}', "'id' must be a str"),
    ('{"id": "a", "address": ["x:1"]}', "'address' must be a str"),
    ('{"id": "a", "address": "x:1", "non_voter": "yes"}', "'non_voter' must be a bool"),
    ('{"id": "a", "address": "x:1", "non_voter": 1}', "'non_voter' must be a bool"),
])
def test_config_fields_are_type_checked(tmp_path: Path, entry: str, message: str) -> None:
    """A field of the wrong JSON type raises ConfigError naming the field."""
    with pytest.raises(ConfigError, match=message):
        read_config_json(write(tmp_path, f"[{entry}]"))


@pytest.mark.parametrize("reader", [read_peers_json, read_config_json])
def test_missing_file_is_a_config_error(tmp_path: Path, reader: Reader) -> None:
    """A peers file that does not exist raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read peers file"):
        reader(tmp_path / "absent.json")


def test_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    """Pathologically nested JSON raises ConfigError, not RecursionError."""
    with pytest.raises(ConfigError):
        read_peers_json(write(tmp_path, "[" * 100_000 + "]" * 100_000))
