"""``raft-sim``: run a simulated cluster from the command line.

``raft-sim run`` builds a cluster in virtual time, applies the faults you
schedule, and tells the story of the run: who became leader, when, in which
term, and why. With ``--trace FILE`` it also writes every event as JSON Lines.
The same arguments always print the same story and write the same file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from raft.checkers.lincheck import DESCRIPTION as LINCHECK_DESCRIPTION
from raft.checkers.lincheck import add_arguments as add_lincheck_arguments
from raft.checkers.lincheck import run_lincheck
from raft.checkers.trace_check import DESCRIPTION as CHECK_TRACE_DESCRIPTION
from raft.checkers.trace_check import add_arguments as add_check_trace_arguments
from raft.checkers.trace_check import run_check_trace
from raft.config import Config
from raft.errors import RaftError
from raft.events import Event
from raft.runtime.channels import select
from raft.runtime.timers import after
from raft.sim.bugs import BUG_NAMES, TeachingBugs
from raft.sim.cluster import Cluster
from raft.sim.fuzz import SCENARIOS, run_one
from raft.sim.network import LinkFaults
from raft.state import RaftState

EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line argument is wrong; the message says how."""


@dataclass(frozen=True)
class Intervention:
    """Something the user scheduled: ``crash`` or ``restart`` of ``node`` at virtual time ``at``."""

    at: float
    action: str
    node: str


def _node_at(value: str, action: str, nodes: int, duration: float) -> Intervention:
    node, sep, at_text = value.partition(":")
    if not sep or not node or not at_text:
        raise UsageError(f"--{action} expects NODE:AT, for example n1:10 (got {value!r})")
    valid = [f"n{i}" for i in range(1, nodes + 1)]
    if node not in valid:
        raise UsageError(f"--{action} {value}: no node {node!r}; nodes are {', '.join(valid)}")
    try:
        at = float(at_text)
    except ValueError:
        raise UsageError(f"--{action} {value}: {at_text!r} is not a number of seconds") from None
    if not 0 <= at <= duration:
        raise UsageError(f"--{action} {value}: time must be between 0 and the duration ({duration:g}s)")
    return Intervention(at, action, node)


def _at(value: str, option: str, duration: float) -> float:
    try:
        at = float(value)
    except ValueError:
        raise UsageError(f"--{option} {value}: not a number of seconds") from None
    if not 0 <= at <= duration:
        raise UsageError(f"--{option} {value}: time must be between 0 and the duration ({duration:g}s)")
    return at


