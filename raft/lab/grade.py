"""Grading one lab: its focused checks, then the fault simulator over the lab's fixed seed budget.

Mirrors: nothing in hashicorp/raft (see ``raft.lab``).
Paper:   Figure 3 (the properties the invariant checker holds every run to); §8.
Read before: raft/sim/fuzz.py (``run_one``: one scenario, one seed, checked three ways).

The grade runs in the process whose ``raft`` is the code being graded (the
CLI starts one with the student's package first on ``sys.path``). It stops
at the first failure and describes it for a student: the broken property in
plain words, the event where it broke, and the command that replays exactly
that run. Nothing here depends on the machine's speed: the checks and the
fuzz runs are pure functions of their seeds.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import raft
from raft.lab.checks import CHECKS, claim
from raft.lab.labs import Lab
from raft.sim.bugs import TeachingBugs
from raft.sim.fuzz import run_one

# The invariant checker's rule names (raft/checkers/invariants.py), in a student's words.
PLAIN_RULES = {
    "Election Safety": "two leaders were elected in the same term",
    "Leader Append-Only": "a leader overwrote or deleted an entry of its own log",
    "Leader Completeness": "a new leader lacks an entry that was already committed",
    "Log Matching": "two logs hold an entry with the same index and term, but it or the entries before it "
                    "differ",
    "State Machine Safety": "a committed entry was deleted, or two servers committed or applied different "
                            "entries at the same index",
    "applied ≤ committed": "a server applied an entry that was not committed",
    "apply in order": "a state machine applied entries out of order, or was restored to an older state",
    "log covers commit": "a server's commit index points past what its log and snapshot hold",
    "monotonic commit index": "a commit index moved backwards",
    "monotonic lastApplied": "a state machine went back to an older state (lastApplied moved backwards)",
    "monotonic snapshot": "a server replaced its snapshot with an older one",
    "monotonic term": "a server's current term went backwards",
    "state machine keeps applying": "a state machine stopped applying committed entries",
}
# The fault simulator's end-of-run verdicts (raft/sim/fuzz.py), by a phrase of their first line.
PLAIN_VERDICTS = [
    ("not linearizable", "the clients saw answers that no single order of their operations explains "
                         "(linearizability)"),
    ("did not finish within", "the linearizability checker could not decide the clients' history in its budget"),
    ("logs differ", "at the end of the run two members hold different entries at the same index"),
    ("state machines differ", "at the end of the run two members' state machines differ"),
    ("lacks entry", "at the end of the run a member is missing a committed entry"),
    ("no leader was elected", "no leader was elected after every fault was healed (liveness)"),
    ("clients did not finish", "client requests were never answered after healing (liveness)"),
    ("liveness", "the cluster stopped making progress after every fault was healed (liveness)"),
    ("never answered", "a request was never answered after healing (liveness)"),
]
VISUALIZER_NOTE = ("the visualizer cannot open this run: raft-visualizer starts its own interactive cluster "
                   "(--nodes, --seed) and has no way to load a fault-simulator run or pause it at an event; "
                   "use the replay command, whose report shows the event and the logs around it")


@dataclass
class CheckOutcome:
    """One focused check: its claim and, if it failed, why."""

    name: str
    claim: str
    passed: bool
    message: str = ""


@dataclass
class Failure:
    """The first thing that went wrong, described for a student."""

    stage: str  # "stub", "check" or "fuzz"
    property: str  # the rule or verdict, as the checker names it
    plain: str  # the same in plain words
    event: str  # where it broke: the event, the check, or the stub
    report: str  # the checker's whole report
    replay: str = ""  # the raft-lab command that runs exactly this again
    simulator_replay: str = ""  # the raft-sim command, for the package outside a workspace
    visualizer: str = VISUALIZER_NOTE
    scenario: str = ""
    seed: int | None = None


@dataclass
class Grade:
    """The result of grading one lab."""

    lab: int
    title: str
    package: str  # the folder of the raft package that was graded
    passed: bool = True
    checks: list[CheckOutcome] = field(default_factory=list)
    seeds_run: int = 0
    seed_budget: int = 0  # the lab's: a grade that ran fewer seeds (--seeds, --only) is only a try
    operations: int = 0  # client operations checked for linearizability
    wall_seconds: float = 0.0
    bugs: list[str] = field(default_factory=list)
    failure: Failure | None = None  # the first failure: what a student reads
    failures: list[Failure] = field(default_factory=list)  # all of them, with --keep-going

    def fail(self, failure: Failure) -> None:
        self.passed = False
        self.failures.append(failure)
        if self.failure is None:
            self.failure = failure

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """What to run: the lab's own budget, or less (``seeds`` per scenario), or exactly some runs (``only``)."""

    seeds: int | None = None
    only: tuple[tuple[str, int], ...] = ()
    checks: bool = True
    bugs: TeachingBugs = field(default_factory=TeachingBugs)
    keep_going: bool = False  # record every failure instead of stopping at the first

    def runs(self, lab: Lab) -> list[tuple[str, int]]:
        if self.only:
            return list(self.only)
        return [(s.name, seed) for s in lab.scenarios for seed in range(min(s.seeds, self.seeds or s.seeds))]

    def replay_options(self) -> str:
        return "".join(f" --bug {name}" for name in self.bugs.cli_names())


