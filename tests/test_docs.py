"""The documentation site builds strictly, and what it generates from the code is really there.

``mkdocs build --strict`` fails on any warning: a tutorial that fails, a
snippet section that is gone, a link to a heading, a line or a name that does
not exist. On top of that we check the generated maps, the rule that every
block of Python on the site comes from a tutorial, the glossary's Python
names, the absence of any CDN, the freshness of the benchmark plots, and the pages of the
real deployment, whose tables and formats are read from the code.
"""

from __future__ import annotations

import hashlib
import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILD_TIMEOUT = 900
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n"
                   r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
ALLOWED_LANGUAGES = {"python", "text", "console", "go", "markdown", "json"}


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def builder(module: str) -> ModuleType:
    """A module of the site's builder, docs/sitegen/ (docs/hooks.py calls it during a build)."""
    if str(DOCS) not in sys.path:
        sys.path.insert(0, str(DOCS))
    return importlib.import_module(f"sitegen.{module}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with ``mkdocs build --strict`` into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
    return out


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page, with tags stripped and entities decoded."""
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    main = raw.split('<article class="md-content__inner', 1)[-1]
    return html.unescape(re.sub(r"<[^>]+>", "", main))


def table_rows(site: Path, page: str) -> list[str]:
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    return [html.unescape(re.sub(r"<[^>]+>", " ", row)) for row in re.findall(r"<tr>(.*?)</tr>", raw, re.DOTALL)]


# -- the build and the generated pages ---------------------------------------------------


def test_site_builds_strictly(site: Path) -> None:
    """The build succeeded (see the fixture) and produced the home page and a source page per module."""
    assert (site / "index.html").is_file()
    modules = list((ROOT / "raft").rglob("*.py"))
    pages = list((site / "source").rglob("index.html"))
    assert len(pages) >= len(modules), "one source page per module of raft/, plus the index"


def test_go_python_map_pairs_go_names_with_python_names(site: Path) -> None:
    """The Go ↔ Python map, generated from Mirrors: lines, pairs runFollower with run_follower, and more."""
    rows = table_rows(site, "maps/go-python")
    for go, python in [("runFollower", "run_follower"), ("replicateTo", "replicate_to"),
                       ("appendEntries", "append_entries"), ("recalculate", "Commitment.recalculate"),
                       ("runFSM", "run_fsm"), ("Apply", "Raft.apply")]:
        assert any(re.search(rf"\b{go}\b", row) and python in row for row in rows), f"no row {go} ↔ {python}"
    text = page_text(site, "maps/go-python")
    assert "raft.go" in text and "replication.go" in text and "commitment.go" in text


def test_paper_map_sends_figure_2_rules_to_the_functions_that_enforce_them(site: Path) -> None:
    """Each Figure 2 rule the code cites is mapped to the function that enforces it."""
    rows = table_rows(site, "maps/paper")
    expected = [
        ("Refuse a candidate whose term is older", "request_vote"),
        ("candidate's log is at least as up-to-date", "request_vote"),
        ("Refuse if our log has no entry at prevLogIndex", "append_entries"),
        ("delete it and all after it", "append_entries"),
        ("majority's matchIndex", "Commitment.recalculate"),
        ("increment currentTerm, vote for yourself", "elect_self"),
        ("discard the entire log", "_keep_or_discard_log"),
    ]
    for rule, function in expected:
        assert any(rule in row and function in row for row in rows), f"rule {rule!r} is not mapped to {function}"
    assert any("prevLogIndex" in row and "prev_log_entry" in row for row in rows), "field table: prevLogIndex"
    assert any("Election Safety" in row and "_on_state" in row for row in rows), "Figure 3: Election Safety"
    assert "§5.4.2" in page_text(site, "maps/paper")


def test_differences_page_collects_every_differs_line(site: Path) -> None:
    """The Differs: lines are collected, including comments, with the big ones explained by hand."""
    text = page_text(site, "maps/differences")
    count = int(re.search(r"(\d+) differences are recorded in the code", text)[1])  # type: ignore[index]
    index = builder("code_index").scan_code()
    tagged = sum(len(d.tag("Differs")) for d in index.definitions)
    comments = sum(1 for d in index.definitions for c in d.comments if c.text.startswith("Differs:"))
    assert count == tagged + comments > 20
    assert "_keep_or_discard_log" in text and "#697" in text


def test_event_kinds_page_lists_where_events_come_from(site: Path) -> None:
    rows = table_rows(site, "maps/events")
    assert any("truncate" in row and "_keep_or_discard_log" in row and "install_snapshot" in row for row in rows)
    assert any("replication_rejected" in row and "replicate_to" in row for row in rows)
    assert any("rpc_drop" in row and "SimNetwork" in row for row in rows)


@pytest.mark.parametrize("page", ["tutorials/01-first-cluster", "tutorials/02-leader-election",
                                  "tutorials/03-log-replication", "tutorials/04-safety",
                                  "tutorials/05-membership", "tutorials/06-snapshots",
                                  "tutorials/07-transfer-and-pre-vote", "tutorials/08-tcp-cluster",
                                  "tutorials/09-debugging", "tutorials/10-persistence",
                                  "tutorials/11-clients-and-reads"])
def test_tutorial_pages_show_code_and_real_output(site: Path, page: str) -> None:
    """A tutorial page has its snippets and their output, and no snippet line was left unexpanded."""
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    assert "--8&lt;--" not in raw and "--8<--" not in raw
    assert raw.count(">Output<") >= 3
    assert "Cluster" in page_text(site, page)


def test_tutorial_8_shows_every_step_of_the_real_cluster(site: Path) -> None:
    """Tutorial 8 shows the output of each of its steps: the processes really ran at build time."""
    text = page_text(site, "tutorials/08-tcp-cluster")
    for fact in ("a follower answers 307", "a new leader was elected within 15 s: yes",
                 "it follows the new leader: yes", "exit statuses: {'n1': 0, 'n2': 0, 'n3': 0}",
                 "at most one leader in each term (Election Safety): yes"):
        assert fact in text, fact


def test_real_cluster_page_reads_its_tables_and_formats_from_the_code(site: Path) -> None:
    """The HTTP API table, the frame format and the options come from the code, not from a copy."""
    import ast

    rst = load_module("rst_docstrings", DOCS / "rst_docstrings.py")
    docstring = ast.get_docstring(ast.parse((ROOT / "raft" / "kv" / "service.py").read_text(encoding="utf-8")))
    assert docstring is not None
    table = rst.simple_tables(docstring)[0]
    rows = table_rows(site, "tools/real-cluster")
    for request, _ in table.rows:
        shown = " ".join(request.strip("`").split())
        assert any(shown in " ".join(row.split()) for row in rows), f"the HTTP API table lacks {request}"
    text = page_text(site, "tools/real-cluster")
    frames = ast.get_docstring(ast.parse((ROOT / "raft" / "net_frames.py").read_text(encoding="utf-8")))
    assert frames is not None
    assert rst.literal_blocks(frames)[0].splitlines()[0] in text, "the frame format is not on the page"
    assert "raft-kv --help" in text and "--http-peers" in text


@pytest.mark.parametrize(("page", "names"), [
    ("api/kv_service", ["KVService", "command_from_body", "http_call"]),
    ("api/net_transport", ["NetworkTransport"]),
    ("api/tcp_transport", ["new_tcp_transport"]),
    ("api/sqlite_store", ["SQLiteStore"]),
    ("api/file_snapshot", ["FileSnapshotStore"]),
])
def test_api_pages_of_the_real_deployment(site: Path, page: str, names: list[str]) -> None:
    """mkdocstrings documents the modules of the real deployment."""
    text = page_text(site, page)
    for name in names:
        assert name in text, f"{page} does not document {name}"


@pytest.mark.parametrize("page", ["api/kv_service", "api/events", "api/file_snapshot"])
def test_docstring_tables_and_blocks_are_rendered_as_markdown(site: Path, page: str) -> None:
    """reStructuredText tables (===== lines) and literal blocks (::) do not reach the page raw."""
    text = page_text(site, page)
    assert not re.search(r"^\s*=====", text, re.MULTILINE), f"{page} shows a raw table border"
    assert not re.search(r"\S::$", text, re.MULTILINE), f"{page} shows a raw '::'"
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    assert "<table>" in raw or '<div class="highlight">' in raw


def test_benchmarks_page_shows_the_pysyncobj_comparison_only_with_results(site: Path) -> None:
    """Without bench/results/realworld.json the page says the results are coming, and shows no plot."""
    raw = (site / "tools/benchmarks/index.html").read_text(encoding="utf-8")
    if (ROOT / "bench" / "results" / "realworld.json").is_file():
        assert "throughput_vs_pysyncobj.png" in raw
    else:
        assert "Results coming" in raw
        assert "throughput_vs_pysyncobj.png\"" not in raw


def test_visualizer_guide_lists_the_presets(site: Path) -> None:
    raw = (site / "tools/visualizer/index.html").read_text(encoding="utf-8")
    for preset in (ROOT / "visualizer" / "presets").glob("*.json"):
        assert f'id="preset-{preset.stem}"' in raw


def test_no_cdn(site: Path) -> None:
    """Nothing on the site loads a script, a style sheet, a font or an image from another host."""
    loads = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.IGNORECASE)
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not loads.search(text), f"{path.relative_to(site)} loads something from the network"
    for path in [*site.rglob("*.css"), *site.rglob("*.js")]:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "fonts.googleapis.com" not in text and "cdn.jsdelivr.net" not in text, path.name


# -- rules for the Markdown sources (no build needed) ---------------------------------------


def markdown_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_code_block_is_run_or_marked_as_not_runnable(page: Path) -> None:
    """A ``python`` block holds only snippet lines from tutorials/ (run by the tests); others name a language."""
    text = page.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        language = match["info"].strip().split(" ")[0]
        assert language in ALLOWED_LANGUAGES, f"{page.name}: a code block needs one of {sorted(ALLOWED_LANGUAGES)}"
        if language == "python":
            lines = [line.strip() for line in match["body"].splitlines() if line.strip()]
            assert lines, f"{page.name}: empty python block"
            for line in lines:
                assert re.fullmatch(r'--8<-- "tutorials/[\w]+\.py(:[\w-]+)?"', line), \
                    f"{page.name}: python block with code that no test runs: {line!r}"


def test_glossary_python_names_exist() -> None:
    """Every name in the glossary's Python column is defined or used in raft/."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "raft").rglob("*.py"))
    glossary = (DOCS / "glossary.md").read_text(encoding="utf-8")
    checked = 0
    for table in re.split(r"\n\s*\n", glossary):
        lines = [line for line in table.splitlines() if line.startswith("|")]
        if not lines or "Python" not in lines[0]:
            continue
        column = [cell.strip() for cell in lines[0].strip("|").split("|")].index("Python")
        for line in lines[2:]:
            cell = [c.strip() for c in line.strip("|").split("|")][column]
            for name in re.findall(r"`([^`]+)`", cell):
                for part in re.findall(r"[A-Za-z_]\w*", name):
                    assert re.search(rf"\b{part}\b", source), f"glossary names {name!r}, but raft/ has no {part!r}"
                    checked += 1
    assert checked > 50


def test_election_plot_was_drawn_from_the_committed_results() -> None:
    """docs/assets/election_times.png records the hash of bench/results/election.json it was drawn from."""
    from PIL import Image

    results = ROOT / "bench" / "results" / "election.json"
    with Image.open(DOCS / "assets" / "election_times.png") as picture:
        recorded = picture.text.get("Source-SHA256")  # type: ignore[attr-defined]
    assert recorded == hashlib.sha256(results.read_bytes()).hexdigest(), \
        "the results changed; redraw the plot with `python -m bench.plots`"


SAMPLE_REALWORLD = {"throughput, in-memory log (ops/s)": {"raft_textbook": 2000.0, "pysyncobj": 1000.0},
                    "latency p50, one at a time (ms)": {"raft_textbook": 2.0, "pysyncobj": 4.0}}


def test_realworld_plot_was_drawn_from_the_committed_results() -> None:
    """If bench/results/realworld.json exists, the plot exists and records that file's hash."""
    from PIL import Image

    results = ROOT / "bench" / "results" / "realworld.json"
    if not results.is_file():
        pytest.skip("bench/results/realworld.json has not been written yet")
    with Image.open(DOCS / "assets" / "throughput_vs_pysyncobj.png") as picture:
        recorded = picture.text.get("Source-SHA256")  # type: ignore[attr-defined]
    assert recorded == hashlib.sha256(results.read_bytes()).hexdigest(), \
        "the results changed; redraw the plot with `python -m bench.plots`"


def test_throughput_plot_is_drawn_from_realworld_results(tmp_path: Path) -> None:
    """bench/plots.py draws one panel per measure and records the hash of the JSON it read."""
    import json

    from PIL import Image

    from bench.plots import plot_throughput_against_pysyncobj

    results = tmp_path / "realworld.json"
    results.write_text(json.dumps(SAMPLE_REALWORLD), encoding="utf-8")
    out = plot_throughput_against_pysyncobj(results, tmp_path / "plot.png")
    with Image.open(out) as picture:
        assert picture.text.get("Source-SHA256") == hashlib.sha256(results.read_bytes()).hexdigest()  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", [[], {}, {"x": {"raft_textbook": 1.0}},
                                  {"x": {"raft_textbook": 1.0, "pysyncobj": "2"}},
                                  {"x": {"raft_textbook": float("nan"), "pysyncobj": 1.0}}])
