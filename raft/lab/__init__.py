"""The lab track: students write the core of Raft themselves, graded by the project's own checkers.

Mirrors: nothing in hashicorp/raft. The course most people learn Raft from
has students write election, replication, persistence and snapshots against
a timing-based test suite; here the grader is the fault simulator, which
replays any failure exactly from its seed.

Reading order: ``labs`` (the labs: what each asks for, which functions it
stubs, its checks and its seed budget), ``stubs`` (cutting a function's body
out of the source and putting the reference back, with ``ast``),
``checks`` (each lab's focused checks), ``grade`` (checks, then the fault
simulator, and the report), ``cli`` (``raft-lab``).

This package sits above the simulator: it imports ``raft.sim``,
``raft.checkers`` and ``raft.kv``, and nothing imports it.
"""
