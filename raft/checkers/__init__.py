"""The checkers: how the project shows that a run was correct, instead of assuming it.

Mirrors: the verifiers of hashicorp's fuzzy/ tests (``appendEntriesVerifier``,
VerifyLog, VerifyFSM), grown into checkers of their own.

Reading order: ``invariants`` (the safety properties of Figure 3, checked on
every event), ``linearizability`` (is a history of client calls explained
by one order?), ``lincheck`` (that search on a history file),
``trace_check`` (the invariants over a recorded trace file).

They read events and node state only; they import the protocol, never the
simulator, so the simulator, the CLI and the visualizer can all use them.
"""
