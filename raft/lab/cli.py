"""``raft-lab``: list the labs, start a workspace, and grade it.

Mirrors: nothing in hashicorp/raft (see ``raft.lab``).

``raft-lab check`` run inside a workspace grades the student's code, not the
installed package: it builds a graded copy (the student's package, with the
reference put back into the stubs of labs not yet reached) and grades it in
a child process that imports that copy. Outside a workspace it grades the
installed package itself, which passes every lab: it is the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from raft.lab.checks import CHECKS
from raft.lab.grade import Failure, Grade, Plan, grade_lab
from raft.lab.labs import LABS, Function, Lab, find_lab
from raft.lab.stubs import StubError, Workspace, find_workspace, graded_copy, start_workspace
from raft.sim.bugs import BUG_NAMES, TeachingBugs
from raft.sim.fuzz import SCENARIOS

EXIT_FAILED = 1
EXIT_USAGE = 2
# Against a student's code that loops forever: virtual time cannot end such a loop. Far above any
# lab's wall time on a slow, busy machine (instructors.md), so it never decides a correct grade.
DEFAULT_TIMEOUT = 900.0
REPORT_LINES = 40  # the checker's report is cut here in the text output (--json has all of it)


class UsageError(Exception):
    """A command-line argument is wrong; the message says how."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raft-lab", description="Write the core of Raft yourself, graded by the project's own checkers: "
                                     "focused checks, then the fault simulator over a fixed set of seeds.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="the labs, in order, with what each asks for and its paper sections",
                   description="Show the labs in order: what each asks for, its paper sections, the functions "
                               "it stubs and its seed budget.")
    start = sub.add_parser("start", help="make a workspace in which a lab's functions are yours to write",
                           description="Copy the raft package into DIR with the functions of LAB and of every "
                                       "later lab replaced by stubs (signature and docstring kept).")
    start.add_argument("lab", metavar="LAB", help="a lab number (1-5) or name (see raft-lab list)")
    start.add_argument("dir", metavar="DIR", nargs="?", help="where to make it (default ./raft-lab-NAME)")
    check = sub.add_parser(
        "check", help="grade the workspace you are in (or the installed package outside one)",
        description="Grade a lab: its focused checks, then the fault simulator over the lab's fixed seed "
                    "budget, with the invariant checker, the log and state-machine comparison and the "
                    "linearizability checker. Stops at the first failure and prints what broke, where, and "
                    "the command that replays it.")
    check.add_argument("lab", metavar="LAB", nargs="?",
                       help="the lab to grade (default in a workspace: the last lab whose functions are all "
                            "written, from the one it was started at)")
    check.add_argument("--json", action="store_true", help="print one JSON object, for autograders")
    check.add_argument("--seeds", type=int, metavar="N",
                       help="at most N seeds per scenario: a quick try, not the lab's grade")
    check.add_argument("--only", action="append", default=[], metavar="SCENARIO:SEED",
                       help="run just this fault-simulator run, without the checks (repeatable): the "
                            "replay of a failure")
    check.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help=f"wall-clock limit for grading a workspace, against code that never returns "
                            f"(default {DEFAULT_TIMEOUT:g})")
    check.add_argument("--checks", action="store_true", help="with --only: run the focused checks first too")
    check.add_argument("--keep-going", action="store_true",
                       help="do not stop at the first failure: run every check and seed and report each failure")
    check.add_argument("--bug", action="append", default=[], choices=BUG_NAMES,
                       help="switch on a teaching bug, to see what a wrong solution's grade looks like "
                            "(repeatable)")
    grade_here = sub.add_parser("grade-here", help=argparse.SUPPRESS)  # the child process of `check`
    grade_here.add_argument("lab")
    grade_here.add_argument("--plan", required=True)
    grade_here.add_argument("--result", required=True)
    grade_here.add_argument("--quiet", action="store_true")
    return parser


def list_command(out: TextIO) -> int:
    for lab in LABS:
        out.write(f"{lab.number}. {lab.title} ({lab.slug})\n")
        out.write(textwrap.fill(f"asks: {lab.asks}", 100, initial_indent="   ", subsequent_indent="     ") + "\n")
        out.write(textwrap.fill(f"paper: {lab.paper}", 100, initial_indent="   ", subsequent_indent="     ") + "\n")
        out.write(f"   you write: {', '.join(str(f) for f in lab.functions)}\n")
        scenarios = ", ".join(f"{s.name} x{s.seeds}" for s in lab.scenarios)
        out.write(f"   graded by: {len(CHECKS[lab.number])} checks, then {lab.seed_budget} seeds ({scenarios})\n")
        out.write(f"   page: {lab.page}\n\n")
    out.write("Start with: raft-lab start 1\n")
    return 0


