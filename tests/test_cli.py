"""``raft-sim run``: the narrative, the trace contract and clear errors for bad arguments."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from raft.sim.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_narrates_the_election(capsys: pytest.CaptureFixture[str]) -> None:
    """The story names the leader, the time, the term and the reason it stood."""
    code, out, _ = run(capsys, "run", "--nodes", "5", "--seed", "7", "--duration", "10")
    assert code == 0
    assert "becomes leader in term 2" in out
    assert "heartbeat timeout" in out
    assert "Summary: 1 leader(s) elected; final leader n" in out


def test_trace_lines_follow_the_contract(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Every trace line is a JSON object with t, node and kind; role changes carry state and term."""
    trace = tmp_path / "t.jsonl"
    code, _, _ = run(capsys, "run", "--nodes", "3", "--seed", "1", "--duration", "5", "--apply-rate", "5",
                     "--trace", str(trace))
    assert code == 0
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert all({"t", "node", "kind"} <= set(e) for e in events)
    states = [e for e in events if e["kind"] == "state"]
    assert {"follower", "candidate", "leader"} <= {e["state"] for e in states}
    assert all(isinstance(e["term"], int) for e in states)
    assert [e for e in events if e["kind"] == "commit" and isinstance(e["index"], int)]
    applies = [e for e in events if e["kind"] == "apply"]
    assert {"node", "index", "term"} <= set(applies[0])
    assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(events))


def test_every_node_applies_the_same_term_at_every_index(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """With load, loss and a leader crash, all nodes agree on the term of each applied index."""
    trace = tmp_path / "t.jsonl"
    code, _, _ = run(capsys, "run", "--nodes", "5", "--seed", "3", "--duration", "20", "--apply-rate", "20",
                     "--loss", "0.05", "--crash", "n1:5", "--restart", "n1:8", "--trace", str(trace))
    assert code == 0
    applied: dict[int, set[int]] = {}
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event["kind"] == "apply":
            applied.setdefault(event["index"], set()).add(event["term"])
    assert len(applied) > 100
    assert all(len(terms) == 1 for terms in applied.values())


def test_crash_and_restart_appear_in_the_story(capsys: pytest.CaptureFixture[str]) -> None:
    """Scheduled faults are narrated at their virtual times."""
    code, out, _ = run(capsys, "run", "--nodes", "3", "--seed", "2", "--duration", "10", "--crash", "n1:3",
                       "--restart", "n1:6")
    assert code == 0
    assert "t=   3.000s  n1 crashes" in out
    assert "t=   6.000s  n1 restarts from its stores" in out


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--nodes", "0"], "must be at least 1"),
    (["run", "--nodes", "three"], "is not a whole number"),
    (["run", "--loss", "1.5"], "must be at least 0 and below 1"),
    (["run", "--duration", "-1"], "cannot be negative"),
    (["run", "--crash", "n9:3"], "no node 'n9'"),
    (["run", "--crash", "n1"], "expects NODE:AT"),
    (["run", "--crash", "n1:soon"], "is not a number of seconds"),
    (["run", "--duration", "10", "--crash", "n1:30"], "between 0 and the duration"),
    (["run", "--restart", "n1:3"], "is not crashed then"),
    (["run", "--crash", "n1:3", "--crash", "n1:4"], "already crashed"),
    (["run", "--snapshot-threshold", "0"], "must be at least 1"),
    (["run", "--trailing-logs", "-5"], "cannot be negative"),
    (["run", "--add-voter", "soon"], "not a number of seconds"),
    (["run", "--remove", "n6:3"], "no node 'n6'"),
    (["run", "--nodes", "3", "--remove", "n4:5", "--add-voter", "8"], "does not exist yet then"),
    (["run", "--duration", "10", "--transfer-leadership", "11"], "between 0 and the duration"),
    (["fly"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_exit_2_with_a_clear_message(capsys: pytest.CaptureFixture[str], args: list[str],
                                                   message: str) -> None:
    """A wrong argument prints what is wrong and exits with status 2."""
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err


def test_lagging_node_catches_up_through_install_snapshot(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    """With snapshots and a short log tail, a node down for long enough catches up by InstallSnapshot."""
    trace = tmp_path / "t.jsonl"
    code, out, _ = run(capsys, "run", "--nodes", "5", "--seed", "5", "--duration", "60", "--apply-rate", "20",
                       "--snapshot-threshold", "200", "--trailing-logs", "20", "--crash", "n2:5",
                       "--restart", "n2:30", "--trace", str(trace))
    assert code == 0
    assert "n2 catches up by installing a snapshot" in out
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [e for e in events if e["kind"] == "snapshot_installed" and e["node"] == "n2"]
    applied: dict[int, set[int]] = {}
    for event in events:
        if event["kind"] == "apply":
            applied.setdefault(event["index"], set()).add(event["term"])
    assert all(len(terms) == 1 for terms in applied.values())


def test_membership_and_transfer_options(capsys: pytest.CaptureFixture[str]) -> None:
    """--add-voter, --remove and --transfer-leadership act through the leader and are narrated."""
    code, out, _ = run(capsys, "run", "--nodes", "3", "--seed", "2", "--duration", "20", "--add-voter", "5",
                       "--remove", "n1:10", "--transfer-leadership", "15")
    assert code == 0
    assert "to add n4 as a voter" in out and "n1, n2, n3, n4" in out
    assert "to remove n1" in out and "n2, n3, n4" in out
    assert "leadership transfer from" in out


def test_fuzz_reports_a_clean_run(capsys: pytest.CaptureFixture[str]) -> None:
    """raft-sim fuzz prints a summary with the number of operations checked and exits 0 when clean."""
    code, out, err = run(capsys, "fuzz", "--scenario", "RemoveLeader", "--seeds", "2")
    assert code == 0
    assert "fuzz: 2 run(s) clean" in out and "operations checked for linearizability" in out
    assert "2/2 RemoveLeader" in err  # the progress bar


def test_fuzz_stops_at_the_first_failure_and_prints_the_replay(capsys: pytest.CaptureFixture[str]) -> None:
    """With a teaching bug on, fuzz stops at the first failing run and prints the command to replay it."""
    code, out, _ = run(capsys, "fuzz", "--scenario", "CrashRestart", "--seeds", "10", "--start", "1",
                       "--bug", "skip-leader-noop")
    assert code == 1
    failed = re.search(r"^FAILED CrashRestart seed (\d+):", out, re.MULTILINE)
    assert failed is not None, out
    seed = int(failed[1])
    assert 1 <= seed <= 10
    assert f"fuzz: {seed} run(s) 1 failed" in out, "seeds 1.. up to the first failure ran, and no more"
    assert (f"replay: raft-sim fuzz --scenario CrashRestart --seeds 1 --start {seed} --nodes 5 "
            "--bug skip-leader-noop") in out


@pytest.mark.parametrize(("args", "message"), [
    (["fuzz"], "required: --scenario"),
    (["fuzz", "--scenario", "Nope"], "unknown scenario 'Nope'"),
    (["fuzz", "--scenario", "all", "--seeds", "0"], "must be at least 1"),
    (["fuzz", "--scenario", "all", "--bug", "typo"], "invalid choice"),
])
def test_fuzz_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    """Bad fuzz arguments get a clear message and exit status 2."""
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err