def test_realworld_results_in_another_format_are_refused(tmp_path: Path, data: object) -> None:
    import json

    from bench.plots import load_realworld

    results = tmp_path / "realworld.json"
    results.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError):
        load_realworld(results)


def test_higher_is_better_for_rates_only() -> None:
    from bench.plots import higher_is_better

    assert higher_is_better("throughput, durable log (ops/s)")
    assert not higher_is_better("latency p99, one at a time (ms)")
    assert not higher_is_better("new leader after SIGKILL, median (s)")


def test_realworld_section_waits_for_results_then_shows_table_and_plot(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """No JSON: a note, and a passing strict build. JSON: a table and the plot; a stale plot fails the build."""
    import json

    from bench.plots import plot_throughput_against_pysyncobj

    benchmarks = builder("benchmarks")
    results = tmp_path / "realworld.json"
    assert "Results coming" in benchmarks.realworld("tools/benchmarks.md", tmp_path, results)
    results.write_text(json.dumps(SAMPLE_REALWORLD), encoding="utf-8")
    with caplog.at_level("WARNING", logger="mkdocs.hooks.raft_docs"):
        benchmarks.realworld("tools/benchmarks.md", tmp_path, results)
    assert "python -m bench.plots" in caplog.text, "a missing plot must fail the strict build"
    caplog.clear()
    plot_throughput_against_pysyncobj(results, tmp_path / benchmarks.REALWORLD_PLOT)
    with caplog.at_level("WARNING", logger="mkdocs.hooks.raft_docs"):
        section = benchmarks.realworld("tools/benchmarks.md", tmp_path, results)
    assert caplog.text == ""
    assert "| throughput, in-memory log (ops/s) | 2,000.00 | 1,000.00 | 2.00 | higher |" in section
    assert "| latency p50, one at a time (ms) | 2.00 | 4.00 | 0.50 | lower |" in section
    assert "](../assets/throughput_vs_pysyncobj.png)" in section


# -- the hook's parsers -----------------------------------------------------------------------


def test_code_index_covers_every_module_of_the_package_and_its_subpackages() -> None:
    """Griffe loads raft/ with raft/sim, raft/checkers, raft/kv and raft/stores; every module gets a source page."""
    index = builder("code_index").scan_code()
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "raft").rglob("*.py")}
    assert set(index.modules) == on_disk
    assert index.resolve("raft.sim.cluster.Cluster").path == "raft/sim/cluster.py"
    follower = index.resolve("RaftLoops.run_follower")
    assert follower.path == "raft/raft.py" and "runFollower" in " ".join(follower.tag("Mirrors"))
    lines = index.sources["raft/future.py"].splitlines()
    done = index.resolve("raft.future.Future.done")  # a property: it starts at its decorator, like a function
    assert lines[done.line - 1].strip() == "@property"


