"""The markers a hand-written page uses to ask for a generated part: ``<!-- @name arguments -->``.

Each marker name maps to the function that writes its Markdown. A marker
inside code (in backticks or a fenced block) is shown as it is, so a page can
document the markers themselves. An unknown name fails the build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import benchmarks, code_tables, commands, docstrings, go_map, labs, paper_map, visualizer
from .code_index import CodeIndex
from .common import log, outside_code

MARKER = re.compile(r"<!-- @(?P<name>[\w-]+)(?P<args>[^>]*?)\s*-->")


@dataclass
class Request:
    """One marker on one page: where it is, what it asks, and what the generators may read."""

    page: str  # the page's path under docs/, which relative links start from
    args: str  # what follows the marker's name
    index: CodeIndex
    docs_dir: Path


GENERATORS: dict[str, Callable[[Request], str]] = {
    "go-python-map": lambda r: go_map.go_python_map(r.page, r.index),
    "paper-figure-2": lambda r: paper_map.rule_table(r.page, r.index, paper_map.FIGURE_2_RULES),
    "paper-figure-13": lambda r: paper_map.rule_table(r.page, r.index, paper_map.FIGURE_13_RULES),
    "paper-fields": lambda r: paper_map.field_table(r.page, r.index),
    "paper-figure-3": lambda r: paper_map.figure_3_table(r.page, r.index),
    "paper-index": lambda r: paper_map.paper_index(r.page, r.index),
    "differs": lambda r: code_tables.differs_list(r.page, r.index),
    "events": lambda r: code_tables.events_table(r.page, r.index),
    "teaching-bugs": lambda r: code_tables.teaching_bugs(r.page, r.index),
    "scenarios": lambda r: code_tables.scenarios(r.page, r.index),
    "presets": lambda r: visualizer.presets(),
    "visualizer-keys": lambda r: visualizer.visualizer_keys(),
    "visualizer-help": lambda r: visualizer.visualizer_help(),
    "visualizer-screenshot": lambda r: visualizer.screenshot(r.page, r.docs_dir),
    "election-summary": lambda r: benchmarks.election_summary(),
    "realworld": lambda r: benchmarks.realworld(r.page, r.docs_dir),
    "excerpt": lambda r: docstrings.excerpt(r.args.strip(), r.index, r.page),
    "docstring-block": lambda r: docstrings.docstring_block(r.page, r.index, r.args),
    "docstring-table": lambda r: docstrings.docstring_table(r.page, r.index, r.args),
    "cli-help": lambda r: commands.cli_help(r.args.strip()),
    "labs": lambda r: labs.labs_table(r.page, r.index),
    "lab": lambda r: labs.lab_card(r.page, r.index, r.args),
}


def expand_markers(markdown: str, page_src: str, index: CodeIndex, docs_dir: Path) -> str:
    """Replace every marker outside code with the part it asks for."""
    def replace(match: re.Match[str]) -> str:
        generator = GENERATORS.get(match["name"])
        if generator is None:
            log.warning("%s asks for an unknown generated part %r", page_src, match["name"])
            return match[0]
        return generator(Request(page_src, match["args"], index, docs_dir))

    return outside_code(markdown, lambda text: MARKER.sub(replace, text))