def _schedule(args: argparse.Namespace) -> list[Intervention]:
    plan = [_node_at(v, "crash", args.nodes, args.duration) for v in args.crash]
    plan += [_node_at(v, "restart", args.nodes, args.duration) for v in args.restart]
    plan += [_node_at(v, "remove", args.nodes + len(args.add_voter), args.duration) for v in args.remove]
    plan += [Intervention(_at(v, "add-voter", args.duration), "add_voter", f"n{args.nodes + i + 1}")
             for i, v in enumerate(args.add_voter)]
    plan += [Intervention(_at(v, "transfer-leadership", args.duration), "transfer", "")
             for v in args.transfer_leadership]
    order = {"crash": 0, "restart": 1, "add_voter": 2, "remove": 3, "transfer": 4}
    plan.sort(key=lambda i: (i.at, order[i.action]))
    up = {f"n{i}": True for i in range(1, args.nodes + 1)}
    for step in plan:
        if step.action == "add_voter":
            up[step.node] = True
        if step.action in ("crash", "restart", "remove") and step.node not in up:
            raise UsageError(f"--{step.action} {step.node}:{step.at:g}: {step.node} does not exist yet then "
                             f"(--add-voter adds n{args.nodes + 1}, n{args.nodes + 2}, ... in time order)")
        if step.action == "crash" and not up[step.node]:
            raise UsageError(f"--crash {step.node}:{step.at:g}: {step.node} is already crashed then")
        if step.action == "restart" and up[step.node]:
            raise UsageError(f"--restart {step.node}:{step.at:g}: {step.node} is not crashed then; "
                             f"crash it earlier with --crash")
        if step.action in ("crash", "restart"):
            up[step.node] = step.action == "restart"
    return plan


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 0 and below 1 (e.g. 0.1 for 10%)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} cannot be negative")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} cannot be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raft-sim",
        description="Run a Raft cluster in deterministic virtual time.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    run = commands.add_parser(
        "run",
        help="simulate a cluster and narrate what happens",
        description="Simulate a cluster (nodes n1..nN) in virtual time and narrate elections. "
                    "The same arguments always give the same output.",
    )
    run.add_argument("--nodes", type=_positive_int, default=5, help="number of servers (default 5)")
    run.add_argument("--seed", type=int, default=0, help="random seed; same seed, same run (default 0)")
    run.add_argument("--duration", type=_non_negative, default=30.0,
                     help="virtual seconds to simulate (default 30)")
    run.add_argument("--trace", metavar="FILE", help="write every event as JSON Lines to FILE")
    run.add_argument("--loss", type=_probability, default=0.0,
                     help="probability that any message is lost, e.g. 0.1 (default 0)")
    run.add_argument("--crash", action="append", default=[], metavar="NODE:AT",
                     help="crash NODE at virtual time AT seconds (repeatable), e.g. n1:10")
    run.add_argument("--restart", action="append", default=[], metavar="NODE:AT",
                     help="restart a crashed NODE at time AT (repeatable), e.g. n1:20")
    run.add_argument("--apply-rate", type=_non_negative, default=0.0, metavar="N",
                     help="client commands per virtual second, sent to whoever leads (default 0)")
    run.add_argument("--snapshot-threshold", type=_positive_int, default=None, metavar="N",
                     help="take a snapshot once N entries follow the last one (default 8192, hashicorp's)")
    run.add_argument("--trailing-logs", type=_non_negative_int, default=None, metavar="N",
                     help="entries kept in the log after a snapshot (default 10240, hashicorp's)")
    run.add_argument("--add-voter", action="append", default=[], metavar="AT",
                     help="at time AT start a new empty node (n<N+1>, then n<N+2>...) and have the leader "
                          "add it as a voter (repeatable)")
    run.add_argument("--remove", action="append", default=[], metavar="NODE:AT",
                     help="at time AT have the leader remove NODE from the cluster (repeatable)")
    run.add_argument("--transfer-leadership", action="append", default=[], metavar="AT",
                     help="at time AT have the leader hand leadership to the most up-to-date voter (repeatable)")
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    fuzz = commands.add_parser(
        "fuzz",
        help="run fault-injection scenarios and check safety and linearizability",
        description="Run hashicorp's fuzzy scenarios (plus crashes, an unreliable network and snapshots) "
                    "in virtual time. Each run is checked by the invariant checker, by comparing logs and "
                    "state machines, and by the linearizability checker on the clients' history. Stops at "
                    "the first failure and prints the command that replays it.",
    )
    fuzz.add_argument("--scenario", required=True, metavar="NAME|all",
                      help=f"one of {', '.join(SCENARIOS)}, or all")
    fuzz.add_argument("--seeds", type=_positive_int, default=20, help="seeds per scenario (default 20)")
    fuzz.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    fuzz.add_argument("--nodes", type=_positive_int, default=None,
                      help="cluster size (default: the scenario's, 5 or 3 as in hashicorp)")
    fuzz.add_argument("--bug", action="append", default=[], choices=BUG_NAMES,
                      help="turn on a teaching bug, to watch the checkers catch it (repeatable)")
    fuzz.add_argument("--keep-going", action="store_true", help="do not stop at the first failure")
    lincheck = commands.add_parser(
        "lincheck",
        help="check client histories for linearizability",
        description=LINCHECK_DESCRIPTION,
    )
    add_lincheck_arguments(lincheck)
    check_trace = commands.add_parser(
        "check-trace",
        help="check a recorded trace (simulated or real) for Raft's safety properties",
        description=CHECK_TRACE_DESCRIPTION,
    )
    add_check_trace_arguments(check_trace)
    return parser


