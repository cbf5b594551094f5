"""The side-by-side benchmark's harness: its options, its bounded waits, its best-against-best, its outputs.

No benchmark is run here: the nodes are stood in for by one-line scripts, so
these tests are quick and do not depend on the machine's speed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import realworld
from bench.plots import SOURCE_KEY, TABLE_STAMP, load_realworld
from bench.realworld_report import FLAG, as_markdown, as_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "realworld.json"


def fake_nodes(monkeypatch: pytest.MonkeyPatch, *lines: dict[str, Any]) -> None:
    """Make every node of a trio a script that prints ``lines`` at once and then says nothing for a minute."""
    text = "\n".join(json.dumps(line) for line in lines)
    script = f"import sys, time; sys.stdout.write({text!r} + '\\n'); sys.stdout.flush(); time.sleep(60)"
    monkeypatch.setattr(realworld.Trio, "command", lambda *args: [sys.executable, "-c", script])


def test_inflight_takes_one_number_or_a_list() -> None:
    """``--inflight 1000`` still works, and ``--inflight 1000,5000`` sweeps both."""
    parser = realworld.build_parser()
    assert parser.parse_args(["--inflight", "1000"]).inflight == [1000]
    assert parser.parse_args(["--inflight", "20000,1000,5000"]).inflight == [1000, 5000, 20000]
    assert parser.parse_args([]).inflight == [1000, 5000, 20000, 50000]


@pytest.mark.parametrize("bad", ["0", "many", "1000,-5", ","])
def test_inflight_refuses_what_is_not_a_list_of_positive_numbers(bad: str) -> None:
    """A value that is not a comma list of positive numbers is an error, not a silent default."""
    with pytest.raises(SystemExit):
        realworld.build_parser().parse_args(["--inflight", bad])


def test_the_older_options_keep_working() -> None:
    """``--seconds``, ``--repeat``, ``--failovers`` and ``--json`` are read as before."""
    args = realworld.build_parser().parse_args(
        ["--seconds", "2", "--repeat", "1", "--failovers", "1", "--json", "out.json"])
    assert (args.seconds, args.repeat, args.failovers, args.json) == (2.0, 1, 1, "out.json")


def test_a_trio_that_never_reports_counts_as_zero_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A side whose client starts and then never reports is measured as 0 ops/s with the reason, not waited for."""
    fake_nodes(monkeypatch, {"event": "start"})
    monkeypatch.setattr(realworld, "DRAIN_SECONDS", 1.0)
    began = time.monotonic()
    result = realworld.measure("raft_textbook", "throughput", [], seconds=0.1)
    assert time.monotonic() - began < 10
    assert result["rate"] == 0.0 and "no answer" in result["error"]


def test_a_result_printed_with_the_start_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines read together are all kept: waiting for "start" does not swallow the "result" behind it."""
    fake_nodes(monkeypatch, {"event": "start"}, {"event": "result", "ops": 10, "applied": 10, "rate": 5.0})
    assert realworld.measure("raft_textbook", "throughput", [], seconds=0.1)["rate"] == 5.0


def test_a_node_that_acknowledges_more_than_it_applied_stops_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast answer that skipped the work does not count: the harness refuses it."""
    fake_nodes(monkeypatch, {"event": "start"}, {"event": "result", "ops": 10, "applied": 9, "rate": 5.0})
    with pytest.raises(AssertionError, match="more commands than it applied"):
        realworld.measure("raft_textbook", "throughput", [], seconds=0.1)


def test_best_is_the_highest_median_over_settings_and_inflight() -> None:
    """A side's best is its highest median, whatever setting and in-flight value gave it."""
    sweep = {"a": {"1000": {"median": 10.0}, "5000": {"median": 30.0}},
             "b": {"1000": {"median": 20.0}, "5000": {"median": 0.0}}}
    assert realworld.best_of(sweep) == {"setting": "a", "inflight": 5000, "rate": 30.0}


def sample_results() -> dict[str, Any]:
    stalled = {"median": 0.0, "rates": [0.0], "notes": ["run 1: stalled"]}
    return {
        "measures": {"throughput, in-memory log, best (ops/s)":
                     {"raft_textbook": 100.0, "pysyncobj": 400.0, "hashicorp_go": None}},
        "throughput": {"in-memory": {
            "raft_textbook": {"BatchApplyCh": {"1000": {"median": 100.0, "rates": [100.0], "notes": []},
                                               "20000": stalled}},
            "pysyncobj": {"batching": {"1000": {"median": 200.0, "rates": [200.0], "notes": []},
                                       "20000": {"median": 400.0, "rates": [400.0], "notes": []}}}},
            "durable": {}},
        "best": {"raft_textbook": {"setting": "BatchApplyCh", "inflight": 1000, "rate": 100.0},
                 "pysyncobj": {"setting": "batching", "inflight": 20000, "rate": 400.0}},
        "not_measured": {"hashicorp_go": "No `go` on PATH."},
        "run": {"inflight": [1000, 20000], "repeat": 1, "seconds": 2.0, "failovers": 1},
    }


def test_a_collapse_is_shown_as_zero_and_marked() -> None:
    """A side that commits nothing at some in-flight value shows 0 there, marked, in both tables."""
    text = as_text(sample_results())
    assert f"0 {FLAG}" in text and "stalled" in text


def test_the_ratio_is_best_against_best() -> None:
    """The ratio row divides each side's best, here 100 at 1,000 in flight by 400 at 20,000."""
    lines = as_markdown(sample_results()).splitlines()
    row = next(line for line in lines if line.startswith("| throughput, in-memory log, best"))
    assert "100 at 1,000" in row and "400 at 20,000" in row and "| 0.25 |" in row


def test_a_side_not_measured_says_why() -> None:
    """Without Go the third column says "not measured", and the notes say why."""
    text = as_markdown(sample_results())
    assert "not measured" in text and "No `go` on PATH." in text


def test_the_summary_of_the_new_results_is_read_with_go_optional(tmp_path: Path) -> None:
    """bench/plots.py reads the summary measures of the new format, hashicorp_go null when not measured."""
    results = tmp_path / "realworld.json"
    results.write_text(json.dumps(sample_results()), encoding="utf-8")
    assert load_realworld(results)["throughput, in-memory log, best (ops/s)"]["hashicorp_go"] is None


def test_the_committed_sweep_table_and_plot_were_drawn_from_the_committed_results() -> None:
    """bench/results/realworld.md and docs/assets/throughput_vs_inflight.png record the results' SHA-256."""
    from PIL import Image

    data = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    if "throughput" not in data:
        pytest.skip("the committed results have no in-flight sweep yet")
    digest = hashlib.sha256(RESULTS.read_bytes()).hexdigest()
    table = (ROOT / "bench" / "results" / "realworld.md").read_text(encoding="utf-8")
    assert table.splitlines()[0] == TABLE_STAMP.format(key=SOURCE_KEY, digest=digest), \
        "the results changed; redraw with `python -m bench.plots`"
    with Image.open(ROOT / "docs" / "assets" / "throughput_vs_inflight.png") as picture:
        assert picture.text.get(SOURCE_KEY) == digest, "the results changed; redraw with `python -m bench.plots`"  # type: ignore[attr-defined]
