"""``raft-sim lincheck``: one verdict line per file, explanations indented, exit 0 or 2."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from conftest import shared_data_dir

from raft.checkers.lincheck import add_arguments, lincheck_main

DATA = shared_data_dir() / "linearizability"

GOOD_ETCD = """\
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:ok\t:write\t1
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:read\t1
"""
# A read that starts after the write of 2 returned, and still sees 1.
STALE_ETCD = """\
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:ok\t:write\t1
INFO  jepsen.util - 0\t:invoke\t:write\t2
INFO  jepsen.util - 0\t:ok\t:write\t2
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:ok\t:read\t1
"""
GOOD_KV = """\
{:process 0, :type :invoke, :f :append, :key "k", :value "a"}
{:process 0, :type :ok, :f :append, :key "k", :value "a"}
{:process 1, :type :invoke, :f :get, :key "k", :value nil}
{:process 1, :type :ok, :f :get, :key "k", :value "a"}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = lincheck_main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_linearizable_file_prints_one_line_and_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A linearizable history gets exactly ``FILE: linearizable``."""
    good = write(tmp_path, "good.log", GOOD_ETCD)
    assert run(capsys, "--format", "etcd", good) == (0, f"{good}: linearizable\n", "")


def test_not_linearizable_is_a_verdict_not_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A non-linearizable history prints its verdict and an indented explanation, and exits 0."""
    stale = write(tmp_path, "stale.log", STALE_ETCD)
    code, out, err = run(capsys, "--format", "etcd", stale)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{stale}: not linearizable"
    assert all(line.startswith("    ") for line in lines[1:])
    assert "    The history (3 operations) has no valid order." in lines
    assert "      [5, 6] client 1: read() -> 1" in lines


def test_several_files_are_reported_in_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Each file named gets its verdict line, in the order given."""
    good, stale = write(tmp_path, "a.log", GOOD_ETCD), write(tmp_path, "b.log", STALE_ETCD)
    code, out, _ = run(capsys, "--format", "etcd", stale, good)
    verdicts = [line for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0
    assert verdicts == [f"{stale}: not linearizable", f"{good}: linearizable"]


def test_kv_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = write(tmp_path, "good.txt", GOOD_KV)
    assert run(capsys, "--format", "kv", good) == (0, f"{good}: linearizable\n", "")


# Eighteen writes that never complete and a read of a value none of them wrote: the search has
# to try every subset of the writes before it can answer.
HARD_ETCD = "\n".join([*(f"INFO  jepsen.util - {c}\t:invoke\t:write\t{c}" for c in range(18)),
                       "INFO  jepsen.util - 99\t:invoke\t:read\tnil", "INFO  jepsen.util - 99\t:ok\t:read\t99"])


def test_timeout_reports_unknown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """With --timeout, a search that runs too long is reported as unknown, and still exits 0."""
    hard = write(tmp_path, "hard.log", HARD_ETCD)
    assert run(capsys, "--format", "etcd", "--timeout", "0.05", hard) == (0, f"{hard}: unknown (timed out)\n", "")


def test_step_and_memory_budgets_report_unknown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--max-steps and --max-memory also end a search as unknown, and the line names the budget spent."""
    hard = write(tmp_path, "hard.log", HARD_ETCD)
    by_steps = run(capsys, "--format", "etcd", "--max-steps", "1", hard)
    by_memory = run(capsys, "--format", "etcd", "--max-memory", "1", hard)
    assert by_steps == (0, f"{hard}: unknown (step budget spent)\n", "")
    assert by_memory == (0, f"{hard}: unknown (memory budget spent)\n", "")


def test_missing_file_exits_2_and_the_others_are_still_checked(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    """An unreadable file is named on stderr and makes the exit status 2; the rest still get verdicts."""
    good, missing = write(tmp_path, "good.log", GOOD_ETCD), str(tmp_path / "missing.log")
    code, out, err = run(capsys, "--format", "etcd", missing, good)
    assert code == 2
    assert out == f"{good}: linearizable\n"
    assert err == f"raft-sim lincheck: {missing}: cannot read: No such file or directory\n"


def test_malformed_file_names_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A line that does not parse: exit 2, and stderr gives the file, the line and what is wrong."""
    bad = write(tmp_path, "bad.log", GOOD_ETCD + "INFO  jepsen.util - 0\t:invoke\t:write\tseven\n")
    code, out, err = run(capsys, "--format", "etcd", bad)
    assert (code, out) == (2, "")
    assert err == f"raft-sim lincheck: {bad}: line 5: :write expects an integer, got 'seven'\n"


def test_wrong_format_is_a_malformed_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Reading a kv log as etcd fails on its first line."""
    kv = write(tmp_path, "kv.txt", GOOD_KV)
    code, _, err = run(capsys, "--format", "etcd", kv)
    assert code == 2
    assert err.startswith(f"raft-sim lincheck: {kv}: line 1: not a jepsen.util operation line")


def test_binary_file_is_unreadable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    binary = tmp_path / "binary.log"
    binary.write_bytes(b"\xff\xfe\x00")
    code, _, err = run(capsys, "--format", "etcd", str(binary))
    assert code == 2
    assert err == f"raft-sim lincheck: {binary}: not UTF-8 text (byte 0)\n"


@pytest.mark.parametrize("args", [
    [],
    ["--format", "etcd"],
    ["good.log"],
    ["--format", "xml", "good.log"],
    ["--format", "etcd", "--timeout", "0", "good.log"],
    ["--format", "etcd", "--timeout", "soon", "good.log"],
    ["--format", "etcd", "--max-steps", "0", "good.log"],
    ["--format", "etcd", "--max-memory", "lots", "good.log"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """Missing or invalid arguments print the usage of ``raft-sim lincheck`` and exit 2."""
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith("usage: raft-sim lincheck")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert out.startswith("usage: raft-sim lincheck")
    assert "--format {etcd,kv}" in out


def test_arguments_can_be_added_to_a_subparser() -> None:
    """raft-sim's own parser reuses the same options for its ``lincheck`` subcommand."""
    parser = argparse.ArgumentParser(prog="raft-sim")
    add_arguments(parser.add_subparsers(dest="command").add_parser("lincheck"))
    args = parser.parse_args(["lincheck", "--format", "kv", "--timeout", "2", "a", "b"])
    assert (args.format, args.timeout, args.files) == ("kv", 2.0, ["a", "b"])


def test_reference_histories(capsys: pytest.CaptureFixture[str]) -> None:
    """On the reference data: a known-bad etcd run and a known-good kv run."""
    if not DATA.is_dir():
        message = f"reference histories not found at {DATA}"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run them")
        pytest.skip(message)
    etcd, kv = DATA / "etcd" / "etcd_000.log", DATA / "kv" / "c01-ok.txt"
    code, out, _ = run(capsys, "--format", "etcd", str(etcd))
    assert code == 0
    assert out.startswith(f"{etcd}: not linearizable\n    The history (85 operations) has no valid order.\n")
    assert run(capsys, "--format", "kv", str(kv)) == (0, f"{kv}: linearizable\n", "")