def test_docstring_tags_are_parsed_across_lines() -> None:
    summary, tags = builder("tags").parse_tags(
        'Answer RPCs (Mirrors: setLeader).\n\nPaper:   Figure 2, Followers: "If election timeout\n'
        '         elapses".\nMirrors: raft.go runFollower.\nDiffers: one helper,\ninstead of many.\n\nMore text.')
    assert summary == "Answer RPCs (Mirrors: setLeader)."
    assert tags["Mirrors"] == ["setLeader", "raft.go runFollower."]
    assert tags["Paper"] == ['Figure 2, Followers: "If election timeout elapses".']
    assert tags["Differs"] == ["one helper, instead of many."]


def test_thesis_sections_are_told_apart_from_paper_sections() -> None:
    tags = builder("tags")
    assert tags.references("Figure 2 (all four boxes), §5.1–§5.4; Thesis §9.6 (pre-vote), §3.10") == [
        "Figure 2", "§5.1", "§5.4", "Thesis §9.6", "Thesis §3.10"]
    assert tags.references("§6.2 of the thesis (a leader steps down)") == ["Thesis §6.2"]


def test_visualizer_screenshot_is_shown_only_if_it_exists(tmp_path: Path) -> None:
    """Without docs/assets/visualizer.png the guide says it is coming, and the strict build does not fail."""
    visualizer = builder("visualizer")
    assert "Screenshot coming" in visualizer.screenshot("tools/visualizer.md", tmp_path)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "visualizer.png").write_bytes(b"")
    assert "](../assets/visualizer.png)" in visualizer.screenshot("tools/visualizer.md", tmp_path)


