"""The lab track: the reference passes every lab, stubs fail it, and realistic wrong solutions are caught.

Paper: the sections each lab covers (raft/lab/labs.py). Every grade here is
a pure function of the code and the seeds, so a failing test prints the
command that replays the run it is about.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from raft.lab.cli import main
from raft.lab.grade import Plan, describe_fuzz_failure, grade_lab
from raft.lab.labs import LABS, find_lab
from raft.lab.mistakes import MISTAKES, Mistake, mistakes_of, plant
from raft.lab.stubs import find_workspace, function_text, is_stub, reference_package, start_workspace, stub_source

LAB_IDS = [f"lab{lab.number}-{lab.slug}" for lab in LABS]


def run_cli(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``raft-lab ARGS`` in ``cwd``; return its exit status and what it printed."""
    monkeypatch.chdir(cwd)
    code = main(args)
    return code, capsys.readouterr().out


def test_list_names_every_lab_with_its_paper_sections(capsys: pytest.CaptureFixture[str]) -> None:
    """`raft-lab list` shows the labs in order, each with what it asks for, its sections and its functions."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    positions = [out.index(f"{lab.number}. {lab.title}") for lab in LABS]
    assert positions == sorted(positions)
    for lab in LABS:
        assert lab.paper.split(";")[0][:30] in out.replace("\n     ", " ")
        for function in lab.functions:
            assert function.qualname in out


def test_every_lab_function_exists_and_has_a_docstring() -> None:
    """Each stubbed function is found in the reference, with a docstring: all a student sees of it."""
    assert len(LABS) >= 5
    for lab in LABS:
        assert Path(lab.page).is_file() or (Path(__file__).parents[1] / lab.page).is_file(), lab.page
        for function in lab.functions:
            text = function_text((reference_package() / function.file).read_text(encoding="utf-8"),
                                 function.qualname)
            assert text.split("\n", 1)[1].lstrip().startswith('"""'), f"{function} has no docstring to keep"


def test_a_stub_keeps_signature_docstring_and_every_comment_outside_the_function() -> None:
    """Stubbing replaces only the body: the def line, the docstring and the rest of the file stay as they were."""
    source = ('# top comment\nclass A:\n    def f(self, x: int) -> int:\n        """Say it.\n\n'
              '        Paper: §5.2.\n        """\n        # inside: goes\n        return x + 1\n\n'
              '    # after f: stays\n    def g(self) -> None:\n        pass\n')
    stubbed = stub_source(source, "A.f", "lab 9 (x): implement A.f")
    assert stubbed == ('# top comment\nclass A:\n    def f(self, x: int) -> int:\n        """Say it.\n\n'
                       '        Paper: §5.2.\n        """\n'
                       "        raise NotImplementedError('lab 9 (x): implement A.f')\n\n"
                       '    # after f: stays\n    def g(self) -> None:\n        pass\n')
    assert is_stub(stubbed, "A.f") and not is_stub(stubbed, "A.g")


def test_start_stubs_the_lab_and_every_later_lab_and_nothing_else(tmp_path: Path) -> None:
    """`raft-lab start 2` stubs labs 2-5 (docstrings kept, message naming the lab); lab 1 stays written."""
    workspace = start_workspace(find_lab(2), tmp_path / "ws")
    assert find_workspace(tmp_path / "ws" / "raft" / "kv") == workspace
    for lab in LABS:
        for function in lab.functions:
            source = (workspace.package / function.file).read_text(encoding="utf-8")
            ast.parse(source)
            assert is_stub(source, function.qualname) == (lab.number >= 2), function
            if lab.number >= 2:
                text = function_text(source, function.qualname)
                original = function_text((reference_package() / function.file).read_text(encoding="utf-8"),
                                         function.qualname)
                docstring = original.split('"""')[1]
                assert docstring in text, f"{function}: the docstring must stay"
                assert f"lab {lab.number} ({lab.title}): implement {function.qualname}" in text
                assert lab.page in text
    assert [lab for lab, _ in workspace.stubs_left(find_lab(2))] == [find_lab(2)] * len(find_lab(2).functions)
    sheet = (workspace.root / "LAB.md").read_text(encoding="utf-8")
    assert sheet.startswith("# Lab 2: log replication") and "a_mismatching_previous_entry_is_refused" in sheet


