"""Tutorial 8: a real cluster over TCP, and crash recovery.

Until now every cluster lived in one Python process, in virtual time. Here
three ``raft-kv`` processes talk to each other over TCP on 127.0.0.1, keep
their logs in SQLite files, and serve clients over HTTP. We write and read
keys, kill the leader with SIGKILL, watch the two survivors elect a new one,
bring the dead node back from its data directory, stop everything cleanly,
and then read what the processes left on disk: their databases and their
trace files, which hold the same event stream as the simulator's.

Run it with ``python tutorials/08_tcp_cluster.py``. It takes about ten
seconds. Real time is not virtual time: which node wins an election, and how
long it takes, change from run to run. So this script prints only what does
not change: the facts that Raft guarantees. Every port is chosen afresh, and
every process is stopped when the script ends, even if it fails.
"""

# --8<-- [start:imports]
import atexit
import http.client
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tutorial_helpers import step

from raft.events import Event
from raft.kv import Command
from raft.log import LogType
from raft.sim import Cluster
from raft.stores.sqlite_store import SQLiteStore
from raft.tcp_transport import free_loopback_ports

# --8<-- [end:imports]

# --8<-- [start:processes]
T = TypeVar("T")


def http_call(address: str, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], str | None]:
    """One HTTP request with a JSON body: (status, JSON answer, Location header). No redirect is followed."""
    connection = http.client.HTTPConnection(address, timeout=5)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}"), response.getheader("Location")
    finally:
        connection.close()


class Node:
    """One raft-kv process: its command line, its files, and how to talk to it."""

    def __init__(self, node_id: str, raft_port: int, http_port: int, folder: Path,
                 bootstrap: str, http_peers: str) -> None:
        self.id = node_id
        self.raft_address = f"127.0.0.1:{raft_port}"  # Raft traffic between the nodes
        self.http = f"127.0.0.1:{http_port}"  # clients
        self.data_dir = folder / node_id
        self.trace = folder / f"{node_id}.trace.jsonl"
        self.output = folder / f"{node_id}.out"  # what the process prints, to read if something goes wrong
        self.command = [sys.executable, "-m", "raft.kv.service", "--id", node_id,
                        "--bind", self.raft_address, "--http", self.http, "--data-dir", str(self.data_dir),
                        "--bootstrap", bootstrap, "--http-peers", http_peers, "--trace", str(self.trace)]
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped = True  # True until started, and again once we stop it on purpose

    def start(self) -> None:
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        self.stopped = False

    def running(self) -> bool:
        """Whether the process runs; a process that ended without being told to is an error."""
        if self.process is None or self.process.poll() is None:
            return self.process is not None
        if not self.stopped:
            raise RuntimeError(f"{self.id} exited by itself; it printed:\n{self.output.read_text()[-3000:]}")
        return False

    def stop(self, sig: signal.Signals) -> int:
        """Send a signal and wait for the process to end; its exit status."""
        assert self.process is not None
        self.stopped = True
        self.process.send_signal(sig)
        return self.process.wait(timeout=15)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], str | None]:
        return http_call(self.http, method, path, body)

    def status(self) -> dict[str, Any] | None:
        """GET /status, or None if the node does not answer (not started yet, or dead)."""
        if not self.running():
            return None
        try:
            code, answer, _ = self.call("GET", "/status")
        except (OSError, http.client.HTTPException, ValueError):
            return None
        return answer if code == 200 else None


def agreed_leader(nodes: list[Node]) -> Node | None:
    """The leader, once every running node names it and it says it leads; otherwise None."""
    statuses = [(node, node.status()) for node in nodes if node.running()]
    named = {status["leader"] if status else None for _, status in statuses}
    if len(named) != 1 or None in named:
        return None
    leader = next((node for node, _ in statuses if node.id in named), None)  # None if it is dead
    status = leader.status() if leader else None
    return leader if status and status["state"] == "Leader" else None


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll ``condition`` until it returns something; give up after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise TimeoutError(f"waited {timeout} s for {what}")


def yes(fact: bool) -> str:
    return "yes" if fact else "no"


def clean_up(nodes: list[Node], folder: Path) -> None:
    """Kill whatever still runs and delete the folder: no process outlives this script."""
    for node in nodes:
        if node.process is not None and node.process.poll() is None:
            node.stop(signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)
# --8<-- [end:processes]


