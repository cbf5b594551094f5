"""The benchmark results on docs/tools/benchmarks.md: the re-election numbers and the PySyncObj comparison.

Both are read from the JSON files the benchmarks write (``bench/results/``),
and the numbers are computed with the benchmarks' own functions. The plots
themselves are drawn by ``python -m bench.plots``; the build only checks that a
plot was drawn from the results it sits next to.
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import ELECTION_RESULTS, REALWORLD_RESULTS, ROOT, cell, log, on_path
from .links import relative_href

REALWORLD_PLOT = "assets/throughput_vs_pysyncobj.png"  # drawn from REALWORLD_RESULTS by bench/plots.py


def realworld(page_src: str, docs_dir: Path, results: Path = REALWORLD_RESULTS) -> str:
    """The PySyncObj comparison: a table and the plot, once ``bench/results/realworld.json`` exists.

    Until then, a note says the results are to come, and the strict build
    passes. Once it exists, the plot must exist too and must have been drawn
    from that very file (its PNG records the file's SHA-256), or the build fails.
    """
    if not results.is_file():
        return ('!!! note "Results coming"\n    The comparison has not been run on a quiet machine yet. When '
                f"`bench/results/{results.name}` exists, its table and its plot appear here.\n")
    on_path()
    from bench.plots import SOURCE_KEY, higher_is_better, load_realworld, results_digest

    try:
        data = load_realworld(results)
    except ValueError as err:
        log.warning("%s: %s", results.relative_to(ROOT) if results.is_relative_to(ROOT) else results, err)
        return ""
    picture = docs_dir / REALWORLD_PLOT
    if not picture.is_file():
        log.warning("%s exists but %s does not: draw it with `python -m bench.plots`", results.name, picture)
    else:
        from PIL import Image

        with Image.open(picture) as image:
            recorded = image.text.get(SOURCE_KEY)
        if recorded != results_digest(results):
            log.warning("%s was not drawn from the current %s: redraw it with `python -m bench.plots`",
                        picture.name, results.name)
    with_go = any(pair.get("hashicorp_go") is not None for pair in data.values())
    head = "| Measure | raft-textbook | PySyncObj | ratio |" + (" hashicorp (Go) | ratio to Go |" if with_go else "")
    out = [head + " better |", "|---|---:|---:|---:|" + ("---:|---:|" if with_go else "") + "---|"]
    for name, pair in data.items():
        ours, theirs, go = pair["raft_textbook"], pair["pysyncobj"], pair.get("hashicorp_go")
        assert ours is not None and theirs is not None  # load_realworld allows None only for hashicorp_go
        ratio = f"{ours / theirs:.2f}" if theirs else "–"
        better = "higher" if higher_is_better(name) else "lower"
        go_cells = ""
        if with_go:
            go_cells = (f" {go:,.2f} | {ours / go:.2f} |" if go else " – | – |")
        out.append(f"| {cell(name)} | {ours:,.2f} | {theirs:,.2f} | {ratio} |{go_cells} {better} |")
    note = "raft-textbook ÷ PySyncObj" + (" and raft-textbook ÷ hashicorp/raft" if with_go else "")
    return ("\n".join(out) + f"\n\n*ratio = {note}, best against best, from the same run.*\n\n"
            f"![raft-textbook next to PySyncObj, one panel per measure]({relative_href(page_src, REALWORLD_PLOT)})\n")


def election_summary() -> str:
    """The re-election benchmark's numbers, computed from its JSON results as the benchmark computes them."""
    on_path()
    from bench.election import percentile

    data = json.loads(ELECTION_RESULTS.read_text(encoding="utf-8"))
    times = sorted(data["failover_seconds"])

    def pct(p: float) -> float:
        return float(percentile(times, p))

    ranks = data["winner_rank"]
    share = {rank: ranks.count(rank) / len(ranks) for rank in sorted(set(ranks))}
    shares = ", ".join(f"{'unknown' if rank == 0 else f'#{rank}'}: {value:.0%}" for rank, value in share.items())
    return (f"| Runs | Median | 99th percentile | Fastest | Slowest |\n|---|---|---|---|---|\n"
            f"| {len(times)} | {pct(50):.3f} s | {pct(99):.3f} s | {times[0]:.3f} s | {times[-1]:.3f} s |\n\n"
            f"Which of the nodes that stood for election won, in the order they stood: {shares}. "
            f"An idle five-node cluster ran {data['idle_speed']:.1f} simulated seconds per wall-clock second "
            f"on the machine that produced these results.\n")
