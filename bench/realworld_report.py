"""The tables of ``bench/realworld.py``, made from its results, for the console and for the docs.

``bench/realworld.py`` prints them; ``python -m bench.plots`` writes the
Markdown version next to the results (``bench/results/realworld.md``), which
the benchmarks page includes. One function makes the rows for both, so the
table printed after a run and the one on the page are the same table.

The results (``realworld.json``) hold, besides the summary ``measures`` that
``bench/plots.py`` reads, the whole in-memory sweep::

    "throughput": {"in-memory": {side: {setting: {"<in flight>": {"median": ops/s, "rates": [...],
                                                                 "notes": [...]}}}},
                   "durable": {side: {"setting": ..., "inflight": n, "median": ops/s, ...}}},
    "best": {side: {"setting": ..., "inflight": n, "rate": ops/s}},
    "not_measured": {side: "why", "<side> durable": "why"}

A side is one of :data:`SIDES`. A run's note says it stalled (its oldest
command had not committed at the deadline) or gave no result in time; the
table marks a figure that includes such a run.
"""

from __future__ import annotations

from typing import Any

SIDES = (("raft_textbook", "raft-textbook"), ("pysyncobj", "PySyncObj"), ("hashicorp_go", "hashicorp (Go)"))
FLAG = "†"  # marks a median that includes a stalled run or one with no result

IN_MEMORY = "throughput, in-memory log (ops/s)"
BEST_IN_MEMORY = "throughput, in-memory log, best (ops/s)"
DURABLE = "throughput, durable log, at the best in-memory setting (ops/s)"


def rate_text(cell: dict[str, Any]) -> str:
    """A median rate, flagged if one of its runs stalled or gave nothing."""
    return f"{cell['median']:,.0f}" + (f" {FLAG}" if cell.get("notes") else "")


def best_setting_at(sweep: dict[str, Any], inflight: int) -> tuple[str, dict[str, Any]] | None:
    """The setting of one side with the highest median at one in-flight value, and its figures."""
    cells = [(setting, by_inflight[str(inflight)]) for setting, by_inflight in sweep.items()
             if str(inflight) in by_inflight]
    if not cells:
        return None
    return max(cells, key=lambda item: item[1]["median"])  # max keeps the first of equals


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return ""
    return f"{ours / theirs:.2f}" if theirs else "–"


def main_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows per measure and in-flight value, a column per side, then each side's best and the ratios."""
    header = ["measure", "in flight", *[label for _, label in SIDES],
              "raft-textbook ÷ PySyncObj", "raft-textbook ÷ Go"]
    missing = results.get("not_measured", {})
    sweep = results.get("throughput", {}).get("in-memory", {})
    several = {side: len(sweep.get(side, {})) > 1 for side, _ in SIDES}
    rows = []
    for inflight in results["run"]["inflight"]:
        cells = []
        for side, _ in SIDES:
            best = best_setting_at(sweep.get(side, {}), inflight)
            if best is None:
                cells.append("not measured" if side in missing else "")
            else:
                setting, cell = best
                cells.append(rate_text(cell) + (f" ({setting})" if several[side] else ""))
        rows.append([IN_MEMORY, f"{inflight:,}", *cells, "", ""])
    rows += summary_rows(results)
    return header, rows


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """Each side's best in-memory throughput, its durable throughput there, latency and failover, with ratios."""
    best = results.get("best", {})
    durable = results.get("throughput", {}).get("durable", {})
    rows = []
    for name, pair in results["measures"].items():
        if name == BEST_IN_MEMORY:
            where = "each side's best"
            cells = [f"{best[side]['rate']:,.0f} at {best[side]['inflight']:,}" if side in best
                     else "not measured" for side, _ in SIDES]
        elif name == DURABLE:
            where = "each side's best"
            cells = [(rate_text(durable[side]) + f" at {durable[side]['inflight']:,}") if side in durable
                     else "not measured" for side, _ in SIDES]
        else:
            where = "1" if name.startswith("latency") else "–"
            cells = [f"{pair[side]:,.2f}" if pair.get(side) is not None else "not measured" for side, _ in SIDES]
        ours = pair["raft_textbook"]
        rows.append([name, where, *cells, ratio(ours, pair["pysyncobj"]), ratio(ours, pair.get("hashicorp_go"))])
    return rows


