"""The visualizer's Socket.IO interface, through Flask-SocketIO's test client.

Every command is tried with a good payload (it does what it says, and every
browser hears about it) and with bad ones (an ``error`` comes back to the
sender and the simulation is unchanged). The server runs its real simulation
thread; the tests start it paused so that nothing moves unless they say so.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visualizer.commands import PARSERS, CommandError, parse_command
from visualizer.server import Visualizer

WAIT = 15.0  # wall seconds a test waits for the simulation thread to answer


class Browser:
    """A test client plus a buffer, so a test can wait for one message without losing the others."""

    def __init__(self, visualizer: Visualizer) -> None:
        self.client = visualizer.socketio.test_client(visualizer.app)
        self.inbox: list[dict[str, Any]] = []
        self.snapshot = self.wait("snapshot")

    def send(self, action: Any, **args: Any) -> None:
        payload = {"action": action, **args} if isinstance(action, str) else action
        self.client.emit("command", payload)

    def _pump(self) -> None:
        self.inbox.extend(self.client.get_received())

    def wait(self, name: str, match: Callable[[Any], bool] = lambda data: True, timeout: float = WAIT) -> Any:
        """The first message called ``name`` that ``match`` accepts; earlier ones are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            self._pump()
            while self.inbox:
                message = self.inbox.pop(0)
                if message["name"] == name and match(message["args"][0]):
                    return message["args"][0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name!r} message arrived within {timeout} s")
            time.sleep(0.01)

    def state(self) -> dict[str, Any]:
        """A fresh full view of the simulation (what a newly connected browser gets)."""
        self.send("hello")
        return self.wait("snapshot")

    def error_for(self, payload: Any) -> dict[str, Any]:
        self.send(payload)
        error: dict[str, Any] = self.wait("error")
        return error


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The parts of a snapshot that describe the run (not who asked for it, or why)."""
    return {k: v for k, v in snapshot.items() if k not in ("reason",)}


def leader_of(snapshot_or_nodes: dict[str, Any]) -> str | None:
    nodes = snapshot_or_nodes.get("nodes", snapshot_or_nodes)
    leaders = [n for n, v in nodes.items() if v.get("state") == "leader"]
    return leaders[0] if leaders else None


@pytest.fixture
def visualizer() -> Iterator[Visualizer]:
    v = Visualizer(nodes=5, seed=1, playing=False)
    yield v
    v.close()


@pytest.fixture
def browser(visualizer: Visualizer) -> Browser:
    return Browser(visualizer)


def run_until(browser: Browser, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Play fast until a fresh full view satisfies ``done``, then pause; return that view."""
    browser.send("speed", speed=2.0)
    browser.send("play")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = browser.state()
        if done(view):
            browser.send("pause")
            browser.wait("batch", lambda b: b.get("playing") is False)
            return browser.state()
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def elect(browser: Browser) -> dict[str, Any]:
    return run_until(browser, lambda view: leader_of(view) is not None)


# -- connecting ----------------------------------------------------------------------------------


def test_a_new_browser_gets_a_full_snapshot(browser: Browser) -> None:
    """On connect the server sends everything needed to draw the cluster: nodes, logs, seed and time."""
    snap = browser.snapshot
    assert snap["ids"] == ["n1", "n2", "n3", "n4", "n5"]
    assert snap["seed"] == 1 and snap["t"] == 0 and snap["playing"] is False
    assert set(snap["nodes"]) == set(snap["logs"]) == set(snap["ids"])
    assert all(view["state"] == "follower" and view["term"] == 1 for view in snap["nodes"].values())
    assert snap["logs"]["n1"]["entries"][0][2] == "LogConfiguration"
    assert {p["name"] for p in snap["presets"]} >= {"1-first-election", "3-split-vote"}
    json.dumps(snap)  # everything sent is plain JSON


def test_the_page_and_its_scripts_are_served(visualizer: Visualizer) -> None:
    """The page loads its scripts from this server only, never from a CDN."""
    http = visualizer.app.test_client()
    page = http.get("/").get_data(as_text=True)
    assert "/static/vendor/socket.io.min.js" in page and "/static/app.js" in page
    assert "https://" not in page.replace("https://nodejs.org", "")
    for path in ("/static/app.js", "/static/ring.js", "/static/words.js", "/static/style.css"):
        assert http.get(path).status_code == 200, path
    assert http.get("/healthz").get_json()["nodes"] == ["n1", "n2", "n3", "n4", "n5"]


# -- time control ----------------------------------------------------------------------------------


def test_play_pause_and_speed_are_broadcast(browser: Browser) -> None:
    """play, pause and speed change the simulation's clock and every batch says so."""
    browser.send("speed", speed=0.5)
    browser.wait("batch", lambda b: b.get("speed") == 0.5)
    browser.send("play")
    moving = browser.wait("batch", lambda b: b.get("playing") is True and b["t"] > 0)
    assert moving["t"] > 0
    browser.send("pause")
    paused = browser.wait("batch", lambda b: b.get("playing") is False)
    time.sleep(0.2)
    assert browser.state()["t"] == paused["t"], "a paused clock does not move"


