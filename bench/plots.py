"""Draw the benchmark plots for the documentation from the benchmarks' JSON results.

    python -m bench.plots            # every plot whose results exist

reads ``bench/results/election.json`` (written by ``python -m bench.election
--json ...``) and writes ``docs/assets/election_times.png``. Each picture
records, in its PNG metadata, the SHA-256 of the results it was drawn from,
so a test can tell when the results changed and the picture was not redrawn.

Plots are drawn with matplotlib's Agg backend: no display is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

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


def plot_throughput_against_pysyncobj() -> Path:
    """Throughput of raft-textbook against PySyncObj.

    TODO(issue 6): the throughput benchmark against PySyncObj does not exist
    yet. When it writes its JSON results to ``bench/results/``, draw them here
    (and only then mention the plot in the documentation).
    """
    raise NotImplementedError("the throughput-vs-PySyncObj plot waits for its benchmark (issue 6); "
                              "there are no results to draw yet")


PLOTS = {"election.json": plot_election_times}


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
