"""A command's ``--help`` on a page (``<!-- @cli-help raft-kv -->``), read from its own argument parser."""

from __future__ import annotations

import argparse
import os

from .common import log, on_path

HELP_COLUMNS = "100"  # argparse wraps --help to the terminal's width; the site's is fixed


def command_parser(command: str) -> argparse.ArgumentParser | None:
    """The argument parser of a command of the project: ``raft-kv``, ``raft-sim fuzz``, ..."""
    on_path()
    program, *sub = command.split()
    if program == "raft-kv" and not sub:
        from raft.kv.service import build_parser as kv_parser

        return kv_parser()
    if program == "raft-visualizer" and not sub:
        from visualizer.cli import build_parser as visualizer_parser

        return visualizer_parser()
    if program in ("raft-sim", "raft-lab") and len(sub) <= 1:
        from raft.lab.cli import build_parser as lab_parser
        from raft.sim.cli import build_parser as sim_parser

        parser = sim_parser() if program == "raft-sim" else lab_parser()
        if not sub:
            return parser
        for action in parser._actions:  # argparse offers no public way to reach a subcommand's parser
            if isinstance(action, argparse._SubParsersAction) and sub[0] in action.choices:
                return action.choices[sub[0]]  # type: ignore[no-any-return]
    return None


def cli_help(command: str) -> str:
    """``COMMAND --help``, formatted by the command's own argument parser at a fixed width."""
    parser = command_parser(command)
    if parser is None:
        log.warning("no command %r to show the help of", command)
        return ""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        text = parser.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return f'```text title="{command} --help (read from its argument parser)"\n{text}```\n'