@pytest.mark.parametrize("lab", LABS, ids=LAB_IDS)
def test_a_workspace_with_the_stubs_left_in_fails_its_lab_naming_them(
        lab: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Grading a fresh workspace fails its lab at once, naming every function still to write."""
    assert lab in LABS
    start_workspace(lab, tmp_path / "ws")  # type: ignore[arg-type]
    code, out = run_cli(["check", "--json"], tmp_path / "ws" / "raft", monkeypatch, capsys)
    result = json.loads(out)
    assert code == 1 and not result["passed"]
    assert result["failure"]["stage"] == "stub"
    for function in lab.functions:  # type: ignore[attr-defined]
        assert function.qualname in result["failure"]["event"]


@pytest.mark.parametrize("lab", LABS, ids=LAB_IDS)
def test_the_reference_passes_every_lab(lab: object) -> None:
    """The package itself is the reference solution: it passes each lab's checks and its first seeds."""
    assert lab in LABS
    grade = grade_lab(lab, Plan(seeds=1))  # type: ignore[arg-type]
    if grade.failure is not None:
        print(f"replay: {grade.failure.simulator_replay or grade.failure.replay}")
    assert grade.passed, grade.failure
    assert all(check.passed for check in grade.checks) and grade.checks
    assert grade.seeds_run == len(lab.scenarios) and grade.operations > 0  # type: ignore[attr-defined]


def test_every_lab_has_two_wrong_solutions_caught_by_a_seed() -> None:
    """The catalogue holds at least two mistakes per lab that a fuzz run of the lab's budget catches."""
    for lab in LABS:
        seeded = [m for m in mistakes_of(lab.number) if m.caught_by.scenario is not None]
        assert len(seeded) >= 2, f"{lab.name} has {len(seeded)} seeded mistakes"
        for mistake in seeded:
            budget = {s.name: s.seeds for s in lab.scenarios}
            assert mistake.caught_by.seed is not None
            assert mistake.caught_by.seed < budget.get(mistake.caught_by.scenario or "", 0), \
                f"{mistake.name}: {mistake.caught_by} is outside {lab.name}'s seed budget"


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_a_wrong_solution_is_caught(mistake: Mistake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A workspace holding the mistake fails its lab: at the recorded seed, and at the recorded check."""
    lab = find_lab(mistake.lab)
    workspace = start_workspace(lab, tmp_path / "ws")
    plant(workspace, mistake)
    bug = ["--bug", mistake.bug] if mistake.bug else []
    runs = [f"{mistake.caught_by.scenario}:{mistake.caught_by.seed}"] if mistake.caught_by.scenario else []
    selection = ["--only", runs[0]] if runs else ["--seeds", "1"]  # no seed catches it: the checks must
    code, out = run_cli(["check", str(lab.number), "--json", "--keep-going", "--checks", *selection, *bug],
                        workspace.root, monkeypatch, capsys)
    result = json.loads(out)
    failures = result["failures"]
    print(f"{mistake.name}: " + "; ".join(f"{f['stage']} {f['property']} ({f['replay']})" for f in failures))
    assert code == 1 and not result["passed"]
    failed_checks = [c["name"] for c in result["checks"] if not c["passed"]]
    if mistake.caught_by.check:
        assert mistake.caught_by.check in failed_checks, f"{mistake.name}: the checks that failed: {failed_checks}"
    else:
        assert not failed_checks, f"{mistake.name} is recorded as passing every check, but {failed_checks} failed"
    if runs:
        fuzz = [f for f in failures if f["stage"] == "fuzz"]
        assert fuzz, f"{mistake.name} passed {runs[0]}; replay: cd {workspace.root} && raft-lab check " \
                     f"{lab.number} --only {runs[0]}{' --bug ' + mistake.bug if mistake.bug else ''}"
        assert fuzz[0]["replay"] == f"raft-lab check {lab.number} --only {runs[0]}" + \
            (f" --bug {mistake.bug}" if mistake.bug else "")
        assert fuzz[0]["plain"] and fuzz[0]["event"]


def test_a_failing_grade_tells_what_broke_where_and_how_to_replay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The text report of a caught mistake names the property in plain words, the event and the replay."""
    mistake = next(m for m in MISTAKES if m.name == "second-vote-in-a-term")
    workspace = start_workspace(find_lab(1), tmp_path / "ws")
    plant(workspace, mistake)
    code, out = run_cli(["check", "1", "--only", "LeaderPartitions:1"], workspace.root, monkeypatch, capsys)
    assert code == 1
    assert "FAIL lab 1 (leader election)" in out
    assert "two leaders were elected in the same term  [Election Safety]" in out
    assert "where:       at t=" in out
    assert "replay:      raft-lab check 1 --only LeaderPartitions:1" in out
    assert "visualizer:" in out


def test_a_pass_prints_a_grade_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A written lab passes with a one-line report: checks, seeds and client operations checked."""
    workspace = start_workspace(find_lab(5), tmp_path / "ws")
    plant(workspace, Mistake(5, "none", "", MISTAKES[0].caught_by))  # the reference, unchanged
    code, out = run_cli(["check", "--seeds", "1"], workspace.root, monkeypatch, capsys)
    assert code == 0, out
    assert out.startswith(f"PASS lab 5 (client interaction): 3/3 checks, 4 of {find_lab(5).seed_budget} seeds, ")
    assert "not the lab's grade" in out
    assert "client operations checked for linearizability" in out


def test_a_file_that_does_not_parse_is_a_clear_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A syntax error in the student's package fails the grade naming the file and line, not with a traceback."""
    workspace = start_workspace(find_lab(1), tmp_path / "ws")
    with (workspace.package / "raft.py").open("a", encoding="utf-8") as file:
        file.write("\ndef broken(:\n")
    code, out = run_cli(["check", "--json"], workspace.root, monkeypatch, capsys)
    failure = json.loads(out)["failure"]
    assert code == 1 and failure["property"] == "unreadable source"
    assert "raft.py, line" in failure["event"]


def test_code_that_never_returns_is_stopped_by_the_wall_clock_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A lab function that loops forever cannot hang an autograder: --timeout ends the grade with a failure."""
    workspace = start_workspace(find_lab(5), tmp_path / "ws")
    plant(workspace, Mistake(5, "loops", "", MISTAKES[0].caught_by, function=find_lab(5).functions[0],
                             old="self.applied_index = log.index", new="while True:\n            pass"))
    code, out = run_cli(["check", "--json", "--timeout", "5"], workspace.root, monkeypatch, capsys)
    failure = json.loads(out)["failure"]
    assert code == 1 and failure["property"] == "timeout"
    assert "did not finish within 5 s" in failure["plain"]


def test_start_refuses_a_folder_that_holds_a_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Starting a lab over an existing workspace is refused, so a student's work is never overwritten."""
    monkeypatch.chdir(tmp_path)
    assert main(["start", "1", "ws"]) == 0
    with pytest.raises(SystemExit):
        main(["start", "2", "ws"])
    assert "already holds a workspace" in capsys.readouterr().err


def test_fuzz_reports_are_described_in_plain_words() -> None:
    """The invariant checker's rule and event line, and the end-of-run verdicts, become a student's words."""
    rule, plain, event = describe_fuzz_failure(
        "InvariantViolation: Election Safety violated: n1 and n2 are both leader in term 3\n"
        "  at t=1.5 on n2: 1.500 n2 state state=leader term=3\n")
    assert (rule, plain, event) == ("Election Safety", "two leaders were elected in the same term",
                                    "at t=1.5 on n2: 1.500 n2 state state=leader term=3")
    _, plain, _ = describe_fuzz_failure("FuzzFailure: the client history is not linearizable:\nwhatever")
    assert "linearizability" in plain


def test_check_refuses_an_unknown_lab_and_a_bad_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong arguments are clear errors, not tracebacks."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["check", "9"])
    assert "unknown lab '9'; choose one of 1 (leader-election)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check", "1", "--only", "Nope:1"])
    assert "--only takes SCENARIO:SEED" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check"])
    assert "outside a workspace, name the lab" in capsys.readouterr().err
