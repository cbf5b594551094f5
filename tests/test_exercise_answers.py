"""The numbers quoted in the tutorials' answer blocks are what the exercises print today.

An answer folded under an exercise (``??? note "Answer"``) quotes a real run.
These tests redo a few of those runs, the ones whose numbers a change to the
protocol would move first, as a student does them: by editing the tutorial
script as the exercise says and running it, or with ``raft-sim fuzz``. If one
fails, run the exercise, and update its answer on the page with what it now
prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from raft.config import Config
from raft.sim import Cluster
from raft.sim.bugs import TeachingBugs
from raft.sim.fuzz import run_one

ROOT = Path(__file__).resolve().parent.parent


def run_edited(tmp_path: Path, script: str, edits: list[tuple[str, str]]) -> str:
    """Run ``tutorials/<script>`` with each (old, new) text replaced, as the exercise asks; its output."""
    text = (ROOT / "tutorials" / script).read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, f"{script} no longer contains {old!r}: the exercise needs rewording"
        text = text.replace(old, new)
    edited = tmp_path / script
    edited.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONHASHSEED": "1", "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tutorials"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(edited)], cwd=ROOT, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(("seed", "first", "after_crash"), [
    (1, "time 1.068s: n4 leads term 2", "1.550s after the crash, n2 leads term 3"),
    (2, "time 1.064s: n2 leads term 2", "2.331s after the crash, n3 leads term 3"),
    (3, "time 1.129s: n5 leads term 2", "1.718s after the crash, n2 leads term 3"),
])
def test_tutorial_1_exercise_1(tmp_path: Path, seed: int, first: str, after_crash: str) -> None:
    """Other seeds: another first leader a little after one second, and a failover of 1.5 to 2.5 s."""
    output = run_edited(tmp_path, "01_first_cluster.py", [("seed=42", f"seed={seed}")])
    assert first in output and after_crash in output
    assert "7 votes refused on the way" in output
    assert "identical on a second run: True" in output


@pytest.mark.parametrize(("lost", "fast_backup", "rejections"), [(3, True, 2), (3, False, 4), (20, True, 1),
                                                                (20, False, 5)])
def test_tutorial_3_exercise_3(tmp_path: Path, lost: int, fast_backup: bool, rejections: int) -> None:
    """The number of refusals does not grow with the stale tail; fast backup makes it smaller."""
    output = run_edited(tmp_path, "03_log_replication.py", [
        ("for i in range(3)]", f"for i in range({lost})]"),
        ("Cluster(nodes=3, seed=3)", f"Cluster(nodes=3, seed=3, config=Config(fast_log_backup={fast_backup}))"),
        ("from raft.sim import Cluster\n", "from raft.config import Config\nfrom raft.sim import Cluster\n"),
    ])
    repair = output[output.index("=== [repair]"):]
    assert repair.count("replication_rejected") == rejections


def test_tutorial_4_exercise_1() -> None:
    """commit-old-terms-by-counting: CrashRestart passes seeds 0 to 6 and fails at 7, on the commit index's monotony."""
    bugs = TeachingBugs(commit_old_terms_by_counting=True)
    for seed in range(7):
        assert run_one("CrashRestart", seed, bugs=bugs).failure is None, f"seed {seed} now fails too"
    failure = run_one("CrashRestart", 7, bugs=bugs).failure
    assert failure is not None
    assert failure.startswith("InvariantViolation: monotonic commit index violated: "
                              "n3's commit index went from 76 back to 56")


def test_tutorial_2_exercise_5() -> None:
    """Without pre-vote, the rejoining server is refused while a leader is known, yet wins in 7 of seeds 7 to 16."""
    won, refused = [], []
    for seed in range(7, 17):
        with Cluster(nodes=5, seed=seed, config=Config(pre_vote_disabled=True)) as cluster:
            cluster.wait_leader()
            loner = cluster.followers()[0]
            cluster.partition([loner])
            cluster.run_for(10)
            healed_at = cluster.now
            cluster.heal()
            cluster.run_for(5)
            after = cluster.events.since(healed_at)
            if any(e.kind == "vote" and e["candidate"] == loner and not e["granted"] for e in after):
                refused.append(seed)
            if any(e.kind == "state" and e.node == loner and e["state"] == "leader" for e in after):
                won.append(seed)
    # In seeds 7 and 9 the leader's next heartbeat meets the higher term first: it steps down before anyone
    # is asked for a vote.
    assert refused == [8, 10, 11, 12, 13, 14, 15, 16]
    assert won == [8, 10, 11, 13, 14, 15, 16]


def test_tutorial_9_exercise_1() -> None:
    """Seeds 5 to 24 of RestartVoters catch a forgotten vote twice (5 and 24), both on Election Safety."""
    bugs = TeachingBugs(forget_vote_on_restart=True)
    failures = {seed: run_one("RestartVoters", seed, bugs=bugs).failure for seed in range(5, 25)}
    caught = {seed: failure.splitlines()[0] for seed, failure in failures.items() if failure is not None}
    assert caught == {
        5: "InvariantViolation: Election Safety violated: n5 and n3 are both leader in term 6",
        24: "InvariantViolation: Election Safety violated: n3 and n1 are both leader in term 6",
    }
