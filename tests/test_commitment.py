"""Tests for raft/commitment.py: how a leader turns match indexes into a commit index.

Mirrors: commitment_test.go.

Commitment and its Chan are built outside any event loop: a channel needs a
loop only when a task has to wait on it, and these tests only poke and drain.
"""

from __future__ import annotations

from raft.commitment import Commitment
from raft.configuration import Configuration, Server, ServerSuffrage
from raft.runtime.channels import Chan


def make_configuration(voters: list[str]) -> Configuration:
    """A configuration in which every named server is a voter."""
    return Configuration([Server(ServerSuffrage.Voter, name, name + "addr") for name in voters])


def voters(n: int) -> Configuration:
    """Voters s1 … sn."""
    return make_configuration([f"s{i}" for i in range(1, n + 1)])


def poked(ch: Chan[bool]) -> bool:
    """Take the pending notification off ``ch``; True if there was one."""
    _, received = ch.try_recv()
    return received


def new_commitment(configuration: Configuration, start_index: int) -> tuple[Commitment, Chan[bool]]:
    commit_ch: Chan[bool] = Chan(1)
    return Commitment(commit_ch, configuration, start_index), commit_ch


def test_commitment_starts_at_zero() -> None:
    """A new commitment tracks every voter at match index 0 and has committed nothing."""
    c, commit_ch = new_commitment(voters(3), 1)
    assert c.get_commit_index() == 0
    assert c.match_indexes == {"s1": 0, "s2": 0, "s3": 0}
    assert not poked(commit_ch)


def test_commitment_set_voters() -> None:
    """set_configuration keeps the match indexes of voters that remain and starts new voters at 0."""
    c, commit_ch = new_commitment(make_configuration(["a", "b", "c"]), 0)
    c.match("a", 10)
    c.match("b", 20)
    c.match("c", 30)
    assert c.get_commit_index() == 20
    assert poked(commit_ch)

    c.set_configuration(make_configuration(["c", "d", "e"]))
    assert c.match_indexes == {"c": 30, "d": 0, "e": 0}
    assert not poked(commit_ch)  # c alone is no quorum: still 20

    c.match("e", 40)
    assert c.get_commit_index() == 30
    assert poked(commit_ch)


def test_commitment_set_configuration_ignores_nonvoters() -> None:
    """Nonvoters and staging servers in a new configuration get no match index."""
    c, _ = new_commitment(voters(1), 0)
    c.set_configuration(Configuration([
        Server(ServerSuffrage.Voter, "s1", "a1"),
        Server(ServerSuffrage.Nonvoter, "s2", "a2"),
        Server(ServerSuffrage.Staging, "s3", "a3"),
    ]))
    assert set(c.match_indexes) == {"s1"}


def test_commitment_match_max() -> None:
    """A match with a smaller index than before is ignored: match indexes only grow."""
    c, _ = new_commitment(voters(5), 4)
    c.match("s1", 8)
    c.match("s2", 8)
    c.match("s2", 1)
    c.match("s3", 8)
    assert c.match_indexes["s2"] == 8
    assert c.get_commit_index() == 8


def test_commitment_match_same_index_does_not_poke() -> None:
    """Repeating a known match index changes nothing and sends no notification."""
    c, commit_ch = new_commitment(voters(1), 1)
    c.match("s1", 5)
    assert poked(commit_ch)
    c.match("s1", 5)
    assert c.get_commit_index() == 5
    assert not poked(commit_ch)


def test_commitment_match_non_voting() -> None:
    """Matches from servers that are not voters neither count nor notify."""
    c, commit_ch = new_commitment(voters(5), 4)
    c.match("s1", 8)
    c.match("s2", 8)
    c.match("s3", 8)
    assert poked(commit_ch)

    c.match("s90", 10)
    c.match("s91", 10)
    c.match("s92", 10)
    assert c.get_commit_index() == 8
    assert "s90" not in c.match_indexes
    assert not poked(commit_ch)