def start_command(args: argparse.Namespace, out: TextIO) -> int:
    lab = _lab(args.lab)
    directory = Path(args.dir or f"raft-lab-{lab.slug}")
    try:
        workspace = start_workspace(lab, directory)
    except FileExistsError as err:
        raise UsageError(str(err)) from None
    later = [f"{other.number}" for other in LABS if other.number > lab.number]
    out.write(f"Made a workspace for {lab.name} in {workspace.root}\n")
    out.write(f"Yours to write now: {', '.join(str(f) for f in lab.functions)}\n")
    if later:
        out.write(f"Also stubbed, for later: the functions of labs {', '.join(later)} (the grader fills them in "
                  "with the reference until you reach them)\n")
    out.write(f"Read {lab.page}, then:\n  cd {directory}\n  raft-lab check\n")
    return 0


def _lab(text: str) -> Lab:
    try:
        return find_lab(text)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _plan(args: argparse.Namespace) -> Plan:
    only = []
    for item in args.only:
        scenario, _, seed = item.partition(":")
        if scenario not in SCENARIOS or not seed.isdigit():
            raise UsageError(f"--only takes SCENARIO:SEED, e.g. CrashRestart:4; scenarios: {', '.join(SCENARIOS)}")
        only.append((scenario, int(seed)))
    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    return Plan(seeds=args.seeds, only=tuple(only), checks=args.checks or not only,
                bugs=TeachingBugs.from_cli_names(args.bug), keep_going=args.keep_going)


def _default_lab(workspace: Workspace) -> Lab:
    """The last lab whose functions are all written, counting from the one the workspace was started at."""
    lab = workspace.lab
    for later in LABS:
        if later.number <= lab.number:
            continue
        if workspace.stubs_left(later):
            break
        lab = later
    return lab


def check_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    plan = _plan(args)
    try:
        workspace = find_workspace(Path.cwd())
    except StubError as error:
        raise UsageError(str(error)) from None
    lab = _lab(args.lab) if args.lab else workspace.lab if workspace else None
    if workspace is not None and not args.lab:
        with contextlib.suppress(SyntaxError, StubError):  # grading reports it, with the file and line
            lab = _default_lab(workspace)
    if lab is None:
        raise UsageError("outside a workspace, name the lab to grade the installed package on, e.g. raft-lab check 1")
    if workspace is None:
        if not args.json:
            err.write(f"raft-lab: grading the installed package (the reference) on {lab.name}\n")
        grade = grade_lab(lab, plan, progress=_progress(err, quiet=args.json))
        result = grade.to_json()
    else:
        result = _grade_workspace(workspace, lab, plan, args, err)
    result["workspace"] = str(workspace.root) if workspace else None
    if args.json:
        out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        render(result, out)
    return 0 if result["passed"] else EXIT_FAILED


def _grade_workspace(workspace: Workspace, lab: Lab, plan: Plan, args: argparse.Namespace,
                     err: TextIO) -> dict[str, Any]:
    """Grade the student's code in a child process that imports the graded copy."""
    try:
        stubs = workspace.stubs_left(lab)
        with tempfile.TemporaryDirectory(prefix="raft-lab-graded-") as tmp:
            return _grade_copy(workspace, lab, plan, args, err, stubs, Path(tmp))
    except (SyntaxError, StubError) as error:  # the student's files do not parse, or lost a lab function
        where = f"{error.filename}, line {error.lineno}" if isinstance(error, SyntaxError) else str(error)
        grade = Grade(lab.number, lab.title, str(workspace.package), bugs=plan.bugs.cli_names())
        grade.fail(Failure("stub", "unreadable source", "a file of your package does not parse, or a lab "
                           "function is missing from it", where, f"{type(error).__name__}: {error}",
                           replay=f"raft-lab check {lab.number}", visualizer=""))
        return grade.to_json()


def _grade_copy(workspace: Workspace, lab: Lab, plan: Plan, args: argparse.Namespace, err: TextIO,
                stubs: list[tuple[Lab, Function]], tmp: Path) -> dict[str, Any]:
    """Fail on the stubs left, or build the graded copy in ``tmp`` and grade it in a child process."""
    if stubs:
        names = "; ".join(f"{f} (lab {owner.number})" for owner, f in stubs)
        grade = Grade(lab.number, lab.title, str(workspace.package), seed_budget=lab.seed_budget,
                      bugs=plan.bugs.cli_names())
        grade.fail(Failure("stub", "unwritten functions", f"{len(stubs)} function(s) of {lab.name} or an earlier "
                           "lab are still stubs", names,
                           "\n".join(f"{f}: still raises NotImplementedError; see {owner.page}" for owner, f in stubs),
                           replay=f"raft-lab check {lab.number}", visualizer=""))
        return grade.to_json()
    if not args.json:
        err.write(f"raft-lab: grading {workspace.package} on {lab.name}\n")
    root = graded_copy(workspace, lab, tmp)
    result_file = root / "result.json"
    plan_text = json.dumps({"seeds": plan.seeds, "only": [list(o) for o in plan.only], "checks": plan.checks,
                            "bugs": plan.bugs.cli_names(), "keep_going": plan.keep_going})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "raft.lab.cli", "grade-here", str(lab.number), "--plan", plan_text,
               "--result", str(result_file), *(["--quiet"] if args.json else [])]
    # cwd is the graded copy: `python -m` puts cwd first on sys.path, and it must find this raft.
    # Progress goes straight to the terminal as it happens; with --json it is kept for the report.
    err.flush()
    try:
        child = subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE if args.json else None, text=True, check=False,
                               timeout=args.timeout)
    except subprocess.TimeoutExpired as expired:
        partial = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else ""
        grade = Grade(lab.number, lab.title, str(workspace.package), seed_budget=lab.seed_budget,
                      bugs=plan.bugs.cli_names())
        grade.fail(Failure("check", "timeout", f"grading did not finish within {args.timeout:g} s of wall time: "
                           "some code never returns (a loop with no await, or one that waits on itself)",
                           "the last progress line printed shows the check or run it was in",
                           partial[-4000:] or "see the progress lines printed above",
                           replay=f"raft-lab check {lab.number}", visualizer=""))
        return grade.to_json()
    if not result_file.is_file():
        grade = Grade(lab.number, lab.title, str(workspace.package), bugs=plan.bugs.cli_names())
        grade.fail(Failure("check", "the graded code did not load", "importing your package failed",
                           "python -m raft.lab.cli grade-here",
                           (child.stderr or "")[-4000:] or "see the error printed above",
                           replay=f"raft-lab check {lab.number}", visualizer=""))
        return grade.to_json()
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    result["package"] = str(workspace.package)
    return result