class Narrator:
    """Turns events into the readable story printed by ``raft-sim run``."""

    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.leaders: list[tuple[float, str, int]] = []
        self.election_reason: dict[str, str] = {}
        self.commits = 0
        self.last_commit = 0
        self.snapshots = 0
        self.current_leader = ""

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind == "state" and event["state"] == "candidate":
            self.election_reason[event.node] = event.get("reason", "")
        elif kind == "state" and event["state"] == "leader":
            self.current_leader = event.node
            self.leaders.append((event.t, event.node, event["term"]))
            why = self.election_reason.get(event.node, "")
            self.say(event.t, f"{event.node} becomes leader in term {event['term']} "
                              f"({event.get('reason')}; it stood because: {why or 'unknown'})")
        elif kind == "state" and event["state"] == "follower" and "lease" in str(event.get("reason")):
            self.say(event.t, f"{event.node} steps down in term {event['term']}: {event.get('reason')}")
        elif kind in ("crash", "restart"):
            self.say(event.t, f"{event.node} {'crashes' if kind == 'crash' else 'restarts from its stores'}")
        elif kind == "commit" and event["index"] > self.last_commit:
            self.last_commit = event["index"]
        elif kind == "snapshot_installed":
            self.say(event.t, f"{event.node} catches up by installing a snapshot from {event.get('leader')} "
                              f"(up to index {event['index']}, {event['size']} bytes)")
        elif kind == "snapshot_taken":
            self.snapshots += 1
        elif (kind == "configuration" and event["which"] == "committed" and event.node == self.current_leader
              and event["index"] > 1):  # index 1 is the bootstrap configuration, not a change
            servers = ", ".join(s["id"] for s in event["configuration"]["servers"])
            self.say(event.t, f"membership change committed at index {event['index']}: {servers}")
        elif kind == "transfer" and event["phase"] == "finished":
            result = event.get("error") or "done"
            self.say(event.t, f"leadership transfer from {event.node} finished: {result}")

    def say(self, t: float, text: str) -> None:
        if not self.quiet:
            print(f"  t={t:8.3f}s  {text}", file=self.out)


async def _client(cluster: Cluster, rate: float) -> None:
    """Send ``rate`` commands per second to the leader; retry a refused one like a client would."""
    sequence = 0
    interval = 1.0 / rate
    while True:
        sequence += 1
        command = f"cmd-{sequence}".encode()
        while True:
            leader = cluster.leader()
            if leader is not None:
                future = cluster.node(leader).apply(command)
                cluster.events.emit("client", "client_request", "raft-sim.client", command=command.decode(),
                                    to=leader)
                err = await future.error()
                cluster.events.emit("client", "client_reply", "raft-sim.client", command=command.decode(),
                                    ok=err is None, error=str(err or ""), index=future.index())
                if err is None:
                    break
            await select([after(interval)])  # no leader, or refused: wait and retry
        await select([after(interval)])


def _perform(cluster: Cluster, step: Intervention, out: TextIO) -> None:
    """Carry out one scheduled intervention; membership and transfers go through the leader."""
    if step.action == "crash":
        cluster.crash(step.node)
    elif step.action == "restart":
        cluster.restart(step.node)
    elif step.action == "add_voter":
        cluster.add_node(step.node, cluster.config_template)
        _through_leader(cluster, step, lambda leader: leader.add_voter(step.node, step.node), out)
    elif step.action == "remove":
        _through_leader(cluster, step, lambda leader: leader.remove_server(step.node), out)
    elif step.action == "transfer":
        _through_leader(cluster, step, lambda leader: leader.leadership_transfer(), out)


def _through_leader(cluster: Cluster, step: Intervention, call: Any, out: TextIO) -> None:
    leader = cluster.leader()
    what = {"add_voter": f"add {step.node} as a voter", "remove": f"remove {step.node}",
            "transfer": "transfer leadership"}[step.action]
    if leader is None:
        print(f"  t={cluster.now:8.3f}s  cannot {what}: there is no leader at this moment", file=out)
        return
    print(f"  t={cluster.now:8.3f}s  asking leader {leader} to {what}", file=out)
    call(cluster.node(leader))


