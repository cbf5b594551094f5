"""Scenario presets: each one tells its whole story, the same way every time, and rewinds exactly.

The presets run here without a browser or a thread: the test presses Next
whenever a caption pauses, and advances virtual time in small ticks, as the
simulation thread would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raft.state import RaftState
from visualizer.cluster import settle_client_requests
from visualizer.commands import Command
from visualizer.narration import PRESET_DIR, PresetError, load_presets, parse_preset
from visualizer.simulation import Simulation

PRESETS = load_presets()


class Recorder:
    """A publisher that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str | None, str, Any]] = []

    def broadcast(self, name: str, data: Any) -> None:
        self.messages.append((None, name, data))

    def send(self, sid: str, name: str, data: Any) -> None:
        self.messages.append((sid, name, data))

    def errors(self) -> list[Any]:
        return [data for _, name, data in self.messages if name == "error"]


def do(sim: Simulation, action: str, **args: Any) -> None:
    sim.enqueue(Command(action, args, "test"))
    sim.run_pending()


def play_preset(name: str, limit: float = 40.0, tick: float = 0.01,
                until: Callable[[Simulation], bool] = lambda sim: False) -> tuple[Simulation, Recorder]:
    """Play a preset to its end (or until ``until`` holds), pressing Next whenever a caption pauses."""
    recorder = Recorder()
    sim = Simulation(recorder, playing=False, presets=PRESETS)
    do(sim, "preset", name=name)
    assert sim.narrator is not None
    while sim.narrator.phase != "done" and sim.cluster.now < limit and not until(sim):
        if sim.narrator.phase == "paused":
            do(sim, "narration", do="next")
        sim.playing = True
        sim._advance_by(tick)
    return sim, recorder


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_reaches_its_last_caption(name: str) -> None:
    """A preset whose wait never matches would leave a lecture hanging: each one must finish."""
    sim, recorder = play_preset(name)
    try:
        narrator = sim.narrator
        assert narrator is not None
        assert narrator.phase == "done", f"stuck at step {narrator.index + 1}: {narrator.step}"
        assert [s["step"] for s in narrator.shown] == list(range(len(narrator.preset.steps)))
        assert not recorder.errors()
        assert all("{" not in s["text"] for s in narrator.shown), "every caption field was filled in"
    finally:
        sim.stop()


def test_split_vote_preset_really_splits_the_vote() -> None:
    """The split-vote seed makes several candidates stand in one term that nobody wins."""
    sim, _ = play_preset("3-split-vote")
    try:
        events = sim.cluster.events.events
        candidates = {e.node for e in events if e.kind == "election" and e["phase"] == "vote" and e["term"] == 2}
        leaders = [e for e in events if e.kind == "state" and e["state"] == "leader"]
        assert len(candidates) >= 2
        assert leaders and all(e["term"] > 2 for e in leaders), "nobody won the split term"
    finally:
        sim.stop()


def test_disruptive_server_forces_a_step_down_only_without_pre_vote() -> None:
    """Without pre-vote a rejoining server deposes the leader; with pre-vote the leader survives."""
    without, _ = play_preset("6-disruptive-server")
    with_pre_vote, _ = play_preset("7-pre-vote")
    try:
        for sim, expect_step_down in ((without, True), (with_pre_vote, False)):
            events = sim.cluster.events.events
            first_leader = next(e for e in events if e.kind == "state" and e["state"] == "leader")
            stepped_down = any(e.kind == "state" and e.node == first_leader.node and e["state"] == "follower"
                               for e in events if e.t > first_leader.t)
            assert stepped_down is expect_step_down
    finally:
        without.stop()
        with_pre_vote.stop()


def test_stale_leader_loses_its_uncommitted_write() -> None:
    """The cut-off leader's write is refused to the client and erased from every log after the heal."""
    sim, _ = play_preset("4-stale-leader")
    try:
        requests = {r.command: r for r in sim.cluster.client_requests}
        assert requests["set x stale"].ok is False
        assert requests["set x fresh"].ok is True
        # The last caption comes when the old leader is repaired; its partner in the minority gets the
        # same repair from the next AppendEntries, "within a heartbeat or two" as the caption says.
        sim.playing = True
        sim._advance_by(0.5)
        for node in sim.cluster.ids:
            store = sim.cluster.handles[node].store
            commands = [store.get_log(i).data for i in range(1, store.last_index() + 1)]
            assert b"set x stale" not in commands
    finally:
        sim.stop()