def test_step_runs_to_the_next_event(browser: Browser) -> None:
    """step advances to the next thing that happens and stops there."""
    seen = len(browser.snapshot["events"])
    times = []
    for _ in range(8):
        browser.send("step")
        batch = browser.wait("batch", lambda b: "events" in b)
        assert batch["playing"] is False
        assert batch["events"][0]["seq"] == seen, "a step starts right after the last event"
        assert len({e["t"] for e in batch["events"]}) == 1, "one step stops at one moment"
        seen += len(batch["events"])
        times.append(batch["t"])
    assert times[0] == 0.0 and times[-1] > 1.0, "after the start-up callbacks, a step jumps to the first timer"


def test_a_step_that_skips_what_the_feed_hides_stops_on_something_it_shows(browser: Browser) -> None:
    """With timers, heartbeats and messages hidden, each step lands on a visible event (a vote, a commit...)."""
    elect(browser)
    hidden = {"timer", "rpc_send", "rpc_deliver", "rpc_drop", "request_vote", "request_pre_vote"}
    kinds = []
    for _ in range(3):
        browser.send("step", skip=["timer", "heartbeat", "message"])
        batch = browser.wait("batch", lambda b: "events" in b)
        visible = [e for e in batch["events"] if e["kind"] not in hidden]
        assert visible, f"the step stopped on hidden events only: {[e['kind'] for e in batch['events']]}"
        assert visible[0]["t"] == batch["t"], "the step stops at the first visible event"
        kinds.append(visible[0]["kind"])
    assert browser.error_for({"action": "step", "skip": ["everything"]})["message"].startswith("step skip must list")


def test_seek_rewinds_and_replays_exactly(browser: Browser) -> None:
    """Rewinding re-simulates from the seed; playing on replays the recorded interventions in place."""
    elected = elect(browser)
    old = leader_of(elected)
    browser.send("write", key="x", value="1")
    browser.wait("batch", lambda b: "clients" in b)
    browser.send("crash", node=old)
    browser.wait("batch", lambda b: b.get("nodes", {}).get(old, {}).get("up") is False)
    after = run_until(browser, lambda v: leader_of(v) not in (None, old))
    browser.send("seek", t=0.5)
    rewound = browser.wait("snapshot")
    assert rewound["t"] == 0.5 and rewound["reason"] == "seek"
    assert [i["action"] for i in rewound["future"]] == ["submit", "crash"]
    assert all(v["up"] for v in rewound["nodes"].values())
    browser.send("seek", t=after["t"])
    replayed = browser.wait("snapshot")
    assert replayed["future"] == [] and replayed["t"] == after["t"]
    assert replayed["events"] == after["events"], "the replayed run is event for event the original"
    assert leader_of(replayed) == leader_of(after)


def test_a_new_intervention_after_a_rewind_starts_a_branch(browser: Browser) -> None:
    """After a rewind, acting drops the recorded future: the run continues on a new branch."""
    elected = elect(browser)
    leader = leader_of(elected)
    assert leader is not None
    browser.send("crash", node=leader)
    browser.wait("batch", lambda b: "interventions" in b)
    browser.send("seek", t=elected["t"] - 0.01)
    assert len(browser.wait("snapshot")["future"]) == 1
    follower = next(n for n in elected["ids"] if n != leader)
    browser.send("crash", node=follower)
    notice = browser.wait("notice")
    assert "new branch" in notice["message"]
    state = browser.state()
    assert state["future"] == [] and state["end"] == state["t"]
    assert [i["args"]["node"] for i in state["interventions"]] == [follower]


# -- interventions ------------------------------------------------------------------------------------


def test_crash_wipes_volatile_state_and_restart_brings_it_back(browser: Browser) -> None:
    """A crashed node keeps its term and log (disk) but shows no role, commit index or state machine."""
    elected = elect(browser)
    node = next(n for n in elected["ids"] if n != leader_of(elected))
    browser.send("crash", node=node)
    crashed = browser.wait("batch", lambda b: b.get("nodes", {}).get(node, {}).get("up") is False)["nodes"][node]
    assert crashed["state"] == "crashed"
    assert crashed["commit"] is None and crashed["applied"] is None and crashed["leader"] is None
    assert crashed["kv"] is None and crashed["timer"] is None
    state = browser.state()
    assert state["nodes"][node]["term"] == elected["nodes"][node]["term"], "the term is on disk"
    assert state["logs"][node] == elected["logs"][node] or len(state["logs"][node]["entries"]) >= 2
    browser.send("restart", node=node)
    restarted = browser.wait("batch", lambda b: b.get("nodes", {}).get(node, {}).get("up") is True)
    assert restarted["nodes"][node]["state"] == "follower"


