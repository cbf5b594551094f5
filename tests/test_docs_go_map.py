"""The Go ↔ Python map has a row for every Go function of hashicorp/raft v1.7.3, and only real Go code in it.

The list of Go functions is the checked-in docs/data/hashicorp-raft-v1.7.3.tsv
(names and lines, made by docs/sitegen/go_functions.py); the map is built
from the docstrings of raft/ and docs/data/go-map-notes.toml. Nothing here
needs the network, git or a copy of hashicorp/raft.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GO_URL = re.compile(r"\(https://github\.com/hashicorp/raft/blob/v1\.7\.3/(?P<file>[\w.]+\.go)#L(?P<line>\d+)\)")


def builder(module: str) -> ModuleType:
    """A module of the site's builder, docs/sitegen/."""
    if str(DOCS) not in sys.path:
        sys.path.insert(0, str(DOCS))
    return importlib.import_module(f"sitegen.{module}")


@pytest.fixture(scope="module")
def index() -> object:
    return builder("code_index").scan_code()


@pytest.fixture(scope="module")
def go_map(index: object) -> object:
    return builder("go_map").build_map(index)


@pytest.fixture(scope="module")
def page(index: object) -> str:
    return builder("go_map").go_python_map("maps/go-python.md", index)  # type: ignore[no-any-return]


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of every table row of a Markdown page, header and rule rows left out."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return [row for row in rows if row[0] not in ("Go (hashicorp/raft v1.7.3)", "Go", "Follows")]


def test_every_go_function_has_a_counterpart_or_a_reason(go_map: object) -> None:
    """No Go function of the list is missing from the map: it names its Python twin, or why there is none."""
    missing = [f"{row.function.file} {row.function.key}" for row in go_map.rows  # type: ignore[attr-defined]
               if not row.counterparts and not row.left_out]
    assert not missing, "Go functions with no row in the map (add a Mirrors: line, or a reason in " \
        f"docs/data/go-map-notes.toml): {missing}"
    functions = builder("go_functions").read_go_functions()
    assert [row.function for row in go_map.rows] == functions  # type: ignore[attr-defined]
    assert len(functions) > 300


def test_the_map_understands_every_mirrors_line_and_note(go_map: object) -> None:
    """No Mirrors: line names a Go function ambiguously, and every note names a real Go function and definition."""
    assert go_map.problems == []  # type: ignore[attr-defined]


def test_each_go_function_has_one_row_linked_to_its_line(page: str) -> None:
    """One row per Go function (runFSM once), its name linked to its line at v1.7.3, in the list's order."""
    functions = builder("go_functions").read_go_functions()
    links = [GO_URL.search(row[0]) for row in table_rows(page) if GO_URL.search(row[0])]
    assert [(m["file"], int(m["line"])) for m in links if m] == [(f.file, f.line) for f in functions]
    assert sum(1 for row in table_rows(page) if re.search(r"\brunFSM\b", row[0])) == 1


def test_go_column_holds_only_go_names(page: str) -> None:
    """A docstring's prose stays out of the Go column: "pickServer. Nonvoters are skipped" shows as pickServer."""
    for row in table_rows(page):
        if GO_URL.search(row[0]):
            assert re.fullmatch(r"\[`\w+(?:\.\w+)?`\]\(\S+\)", row[0]), row[0]
    pick = next(row for row in table_rows(page) if "Raft.pickServer`" in row[0])
    assert "pick_server" in pick[1] and "Nonvoters" not in pick[0]


def test_only_hashicorp_raft_files_have_sections(page: str) -> None:
    """bolt_store.go and Go's runtime are not files of hashicorp/raft: they are listed as outside the package."""
    files = set(builder("go_functions").read_go_files())
    headings = re.findall(r"^### (.+)$", page, re.MULTILINE)
    for heading in headings:
        assert heading in files or not heading.endswith(".go"), heading
    assert "bolt_store.go" not in headings and "runtime/chan.go" not in headings
    outside = page.split("### Outside hashicorp/raft's package", 1)[1]
    assert "bolt_store.go" in outside and "runtime/chan.go" in outside


@pytest.mark.parametrize(("go", "python"), [
    ("Raft.LeaderCh", "Raft.leader_ch"), ("Raft.getLatestConfiguration", "get_latest_configuration"),
    ("followerReplication.notifyAll", "notify_all"), ("Raft.runFollower", "run_follower"),
    ("NewInmemStore", "InmemStore"), ("InmemStore.StoreLogs", "store_logs"), ("RaftState.String", "__str__"),
    ("cluster.Partition", "Cluster.partition"),
])
def test_rows_that_were_missing_have_their_counterpart(page: str, go: str, python: str) -> None:
    row = next(row for row in table_rows(page) if f"[`{go}`]" in row[0])
    assert python in row[1], row


def test_metrics_saturation_and_progress_are_left_out_with_a_reason(go_map: object) -> None:
    """saturation.go, progress.go and the metrics helpers have no counterpart; the map and differences say why."""
    rows = {f"{row.function.file} {row.function.key}": row for row in go_map.rows}  # type: ignore[attr-defined]
    for key in ("saturation.go saturationMetric.report", "progress.go startSnapshotRestoreMonitor",
                "log.go emitLogStoreMetrics", "replication.go appendStats"):
        assert not rows[key].counterparts and rows[key].left_out, key
    differences = (DOCS / "maps" / "differences.md").read_text(encoding="utf-8")
    for name in ("saturation.go", "progress.go", "metrics"):
        assert name in differences


def test_the_go_list_holds_names_and_lines_only() -> None:
    """Each line of the data file is file, receiver, name and line number: no Go code is copied."""
    path = builder("go_functions").GO_FUNCTIONS
    seen = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        file, receiver, name, number = line.split("\t")
        assert re.fullmatch(r"[\w]+\.go", file) and not file.endswith("_test.go")
        assert re.fullmatch(r"\w*", receiver) and re.fullmatch(r"\w+", name) and number.isdigit()
        key = (file, receiver, name)
        assert key not in seen or name == "init", key
        seen.add(key)


def test_declarations_are_read_from_go_source() -> None:
    """The regenerating script finds functions and methods, with or without a receiver name or type parameters."""
    go_functions = builder("go_functions")
    source = "\n".join([
        "package demo", "", "func Plain(a int) int {", "}", "func (s *Store) Get(k []byte) {", "}",
        "func (Store) Size() int {", "}", "func (c *cache[T]) put(v T) {", "}", "func Map[T any](xs []T) {", "}",
        "// func Commented() {}", "var f = func() {}",
    ])
    found = [(f.receiver, f.name, f.line) for f in go_functions.declarations("demo.go", source)]
    assert found == [("", "Plain", 3), ("Store", "Get", 5), ("Store", "Size", 7), ("cache", "put", 9),
                     ("", "Map", 11)]
    assert go_functions.GoFunction("demo.go", "Store", "Get", 5).url.endswith("/v1.7.3/demo.go#L5")