def test_figure_7_preset_ends_with_identical_logs() -> None:
    """Every follower's log ends up equal to the leader's, as the paper's Figure 7 discussion says."""
    sim, _ = play_preset("8-figure-7")
    try:
        sim.playing = True
        sim._advance_by(1.0)
        logs = {}
        for node in sim.cluster.ids:
            store = sim.cluster.handles[node].store
            logs[node] = [store.get_log(i).term for i in range(1, store.last_index() + 1)]
        assert all(log == logs["L"] for log in logs.values()), logs
    finally:
        sim.stop()


def test_a_preset_run_rewinds_and_replays_to_the_same_trace_and_captions() -> None:
    """Rewinding inside a preset and playing on reproduces the events and the captions exactly."""
    sim, recorder = play_preset("2-leader-crash")
    try:
        end, trace = sim.cluster.now, sim.cluster.trace()
        captions = [s["text"] for s in sim.narrator.shown] if sim.narrator else []
        do(sim, "seek", t=1.7)
        assert sim.cluster.now == 1.7 and sim.future, "the crash and restart are still ahead"
        do(sim, "seek", t=end)
        assert sim.cluster.trace() == trace
        assert sim.narrator is not None and [s["text"] for s in sim.narrator.shown] == captions
        assert not recorder.errors()
    finally:
        sim.stop()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_rewinding_anywhere_in_a_preset_replays_it_exactly(name: str) -> None:
    """From any rewind point, playing on gives back the same events, captions and no errors."""
    sim, recorder = play_preset(name)
    try:
        assert sim.narrator is not None
        end, trace, captions = sim.cluster.now, sim.cluster.trace(), list(sim.narrator.shown)
        for fraction in (0.2, 0.55, 0.9):
            do(sim, "seek", t=end * fraction)
            do(sim, "seek", t=end)
            assert sim.cluster.trace() == trace, f"rewind to {end * fraction:.3f}"
            assert sim.narrator is not None and sim.narrator.shown == captions
        assert not recorder.errors()
    finally:
        sim.stop()


def test_narration_back_returns_to_the_previous_caption() -> None:
    """Back rewinds to where the previous caption was shown."""
    sim, _ = play_preset("1-first-election")
    try:
        assert sim.narrator is not None
        shown = sim.narrator.shown
        do(sim, "narration", do="back")
        assert sim.cluster.now == pytest.approx(shown[-2]["t"], abs=1e-6)
    finally:
        sim.stop()


