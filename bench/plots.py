"""Draw the benchmark plots for the documentation from the benchmarks' JSON results.

    python -m bench.plots            # every plot whose results exist

reads

* ``bench/results/election.json`` (written by ``python -m bench.election
  --json ...``) and writes ``docs/assets/election_times.png``;
* ``bench/results/realworld.json`` (written by ``python -m bench.realworld
  --json ...``) and writes ``docs/assets/throughput_vs_pysyncobj.png`` (a
  panel per measure), ``docs/assets/throughput_vs_inflight.png`` (the
  in-memory throughput of every side and setting against the number in
  flight) and ``bench/results/realworld.md`` (the benchmark's tables, which
  the benchmarks page includes).

Each picture records, in its PNG metadata, the SHA-256 of the results it was
drawn from (the Markdown table, in its first line), so a test (and the
documentation build) can tell when the results changed and were not redrawn.

``realworld.json`` holds, under ``measures``, the name of each summary
measure mapped to the figures of each side in the same run, the unit in
parentheses at the end of the name; ``hashicorp_go`` is optional, and null
when it was not measured::

    {"measures": {"throughput, in-memory log, best (ops/s)":
                      {"raft_textbook": 21000.0, "pysyncobj": 15000.0, "hashicorp_go": 50000.0},
                  "latency p50, one at a time (ms)": {"raft_textbook": 1.9, "pysyncobj": 2.4, "hashicorp_go": 0.2},
                  ...},
     "throughput": {"in-memory": ..., "durable": ...}, ...}

(the rest is described in ``bench/realworld_report.py``). The older form, the
measures alone at the top level with two sides, is still read.

A measure in a unit per second (``ops/s``) is better higher; any other (a
time: ``ms``, ``s``) is better lower.

Plots are drawn with matplotlib's Agg backend: no display is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.ticker import FuncFormatter

from bench.election import percentile  # the benchmark's own definition of a percentile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ASSETS = ROOT / "docs" / "assets"
SOURCE_KEY = "Source-SHA256"  # PNG text chunk naming the results a picture was drawn from


def results_digest(path: Path) -> str:
    """The SHA-256 of a results file, as stored in the pictures drawn from it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plot_election_times(results: Path = RESULTS / "election.json",
                        out: Path = ASSETS / "election_times.png") -> Path:
    """A histogram of the time from a leader's crash to the next leader, one sample per seed."""
    data = json.loads(results.read_text(encoding="utf-8"))
    times = [float(t) for t in data["failover_seconds"]]
    median = percentile(times, 50)
    figure, axes = plt.subplots(figsize=(8, 4.2), dpi=110)
    width = 0.1
    low = width * int(min(times) / width)
    bins = [low + width * i for i in range(int((max(times) - low) / width) + 2)]
    axes.hist(times, bins=bins, color="#3f51b5", edgecolor="white")
    axes.axvline(median, color="#d84315", linewidth=2, label=f"median {median:.2f} s")
    axes.set_xlabel("virtual seconds from the leader's crash to a new leader")
    axes.set_ylabel("runs")
    axes.set_title(f"Re-election time, five nodes, default timeouts ({len(times)} seeds)")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Fixed metadata (no software version or date), so the same results give the same file.
    figure.savefig(out, metadata={SOURCE_KEY: results_digest(results), "Software": None})
    plt.close(figure)
    return out


IMPLEMENTATIONS = (("raft_textbook", "raft-textbook", "#3f51b5"), ("pysyncobj", "PySyncObj", "#9e9e9e"),
                   ("hashicorp_go", "hashicorp (Go)", "#00897b"))
OPTIONAL = {"hashicorp_go"}  # may be missing, or null when it was not measured


def load_realworld(results: Path) -> dict[str, dict[str, float | None]]:
    """The summary measures of ``realworld.json``; ValueError, saying what is wrong, if not in the expected format."""
    data: Any = json.loads(results.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("measures"), dict):
        data = data["measures"]
    if not isinstance(data, dict) or not data:
        raise ValueError("expected a JSON object: {measure name: {raft_textbook: number, pysyncobj: number}}")
    for name, pair in data.items():
        keys = {key for key, _, _ in IMPLEMENTATIONS}
        if not isinstance(pair, dict) or not keys - OPTIONAL <= set(pair) <= keys:
            raise ValueError(f"{name!r}: expected the keys raft_textbook and pysyncobj (and maybe hashicorp_go)")
        for key, value in pair.items():
            if value is None and key in OPTIONAL:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name!r}: {key} is {value!r}, not a finite number")
    return data


def higher_is_better(measure: str) -> bool:
    """A rate (a unit per second, such as ``ops/s``) is better higher; a time is better lower."""
    unit = re.search(r"\(([^()]*)\)\s*$", measure)
    return bool(unit and unit[1].endswith("/s"))


