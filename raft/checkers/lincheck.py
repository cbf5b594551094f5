"""``raft-sim lincheck``: judge recorded client histories with the linearizability checker.

    raft-sim lincheck --format etcd|kv [--timeout SECONDS] [--max-steps N] [--max-memory MB] FILE...

One line per file: ``FILE: linearizable``, ``FILE: not linearizable`` followed by an indented
explanation (the longest linearizable prefix and the operations that cannot follow it), or
``FILE: unknown (...)`` when a budget ran out first: ``timed out``, ``step budget spent`` or
``memory budget spent``. The memory budget is on by default (``DEFAULT_MAX_MEMORY``, 512 MB of
search memo per file), so a history too hard to decide ends as unknown, never as a machine out
of memory. The verdicts are the output, not the exit status: the command exits 0 when every
file was read and checked, whatever it found, and 2 for a usage error or a file that cannot be
read or parsed (stderr names the file and the line). A script that needs "all linearizable"
greps the output; a failed run then always means a broken input.

Read before: linearizability.py (the checker, the models and the two log formats).
Mirrors: nothing in hashicorp/raft; porcupine's tests read the same reference logs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from raft.checkers.linearizability import (
    DEFAULT_MAX_MEMORY,
    HistoryFormatError,
    Model,
    Operation,
    check_operations,
    kv_model,
    parse_etcd_log,
    parse_kv_log,
    register_model,
)

EXIT_CHECKED = 0
EXIT_USAGE = 2

DESCRIPTION = ("Check client histories for linearizability. etcd: Jepsen's etcd register logs "
               "(read, write, cas); kv: Clojure-map logs of get, put and append on string keys.")

# --format NAME -> (parser of the file's text, model to check it against)
FORMATS: dict[str, tuple[Callable[[str], list[Operation]], Model]] = {
    "etcd": (parse_etcd_log, register_model),
    "kv": (parse_kv_log, kv_model),
}


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


# What each spent budget is called on the verdict line (CheckResult.exhausted -> words).
UNKNOWN_BECAUSE = {"time": "timed out", "steps": "step budget spent", "memory": "memory budget spent"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options on ``parser``: our own, or the ``lincheck`` subparser of raft-sim."""
    parser.add_argument("--format", required=True, choices=sorted(FORMATS),
                        help="the format of every FILE: etcd or kv")
    parser.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                        help="give up on a file after this long and report it as unknown")
    parser.add_argument("--max-steps", type=_count, metavar="N",
                        help="give up after N search steps: the same verdict on every machine")
    parser.add_argument("--max-memory", type=_count, metavar="MB", default=DEFAULT_MAX_MEMORY >> 20,
                        help="give up when the search's memo would outgrow about MB megabytes "
                             "(default: %(default)s)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="history files to check")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raft-sim lincheck", description=DESCRIPTION)
    add_arguments(parser)
    return parser


def _read(path: str, parse: Callable[[str], list[Operation]], err: TextIO) -> list[Operation] | None:
    """The operations in ``path``, or None after telling stderr why they cannot be had."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        print(f"raft-sim lincheck: {path}: cannot read: {error.strerror or error}", file=err)
        return None
    except UnicodeDecodeError as error:
        print(f"raft-sim lincheck: {path}: not UTF-8 text (byte {error.start})", file=err)
        return None
    try:
        return parse(text)
    except HistoryFormatError as error:
        print(f"raft-sim lincheck: {path}: {error}", file=err)
        return None


def run_lincheck(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Check every file named in ``args``; print one verdict each. Returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    parse, model = FORMATS[args.format]
    status = EXIT_CHECKED
    # A bad file does not stop the others: one run reports on everything it was given.
    for path in args.files:
        history = _read(path, parse, err)
        if history is None:
            status = EXIT_USAGE
            continue
        result = check_operations(model, history, timeout=args.timeout, max_steps=args.max_steps,
                                  max_memory=args.max_memory << 20)
        if result.linearizable is None:
            print(f"{path}: unknown ({UNKNOWN_BECAUSE[result.exhausted]})", file=out)
        elif result.linearizable:
            print(f"{path}: linearizable", file=out)
        else:
            print(f"{path}: not linearizable", file=out)
            for line in result.explanation.splitlines():
                print(f"    {line}", file=out)
    return status


def lincheck_main(argv: Sequence[str]) -> int:
    """Parse ``argv`` (the words after ``lincheck``) and run; returns the exit status.

    argparse exits on a usage error (after printing it) or on ``--help``; we turn that exit
    into a return value so callers and tests see one kind of result.
    """
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    return run_lincheck(args)