def grade_here_command(args: argparse.Namespace, err: TextIO) -> int:
    data = json.loads(args.plan)
    plan = Plan(seeds=data["seeds"], only=tuple((s, int(n)) for s, n in data["only"]), checks=data["checks"],
                bugs=TeachingBugs.from_cli_names(data["bugs"]), keep_going=data["keep_going"])
    grade = grade_lab(find_lab(args.lab), plan, progress=_progress(err, quiet=args.quiet))
    Path(args.result).write_text(json.dumps(grade.to_json(), ensure_ascii=False), encoding="utf-8")
    return 0


def _progress(err: TextIO, quiet: bool) -> Callable[[str], None]:
    """Where a grade reports each check and seed as it goes: ``err``, or nowhere."""
    def report(line: str) -> None:
        if not quiet:
            err.write(line + "\n")
            err.flush()

    return report


def render(result: dict[str, Any], out: TextIO) -> None:
    """The grade report a student reads."""
    name = f"lab {result['lab']} ({result['title']})"
    bugs = f" with teaching bug(s) {', '.join(result['bugs'])}" if result["bugs"] else ""
    checks = result["checks"]
    passed_checks = sum(1 for c in checks if c["passed"])
    if result["passed"]:
        out.write(f"PASS {name}{bugs}: {passed_checks}/{len(checks)} checks, {result['seeds_run']} of "
                  f"{result['seed_budget']} seeds, {result['operations']:,} client operations checked for "
                  f"linearizability, {result['wall_seconds']:.1f} s\n")
        if result["seeds_run"] < result["seed_budget"] or result["bugs"]:
            out.write(f"  (not the lab's grade: that runs all {result['seed_budget']} seeds, without --bug)\n")
        return
    failure = result["failure"]
    where = f" (run it in {result['workspace']})" if result.get("workspace") else ""
    out.write(f"FAIL {name}{bugs}\n")
    out.write(f"  what broke:  {failure['plain']}  [{failure['property']}]\n")
    out.write(f"  where:       {failure['event']}\n")
    if failure["stage"] == "fuzz":
        out.write(f"  run:         scenario {failure['scenario']}, seed {failure['seed']} "
                  f"(after {passed_checks} checks and {result['seeds_run'] - 1} passing seeds)\n")
    if failure["replay"]:
        out.write(f"  replay:      {failure['replay']}{where}\n")
    if failure["simulator_replay"] and not result.get("workspace"):
        out.write(f"  simulator:   {failure['simulator_replay']}\n")
    if failure["visualizer"]:
        out.write(textwrap.fill(f"visualizer:  {failure['visualizer']}", 110, initial_indent="  ",
                                subsequent_indent=" " * 15) + "\n")
    others = result.get("failures", [])[1:]
    if others:
        out.write(f"  and {len(others)} more failure(s) (--keep-going):\n")
        for other in others:
            out.write(f"    {other['stage']} {other['property']}: {other['plain']}  ({other['replay']})\n")
    lines = failure["report"].splitlines()
    out.write("  report:\n")
    for line in lines[:REPORT_LINES]:
        out.write(f"    {line}\n")
    if len(lines) > REPORT_LINES:
        out.write(f"    ... {len(lines) - REPORT_LINES} more lines (the replay command, or --json, shows them)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return list_command(sys.stdout)
        if args.command == "start":
            return start_command(args, sys.stdout)
        if args.command == "check":
            return check_command(args, sys.stdout, sys.stderr)
        if args.command == "grade-here":
            return grade_here_command(args, sys.stderr)
    except UsageError as err:
        parser.error(str(err))  # prints usage and exits with status 2
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