step("start", "Start three raft-kv processes")
# --8<-- [start:start]
folder = Path(tempfile.mkdtemp(prefix="raft-tutorial-8-"))
ids = ["n1", "n2", "n3"]
ports = free_loopback_ports(6)  # three for Raft traffic, three for HTTP; never fixed numbers
raft_ports, http_ports = ports[:3], ports[3:]
bootstrap = ",".join(f"{i}=127.0.0.1:{port}" for i, port in zip(ids, raft_ports, strict=True))
http_peers = ",".join(f"{i}=127.0.0.1:{port}" for i, port in zip(ids, http_ports, strict=True))
nodes = [Node(i, raft_port, http_port, folder, bootstrap, http_peers)
         for i, raft_port, http_port in zip(ids, raft_ports, http_ports, strict=True)]
atexit.register(clean_up, nodes, folder)  # runs when the script ends, however it ends
for node in nodes:
    node.start()
print("running:", ", ".join(node.id for node in nodes if node.running()))
print("arguments of each:", " ".join(arg for arg in nodes[0].command if arg.startswith("--")))
# --8<-- [end:start]

step("leader", "Wait for a leader")
# --8<-- [start:leader]
leader = wait_for(lambda: agreed_leader(nodes), "a leader that every node names")
status = wait_for(leader.status, "the leader's status")
print("a leader was elected, and all three nodes name it: yes")
print("GET /status answers with:", ", ".join(status))
print("voters:", ", ".join(server["id"] for server in status["configuration"]["servers"]))
# --8<-- [end:leader]

step("write", "Write and read over HTTP")
# --8<-- [start:write]
for body in ({"op": "put", "value": "hello"},
             {"op": "append", "value": ", world"},
             {"op": "cas", "expected": "hello, world", "value": "hello, Raft"}):
    code, answer, _ = leader.call("POST", "/kv/greeting", body)
    print(f"POST /kv/greeting {json.dumps(body)} -> {code}, swapped={answer['swapped']}")
code, answer, _ = leader.call("GET", "/kv/greeting")
print(f"GET /kv/greeting -> {code} {answer}")

# A client that lost the answer sends the same request again, with the same (client, seq).
retry = {"op": "append", "value": "!", "client": "tutorial", "seq": 1}
for attempt in (1, 2):
    code, answer, _ = leader.call("POST", "/kv/greeting", retry)
    print(f"attempt {attempt}: {code}, duplicate={answer['duplicate']}")
print("value:", leader.call("GET", "/kv/greeting")[1]["value"])
# --8<-- [end:write]

step("redirect", "A follower sends clients to the leader")
# --8<-- [start:redirect]
follower = next(node for node in nodes if node is not leader)
code, answer, location = follower.call("GET", "/kv/greeting")
assert location is not None
print(f"a follower answers {code} {answer['error']!r}")
print("the answer names the leader:", yes(answer["leader"] == leader.id))
print("Location is the same path on the leader:", yes(location == f"http://{leader.http}/kv/greeting"))
target = urlsplit(location)
code, answer, _ = http_call(target.netloc, "GET", target.path)  # what `curl -L` does for you
print(f"following it: {code} {answer}")
# --8<-- [end:redirect]

step("kill", "Kill the leader with SIGKILL")
# --8<-- [start:kill]
old, old_term = leader, status["term"]
killed_at = time.monotonic()
print("the old leader's exit status:", old.stop(signal.SIGKILL))  # -9: killed, with no chance to clean up
leader = wait_for(lambda: agreed_leader(nodes), "a new leader")
elapsed = time.monotonic() - killed_at
status = wait_for(leader.status, "the new leader's status")
print("a new leader was elected within 15 s:", yes(elapsed < 15))
print("it is one of the survivors, in a later term:", yes(leader is not old and status["term"] > old_term))
print("GET /kv/greeting ->", leader.call("GET", "/kv/greeting")[1]["value"])
code, answer, _ = leader.call("POST", "/kv/counter", {"op": "put", "value": "1"})
print(f"a write with one node of three down: {code} (two of three are a majority)")
# --8<-- [end:kill]

step("restart", "Restart the killed node from its data directory")
# --8<-- [start:restart]
old.start()  # the very same command; --bootstrap is ignored, since the data directory is not empty


def caught_up() -> dict[str, Any] | None:
    mine, theirs = old.status(), leader.status()
    if mine and theirs and mine["leader"] == leader.id and mine["applied_index"] >= theirs["commit_index"]:
        return mine
    return None


