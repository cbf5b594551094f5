"""The fault simulator: every scenario over many seeds is clean, and each teaching bug is caught.

``RAFT_FUZZ_SEEDS`` sets the seeds per scenario (default 50), and
``RAFT_FUZZ_HEAVY_SEEDS`` those of the scenarios that send thousands of
requests in bursts (default 20: each run takes seconds, not a fraction of
one). A failing run's message ends with the ``raft-sim fuzz`` command that
replays it exactly.
"""

from __future__ import annotations

import os

import pytest

from raft.sim.bugs import TeachingBugs
from raft.sim.fuzz import SCENARIOS, run_one

SEEDS = int(os.environ.get("RAFT_FUZZ_SEEDS", "50"))
HEAVY_SEEDS = int(os.environ.get("RAFT_FUZZ_HEAVY_SEEDS", "20"))
HEAVY = ("ApplyBurst", "SnapshotRestore", "SlowStateMachine")
RUNS = [(scenario, seed) for scenario in SCENARIOS for seed in range(HEAVY_SEEDS if scenario in HEAVY else SEEDS)]


@pytest.mark.parametrize(("scenario", "seed"), RUNS)
def test_scenario_is_safe_and_linearizable(scenario: str, seed: int) -> None:
    """Under the scenario's faults, no invariant breaks, all members converge, and the history is linearizable."""
    result = run_one(scenario, seed)
    assert result.failure is None, f"{result.failure}\nreplay: {result.replay}"
    assert result.operations > 0, "the clients must have done something"


def test_a_run_is_reproducible() -> None:
    """The same scenario and seed give the same run: same operations, same virtual end time."""
    first = run_one("CrashRestart", 7)
    second = run_one("CrashRestart", 7)
    assert (first.operations, first.unknown, first.virtual_seconds) == \
        (second.operations, second.unknown, second.virtual_seconds)


def test_replay_command_names_scenario_seed_nodes_and_bugs() -> None:
    """The replay command printed on failure reruns exactly that run."""
    result = run_one("RemoveLeader", 3, bugs=TeachingBugs(skip_leader_noop=True))
    assert result.replay == "raft-sim fuzz --scenario RemoveLeader --seeds 1 --start 3 --nodes 5 --bug skip-leader-noop"


def test_unknown_scenario_is_refused() -> None:
    """A scenario name that does not exist is a clear error."""
    with pytest.raises(ValueError, match="unknown scenario 'Bogus'"):
        run_one("Bogus", 1)


@pytest.mark.parametrize(("bug", "scenario"), [
    ("commit_old_terms_by_counting", "CrashRestart"),
    ("vote_without_log_check", "LeaderPartitions"),
    ("forget_vote_on_restart", "RestartVoters"),
    ("forget_term_on_restart", "RestartVoters"),
    ("skip_leader_noop", "CrashRestart"),
])
def test_each_teaching_bug_is_caught_within_a_bounded_number_of_seeds(bug: str, scenario: str) -> None:
    """Turn one deliberate bug on: some seed below 60 fails a check and prints a replay command naming the bug."""
    bugs = TeachingBugs(**{bug: True})
    for seed in range(60):
        result = run_one(scenario, seed, bugs=bugs)
        if result.failure is not None:
            print(f"{bug}: caught by {scenario} seed {seed}: {result.failure.splitlines()[0]}")
            print(f"replay: {result.replay}")
            assert f"--bug {bug.replace('_', '-')}" in result.replay
            assert result.failure.split(":")[0] in ("InvariantViolation", "FuzzFailure")
            return
    pytest.fail(f"{bug} was not caught by {scenario} in 60 seeds")


def test_teaching_bugs_live_in_a_subclass_and_survive_a_recording() -> None:
    """A plain cluster runs plain ``Raft``; a buggy one ``BuggyRaft``, and its recording replays with the bug."""
    from raft.api import Raft
    from raft.sim import Cluster
    from raft.sim.bugs import BuggyRaft

    with Cluster(nodes=3, seed=5) as plain:
        assert {type(r) for r in plain.rafts()} == {Raft}
        assert "bugs" not in plain.export_run()["params"]
    bugs = TeachingBugs(vote_without_log_check=True, skip_leader_noop=True)
    with Cluster(nodes=3, seed=5, bugs=bugs) as buggy:
        assert {type(r) for r in buggy.rafts()} == {BuggyRaft}
        buggy.wait_leader()
        # The start-up event names new_raft, as for a plain Raft, though the simulator built the subclass.
        assert {e.func for e in buggy.events.of_kind("state") if e.t == 0} == {"new_raft"}
        recording = buggy.export_run()
        trace = [e.to_json() for e in buggy.events.events]
    assert recording["params"]["bugs"] == ["vote-without-log-check", "skip-leader-noop"]
    with Cluster.import_run(recording) as again:
        assert again.bugs == bugs
        assert [e.to_json() for e in again.events.events] == trace


def test_an_unknown_bug_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown teaching bug 'no-such-bug'; choose from commit-old-terms"):
        TeachingBugs.from_cli_names(["no-such-bug"])
