"""The pitfalls page's evidence: four mistakes no other test isolated, and the page's citations.

Paper: Figure 2 (Candidates; AppendEntries receiver rule 3; Rules for
Servers, All Servers and Followers), Thesis §9.6 (pre-vote).

``docs/pitfalls.md`` ties each mistake implementers make to something that
shows it. Four of them had no test of their own: a late vote is never
counted in a later election; a late AppendEntries whose entries all match
deletes nothing; only a granted vote or the current leader resets the
election timer; the invariant checker stops a state machine that applies an
uncommitted entry. The last tests check that every test the page names
exists, and that it names every teaching bug.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from injected import LEADER, append, inject, lone_follower

from raft.checkers.invariants import InvariantViolation
from raft.commands import RequestPreVoteRequest, RequestVoteRequest, RPCHeader
from raft.config import Config
from raft.sim import Cluster
from raft.sim.bugs import BUG_NAMES
from raft.sim.network import SlowRule

Make = Callable[..., Cluster]

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "pitfalls.md"
CITED_TEST = re.compile(r"`(tests/test_\w+\.py)::(test_\w+)`")


def test_a_late_vote_from_an_earlier_election_is_never_counted() -> None:
    """A candidate counts only answers to its current election: yeses that arrive one election late win nothing.

    n1 stands again every 0.2-0.4 s; n2 grants every request, but each answer
    takes 0.45 s, so it always reaches n1 in a later term (the transport
    still waits for it: its timeout is 0.5 s). n3 never runs. Counting a
    late yes would make n1 leader without a majority of any one term.
    """
    quick = Config(pre_vote_disabled=True, heartbeat_timeout=0.2, election_timeout=0.2, leader_lease_timeout=0.1)
    patient = Config(pre_vote_disabled=True, heartbeat_timeout=10.0, election_timeout=10.0)
    c = Cluster(["n1", "n2", "n3"], seed=0, configs={"n1": quick, "n2": patient, "n3": patient}, start=False)
    c.network.slow.append(SlowRule("request_vote", "response", 0.45, 0.45, src="n2"))
    c.start("n1", "n2")
    c.run_for(5)
    granted_by_n2 = [e for e in c.events if e.kind == "vote" and e.node == "n2" and e["granted"]]
    counted = [e for e in c.events if e.kind == "tally" and e["voter"] == "n2" and e["granted"]]
    assert len(granted_by_n2) >= 10, "n2 must have said yes many times, for the test to mean anything"
    assert counted == [], "a yes for an earlier term was counted in a later one"
    assert [e for e in c.events if e.kind == "state" and e["state"] == "leader"] == []
    c.dispose()


def test_a_late_append_entries_whose_entries_all_match_deletes_nothing() -> None:
    """Rule 3 deletes only on a conflict: a short, late copy of an earlier request leaves the longer log alone."""
    c = lone_follower()
    replies = inject(c, append(2, 10, commit=0), append(2, 4, commit=0))  # the second arrives late
    c.run_for(0.1)
    f = c.node("f")
    assert [answer.response.success for answer in replies.answers] == [True, True]
    assert f.last_index() == 10, "entries 5-10 match nothing the late request says; they must stay"
    assert [e for e in c.events if e.kind == "truncate"] == []
    c.dispose()


def test_only_a_granted_vote_or_the_current_leader_resets_the_election_timer() -> None:
    """A pre-vote, a refused vote and a stale AppendEntries leave the timer alone; a granted vote resets it."""
    c = lone_follower()
    f = c.node("f")
    asked = inject(c, RequestPreVoteRequest(LEADER, term=2, last_log_index=1, last_log_term=1))
    c.run_for(0.1)
    assert asked.answers[0].response.granted
    assert f.last_contact() is None, "a granted pre-vote is not contact from a leader (hashicorp #609)"
    voted = inject(c, RequestVoteRequest(LEADER, term=2, last_log_index=1, last_log_term=1))
    c.run_for(0.1)
    assert voted.answers[0].response.granted
    reset_at = f.last_contact()
    assert reset_at is not None, "Figure 2, Followers: granting a vote restarts the election timeout"
    c.run_for(1)
    rival = inject(c, RequestVoteRequest(RPCHeader(id="X", addr="X"), term=2, last_log_index=1, last_log_term=1))
    stale = inject(c, append(2, 2, commit=0))  # term 1, older than f's term 2
    c.run_for(0.1)
    assert not rival.answers[0].response.granted
    assert not stale.answers[0].response.success
    assert f.last_contact() == reset_at, "a refused vote or a stale leader must not hold off an election"
    c.dispose()


def test_the_checker_stops_a_state_machine_that_applies_an_entry_before_it_is_committed(make: Make) -> None:
    """Figure 2, All Servers: apply only up to commitIndex; an apply past it is caught at once."""
    c = make(3)
    c.wait_leader()
    c.apply(b"x")
    c.run_for(0.5)
    follower = c.followers()[0]
    node = c.node(follower)
    c.events.emit(follower, "apply", "forged", index=node.commit_index() + 1, term=node.current_term(),
                  type="LogCommand")
    with pytest.raises(InvariantViolation, match=f"applied ≤ committed violated: {follower} applied index"):
        c.run_for(0.1)


def test_every_test_the_pitfalls_page_names_exists() -> None:
    """Each ``tests/test_x.py::test_y`` on the page is a test function in that file."""
    cited = CITED_TEST.findall(PAGE.read_text(encoding="utf-8"))
    assert len(cited) >= 8
    for path, name in cited:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in functions, f"docs/pitfalls.md cites {path}::{name}, which does not exist"


def test_the_pitfalls_page_names_every_teaching_bug() -> None:
    """Every teaching bug is a pitfall, and the page says which scenario and seed catch it."""
    page = PAGE.read_text(encoding="utf-8")
    for name in BUG_NAMES:
        assert f"`{name}`" in page, f"docs/pitfalls.md does not mention the teaching bug {name}"