def test_tutorial_output_is_cut_at_step_headers() -> None:
    steps = builder("tutorials").split_steps("\n=== [one] First ===\na\nb\n\n=== [two] Second ===\nc\n")
    assert steps == {"one": "a\nb\n", "two": "c\n"}


def test_rst_literal_blocks_and_simple_tables_become_markdown() -> None:
    """The docstrings' ``::`` blocks become fenced text, their ===== tables Markdown tables."""
    rst = load_module("rst_docstrings", DOCS / "rst_docstrings.py")
    text = ("Start it::\n\n    raft-kv --id n1\n\nThen:\n\n"
            "=========  ===========\n``GET /a``  read ``a``;\n           still reading\n"
            "``POST``   write ``x|y``\n=========  ===========\n\nDone.")
    markdown = rst.rst_to_markdown(text)
    assert "Start it:\n\n```text\nraft-kv --id n1\n```" in markdown
    assert "| ``GET /a`` | read ``a``; still reading |" in markdown
    assert "| ``POST`` | write ``x|y`` |" in markdown
    assert "=====" not in markdown and markdown.endswith("Done.")


def test_cli_help_is_read_from_the_parsers() -> None:
    commands = builder("commands")
    for command, option in [("raft-kv", "--http-peers"), ("raft-sim fuzz", "--bug"), ("raft-sim lincheck", "--format")]:
        assert option in commands.cli_help(command)