def test_timeout_makes_a_follower_stand(browser: Browser) -> None:
    """timeout on a follower records a force_timeout intervention."""
    elected = elect(browser)
    follower = next(n for n in elected["ids"] if n != leader_of(elected))
    browser.send("timeout", node=follower)
    batch = browser.wait("batch", lambda b: "interventions" in b)
    assert batch["interventions"][-1]["action"] == "force_timeout"
    assert batch["interventions"][-1]["args"] == {"node": follower}


def test_write_and_read_go_through_the_log(browser: Browser) -> None:
    """A write commits on the leader; a read is a get command whose answer is the committed value."""
    elect(browser)
    browser.send("write", key="x", value="42")
    browser.send("read", key="x")
    done = run_until(browser, lambda v: len(v["clients"]) == 2 and all(c["ok"] for c in v["clients"]))
    write, read = done["clients"]
    assert write["command"] == "set x 42" and read["command"] == "get x"
    assert read["value"] == "42" and read["index"] == write["index"] + 1
    leader = leader_of(done)
    assert leader is not None and done["nodes"][leader]["kv"] == {"x": "42"}


def test_a_write_to_a_follower_is_refused_by_raft(browser: Browser) -> None:
    """Sending a write to a follower reaches it; Raft answers that it is not the leader."""
    elected = elect(browser)
    follower = next(n for n in elected["ids"] if n != leader_of(elected))
    browser.send("write", key="x", value="1", node=follower)
    done = run_until(browser, lambda v: any(c["ok"] is False for c in v["clients"]))
    assert done["clients"][-1]["node"] == follower
    assert "leader" in done["clients"][-1]["error"].lower()


def test_partition_cut_restore_and_heal_change_the_links(browser: Browser) -> None:
    """Groups cut every link between them; one-way cuts cut one direction; heal restores all."""
    browser.send("partition", groups=[["n1", "n2"]])
    split = browser.wait("batch", lambda b: "links" in b)["links"]
    assert ["n1", "n3"] in split and ["n3", "n1"] in split and ["n1", "n2"] not in split
    browser.send("heal")
    assert browser.wait("batch", lambda b: "links" in b)["links"] == []
    browser.send("cut", src="n1", dst="n2")
    assert browser.wait("batch", lambda b: "links" in b)["links"] == [["n1", "n2"]]
    browser.send("restore", src="n1", dst="n2")
    assert browser.wait("batch", lambda b: "links" in b)["links"] == []
    actions = [i["action"] for i in browser.state()["interventions"]]
    assert actions == ["partition", "heal", "cut", "restore_link"]


def test_partition_with_three_groups(browser: Browser) -> None:
    """Arbitrary groups: nodes in different groups cannot talk, nodes in one group can."""
    browser.send("partition", groups=[["n1"], ["n2", "n3"]])
    links = browser.wait("batch", lambda b: "links" in b)["links"]
    assert ["n2", "n3"] not in links and ["n4", "n5"] not in links
    assert ["n1", "n2"] in links and ["n3", "n4"] in links


def test_fault_dials_change_the_network(browser: Browser) -> None:
    """faults sets loss, delay and the rest; the new values are broadcast and recorded."""
    browser.send("faults", loss=0.2, delay=0.05, jitter=0.01)
    faults = browser.wait("batch", lambda b: "faults" in b)["faults"]
    assert faults["loss"] == 0.2 and faults["delay"] == 0.05 and faults["jitter"] == 0.01
    assert browser.state()["interventions"][-1]["action"] == "set_faults"


def test_drop_and_duplicate_a_message_in_flight(browser: Browser) -> None:
    """A message in flight can be dropped (an rpc_drop event says so) or sent twice."""
    state = elect(browser)
    flights = state["flights"]
    assert len(flights) >= 2, "a leader always has heartbeats on their way"
    first, second = flights[0], flights[1]
    browser.send("drop", flight=first["flight"])
    dropped = browser.wait("batch", lambda b: any(e["kind"] == "rpc_drop" for e in b.get("events", [])))
    drop = next(e for e in dropped["events"] if e["kind"] == "rpc_drop")
    assert drop["reason"] == "dropped by user" and drop["id"] == first["id"]
    assert first["flight"] in dropped["flights"]["remove"]
    browser.send("duplicate", flight=second["flight"])
    dup = browser.wait("batch", lambda b: "flights" in b and b["flights"]["add"])
    assert any(f["id"] == second["id"] for f in dup["flights"]["add"])
    actions = [i["action"] for i in browser.state()["interventions"]]
    assert actions[-2:] == ["drop_message", "duplicate_message"]


def test_reset_builds_a_new_cluster(browser: Browser) -> None:
    """reset starts over with the chosen size and seed, and tells everyone with a snapshot."""
    browser.send("reset", nodes=7, seed=99)
    snap = browser.wait("snapshot", lambda s: s["reason"] == "reset")
    assert snap["ids"] == [f"n{i}" for i in range(1, 8)] and snap["seed"] == 99 and snap["t"] == 0
    browser.send("crash", node="n7")  # names of the new cluster are accepted at once
    browser.wait("batch", lambda b: b.get("nodes", {}).get("n7", {}).get("up") is False)


