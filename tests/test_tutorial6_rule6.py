"""Tutorial 6 shows Figure 13's rule 6 in a real run, and its page defines rules 6 and 7 before showing them.

Paper: §7, Figure 13 (InstallSnapshot, receiver rules 6 and 7).

Only tutorial 6 is run here (about a second); ``tests/test_tutorials.py``
runs every tutorial.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tutorials" / "06_snapshots.py"
PAGE = ROOT / "docs" / "tutorials" / "06-snapshots.md"
HEADER = re.compile(r"^=== \[(?P<name>[\w-]+)\] .* ===$", re.MULTILINE)


def run_tutorial(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=300, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def output() -> str:
    return run_tutorial("1")


def steps(output: str) -> dict[str, str]:
    """Each step's output, by step name, as the docs build cuts it."""
    marks = list(HEADER.finditer(output))
    return {m["name"]: output[m.end():marks[k + 1].start() if k + 1 < len(marks) else len(output)]
            for k, m in enumerate(marks)}


def test_rule_6_step_installs_a_snapshot_and_keeps_the_entries_after_it(output: str) -> None:
    """The follower holds the snapshot's last entry: it installs the snapshot and deletes only what it covers."""
    rule6 = steps(output)["rule6"]
    assert "the leader's nextIndex for n2: 83 (matchIndex 82)" in rule6
    assert re.search(r"^  n2  \(snapshot at 82; log from 78\) 2×23  \(commit 82\)$", rule6, re.MULTILINE), \
        "after its restart n2 holds entries 78 to 100 but knows only 82 committed"
    assert re.search(r"n3 snapshot_send peer=n2 index=92 term=2", rule6)
    assert re.search(r"n2 compact first=78 last=92$", rule6, re.MULTILINE)
    assert re.search(r"n2 snapshot_installed index=92 term=2", rule6)
    assert "truncate" not in rule6 and "snapshot_ignored" not in rule6, "rule 6, not rule 7 or the commit check"
    assert "n2's snapshot ends at 92; its log holds entries 93 to 100" in rule6
    assert "n2 has applied 98 commands, the last b'command 97'" in rule6


def test_rule_7_is_shown_only_after_the_page_has_introduced_it(output: str) -> None:
    """Every step whose output applies rule 6 or 7 is included on the page after the bullet that defines the rule."""
    page = PAGE.read_text(encoding="utf-8")
    by_step = steps(output)
    shown = {name: page.index(f'tutorial-output/06_snapshots/{name}.txt"') for name in by_step}
    for rule in ("6", "7"):
        defined = page.index(f"- **Rule {rule}**")
        using = [name for name, text in by_step.items() if f"rule {rule}" in text.lower()]
        if rule == "6":
            using.append("rule6")  # its events carry no reason, but the step is about rule 6
        assert using, f"no step shows rule {rule}"
        for name in using:
            assert shown[name] > defined, f"step {name!r} shows rule {rule} before the page defines it"
    assert shown["install"] < shown["rule6"] < shown["rule7"]


def test_page_links_only_to_public_names() -> None:
    """The page's code links name no underscore helper: those are being folded into the Go-named functions."""
    page = PAGE.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(code:([^)\s#]+)\)", page)
    assert targets
    assert [t for t in targets if any(part.startswith("_") for part in t.split("."))] == []


def test_tutorial_6_prints_the_same_with_another_hash_seed(output: str) -> None:
    """What the site shows is what a student gets: the run does not depend on PYTHONHASHSEED."""
    assert run_tutorial("2") == output