def test_every_preset_file_is_valid_json_with_the_documented_keys() -> None:
    """The preset files parse, and each names only documented keys."""
    for path in sorted(Path(PRESET_DIR).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert set(data) <= {"title", "summary", "cluster", "setup", "steps"}, path.name
        assert data["steps"], path.name


@pytest.mark.parametrize(("data", "problem"), [
    ({}, "cluster"),
    ({"cluster": {"nodes": 2}, "steps": [{"caption": "x"}]}, "cluster.nodes"),
    ({"cluster": {"config": {"bogus": 1}}, "steps": [{"caption": "x"}]}, "cluster.config"),
    ({"cluster": {}, "steps": []}, "steps"),
    ({"cluster": {}, "steps": [{"text": "x"}]}, "step 1"),
    ({"cluster": {}, "steps": [{"caption": "x", "do": [{"action": "format"}]}]}, "interventions"),
    ({"cluster": {}, "steps": [{"caption": "x", "after": -1}]}, "after"),
    ({"cluster": {}, "steps": [{"caption": "x", "wait": {"state": "leader"}}]}, "kind"),
    ({"cluster": {}, "setup": {"logs": {"n1": [3, 1]}}, "steps": [{"caption": "x"}]}, "never decrease"),
    ({"cluster": {}, "setup": {"logs": {"n9": [1]}}, "steps": [{"caption": "x"}]}, "setup.logs"),
    ({"cluster": {"bugs": ["no-such-bug"]}, "steps": [{"caption": "x"}]}, "cluster.bugs"),
    ({"cluster": {"bugs": "forget-vote-on-restart"}, "steps": [{"caption": "x"}]}, "cluster.bugs"),
])
def test_a_malformed_preset_is_reported_with_its_place(data: dict[str, Any], problem: str) -> None:
    """A mistake in a preset file names the preset and the part that is wrong."""
    with pytest.raises(PresetError, match=problem):
        parse_preset("broken", data)


def test_presets_are_listed_in_the_order_of_their_numbers() -> None:
    """The menu lists scenario 10 after scenario 9, not after scenario 1."""
    numbers = [int(name.split("-")[0]) for name in PRESETS]
    assert numbers == sorted(numbers) and numbers[:2] == [1, 2]


def terms_of(sim: Simulation, node: str) -> list[int]:
    return list(sim.cluster.log_terms(node).values())


def test_figure_8_d_an_entry_on_a_majority_that_was_never_committed_is_overwritten() -> None:
    """§5.4.2, Figure 8 (d): entry 2 of term 2 sits on three servers, is never applied, and S5's entry replaces it."""
    sim, _ = play_preset("9-figure-8-overwritten")
    try:
        events = sim.cluster.events.events
        truncated = {e.node for e in events if e.kind == "truncate" and e["first"] == 2 and e["term"] == 2}
        assert truncated == {"S2", "S3"}, "with S1, they held entry 2 of term 2: a majority, and they delete it"
        assert not [e for e in events if e.kind == "commit" and e.node == "S1"], "S1 committed nothing"
        assert not [e for e in events if e.kind == "apply" and e["index"] == 2 and e["term"] == 2]
        for node in ("S2", "S3", "S4", "S5"):
            assert terms_of(sim, node)[:2] == [1, 3], node
    finally:
        sim.stop()


def test_figure_8_e_index_2_commits_together_with_the_leaders_own_entry() -> None:
    """§5.4.2, Figure 8 (e): S1's commit index jumps from 0 past index 2; S5 never leads; entry 2 of term 2 survives."""
    sim, _ = play_preset("10-figure-8-committed")
    try:
        events = sim.cluster.events.events
        first_commit = next(e for e in events if e.kind == "commit" and e.node == "S1")
        assert first_commit["previous"] == 0 and first_commit["index"] == 3
        assert not [e for e in events if e.kind == "state" and e.node == "S5" and e["state"] == "leader"]
        assert {e["term"] for e in events if e.kind == "apply" and e["index"] == 2} == {2}
        for node in ("S2", "S3", "S4", "S5"):
            assert terms_of(sim, node)[:3] == [1, 2, 4], node
    finally:
        sim.stop()


def test_no_op_preset_commits_the_previous_terms_entries_only_through_the_no_op() -> None:
    """§5.4.2 and §8: the new leader's commit index goes from 0 straight to its no-op, taking entries 2–3 along."""
    sim, _ = play_preset("11-no-op-commit")
    try:
        events = sim.cluster.events.events
        leader = next(e for e in events if e.kind == "state" and e["state"] == "leader")
        commit = next(e for e in events if e.kind == "commit" and e.node == leader.node)
        assert (commit["previous"], commit["index"]) == (0, 4)
        assert sim.cluster.handles[leader.node].store.get_log(4).type.name == "LogNoop"
        view = sim.tracker.full()["nodes"][leader.node]
        assert view["kv"] == {"k2": "t2", "k3": "t2"}
    finally:
        sim.stop()


def test_membership_preset_never_has_two_uncommitted_configurations() -> None:
    """Thesis §4.1: the leader appends a configuration entry only once the one before it is committed."""
    sim, _ = play_preset("12-membership-change")
    try:
        events = sim.cluster.events.events
        leader = next(e.node for e in events if e.kind == "state" and e["state"] == "leader")
        committed = 1
        appended = []
        for e in events:
            if e.kind != "configuration" or e.node != leader:
                continue
            if e["which"] == "committed":
                committed = max(committed, e["index"])
            elif e["index"] > 1:
                assert not appended or appended[-1] <= committed, "a change started while another was uncommitted"
                appended.append(e["index"])
        assert len(appended) == 3
        membership = sim.tracker.membership()
        assert membership is not None
        assert [s["id"] for s in membership["latest"]["servers"]] == ["n2", "n3", "n4", "n5"]
        assert sim.cluster.ids == ["n1", "n2", "n3", "n4", "n5"], "n1 left the configuration, not the ring"
    finally:
        sim.stop()


def test_snapshot_preset_catches_the_follower_up_with_install_snapshot() -> None:
    """§7: the restarted follower receives the leader's snapshot, and its view shows the snapshot and the jump."""
    sim, _ = play_preset("13-snapshot-catch-up")
    try:
        events = sim.cluster.events.events
        sent = next(e for e in events if e.kind == "snapshot_send")
        installed = next(e for e in events if e.kind == "snapshot_installed")
        assert installed.node == sent["peer"] and installed["index"] == sent["index"]
        assert any(e.kind == "rpc_send" and e["rpc"] == "install_snapshot" for e in events)
        full = sim.tracker.full()
        follower, leader = installed.node, sent.node
        assert full["nodes"][follower]["snapshot"] == {"index": installed["index"], "term": installed["term"]}
        assert full["logs"][leader]["first"] > 1, "the leader's log was compacted"
        assert full["logs"][follower]["first"] > installed["index"], "the follower's log jumped past the snapshot"
        assert full["nodes"][follower]["kv"] == full["nodes"][leader]["kv"]
    finally:
        sim.stop()


def test_an_install_snapshot_message_is_shown_in_flight_with_its_fields() -> None:
    """While the snapshot travels, the page gets it as a message of kind install_snapshot, fields included."""
    def sending(sim: Simulation) -> bool:
        return sim.narrator is not None and any("InstallSnapshot message" in s["text"] for s in sim.narrator.shown)

    sim, _ = play_preset("13-snapshot-catch-up", until=sending)
    try:
        flights = [f for f in sim.tracker.full()["flights"] if f["kind"] == "install_snapshot"]
        assert len(flights) == 1 and flights[0]["dir"] == "request"
        assert flights[0]["msg"]["last_log_index"] == 8 and flights[0]["msg"]["size"] > 0
    finally:
        sim.stop()


def test_transfer_preset_sends_timeout_now_and_the_target_skips_the_pre_vote() -> None:
    """Thesis §3.10: TimeoutNow goes to the target, which stands at once in a real election and wins."""
    sim, _ = play_preset("14-leadership-transfer")
    try:
        events = sim.cluster.events.events
        started = next(e for e in events if e.kind == "transfer" and e["phase"] == "started")
        target = started["target"]
        later = [e for e in events if e.t >= started.t]
        assert any(e.kind == "rpc_send" and e["rpc"] == "timeout_now" and e["to"] == target for e in later)
        assert not [e for e in later if e.kind == "election" and e.node == target and e["phase"] == "pre_vote"]
        assert sim.cluster.leader() == target
    finally:
        sim.stop()


def test_a_preset_can_switch_on_a_teaching_bug_and_a_rewind_keeps_it() -> None:
    """``cluster.bugs`` builds the cluster with those teaching bugs, and its recording names them for replays."""
    sim, _ = play_preset("15-lost-vote")
    try:
        assert sim.cluster.bugs.cli_names() == ["forget-vote-on-restart"]
        assert sim.cluster.export_run()["params"]["bugs"] == ["forget-vote-on-restart"]
        do(sim, "seek", t=sim.cluster.now / 2)
        assert sim.cluster.bugs.cli_names() == ["forget-vote-on-restart"], "the rebuilt cluster has the bug too"
    finally:
        sim.stop()


def test_lost_vote_preset_elects_two_leaders_in_one_term() -> None:
    """Figure 2, votedFor: the restarted voter forgets its vote for n1, votes for n3 in that term, and both lead it."""
    sim, _ = play_preset("15-lost-vote")
    try:
        events = sim.cluster.events.events
        leaders = [(e.node, e["term"]) for e in events if e.kind == "state" and e["state"] == "leader"]
        assert leaders == [("n1", 2), ("n3", 2)]
        votes = [e["candidate"] for e in events if e.kind == "vote" and e.node == "n2" and e["phase"] == "vote"
                 and e["granted"] and e["term"] == 2]
        assert votes == ["n1", "n3"], "n2 voted twice in term 2, once before and once after its restart"
        assert sorted(sim.cluster.in_state(RaftState.Leader)) == ["n1", "n3"], "both lead at once: n1's lease holds"
    finally:
        sim.stop()


def test_stale_read_preset_never_gives_the_client_the_stale_value() -> None:
    """§8: the deposed leader still holds x=1, but its read through the log fails; the new leader returns 2."""
    sim, _ = play_preset("16-stale-read")
    try:
        sim.playing = True
        sim._advance_by(0.5)  # the answer to the last read reaches its client
        settle_client_requests(sim.cluster, sim.tracker.apply_times)
        reads = [r for r in sim.cluster.client_requests if r.command == "get x"]
        assert [(r.node, r.ok) for r in reads] == [("n1", False), (reads[1].node, True)]
        assert reads[1].node != "n1" and reads[1].value == "2"
        events = sim.cluster.events.events
        lease_lost = next(e for e in events if e.kind == "lease_lost" and e.node == "n1")
        new_leader = next(e for e in events if e.kind == "state" and e["state"] == "leader" and e.node != "n1")
        assert new_leader.t < lease_lost.t, "a new leader was elected while n1 still believed it led"
    finally:
        sim.stop()


# -- paced narration -----------------------------------------------------------------------------


def test_every_caption_holds_the_clock_until_next() -> None:
    """A caption without "pause" holds too: the clock stands at its event until Next (or Play)."""
    preset = PRESETS["1-first-election"]
    assert not preset.steps[2].pause, "the test needs a step that did not pause before"
    sim, _ = play_preset("1-first-election", until=lambda s: s.narrator is not None and s.narrator.index == 2
                         and s.narrator.phase == "paused")
    try:
        assert sim.narrator is not None and sim.narrator.phase == "paused" and not sim.playing
        held_at = sim.cluster.now
        assert sim.narrator.shown[-1]["t"] == pytest.approx(held_at, abs=1e-6)
        sim.playing = True
        sim._advance_by(1.0)  # what the simulation thread does while "playing"
        assert sim.cluster.now == held_at and not sim.playing, "the clock ran past a held caption"
        do(sim, "play")  # Play counts as Next
        assert sim.narrator.index == 3 and sim.playing
    finally:
        sim.stop()


def test_a_reading_time_lets_plain_captions_go_on_by_themselves() -> None:
    """With "hold 0.2 s", a caption without "pause" continues after 0.2 real seconds; a "pause" one still waits."""
    import time

    recorder = Recorder()
    sim = Simulation(recorder, playing=False, presets=PRESETS)
    sim.start()
    try:
        sim.submit({"action": "narration", "do": "pace", "seconds": 0.2})
        sim.submit({"action": "preset", "name": "1-first-election"})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (sim.narrator and sim.narrator.phase == "paused"):
            time.sleep(0.02)
        assert sim.narrator is not None and sim.narrator.step is not None and sim.narrator.step.pause
        time.sleep(0.5)
        assert sim.narrator.index == 0, "a step marked pause waits for Next whatever the reading time"
        # Press Next only where a step is marked "pause", as a lecturer would; the others must go on alone.
        pressed: set[int] = set()
        plain = [i for i, step in enumerate(PRESETS["1-first-election"].steps) if not step.pause]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sim.narrator.index <= plain[-1]:
            narrator = sim.narrator
            if narrator.phase == "paused" and narrator.step is not None and narrator.step.pause \
                    and narrator.index not in pressed:
                pressed.add(narrator.index)
                sim.submit({"action": "narration", "do": "next"})
            time.sleep(0.02)
        assert sim.narrator.index > plain[-1], "plain captions did not go on by themselves"
        assert not pressed & set(plain)
        assert not recorder.errors()
    finally:
        sim.stop()


def test_a_wait_that_can_no_longer_end_is_called_stalled_and_can_be_skipped() -> None:
    """Crash everyone while a caption waits for a commit: after 20 virtual s the narration says so; Skip goes on."""
    from visualizer.narration import STALL_AFTER

    sim, recorder = play_preset("2-leader-crash", until=lambda s: s.narrator is not None and s.narrator.index == 2
                                and s.narrator.phase == "waiting")
    try:
        narrator = sim.narrator
        assert narrator is not None and narrator.step is not None and narrator.step.wait is not None
        for node in sim.cluster.ids:
            do(sim, "crash", node=node)
        assert narrator.state(sim.cluster.now)["stalled"] is False
        sim.playing = True
        sim._advance_by(STALL_AFTER + 1)
        state = narrator.state(sim.cluster.now)
        assert narrator.phase == "waiting" and state["stalled"] is True
        assert state["awaiting"].startswith(f"a {narrator.step.wait['kind']} event")
        do(sim, "narration", do="skip")
        assert narrator.index == 3 and not recorder.errors()
    finally:
        sim.stop()


def test_an_exported_scenario_run_imports_with_its_narration() -> None:
    """Export halfway through a preset, import: the captions so far come back, and Next goes on."""
    sim, recorder = play_preset("2-leader-crash", until=lambda s: s.narrator is not None and s.narrator.index >= 5)
    try:
        assert sim.narrator is not None
        shown = [s["text"] for s in sim.narrator.shown]
        trace = sim.cluster.trace()
        do(sim, "export")
        exported = [data for _, name, data in recorder.messages if name == "export"][-1]
        assert exported["visualizer"]["preset"] == "2-leader-crash" and exported["visualizer"]["narration"]
        do(sim, "reset")
        assert sim.narrator is None
        do(sim, "import", run=json.loads(json.dumps(exported)))
        assert sim.narrator is not None, "the import lost the narration"
        assert [s["text"] for s in sim.narrator.shown] == shown
        assert sim.cluster.trace() == trace
        assert not recorder.errors()
    finally:
        sim.stop()
