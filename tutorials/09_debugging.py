"""Tutorial 9: debugging with traces and the invariant checker.

Everything a simulated cluster does is an event in one stream. Written to a
file as JSON Lines, that stream is a trace you can search with a few lines of
Python. The invariant checker reads the same stream and stops a run at the
first event that breaks one of Raft's safety properties; the fault simulator
runs whole scenarios and prints one command that replays a failure exactly.

Run it with ``python tutorials/09_debugging.py``.
"""

# --8<-- [start:imports]
import json
import tempfile
from collections import Counter
from pathlib import Path

from tutorial_helpers import step

from raft.events import Event
from raft.sim import Cluster
from raft.sim.bugs import TeachingBugs
from raft.sim.fuzz import FuzzRun

# --8<-- [end:imports]

step("trace", "Write a trace")
# --8<-- [start:trace]
cluster = Cluster(nodes=5, seed=9)
leader = cluster.wait_leader()
cluster.apply(b"set x 1")
cluster.crash(leader)
cluster.run_until(lambda c: c.leader() not in (None, leader))
with tempfile.TemporaryDirectory() as folder:
    trace_file = Path(folder) / "run.jsonl"
    with trace_file.open("w", encoding="utf-8") as out:
        cluster.events.write_jsonl(out)  # `raft-sim run --trace FILE` writes the same format
    lines = trace_file.read_text(encoding="utf-8").splitlines()
cluster.dispose()
print(f"{len(lines)} events; the first and the last:")
print(" ", lines[0])
print(" ", lines[-1])
# --8<-- [end:trace]

step("load", "Load it back and ask questions")
# --8<-- [start:load]
events = [Event.from_dict(json.loads(line)) for line in lines]
print("most common kinds:", Counter(e.kind for e in events).most_common(5))
print("leaders:", [(round(e.t, 3), e.node, e["term"]) for e in events
                   if e.kind == "state" and e["state"] == "leader"])
refused = [e for e in events if e.kind == "vote" and not e["granted"]]
print(f"{len(refused)} refused votes, for these reasons:", sorted({e["reason"] for e in refused}))
# Every event names the Python function that emitted it: look it up in the code.
print("who emits what:", sorted({(e.kind, e.func) for e in events if e.kind in ("commit", "truncate", "vote")}))
# --8<-- [end:load]

step("checker", "A teaching bug, caught by the invariant checker")
# --8<-- [start:checker]
run = FuzzRun("CrashRestart", seed=13, nodes=5, bugs=TeachingBugs(vote_without_log_check=True))
result = run.execute()  # a random workload, with crashes, on a lossy network
print(result.failure)
print("replay with:", result.replay)
# --8<-- [end:checker]

step("investigate", "Why did it happen?")
# --8<-- [start:investigate]
violation = run.cluster.checker.violation  # the cluster's events are still there after the run
assert violation is not None
culprit = violation.event  # the moment a node became leader without a committed entry
print(f"{culprit.node} became leader of term {culprit['term']} at {culprit.t:.3f}s; how did it win?")
election = None
for event in run.cluster.events:
    if event.kind == "election" and event.node == culprit.node and event["term"] == culprit["term"]:
        election = event
        print(f"  {event}")
    elif event.kind == "vote" and event["candidate"] == culprit.node and event["term"] == culprit["term"]:
        print(f"  {event}")
assert election is not None
committed = run.cluster.checker.max_committed
print(f"its log ended at index {election['last_log_index']}, but index {committed} was already committed: "
      f"the election restriction (§5.4.1) was off.")
# --8<-- [end:investigate]

step("replay", "The same command, the same failure")
# --8<-- [start:replay]
again = FuzzRun("CrashRestart", seed=13, nodes=5, bugs=TeachingBugs(vote_without_log_check=True)).execute()
print("identical failure:", again.failure == result.failure)
# --8<-- [end:replay]

step("lincheck", "A bug only the clients can see")
# --8<-- [start:lincheck]
# Without its no-op, a new leader does not know which entries are committed
# and may answer a read with stale data. No safety property of Figure 3
# breaks; the clients' history is simply not linearizable.
result = FuzzRun("CrashRestart", seed=6, nodes=5, bugs=TeachingBugs(skip_leader_noop=True)).execute()
print(result.failure)
# --8<-- [end:lincheck]

step("record", "Record your own interventions and replay them")
# --8<-- [start:record]
cluster = Cluster(nodes=3, seed=11)
cluster.run_until(lambda c: c.leader() is not None)
cluster.partition(["n1"])
cluster.run_for(2)
cluster.submit(b"hello")  # submit is recorded; (apply is a convenience that is not)
cluster.run_for(1)
cluster.heal()
cluster.run_for(2)
recording = cluster.export_run()  # plain JSON: the seed, the settings, every intervention and when
print(json.dumps(recording["interventions"]))
replayed = Cluster.import_run(json.loads(json.dumps(recording)))
print("replayed trace identical:", replayed.trace() == cluster.trace())
cluster.dispose()
replayed.dispose()
# --8<-- [end:record]
