"""``raft-sim check-trace``: Figure 3's properties, checked on recorded event traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raft.checkers.trace_check import EXIT_OK, EXIT_USAGE, EXIT_VIOLATION, TraceChecker, read_events
from raft.sim import Cluster
from raft.sim.cli import main


def write(path: Path, events: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return str(path)


def state(t: float, node: str, role: str, term: int) -> dict[str, object]:
    return {"t": t, "node": node, "kind": "state", "state": role, "term": term}


def apply(t: float, node: str, index: int, term: int) -> dict[str, object]:
    return {"t": t, "node": node, "kind": "apply", "index": index, "term": term, "type": "LogCommand"}


def test_a_simulated_run_with_crashes_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real trace, with a leader crash and restart in it, satisfies every rule."""
    cluster = Cluster(nodes=3, seed=4)
    first = cluster.wait_leader()
    for k in range(5):
        cluster.apply(f"put k{k} v".encode())
    cluster.crash(first)
    cluster.run_until(lambda c: c.leader() not in (None, first))
    cluster.restart(first)
    cluster.apply(b"put after crash")
    cluster.run_for(3)
    trace = tmp_path / "run.jsonl"
    trace.write_text(cluster.trace(), encoding="utf-8")
    cluster.dispose()
    assert main(["check-trace", str(trace)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "3 node(s); 2 term(s) with a leader" in out


def test_per_node_files_are_read_as_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two leaders of one term are only visible across files; the checker reads them together."""
    a = write(tmp_path / "a.jsonl", [state(1.0, "a", "leader", 2)])
    b = write(tmp_path / "b.jsonl", [state(5.0, "b", "leader", 3), state(0.5, "b", "leader", 2)])
    assert main(["check-trace", a]) == EXIT_OK
    assert main(["check-trace", a, b]) == EXIT_VIOLATION
    out = capsys.readouterr().out
    assert f"{b}:2: Election Safety violated: a and b are both leader in term 2" in out
    assert "earlier, at t=1.000000 on a" in out


@pytest.mark.parametrize(("events", "rule"), [
    ([apply(1, "a", 7, 2), apply(2, "b", 7, 3)], "State Machine Safety violated: a applied index 7 from term 2 but "
                                                 "b applied one from term 3"),
    ([{"t": 1, "node": "a", "kind": "term", "term": 4}, {"t": 2, "node": "a", "kind": "term", "term": 3}],
     "monotonic term violated: a's term went from 4 back to 3"),
    ([state(1, "a", "leader", 2), {"t": 2, "node": "a", "kind": "truncate", "first": 3, "last": 5}],
     "Leader Append-Only violated: a truncated its log while leader"),
])
def test_each_rule_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str], events: list[dict[str, object]],
                             rule: str) -> None:
    assert main(["check-trace", write(tmp_path / "t.jsonl", events)]) == EXIT_VIOLATION
    assert rule in capsys.readouterr().out


def test_what_is_allowed_is_not_flagged() -> None:
    """A restarted node applies an index again with the same term; a follower truncates; terms stay put."""
    checker = TraceChecker()
    for raw in [state(1, "a", "follower", 1), {"t": 2, "node": "a", "kind": "truncate", "first": 2, "last": 3},
                apply(3, "a", 1, 1), apply(4, "a", 1, 1), apply(5, "b", 1, 1),
                {"t": 6, "node": "a", "kind": "term", "term": 1}, {"t": 7, "node": "a", "kind": "term", "term": 1},
                state(8, "a", "leader", 2), state(9, "a", "leader", 2)]:
        checker(next(iter(read_events([json.dumps(raw)])))[1])
    assert checker.violation is None and checker.events == 9


@pytest.mark.parametrize(("text", "message"), [
    ("not json\n", "line 1: not JSON"),
    ('{"t": 1}\n', "line 1: an event is a JSON object with t, node and kind"),
    ('\n[1, 2]\n', "line 2: an event is a JSON object"),
    ('{"t": "x", "node": "a", "kind": "state"}\n', "line 1: could not convert"),
    ('{"t": 1, "node": "a", "kind": "state", "state": "leader"}\n', "line 1: a 'state' event needs 'term' (int)"),
    ('{"t": 1, "node": "a", "kind": "apply", "index": true, "term": 1}\n', "needs 'index' (int)"),
])
def test_a_bad_file_gets_a_clear_error_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                                    message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text, encoding="utf-8")
    assert main(["check-trace", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"raft-sim check-trace: {bad}: ") and message in err


def test_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-trace", str(tmp_path / "missing.jsonl")]) == EXIT_USAGE
    assert "cannot read: No such file or directory" in capsys.readouterr().err
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    assert main(["check-trace", str(binary)]) == EXIT_USAGE
    assert "not UTF-8 text" in capsys.readouterr().err