def test_a_preset_runs_its_narration(browser: Browser) -> None:
    """preset loads a scenario; its first caption waits for Next; narration moves back and forth."""
    browser.send("preset", name="1-first-election")
    snap = browser.wait("snapshot", lambda s: s["reason"] == "preset")
    narration = snap["narration"]
    assert narration["name"] == "1-first-election" and narration["phase"] == "paused"
    assert len(narration["shown"]) == 1 and snap["playing"] is False
    browser.send("speed", speed=2.0)
    browser.send("narration", do="next")
    later = browser.wait("batch", lambda b: len((b.get("narration") or {}).get("shown", [])) == 2)
    assert later["narration"]["phase"] == "paused", "the candidate's caption waits for Next"
    assert later["narration"]["shown"][-1]["text"].startswith("n4") and later["playing"] is False
    browser.send("narration", do="back")
    back = browser.wait("snapshot", lambda s: s["reason"] == "narration")
    assert back["t"] <= later["narration"]["shown"][-1]["t"]
    browser.send("narration", do="restart")
    assert browser.wait("snapshot", lambda s: s["reason"] == "preset")["t"] == 0
    browser.send("narration", do="exit")
    assert browser.wait("snapshot", lambda s: s["reason"] == "narration")["narration"] is None


def test_explain_names_the_python_and_go_functions(browser: Browser) -> None:
    """explain turns an event's func into the Python function, its Go twin and its Figure 2 rule."""
    browser.send("explain", func="run_follower")
    info = browser.wait("explanation")
    assert info["python"].startswith("raft/raft.py:") and "runFollower" in info["mirrors"]
    assert "Figure 2" in info["paper"] and "async def run_follower" in info["source"]
    browser.send("explain", func="no_such_function")
    assert browser.wait("explanation")["missing"] is True


# -- membership, leadership transfer, snapshots --------------------------------------------------------


def members(view: dict[str, Any]) -> list[str]:
    return [server["id"] for server in view["membership"]["latest"]["servers"]]


def test_add_server_puts_a_new_node_in_the_ring_without_a_reset(browser: Browser) -> None:
    """add_server starts an empty server and the leader adds it: the ids grow in a batch, no new snapshot."""
    elect(browser)
    browser.send("add_server")
    batch = browser.wait("batch", lambda b: "ids" in b)
    assert batch["ids"] == ["n1", "n2", "n3", "n4", "n5", "n6"]
    done = run_until(browser, lambda v: "n6" in members(v) and v["nodes"]["n6"]["commit"])
    assert done["membership"]["committed"]["index"] == done["membership"]["latest"]["index"]
    assert done["logs"]["n6"]["entries"], "the new server caught up with the log"
    assert [i["action"] for i in done["interventions"]] == ["add_node", "add_voter"]
    assert [i["args"] for i in done["interventions"]] == [{"node": "n6"}, {"node": "n6"}]
    assert done["clients"][-1]["command"] == "add_voter n6" and done["clients"][-1]["ok"] is True
    browser.send("crash", node="n6")  # the new name is accepted by the checks at once
    browser.wait("batch", lambda b: b.get("nodes", {}).get("n6", {}).get("up") is False)


def test_remove_server_takes_a_node_out_of_the_configuration(browser: Browser) -> None:
    """remove_server asks the leader; once committed, the node is outside the configuration but still shown."""
    elected = elect(browser)
    leader = leader_of(elected)
    follower = next(n for n in elected["ids"] if n != leader)
    browser.send("remove_server", node=follower)
    done = run_until(browser, lambda v: follower not in members(v)
                     and v["membership"]["committed"]["index"] == v["membership"]["latest"]["index"])
    assert follower in done["ids"] and follower in done["nodes"], "a removed server stays in the ring"
    entry = next(e for e in done["logs"][leader]["entries"] if e[0] == done["membership"]["latest"]["index"])
    assert entry[2] == "LogConfiguration" and follower not in entry[3].split()
    assert done["interventions"][-1] == {**done["interventions"][-1], "action": "remove_server",
                                         "args": {"node": follower}}


def test_transfer_hands_leadership_to_the_chosen_follower(browser: Browser) -> None:
    """transfer makes the leader send TimeoutNow; the target wins without a pre-vote."""
    elected = elect(browser)
    old = leader_of(elected)
    target = next(n for n in elected["ids"] if n != old)
    browser.send("transfer", node=target)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT
    browser.send("speed", speed=2.0)
    browser.send("play")
    while not any(e["kind"] == "state" and e["node"] == target and e["state"] == "leader" for e in seen):
        seen += browser.wait("batch", lambda b: "events" in b)["events"]
        assert time.monotonic() < deadline, "the target never became leader"
    browser.send("pause")
    kinds = [(e["kind"], e["node"], e.get("phase"), e.get("rpc")) for e in seen]
    assert ("transfer", old, "started", None) in kinds
    assert ("rpc_send", old, None, "timeout_now") in kinds
    assert ("election", target, "vote", None) in kinds and ("election", target, "pre_vote", None) not in kinds
    assert browser.state()["interventions"][-1]["args"] == {"target": target}