def run_command(args: argparse.Namespace, out: TextIO) -> int:
    plan = _schedule(args)
    config = Config()
    if args.snapshot_threshold is not None:
        config.snapshot_threshold = args.snapshot_threshold
        # Check often enough that a threshold reached during a short run is noticed.
        config.snapshot_interval = min(config.snapshot_interval, 5.0)
    if args.trailing_logs is not None:
        config.trailing_logs = args.trailing_logs
    cluster = Cluster(args.nodes, args.seed, config=config, faults=LinkFaults(loss=args.loss))
    narrator = Narrator(out, args.quiet)
    cluster.events.subscribe(narrator)
    print(f"raft-sim: {args.nodes} nodes, seed {args.seed}, {args.duration:g} virtual seconds, "
          f"message loss {args.loss:.0%}", file=out)
    client: Any = None
    if args.apply_rate > 0:
        client = cluster.loop.create_task(_client(cluster, args.apply_rate))
    try:
        for step in plan:
            cluster.run_for(step.at - cluster.now)
            _perform(cluster, step, out)
        cluster.run_for(args.duration - cluster.now)
    finally:
        if client is not None:
            client.cancel()
    _summarize(cluster, narrator, out)
    if args.trace:
        try:
            with open(args.trace, "w", encoding="utf-8") as trace:
                cluster.events.write_jsonl(trace)
        except OSError as err:
            print(f"raft-sim: cannot write trace {args.trace}: {err.strerror}", file=sys.stderr)
            return 1
        print(f"  trace: {len(cluster.events)} events written to {args.trace}", file=out)
    cluster.close()
    return 0


def _summarize(cluster: Cluster, narrator: Narrator, out: TextIO) -> None:
    leader = cluster.leader()
    if leader is None:
        final = "no leader at the end"
    else:
        final = f"final leader {leader} in term {cluster.node(leader).current_term()}"
    states = ", ".join(
        f"{h.id}={h.raft.state().name.lower() if h.raft else 'crashed'}" for h in cluster.handles.values()
    )
    print(f"Summary: {len(narrator.leaders)} leader(s) elected; {final}; commit index {narrator.last_commit}; "
          f"{narrator.snapshots} snapshot(s) taken.", file=out)
    print(f"  at t={cluster.now:.3f}s: {states}", file=out)
    if leader is None and any(r.state() == RaftState.Leader for r in cluster.rafts()):
        print("  (several nodes believe they lead in different terms)", file=out)


def fuzz_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``raft-sim fuzz``: run scenarios over seeds with a progress bar; stop at the first failure."""
    if args.scenario != "all" and args.scenario not in SCENARIOS:
        raise UsageError(f"--scenario: unknown scenario {args.scenario!r}; choose from {', '.join(SCENARIOS)} or all")
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    bugs = TeachingBugs.from_cli_names(args.bug)
    total = len(scenarios) * args.seeds
    done = operations = unknown = failures = 0
    started = time.perf_counter()
    interactive = err.isatty()
    for seed in range(args.start, args.start + args.seeds):
        for scenario in scenarios:
            result = run_one(scenario, seed, args.nodes, bugs)
            done += 1
            operations += result.operations
            unknown += result.unknown
            _progress(err, interactive, done, total, scenario, seed, time.perf_counter() - started)
            if result.failure is not None:
                failures += 1
                if interactive:
                    err.write("\n")
                print(f"FAILED {scenario} seed {seed}:\n{result.failure}", file=out)
                print(f"replay: {result.replay}", file=out)
                if not args.keep_going:
                    _fuzz_summary(out, done, operations, unknown, failures, started)
                    return 1
    if interactive:
        err.write("\n")
    _fuzz_summary(out, done, operations, unknown, failures, started)
    return 1 if failures else 0


def _progress(err: TextIO, interactive: bool, done: int, total: int, scenario: str, seed: int,
              elapsed: float) -> None:
    width = 30
    filled = width * done // total
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {scenario} seed {seed} ({elapsed:.0f}s)"
    if interactive:
        err.write("\r" + line.ljust(100))
        err.flush()
    elif done == total or done % max(1, total // 20) == 0:
        print(line, file=err, flush=True)


def _fuzz_summary(out: TextIO, runs: int, operations: int, unknown: int, failures: int, started: float) -> None:
    verdict = "clean" if failures == 0 else f"{failures} failed"
    print(f"fuzz: {runs} run(s) {verdict} in {time.perf_counter() - started:.1f}s wall; {operations} client "
          f"operations checked for linearizability ({unknown} of unknown outcome)", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run_command(args, sys.stdout)
        if args.command == "lincheck":
            return run_lincheck(args)
        if args.command == "fuzz":
            return fuzz_command(args, sys.stdout, sys.stderr)
        if args.command == "check-trace":
            return run_check_trace(args)
    except UsageError as err:
        parser.error(str(err))  # prints usage and exits with status 2
    except RaftError as err:
        print(f"raft-sim: {err}", file=sys.stderr)
        return 1
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