def describe_fuzz_failure(text: str) -> tuple[str, str, str]:
    """(property, plain words, event) from a fuzz run's failure report."""
    first, *rest = text.splitlines()
    kind, _, detail = first.partition(": ")
    event = next((line.strip() for line in rest if line.strip().startswith("at t=")), "")
    if kind == "InvariantViolation":
        rule = detail.split(" violated:")[0]
        return rule, PLAIN_RULES.get(rule, rule), event or "(the report does not name one)"
    if "NotImplementedError" in text:
        stub = next((line.strip() for line in reversed(text.splitlines()) if "NotImplementedError" in line), first)
        return "a stub was called", "the run reached a function that is still a stub", stub
    for phrase, plain in PLAIN_VERDICTS:
        if phrase in first:
            return (detail or first).rstrip(":"), plain, "checked at the end of the run, after every fault was healed"
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), first)
    return first, "the run stopped with an error inside the simulated cluster", last


def run_checks(lab: Lab, plan: Plan, grade: Grade, progress: Callable[[str], None]) -> bool:
    """Run the lab's focused checks in order; record them; False at the first that fails."""
    for check in CHECKS[lab.number]:
        try:
            check(plan.bugs)
        except Exception as error:  # a failed expectation, a timeout, or the student's code raising
            if isinstance(error, AssertionError) and str(error):
                message = str(error)
            else:
                message = f"{type(error).__name__}: {error}\n{''.join(traceback.format_exception(error)[-6:])}"
            grade.checks.append(CheckOutcome(check.__name__, claim(check), False, message))
            progress(f"  check {check.__name__}: FAILED")
            grade.fail(Failure("check", check.__name__, claim(check), f"focused check {check.__name__}",
                               message, replay=f"raft-lab check {lab.number}{plan.replay_options()}",
                               visualizer=""))
            if not plan.keep_going:
                return False
            continue
        grade.checks.append(CheckOutcome(check.__name__, claim(check), True))
        progress(f"  check {check.__name__}: ok")
    return grade.passed


def grade_lab(lab: Lab, plan: Plan, progress: Callable[[str], None] = lambda _: None) -> Grade:
    """Grade the ``raft`` package this process imports on ``lab``: checks first, then the fault simulator."""
    started = time.perf_counter()
    runs = plan.runs(lab)
    grade = Grade(lab.number, lab.title, str(raft.__path__[0]), seed_budget=lab.seed_budget,
                  bugs=plan.bugs.cli_names())
    try:
        if plan.checks and not run_checks(lab, plan, grade, progress) and not plan.keep_going:
            return grade
        for scenario, seed in runs:
            result = run_one(scenario, seed, bugs=plan.bugs)
            grade.seeds_run += 1
            grade.operations += result.operations
            if result.failure is not None:
                progress(f"  fuzz {scenario} seed {seed}: FAILED")
                prop, plain, event = describe_fuzz_failure(result.failure)
                grade.fail(Failure("fuzz", prop, plain, event, result.failure,
                                   replay=f"raft-lab check {lab.number} --only {scenario}:{seed}"
                                          f"{plan.replay_options()}",
                                   simulator_replay=result.replay, scenario=scenario, seed=seed))
                if not plan.keep_going:
                    return grade
                continue
            progress(f"  fuzz {scenario} seed {seed}: ok ({result.operations} operations)")
        return grade
    finally:
        grade.wall_seconds = round(time.perf_counter() - started, 2)
