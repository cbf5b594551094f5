"""The labs, in order: what each asks a student to write, and how it is graded.

Mirrors: nothing in hashicorp/raft (see ``raft.lab``).
Paper:   each lab names the sections it covers.

A lab is a handful of protocol functions that a student can write in an
afternoon. ``raft-lab start`` replaces their bodies (and those of every later
lab) with a stub; ``raft-lab check`` runs the lab's focused checks and then
the fault simulator over the lab's fixed seed budget. The budget is the same
on every machine, so a grade never depends on speed or luck: a seed that
fails once fails every time, and the printed command replays it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    """A function a lab stubs: the file under ``raft/`` and the qualified name inside it."""

    file: str  # relative to the package, e.g. "raft.py" or "kv/store.py"
    qualname: str  # e.g. "RaftLoops.request_vote"

    def __str__(self) -> str:
        return f"{self.qualname} (raft/{self.file})"


@dataclass(frozen=True)
class Scenario:
    """A fault-simulator scenario and how many seeds of it a lab is graded on (seeds 0 .. seeds-1)."""

    name: str
    seeds: int


@dataclass(frozen=True)
class Lab:
    """One lab: what it asks for, where it lives in the paper, what it stubs, how it is graded."""

    number: int
    slug: str  # the docs page is docs/labs/NN-slug.md
    title: str
    asks: str  # one sentence: what the student writes
    paper: str  # the sections of the paper (and thesis) it covers
    functions: tuple[Function, ...]
    scenarios: tuple[Scenario, ...]

    @property
    def name(self) -> str:
        return f"lab {self.number} ({self.title})"

    @property
    def page(self) -> str:
        """The lab's page, relative to the repository."""
        return f"docs/labs/{self.number:02d}-{self.slug}.md"

    @property
    def seed_budget(self) -> int:
        return sum(s.seeds for s in self.scenarios)


LABS: tuple[Lab, ...] = (
    Lab(1, "leader-election", "leader election",
        "decide a vote and a pre-vote, and start an election: term rules, one vote per term, "
        "the election restriction",
        "Figure 2 (RequestVote RPC, Rules for Servers: Candidates); §5.2, §5.4.1; Thesis §9.6 (pre-vote)",
        (Function("raft.py", "RaftLoops.request_vote"),
         Function("raft.py", "RaftLoops.request_pre_vote"),
         Function("raft.py", "RaftLoops.elect_self")),
        (Scenario("LeaderPartitions", 12), Scenario("SlowSendVote", 6), Scenario("SlowRecvVote", 6),
         Scenario("CrashRestart", 12))),
    Lab(2, "log-replication", "log replication",
        "receive AppendEntries (consistency check, conflict truncation, commit index) and, as leader, "
        "commit by counting replicas of current-term entries only",
        "Figure 2 (AppendEntries RPC, Rules for Servers: Leaders); §5.3, §5.4.2, Figure 8",
        (Function("raft.py", "RaftLoops.append_entries"),
         Function("commitment.py", "Commitment.match"),
         Function("commitment.py", "Commitment.recalculate")),
        (Scenario("LeaderPartitions", 10), Scenario("CrashRestart", 12), Scenario("MonotonicCrashRestart", 8),
         Scenario("ApplyBurst", 4))),
    Lab(3, "persistence", "persistence",
        "make the current term and the vote durable before acting on them, and load them back after a crash",
        "Figure 2 (Persistent state on all servers); §5.1, §5.2",
        (Function("raft.py", "RaftLoops.persist_vote"),
         Function("raft.py", "RaftLoops.set_current_term"),
         Function("api.py", "Raft._restore_from_stores")),
        (Scenario("RestartVoters", 60), Scenario("CrashRestart", 15), Scenario("MonotonicCrashRestart", 8))),
    Lab(4, "snapshots", "snapshots",
        "install a leader's snapshot: ignore a late or duplicated one, and keep or discard the log "
        "after it (Figure 13, rules 6 and 7)",
        "Figure 13 (InstallSnapshot RPC); §7",
        (Function("raft.py", "RaftLoops.install_snapshot"),
         Function("raft.py", "RaftLoops._keep_or_discard_log")),
        (Scenario("SlowStateMachine", 6), Scenario("MonotonicCrashRestart", 10), Scenario("CrashRestart", 10),
         Scenario("SnapshotRestore", 4))),
    Lab(5, "client-interaction", "client interaction",
        "apply each client command exactly once (sessions), and serve linearizable reads through a read "
        "index: wait for the leader's no-op, confirm leadership, wait for the state machine",
        "§8; Thesis §6.3 (sessions), §6.4 (read index)",
        (Function("kv/store.py", "KVStore.apply"),
         Function("kv/store.py", "read"),
         Function("api.py", "Raft.committed_in_current_term")),
        (Scenario("LeaderPartitions", 12), Scenario("CrashRestart", 12), Scenario("RemoveLeader", 8),
         Scenario("FuzzyLeadershipTransfer", 6))),
)


def find_lab(key: str | int) -> Lab:
    """A lab by number ("1") or slug ("leader-election"); a clear error otherwise."""
    text = str(key).strip()
    for lab in LABS:
        if text in (str(lab.number), f"{lab.number:02d}", lab.slug):
            return lab
    choices = ", ".join(f"{lab.number} ({lab.slug})" for lab in LABS)
    raise ValueError(f"unknown lab {text!r}; choose one of {choices}")


def functions_from(lab: Lab) -> list[tuple[Lab, Function]]:
    """The functions of ``lab`` and of every lab after it, each with its lab: what ``start`` stubs."""
    return [(later, f) for later in LABS if later.number >= lab.number for f in later.functions]