def test_transfer_without_a_target_lets_the_leader_choose(browser: Browser) -> None:
    """With no node named, the leader picks the most up-to-date follower itself."""
    old = leader_of(elect(browser))
    browser.send("transfer")
    done = run_until(browser, lambda v: leader_of(v) not in (None, old))
    assert done["interventions"][-1]["action"] == "transfer_leadership"
    assert done["interventions"][-1]["args"] == {"target": None}


def test_node_views_show_the_exact_timer_and_the_last_snapshot(browser: Browser) -> None:
    """A node's timer carries fires_at from its timer event; its snapshot is read from its store."""
    for _ in range(20):
        snap = browser.state()
        if all(v["timer"] for v in snap["nodes"].values()):
            break
        browser.send("step")
    timers = [v["timer"] for v in snap["nodes"].values()]
    assert all(t["deadline"] <= t["fires_at"] < t["deadline"] + t["timeout"] for t in timers)
    events = [e for e in snap["events"] if e["kind"] == "timer"]
    for node, view in snap["nodes"].items():
        last = [e for e in events if e["node"] == node][-1]
        assert view["timer"]["fires_at"] == last["fires_at"]
        assert view["snapshot"] is None and view["configuration"]["latest"]["index"] == 1


# -- export and import ------------------------------------------------------------------------------


def test_an_exported_run_imported_again_reproduces_the_same_trace(visualizer: Visualizer) -> None:
    """export, then import into another server: the replayed event trace is byte for byte the same."""
    browser = Browser(visualizer)
    elected = elect(browser)
    leader = leader_of(elected)
    assert leader is not None
    browser.send("write", key="k", value="v")
    browser.send("partition", groups=[[leader]])
    browser.send("faults", loss=0.1)
    run_until(browser, lambda v: leader_of(v) not in (None, leader))
    browser.send("heal")
    browser.wait("batch", lambda b: "links" in b)
    browser.send("export")
    exported = browser.wait("export")
    assert [i["action"] for i in exported["interventions"]] == ["submit", "partition", "set_faults", "heal"]
    recording = json.loads(json.dumps(exported))  # as if saved to a file and opened again
    original_trace = visualizer.simulation.cluster.trace()  # paused and idle: safe to read

    other = Visualizer(nodes=3, seed=5, playing=False)
    try:
        viewer = Browser(other)
        viewer.send("import", run=recording)
        imported = viewer.wait("snapshot", lambda s: s["reason"] == "import")
        assert imported["t"] == round(exported["now"], 6) and imported["ids"] == elected["ids"]
        assert other.simulation.cluster.trace() == original_trace
    finally:
        other.close()


def test_a_run_with_membership_changes_and_a_transfer_imports_to_the_same_trace(visualizer: Visualizer) -> None:
    """Added and removed servers and a leadership transfer replay exactly, in another server and after a rewind."""
    browser = Browser(visualizer)
    elected = elect(browser)
    leader = leader_of(elected)
    follower = next(n for n in elected["ids"] if n != leader)
    browser.send("add_server", node="n6")
    browser.send("remove_server", node=follower)
    run_until(browser, lambda v: "n6" in members(v) and follower not in members(v))
    browser.send("transfer", node="n6")
    after = run_until(browser, lambda v: leader_of(v) == "n6")
    browser.send("export")
    exported = json.loads(json.dumps(browser.wait("export")))
    assert [i["action"] for i in exported["interventions"]] == ["add_node", "add_voter", "remove_server",
                                                                "transfer_leadership"]
    original_trace = visualizer.simulation.cluster.trace()
    # Snapshot times are rounded to the microsecond and the add happened at the
    # paused instant itself, so seek to a moment clearly before it.
    browser.send("seek", t=elected["t"] - 0.001)
    rewound = browser.wait("snapshot", lambda s: s["reason"] == "seek")
    assert rewound["ids"] == elected["ids"], "before the add, n6 does not exist yet"
    browser.send("seek", t=after["t"])
    replayed = browser.wait("snapshot", lambda s: s["reason"] == "seek")
    assert replayed["ids"][-1] == "n6" and visualizer.simulation.cluster.trace() == original_trace

    other = Visualizer(nodes=3, seed=5, playing=False)
    try:
        viewer = Browser(other)
        viewer.send("import", run=exported)
        imported = viewer.wait("snapshot", lambda s: s["reason"] == "import")
        assert imported["ids"] == replayed["ids"] and leader_of(imported) == "n6"
        assert other.simulation.cluster.trace() == original_trace
    finally:
        other.close()


