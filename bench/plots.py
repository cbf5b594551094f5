"""Draw the benchmark plots for the documentation from the benchmarks' JSON results.

    python -m bench.plots            # every plot whose results exist

reads

* ``bench/results/election.json`` (written by ``python -m bench.election
  --json ...``) and writes ``docs/assets/election_times.png``;
* ``bench/results/realworld.json`` (written by ``python -m bench.realworld
  --json ...``) and writes ``docs/assets/throughput_vs_pysyncobj.png``.

Each picture records, in its PNG metadata, the SHA-256 of the results it was
drawn from, so a test (and the documentation build) can tell when the results
changed and the picture was not redrawn.

``realworld.json`` maps the name of each measure to the two figures of the
same run, the unit in parentheses at the end of the name::

    {"throughput, in-memory log (ops/s)": {"raft_textbook": 21000.0, "pysyncobj": 15000.0},
     "latency p50, one at a time (ms)": {"raft_textbook": 1.9, "pysyncobj": 2.4}, ...}

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


IMPLEMENTATIONS = (("raft_textbook", "raft-textbook", "#3f51b5"), ("pysyncobj", "PySyncObj", "#9e9e9e"))


def load_realworld(results: Path) -> dict[str, dict[str, float]]:
    """Read ``realworld.json``; ValueError, saying what is wrong, if it is not in the expected format."""
    data: Any = json.loads(results.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data:
        raise ValueError("expected a JSON object: {measure name: {raft_textbook: number, pysyncobj: number}}")
    for name, pair in data.items():
        if not isinstance(pair, dict) or set(pair) != {key for key, _, _ in IMPLEMENTATIONS}:
            raise ValueError(f"{name!r}: expected exactly the keys raft_textbook and pysyncobj")
        for key, value in pair.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name!r}: {key} is {value!r}, not a finite number")
    return data


def higher_is_better(measure: str) -> bool:
    """A rate (a unit per second, such as ``ops/s``) is better higher; a time is better lower."""
    unit = re.search(r"\(([^()]*)\)\s*$", measure)
    return bool(unit and unit[1].endswith("/s"))


def plot_throughput_against_pysyncobj(results: Path = RESULTS / "realworld.json",
                                      out: Path = ASSETS / "throughput_vs_pysyncobj.png") -> Path:
    """raft-textbook next to PySyncObj: one small bar chart per measure of ``bench/realworld.py``.

    The measures have different units, so each gets its own panel and its own
    scale, titled with the ratio and with which way is better.
    """
    data = load_realworld(results)
    columns = min(3, len(data))
    rows = math.ceil(len(data) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.3 * rows), dpi=110, squeeze=False)
    for axis, (name, pair) in zip(axes.flat, data.items(), strict=False):
        values = [pair[key] for key, _, _ in IMPLEMENTATIONS]
        bars = axis.bar([label for _, label, _ in IMPLEMENTATIONS], values,
                        color=[colour for _, _, colour in IMPLEMENTATIONS])
        axis.bar_label(bars, labels=[f"{value:,.2f}" for value in values], fontsize=8)
        ratio = f"{values[0] / values[1]:.2f}×" if values[1] else "–"
        better = "higher" if higher_is_better(name) else "lower"
        axis.set_title(f"{name}\nratio {ratio}, {better} is better", fontsize=9)
        axis.margins(y=0.15)
        axis.tick_params(labelsize=8)
        axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(data):]:
        axis.set_visible(False)
    figure.suptitle("raft-textbook and PySyncObj: three processes on 127.0.0.1, measured in the same run")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, metadata={SOURCE_KEY: results_digest(results), "Software": None})
    plt.close(figure)
    return out


PLOTS = {"election.json": plot_election_times, "realworld.json": plot_throughput_against_pysyncobj}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    for name, draw in PLOTS.items():
        if (RESULTS / name).is_file():
            print(f"wrote {draw().relative_to(ROOT)}")
        else:
            print(f"skipped: no {RESULTS.relative_to(ROOT) / name}")


if __name__ == "__main__":
    main()