def plot_throughput_against_pysyncobj(results: Path = RESULTS / "realworld.json",
                                      out: Path = ASSETS / "throughput_vs_pysyncobj.png") -> Path:
    """Each side's figure of each summary measure of ``bench/realworld.py``, one small bar chart per measure.

    The measures have different units, so each gets its own panel and its own
    scale, titled with the ratio to PySyncObj and with which way is better. A
    side that was not measured has no bar.
    """
    data = load_realworld(results)
    columns = min(3, len(data))
    rows = math.ceil(len(data) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.5 * rows), dpi=110, squeeze=False)
    for axis, (name, pair) in zip(axes.flat, data.items(), strict=False):
        shown = [(label, pair[key], colour) for key, label, colour in IMPLEMENTATIONS if pair.get(key) is not None]
        values = [value for _, value, _ in shown]
        bars = axis.bar([label for label, _, _ in shown], values, color=[colour for _, _, colour in shown])
        axis.bar_label(bars, labels=[f"{value:,.2f}" for value in values], fontsize=8)
        ours, theirs = pair["raft_textbook"], pair["pysyncobj"]
        ratio = f"{ours / theirs:.2f}×" if ours is not None and theirs else "–"
        better = "higher" if higher_is_better(name) else "lower"
        axis.set_title(f"{name}\nraft-textbook ÷ PySyncObj {ratio}, {better} is better", fontsize=8)
        axis.margins(y=0.15)
        axis.tick_params(labelsize=8)
        axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(data):]:
        axis.set_visible(False)
    figure.suptitle("raft-textbook, PySyncObj and hashicorp/raft: three processes on 127.0.0.1, "
                    "measured in the same run")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, metadata={SOURCE_KEY: results_digest(results), "Software": None})
    plt.close(figure)
    return out


OTHER_STYLES = ("--", ":", "-.")  # a side's settings other than its best; the best is solid


def plot_throughput_against_inflight(results: Path = RESULTS / "realworld.json",
                                     out: Path = ASSETS / "throughput_vs_inflight.png") -> Path:
    """In-memory throughput against the number in flight: a line per side and setting, each side's best marked.

    A side's best setting is drawn solid and thick, its others thin; a run
    that committed nothing is a point on the axis, not a gap.
    """
    data = json.loads(results.read_text(encoding="utf-8"))
    sweep, best = data["throughput"]["in-memory"], data["best"]
    figure, axis = plt.subplots(figsize=(10, 4.6), dpi=110)
    for key, label, colour in IMPLEMENTATIONS:
        for k, (setting, by_inflight) in enumerate(sweep.get(key, {}).items()):
            points = sorted((int(n), cell["median"]) for n, cell in by_inflight.items())
            is_best = best[key]["setting"] == setting
            name = label if len(sweep[key]) == 1 else f"{label}: {setting}"
            axis.plot([n for n, _ in points], [rate for _, rate in points], marker="o", color=colour,
                      linestyle="-" if is_best else OTHER_STYLES[k % len(OTHER_STYLES)],
                      linewidth=2.4 if is_best else 1.0,
                      markersize=5 if is_best else 3, alpha=1.0 if is_best else 0.7,
                      label=name + (" (best)" if is_best and len(sweep[key]) > 1 else ""))
        if key in best:
            axis.annotate(f"{best[key]['rate']:,.0f}", (best[key]["inflight"], best[key]["rate"]),
                          textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8, color=colour)
    axis.set_xscale("log")
    inflights = data["run"]["inflight"]
    axis.set_xticks(inflights, [f"{n:,}" for n in inflights])
    axis.minorticks_off()
    axis.set_ylim(0, 1.12 * max([1.0, *(b["rate"] for b in best.values())]))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.set_xlabel("commands in flight (pipelined client in the leader)")
    axis.set_ylabel("committed commands per second")
    run = data["run"]
    axis.set_title(f"In-memory throughput, three processes on 127.0.0.1 (median of {run['repeat']} runs "
                   f"of {run['seconds']:g} s)", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, metadata={SOURCE_KEY: results_digest(results), "Software": None})
    plt.close(figure)
    return out


TABLE_STAMP = "<!-- written by python -m bench.plots from bench/results/realworld.json; {key}: {digest} -->"


def write_realworld_table(results: Path = RESULTS / "realworld.json",
                          out: Path = RESULTS / "realworld.md") -> Path:
    """The benchmark's tables in Markdown, for the benchmarks page, stamped with the results' SHA-256."""
    from bench.realworld_report import as_markdown

    data = json.loads(results.read_text(encoding="utf-8"))
    stamp = TABLE_STAMP.format(key=SOURCE_KEY, digest=results_digest(results))
    out.write_text(f"{stamp}\n\n{as_markdown(data)}", encoding="utf-8")
    return out


def has_sweep(results: Path) -> bool:
    """True for results with the in-flight sweep; the older form has only the summary."""
    data = json.loads(results.read_text(encoding="utf-8"))
    return isinstance(data, dict) and "throughput" in data and "best" in data


PLOTS = {"election.json": [plot_election_times],
         "realworld.json": [plot_throughput_against_pysyncobj, plot_throughput_against_inflight,
                            write_realworld_table]}
NEEDS_SWEEP = {plot_throughput_against_inflight, write_realworld_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    for name, draws in PLOTS.items():
        if not (RESULTS / name).is_file():
            print(f"skipped: no {RESULTS.relative_to(ROOT) / name}")
            continue
        for draw in draws:
            if draw in NEEDS_SWEEP and not has_sweep(RESULTS / name):
                print(f"skipped {draw.__name__}: {name} has no in-flight sweep")
                continue
            print(f"wrote {draw().relative_to(ROOT)}")


if __name__ == "__main__":
    main()
