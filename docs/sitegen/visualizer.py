"""The visualizer's guide (docs/tools/visualizer.md): its presets, keyboard shortcuts, ``--help`` and screenshot."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .commands import cli_help
from .common import PRESETS, VISUALIZER_PAGE, cell, log
from .links import relative_href

SCREENSHOT = "assets/visualizer.png"  # refreshed by the browser test with RAFT_UPDATE_SCREENSHOT=1


def presets() -> str:
    """Each visualizer preset, with an anchor (``#preset-<file name>``) that tutorials link to."""
    def number(path: Path) -> tuple[int, str]:
        head = path.stem.split("-", 1)[0]
        return (int(head) if head.isdigit() else 10**6, path.stem)

    out = []
    for path in sorted(PRESETS.glob("*.json"), key=number):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append(f"### {data.get('title', path.stem)} {{#preset-{path.stem}}}\n")
        out.append(f"{data.get('summary', '')}\n")
        cluster = data.get("cluster", {})
        bugs = "".join(f", teaching bug `{bug}`" for bug in cluster.get("bugs", []))
        out.append(f"*File `visualizer/presets/{path.name}`: {cluster.get('nodes', '?')} nodes, "
                   f"seed {cluster.get('seed', '?')}{bugs}, {len(data.get('steps', []))} narrated steps.*\n")
    return "\n".join(out) if out else "*No presets have been written yet.*\n"


def visualizer_keys() -> str:
    """The keyboard shortcuts, read from the help dialog of the visualizer's page."""
    html = VISUALIZER_PAGE.read_text(encoding="utf-8")
    dialog = re.search(r'<dialog id="help">(.*?)</dialog>', html, re.DOTALL)
    if dialog is None:
        log.warning("visualizer/templates/index.html has no help dialog to read the shortcuts from")
        return ""
    out = ["| Keys | Action |", "|---|---|"]
    for keys, action in re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", dialog[1]):
        out.append(f"| {cell(keys)} | {cell(action)} |")
    return "\n".join(out) + "\n"


def visualizer_help() -> str:
    """``raft-visualizer --help``, from the command's own argument parser."""
    return cli_help("raft-visualizer")


def screenshot(page_src: str, docs_dir: Path) -> str:
    """The screenshot, once the browser test has taken it; until then, a note (and a passing strict build)."""
    if (docs_dir / SCREENSHOT).is_file():
        return (f"![The visualizer in a browser: a five-node ring, the event feed and the logs]"
                f"({relative_href(page_src, SCREENSHOT)})\n")
    return ('!!! note "Screenshot coming"\n    The screenshot is taken by the visualizer\'s browser test, which '
            f"writes `docs/{SCREENSHOT}`. It has not been generated in this checkout yet.\n")
