"""Every tutorial runs, prints what its page says it prints, and prints it the same way every time.

The documentation shows the tutorials' code and output (docs/hooks.py runs
them at build time); these tests make sure each script still works on its
own, as a student runs it: ``python tutorials/NN_name.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
TIMEOUT = 300  # seconds per tutorial; they take from under a second to about fifteen
STEP = re.compile(r'^step\("(?P<name>[\w-]+)", "(?P<title>[^"]*)"\)', re.MULTILINE)

# A few lines each tutorial must print: the facts its page explains.
KEY_LINES: dict[str, list[str]] = {
    "01_first_cluster": [r"leads term 2", r"after the crash, n\d leads term 3", r"identical on a second run: True",
                         r"votes refused on the way", r"granted=False \(we still have a leader \(n\d\)\)"],
    "02_leader_election": [r"granted=False \(already voted for", r"election_timeout term=2",
                           r"split votes in 100 seeds", r"nodes that stood before a leader won",
                           r"after 10 s alone, n\d is in term \d+ \(the cluster: 2\)",
                           r"after healing, n\d leads term 2$"],
    "03_log_replication": [r"replication_rejected peer=", r"truncate first=\d+ last=\d+ term=2",
                           r"ErrLeadershipLost"],
    "04_safety_figures_7_and_8": [r"'leader' wins term 8", r"c\s+truncate", r"S1's commit index is 0",
                                  r"S1's commit index is now 3",
                                  r"the invariant checker stopped the run: Leader Completeness"],
    "05_membership": [r"n4 knows: n1 n2 n3 n4", r"latest\s+index 6", r"shutdown"],
    "06_snapshots": [r"snapshot_taken", r"snapshot_installed", r"Figure 13 rule 7"],
    "07_transfer_and_pre_vote": [r"handed over to", r"answered None after", r"leadership transfer timeout",
                                 r"still leads: True"],
    "08_tcp_cluster": [r"a follower answers 307 'not leader'", r"attempt 2: 200, duplicate=True",
                       r"a new leader was elected within 15 s: yes", r"it follows the new leader: yes",
                       r"exit statuses: \{'n1': 0, 'n2': 0, 'n3': 0\}", r"^real: +state state=leader",
                       r"at most one leader in each term \(Election Safety\): yes",
                       r"raft-sim check-trace on the three files: ok \(exit status 0\)"],
    "09_debugging": [r"InvariantViolation: Leader Completeness", r"identical failure: True",
                     r"not linearizable", r"replayed trace identical: True"],
    "10_persistence": [r"n2  currentTerm=2  votedFor=n1 \(in term 2\)", r"n2 term term=2 previous=1\n.*n2 vote ",
                       r"granted=False \(already voted for n1 in term 2\)",
                       r"the invariant checker stopped the run: Election Safety",
                       r"granted=False \(stale term 2 < our term 3\)", r"n2 restarts in term 0",
                       r"the invariant checker stopped the run: monotonic term",
                       r"leaders by term: \{2: \['n1', 'n3'\]\}"],
    "11_clients_and_reads": [r"n1 is still a leader of term 2", r"x='1'   \(stale\)",
                             r"read index on n1 failed: ErrLeadershipLost",
                             r"read through the log on n1 failed: leadership lost",
                             r"read index x='2', through the log x='2'", r"n1 lease_lost contacted=2 quorum=3",
                             r"alice's append: leadership lost", r"duplicate=True", r"x='2!'  y='!!'"],
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run(script: Path, hash_seed: str) -> Run:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=TIMEOUT, check=False)
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """Every tutorial, run once, several at a time."""
    with ThreadPoolExecutor(max_workers=min(len(TUTORIALS), os.cpu_count() or 1)) as pool:
        results = pool.map(lambda script: run(script, "1"), TUTORIALS)
    return {script.stem: result for script, result in zip(TUTORIALS, results, strict=True)}


def test_there_are_tutorials_for_every_landed_feature() -> None:
    """Tutorials 1 to 11 exist, one per number."""
    numbers = sorted(int(script.name[:2]) for script in TUTORIALS)
    assert numbers == list(range(1, 12))
    assert KEY_LINES.keys() == {script.stem for script in TUTORIALS}


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_cleanly(script: Path, runs: dict[str, Run]) -> None:
    """The script exits 0, writes nothing to stderr, and prints something substantive."""
    result = runs[script.stem]
    assert result.returncode == 0, f"{script.name} failed:\n{result.stderr[-3000:]}"
    assert result.stderr == "", f"{script.name} wrote to stderr:\n{result.stderr[-3000:]}"
    assert len(result.stdout.splitlines()) >= 10, f"{script.name} printed almost nothing"


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_prints_every_step_in_order(script: Path, runs: dict[str, Run]) -> None:
    """Each step(...) call prints its header, in order: the docs cut the output there."""
    steps = [(m["name"], m["title"]) for m in STEP.finditer(script.read_text(encoding="utf-8"))]
    assert steps, f"{script.name} has no step() headers"
    headers = [line for line in runs[script.stem].stdout.splitlines() if line.startswith("=== [")]
    assert headers == [f"=== [{name}] {title} ===" for name, title in steps]


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_snippet_sections_are_well_formed(script: Path) -> None:
    """Every ``--8<-- [start:NAME]`` has its ``[end:NAME]``, after it, and names are unique."""
    text = script.read_text(encoding="utf-8")
    starts = re.findall(r"^# --8<-- \[start:([\w-]+)\]$", text, re.MULTILINE)
    ends = re.findall(r"^# --8<-- \[end:([\w-]+)\]$", text, re.MULTILINE)
    assert starts, f"{script.name} has no snippet sections"
    assert len(starts) == len(set(starts)), "section names must be unique"
    assert sorted(starts) == sorted(ends)
    for name in starts:
        assert text.index(f"[start:{name}]") < text.index(f"[end:{name}]")


@pytest.mark.parametrize("stem", sorted(KEY_LINES))
def test_tutorial_prints_its_key_lines(stem: str, runs: dict[str, Run]) -> None:
    """The facts each tutorial's page explains are in its output."""
    output = runs[stem].stdout
    for pattern in KEY_LINES[stem]:
        assert re.search(pattern, output, re.MULTILINE), f"{stem}: no line matches {pattern!r}"


@pytest.mark.parametrize("stem", ["01_first_cluster", "04_safety_figures_7_and_8", "05_membership", "10_persistence",
                                  "11_clients_and_reads",
                                  "08_tcp_cluster"])
def test_tutorial_output_does_not_depend_on_the_hash_seed(stem: str, runs: dict[str, Run]) -> None:
    """The same script prints the same bytes with another PYTHONHASHSEED: what the site shows, you get.

    For tutorial 8, which runs real processes in real time, this also checks
    that it prints nothing that changes between runs (a node name, a time).
    """
    again = run(ROOT / "tutorials" / f"{stem}.py", "2")
    assert again.stdout == runs[stem].stdout