BAD_RUNS = [
    "not an object",
    {},
    {"version": 99},
    {"version": 1, "params": {"nodes": [], "seed": 1, "bootstrap": True, "config": {}, "faults": {}},
     "now": 1, "interventions": []},
    {"version": 1, "params": {"nodes": ["n1"], "seed": "x", "bootstrap": True, "config": {}, "faults": {}},
     "now": 1, "interventions": []},
    {"version": 1, "params": {"nodes": [f"n{i}" for i in range(50)], "seed": 1, "bootstrap": True, "config": {},
                              "faults": {}}, "now": 1, "interventions": []},
    {"version": 1, "params": {"nodes": ["n1", "n2", "n3"], "seed": 1, "bootstrap": True, "config": {},
                              "faults": {}}, "now": 5, "interventions": [
        {"position": 10, "t": 0.5, "action": "crash", "args": {"node": "n9"}}]},
    {"version": 1, "params": {"nodes": ["n1", "n2", "n3"], "seed": 1, "bootstrap": True, "config": {},
                              "faults": {"loss": 5}}, "now": 1, "interventions": []},
    {"version": 1, "params": {"nodes": ["n1", "n2", "n3"], "seed": 1, "bootstrap": True, "config": {},
                              "faults": {}}, "now": 1e9, "interventions": []},
    {"version": 1, "params": {"nodes": ["n1", "n2", "n3"], "seed": 1, "bootstrap": True, "config": {},
                              "faults": {}}, "now": 1, "interventions": [], "visualizer": {"preset": "nope"}},
    {"version": 1, "params": {"nodes": [f"n{i}" for i in range(1, 9)], "seed": 1, "bootstrap": True, "config": {},
                              "faults": {}}, "now": 5, "interventions": [
        {"position": 10, "t": 0.5, "action": "add_node", "args": {"node": "x1"}},
        {"position": 11, "t": 0.6, "action": "add_node", "args": {"node": "x2"}}]},
    {"version": 1, "params": {"nodes": ["n1", "n2", "n3"], "seed": 1, "bootstrap": True, "config": {},
                              "faults": {}}, "now": 5, "interventions": [
        {"position": 10, "t": 0.5, "action": "remove_server", "args": {"node": "n1"}}]},
]


@pytest.mark.parametrize("run", BAD_RUNS, ids=range(len(BAD_RUNS)))
def test_a_bad_import_is_refused_and_changes_nothing(browser: Browser, run: Any) -> None:
    """A malformed recording gets an error naming the problem; the running simulation stays as it was."""
    before = comparable(browser.state())
    error = browser.error_for({"action": "import", "run": run})
    assert error["action"] == "import" and error["message"]
    assert comparable(browser.state()) == before


# -- validation ------------------------------------------------------------------------------------------

BAD_PAYLOADS: list[Any] = [
    None, "crash n1", [], {}, {"action": 5}, {"action": "format_disk"},
    {"action": "speed"}, {"action": "speed", "speed": "fast"}, {"action": "speed", "speed": 0},
    {"action": "speed", "speed": 100}, {"action": "speed", "speed": True}, {"action": "speed", "speed": math.nan},
    {"action": "seek", "t": -1}, {"action": "seek", "t": "later"}, {"action": "seek", "t": math.inf},
    {"action": "write", "key": "", "value": "1"}, {"action": "write", "key": "a b", "value": "1"},
    {"action": "write", "key": "x", "value": 5}, {"action": "write", "key": "x", "value": "line\nbreak"},
    {"action": "write", "key": "x", "value": "v" * 65}, {"action": "write", "key": "x", "value": "1", "node": "n9"},
    {"action": "read"}, {"action": "read", "key": ["x"]},
    {"action": "crash"}, {"action": "crash", "node": "n9"}, {"action": "crash", "node": 1},
    {"action": "restart", "node": None}, {"action": "timeout", "node": "N1"},
    {"action": "partition"}, {"action": "partition", "groups": []}, {"action": "partition", "groups": "n1"},
    {"action": "partition", "groups": [["n1"], ["n1"]]}, {"action": "partition", "groups": [["n9"]]},
    {"action": "partition", "groups": [[]]}, {"action": "partition", "groups": [["n1", "n2", "n3", "n4", "n5"]]},
    {"action": "cut", "src": "n1", "dst": "n1"}, {"action": "cut", "src": "n1"},
    {"action": "restore", "src": "n1", "dst": "zz"},
    {"action": "faults"}, {"action": "faults", "loss": 2}, {"action": "faults", "bogus": 1},
    {"action": "faults", "delay": -1},
    {"action": "drop", "flight": "1"}, {"action": "drop", "flight": 0}, {"action": "duplicate"},
    {"action": "reset", "nodes": 2}, {"action": "reset", "nodes": 10}, {"action": "reset", "seed": -1},
    {"action": "reset", "nodes": "5"},
    {"action": "preset", "name": ""}, {"action": "preset", "name": 5},
    {"action": "narration", "do": "jump"}, {"action": "import", "run": None},
    {"action": "explain", "func": ""}, {"action": "explain", "func": 5},
    {"action": "add_server", "node": 5}, {"action": "add_server", "node": "two words"},
    {"action": "add_server", "node": "n123456789"}, {"action": "add_server", "node": "7up"},
    {"action": "add_server", "node": ["n6"]},
    {"action": "remove_server"}, {"action": "remove_server", "node": "n9"}, {"action": "remove_server", "node": None},
    {"action": "transfer", "node": "n9"}, {"action": "transfer", "node": 3},
]


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=range(len(BAD_PAYLOADS)))
def test_a_bad_payload_gets_an_error_and_changes_nothing(browser: Browser, payload: Any) -> None:
    """Types, ranges and node names are checked before anything reaches the simulation."""
    before = comparable(browser.state())
    error = browser.error_for(payload)
    assert error["message"]
    assert comparable(browser.state()) == before