def settings_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """In-memory throughput of every setting of every side, one column per in-flight value."""
    inflights = results["run"]["inflight"]
    header = ["side", "setting", *[f"{n:,} in flight" for n in inflights]]
    rows = []
    for side, label in SIDES:
        for setting, by_inflight in results.get("throughput", {}).get("in-memory", {}).get(side, {}).items():
            best = results.get("best", {}).get(side, {})
            cells = []
            for n in inflights:
                cell = by_inflight.get(str(n))
                text = rate_text(cell) if cell else ""
                if cell and best.get("setting") == setting and best.get("inflight") == n:
                    text += " (best)"
                cells.append(text)
            rows.append([label, setting, *cells])
    return header, rows


def notes(results: dict[str, Any]) -> list[str]:
    """What the tables' marks and ratios mean, and what was not measured and why."""
    run = results["run"]
    said = [
        "Ratios are best against best: each side at the in-flight value and setting that gave it its "
        "highest in-memory throughput (the durable run uses the same ones). Throughput (ops/s) is better "
        "higher; times (ms, s) are better lower.",
        f"Throughput and latency: median of {run['repeat']} runs of {run['seconds']:g} s per side, the sides "
        f"taking turns; failover: median of {run['failovers']} leader kills per side.",
        "In the in-memory rows, a side with several settings shows the best of them at that in-flight "
        "value, in parentheses; the settings table has them all.",
        "Durable log: our SQLite store (WAL, synchronous=FULL) and raft-boltdb fsync each batch before it "
        "is acknowledged; PySyncObj's journal is written into a memory-mapped file and never fsynced, so "
        "its durable figure does not wait for the disk.",
    ]
    sweep = results.get("throughput", {}).get("in-memory", {})
    if any(c["median"] == 0 for by_setting in sweep.values() for by_n in by_setting.values() for c in by_n.values()):
        said.append("A 0 means that no command was acknowledged in the run: the side committed nothing at that "
                    "number in flight.")
    if any(FLAG in cell for _, rows in (main_table(results), settings_table(results)) for row in rows
           for cell in row):
        said.append(f"{FLAG} includes a run that stalled (its oldest command had not committed at the "
                    "deadline) or gave no result in time; such a run counts what was acknowledged, often 0.")
    said += provenance(run)
    labels = dict(SIDES)
    for what, why in results.get("not_measured", {}).items():
        side, _, part = what.partition(" ")
        said.append(f"Not measured: {labels.get(side, side)}{' ' + part if part else ''}. {why}")
    return said


def provenance(run: dict[str, Any]) -> list[str]:
    """The command, the machine and the versions, as the results recorded them."""
    m = run.get("machine")
    if not m:
        return []
    boltdb = f", raft-boltdb {m['hashicorp_raft_boltdb']}" if m.get("hashicorp_raft_boltdb") else ""
    state = "raft/ with uncommitted changes" if m.get("raft_uncommitted_changes") else "raft/ as committed"
    return [
        f"Command: `{run['command']}` ({run.get('minutes', '?')} minutes).",
        f"Machine: {m['cores']} cores ({m['cpu'] or 'CPU unknown'}), {m['platform']}; load average "
        f"{', '.join(f'{x:.2f}' for x in m['load_average_at_start'])} at the start; temporary files "
        f"(the durable logs) on {m['temp_filesystem'] or 'an unknown file system'}.",
        f"Versions: Python {m['python']}, PySyncObj {m['pysyncobj'] or '?'}, {m['go'] or 'no Go'}, "
        f"hashicorp/raft {m['hashicorp_raft'] or '?'} (Debian's package){boltdb}; raft-textbook at "
        f"commit {m['commit'][:10]} ({state}).",
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded for a terminal: the first two to the left, the figures to the right."""
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) if k < 2 else cell.rjust(w)
                         for k, (cell, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---" if k < 2 else "---:" for k in range(len(header))]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, align, *rows])


def as_text(results: dict[str, Any]) -> str:
    """Both tables and their notes, for the console."""
    return "\n\n".join([text_table(*main_table(results)), text_table(*settings_table(results)),
                        "\n".join(f"* {line}" for line in notes(results))])


def as_markdown(results: dict[str, Any]) -> str:
    """Both tables and their notes, for the benchmarks page."""
    return "\n\n".join([markdown_table(*main_table(results)),
                        "In-memory throughput (ops/s) of each setting swept, by number in flight:",
                        markdown_table(*settings_table(results)),
                        "\n".join(f"- {line}" for line in notes(results))]) + "\n"