mine = wait_for(caught_up, "the restarted node to catch up")
theirs = wait_for(leader.status, "the leader's status")
print("it is back, as:", mine["state"])
print("it follows the new leader:", yes(mine["leader"] == leader.id))
print("it has applied all the leader committed, the write it missed included:",
      yes(mine["applied_index"] >= theirs["commit_index"]))
# --8<-- [end:restart]

step("stop", "Stop every node with SIGTERM")
# --8<-- [start:stop]
last_word = wait_for(old.status, "the restarted node's status")  # its last report before it stops
print("exit statuses:", {node.id: node.stop(signal.SIGTERM) for node in nodes})
# --8<-- [end:stop]

step("disk", "What the killed node keeps on disk")
# --8<-- [start:disk]
print("data directory:", sorted(path.name for path in old.data_dir.iterdir()))
print("snapshots:", sorted(path.name for path in (old.data_dir / "snapshots").iterdir()))
with SQLiteStore(old.data_dir / "raft.db") as store:
    entries = [store.get_log(index) for index in range(store.first_index(), store.last_index() + 1)]
    current_term = store.get_uint64(b"CurrentTerm")  # Figure 2: currentTerm
    voted_for = store.get(b"LastVoteCand")  # Figure 2: votedFor (hashicorp stores the address)
print("the commands in its log, in order:")
for entry in entries:
    if entry.type == LogType.LogCommand:
        print("  ", Command.decode(entry.data).describe())
print("its other entries:", ", ".join(sorted({str(e.type) for e in entries if e.type != LogType.LogCommand})))
print("currentTerm is the term it last reported:", yes(current_term == last_word["term"]))
print("which is later than the term it led:", yes(current_term > old_term))
print("votedFor is itself (its last vote, in the election it won):", yes(voted_for == old.raft_address.encode()))
# --8<-- [end:disk]

step("trace", "Read the traces: the simulator's event stream, from real processes")
# --8<-- [start:trace]
events: list[Event] = []
for node in nodes:
    with node.trace.open(encoding="utf-8") as lines:
        events += [Event.from_dict(json.loads(line)) for line in lines]
events.sort(key=lambda event: event.t)
print("every line of the three trace files is an Event: yes")
print("t is wall-clock time (Unix seconds):", yes(min(e.t for e in events) > 1e9))

leaders: dict[int, set[str]] = {}
for event in events:
    if event.kind == "state" and event["state"] == "leader":
        leaders.setdefault(event["term"], set()).add(event.node)
print("at most one leader in each term (Election Safety):", yes(all(len(n) == 1 for n in leaders.values())))

# raft-sim check-trace checks Figure 3's properties on recorded traces, after
# the fact: here the three files of this real run, read as one run.
verdict = subprocess.run([sys.executable, "-m", "raft.sim.cli", "check-trace", *(str(n.trace) for n in nodes)],
                         capture_output=True, text=True, check=False)
print("raft-sim check-trace on the three files:", verdict.stdout.split(":")[0], f"(exit status {verdict.returncode})")

# The killed node's own story: the state events it wrote, and where it restarted.
story = [e for e in events if e.node == old.id and e.kind == "state"]
restart = [k for k, e in enumerate(story) if str(e.get("reason", "")).startswith("started;")][1]
print("its state just before the kill:", story[restart - 1]["state"])
print("its state after the restart:", story[restart]["state"])

# The same story in the simulator: three nodes, the leader crashes, then comes back.
cluster = Cluster(nodes=3, seed=8)
first = cluster.wait_leader()
cluster.apply(b"put greeting hello")
cluster.crash(first)
cluster.run_until(lambda c: c.leader() not in (None, first))
cluster.restart(first)
cluster.run_for(3)
simulated = list(cluster.events)
cluster.dispose()


def first_win(stream: list[Event]) -> str:
    """The first 'became leader' event, without its time, node and term."""
    won = next(e for e in stream if e.kind == "state" and e["state"] == "leader")
    return f"{won.kind} state={won['state']} ({won['reason']}) func={won.func}"


print("real:     ", first_win(events))
print("simulated:", first_win(simulated))
print(f"{'kind':<14} {'real':<5} simulated")
for kind in ("state", "term", "leader", "election", "vote", "tally", "append", "commit", "apply", "configuration"):
    real, sim = yes(any(e.kind == kind for e in events)), yes(any(e.kind == kind for e in simulated))
    print(f"{kind:<14} {real:<5} {sim}")
# --8<-- [end:trace]