# Commands whose payload is well formed but which the cluster cannot do right now.
REFUSED_NOW: list[tuple[dict[str, Any], str]] = [
    ({"action": "write", "key": "x", "value": "1"}, "no leader"),
    ({"action": "read", "key": "x"}, "no leader"),
    ({"action": "restart", "node": "n1"}, "running"),
    ({"action": "drop", "flight": 123456}, "no longer in flight"),
    ({"action": "duplicate", "flight": 123456}, "no longer in flight"),
    ({"action": "faults", "jitter": 0.3}, "jitter"),
    ({"action": "preset", "name": "no-such-preset"}, "no preset"),
    ({"action": "narration", "do": "next"}, "no preset"),
    ({"action": "add_server"}, "no leader"),
    ({"action": "add_server", "node": "n6"}, "no leader"),
    ({"action": "remove_server", "node": "n1"}, "no leader"),
    ({"action": "transfer"}, "no leader"),
    ({"action": "transfer", "node": "n2"}, "no leader"),
]


@pytest.mark.parametrize(("payload", "words"), REFUSED_NOW, ids=[p["action"] for p, _ in REFUSED_NOW])
def test_a_command_the_cluster_cannot_do_now_is_refused(browser: Browser, payload: dict[str, Any],
                                                        words: str) -> None:
    """The simulation thread checks the cluster's state too, and refuses without changing anything."""
    before = comparable(browser.state())
    error = browser.error_for(payload)
    assert words in error["message"]
    assert comparable(browser.state()) == before


def test_crashing_a_crashed_node_and_timing_out_a_leader_are_refused(browser: Browser) -> None:
    """crash needs a running node; timeout needs a follower."""
    elected = elect(browser)
    leader = leader_of(elected)
    assert "follower" in browser.error_for({"action": "timeout", "node": leader})["message"]
    browser.send("crash", node="n1" if leader != "n1" else "n2")
    browser.wait("batch", lambda b: "interventions" in b)
    before = comparable(browser.state())
    crashed = "n1" if leader != "n1" else "n2"
    assert "crashed" in browser.error_for({"action": "crash", "node": crashed})["message"]
    assert "crashed" in browser.error_for({"action": "timeout", "node": crashed})["message"]
    assert comparable(browser.state()) == before


def test_membership_and_transfer_requests_that_make_no_sense_are_refused(browser: Browser) -> None:
    """The leader's configuration decides: no re-adding a member, no removing a stranger, no handing over to oneself."""
    elected = elect(browser)
    leader = leader_of(elected)
    assert leader is not None
    follower = next(n for n in elected["ids"] if n != leader)
    before = comparable(browser.state())
    refusals = [
        ({"action": "add_server", "node": follower}, "already a member"),
        ({"action": "transfer", "node": leader}, "already leads"),
    ]
    for payload, words in refusals:
        assert words in browser.error_for(payload)["message"]
    assert comparable(browser.state()) == before
    browser.send("crash", node=follower)
    browser.wait("batch", lambda b: "interventions" in b)
    assert "crashed" in browser.error_for({"action": "transfer", "node": follower})["message"]
    for name in ("n6", "n7", "n8", "n9"):
        browser.send("add_server", node=name)
    browser.wait("batch", lambda b: b.get("ids", [])[-1:] == ["n9"])
    before = comparable(browser.state())
    assert "at most 9" in browser.error_for({"action": "add_server"})["message"]
    assert comparable(browser.state()) == before


def test_a_removed_server_is_not_a_member_any_more(browser: Browser) -> None:
    """Once removed, a server cannot be removed again; adding it back makes it a member again."""
    elected = elect(browser)
    leader = leader_of(elected)
    follower = next(n for n in elected["ids"] if n != leader)
    browser.send("remove_server", node=follower)
    run_until(browser, lambda v: follower not in members(v))
    assert "not a member" in browser.error_for({"action": "remove_server", "node": follower})["message"]
    browser.send("add_server", node=follower)
    back = run_until(browser, lambda v: follower in members(v))
    assert [i["action"] for i in back["interventions"]] == ["remove_server", "add_voter"]


def test_unknown_socket_events_get_an_error(browser: Browser) -> None:
    """An event other than 'command' is answered with an error, not ignored silently or fatal."""
    browser.client.emit("format", {"disk": "c"})
    assert "unknown event" in browser.wait("error")["message"]


# -- many browsers ------------------------------------------------------------------------------------------