def test_commitment_recalculate() -> None:
    """The commit index is the highest index stored on a quorum of voters, across configuration changes."""
    c, commit_ch = new_commitment(voters(5), 0)

    c.match("s1", 30)
    c.match("s2", 20)
    assert c.get_commit_index() == 0  # two of five is no quorum
    assert not poked(commit_ch)

    c.match("s3", 10)
    assert c.get_commit_index() == 10
    assert poked(commit_ch)

    c.match("s4", 15)
    assert c.get_commit_index() == 15
    assert poked(commit_ch)

    c.set_configuration(voters(3))  # s1: 30, s2: 20, s3: 10
    assert c.get_commit_index() == 20
    assert poked(commit_ch)

    c.set_configuration(voters(4))  # s1: 30, s2: 20, s3: 10, s4: 0
    c.match("s2", 25)
    assert c.get_commit_index() == 20
    assert not poked(commit_ch)

    c.match("s4", 23)
    assert c.get_commit_index() == 23
    assert poked(commit_ch)


def test_commitment_recalculate_even_cluster_needs_majority() -> None:
    """With four voters an index needs three copies: the lower median, not the upper one."""
    c, _ = new_commitment(voters(4), 0)
    c.match("s1", 40)
    c.match("s2", 30)
    assert c.get_commit_index() == 0
    c.match("s3", 20)
    assert c.get_commit_index() == 20


def test_commitment_commit_index_never_decreases() -> None:
    """A configuration whose quorum stores less than the commit index does not move the commit index back."""
    c, commit_ch = new_commitment(voters(3), 0)
    c.match("s1", 10)
    c.match("s2", 10)
    assert c.get_commit_index() == 10
    assert poked(commit_ch)
    c.set_configuration(make_configuration(["s1", "x", "y"]))
    assert c.get_commit_index() == 10
    assert not poked(commit_ch)


def test_commitment_recalculate_start_index() -> None:
    """Nothing below start_index commits by counting replicas; start_index itself does once on a quorum."""
    c, commit_ch = new_commitment(voters(5), 4)
    c.match("s1", 3)
    c.match("s2", 3)
    c.match("s3", 3)
    assert c.get_commit_index() == 0
    assert not poked(commit_ch)

    c.match("s1", 4)
    c.match("s2", 4)
    c.match("s3", 4)
    assert c.get_commit_index() == 4
    assert poked(commit_ch)


def test_commitment_no_voter_sanity() -> None:
    """With zero voters nothing commits, and removing every voter keeps the commit index where it was."""
    c, commit_ch = new_commitment(make_configuration([]), 4)
    c.match("s1", 10)
    c.set_configuration(make_configuration([]))
    c.match("s1", 10)
    assert c.get_commit_index() == 0
    assert not poked(commit_ch)

    c.set_configuration(voters(1))
    c.match("s1", 10)
    assert c.get_commit_index() == 10
    assert poked(commit_ch)

    c.set_configuration(make_configuration([]))
    c.match("s1", 20)
    assert c.get_commit_index() == 10
    assert not poked(commit_ch)


def test_commitment_single_voter() -> None:
    """A single voter commits each index as soon as it matches it, and a no-op reconfiguration does not notify."""
    c, commit_ch = new_commitment(voters(1), 4)
    c.match("s1", 10)
    assert c.get_commit_index() == 10
    assert poked(commit_ch)

    c.set_configuration(voters(1))
    assert not poked(commit_ch)

    c.match("s1", 12)
    assert c.get_commit_index() == 12
    assert poked(commit_ch)


def test_commitment_notifications_coalesce() -> None:
    """Several commit advances before anyone reads the channel leave exactly one pending notification."""
    c, commit_ch = new_commitment(voters(1), 1)
    c.match("s1", 1)
    c.match("s1", 2)
    c.match("s1", 3)
    assert c.get_commit_index() == 3
    assert poked(commit_ch)
    assert not poked(commit_ch)


def test_commitment_pokes_exactly_when_commit_index_moves() -> None:
    """Over a sequence of matches, a notification is pending after a match exactly when the commit index changed."""
    c, commit_ch = new_commitment(voters(3), 2)
    steps = [("s1", 1), ("s2", 1), ("s1", 2), ("s3", 2), ("s3", 2), ("s2", 5), ("s9", 9), ("s1", 4), ("s3", 6),
             ("s1", 3), ("s2", 7), ("s1", 8)]
    for server, index in steps:
        before = c.get_commit_index()
        c.match(server, index)
        assert poked(commit_ch) == (c.get_commit_index() != before), (server, index)
    assert c.get_commit_index() == 7