def test_every_browser_sees_what_one_of_them_does(visualizer: Visualizer) -> None:
    """A lecturer's crash reaches every student's page; an error goes only to who caused it."""
    lecturer, student = Browser(visualizer), Browser(visualizer)
    lecturer.send("crash", node="n3")
    for browser in (lecturer, student):
        batch = browser.wait("batch", lambda b: b.get("nodes", {}).get("n3", {}).get("up") is False)
        assert batch["interventions"][-1] == {**batch["interventions"][-1], "action": "crash", "args": {"node": "n3"}}
    lecturer.send("crash", node="n9")
    lecturer.wait("error")
    time.sleep(0.3)
    student._pump()
    assert not [m for m in student.inbox if m["name"] == "error"]


def test_a_browser_that_joins_later_sees_the_same_state(visualizer: Visualizer) -> None:
    """A late joiner's snapshot equals what the first browser has built from snapshot plus batches."""
    first = Browser(visualizer)
    elect(first)
    first.send("write", key="a", value="1")
    first.wait("batch", lambda b: "clients" in b)
    late = Browser(visualizer)
    assert comparable(late.snapshot)["nodes"] == comparable(first.state())["nodes"]


# -- fuzzing -------------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = ["node", "key", "value", "speed", "t", "groups", "src", "dst", "flight", "nodes", "seed", "name",
               "do", "run", "func", "loss", "delay", "jitter", "duplicate", "reorder", "extra"]


@given(action=st.sampled_from(sorted(PARSERS)) | st.text(max_size=12),
       fields=st.dictionaries(st.sampled_from(FIELD_NAMES), JSON_VALUES, max_size=5))
@settings(max_examples=200, deadline=None)
def test_checking_a_payload_only_ever_refuses_with_a_command_error(action: str, fields: dict[str, Any]) -> None:
    """Whatever a browser sends, the checker returns a command or raises CommandError, nothing else."""
    try:
        command = parse_command({"action": action, **fields}, ["n1", "n2", "n3"])
    except CommandError as err:
        assert str(err)
    else:
        assert command.action in PARSERS


def random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 2 else 6)
    simple = [None, rng.random() < 0.5, rng.randint(-5, 20), rng.uniform(-1, 3), rng.choice(["n1", "n2", "n9", ""]),
              "".join(rng.choice("ab \n✓x") for _ in range(rng.randint(0, 5)))]
    if choice < 6:
        return simple[choice]
    if choice < 8:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(FIELD_NAMES): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def test_a_stream_of_random_payloads_never_stops_the_server(browser: Browser) -> None:
    """Junk and valid commands mixed at random: each is refused or applied, and the server lives on."""
    rng = random.Random(7)
    actions = sorted(set(PARSERS) - {"import", "reset", "preset"})  # the slow ones have their own tests
    for _ in range(150):
        payload = {"action": rng.choice(actions)}
        payload.update({rng.choice(FIELD_NAMES): random_value(rng) for _ in range(rng.randint(0, 4))})
        browser.client.emit("command", payload)
    for junk in (None, 7, "x", [1, 2], {"action": None}):
        browser.client.emit("command", junk)
    errors: list[dict[str, Any]] = []
    browser.send("hello")
    state: dict[str, Any] | None = None
    deadline = time.monotonic() + WAIT
    while state is None and time.monotonic() < deadline:
        for message in browser.client.get_received():
            if message["name"] == "error":
                errors.append(message["args"][0])
            elif message["name"] == "snapshot":
                state = message["args"][0]
        time.sleep(0.01)
    assert state is not None and state["ids"][:5] == ["n1", "n2", "n3", "n4", "n5"]
    assert browser.client.is_connected()
    assert len(errors) > 50, "most random payloads are refused"
    internal = [e for e in errors if "internal" in e["message"]]
    assert not internal, "every refusal was an expected one, not a crash caught at the last moment"


def test_a_snapshot_keeps_the_first_election_after_five_minutes_of_heartbeats() -> None:
    """The feed is for elections and commits: heartbeats must not push them out of a full snapshot."""
    from visualizer.cluster import VisualCluster
    from visualizer.views import FEED_KEEPS, FEED_TAIL, StateTracker

    cluster = VisualCluster(5, seed=1)
    try:
        tracker = StateTracker(cluster)
        cluster.events.subscribe(tracker.observe)
        cluster.run_until(lambda c: c.leader() is not None)
        elected_at = cluster.now
        cluster.run_for(300)  # five idle minutes: thousands of heartbeats, no new election
        assert cluster.leader() is not None and len(cluster.events.events) > 20 * FEED_TAIL
        events = tracker.full()["events"]
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and len(events) <= 2 * FEED_TAIL
        first_leader = [e for e in events if e["kind"] == "state" and e.get("state") == "leader"]
        assert first_leader and first_leader[0]["t"] <= elected_at, "the election fell out of the feed"
        assert all(e["kind"] in FEED_KEEPS for e in events[: len(events) - FEED_TAIL])
    finally:
        cluster.dispose()
