"""The web visualizer: a live, deterministic Raft cluster in the browser.

Read in this order:

* ``cli.py``        — ``raft-visualizer`` / ``python -m visualizer``: options, port check, browser.
* ``server.py``     — the Flask + Flask-SocketIO app: pages, socket events, broadcasting.
* ``commands.py``   — every message a browser may send, and how it is validated.
* ``simulation.py`` — the one thread that owns the cluster: time control, rewind, branch.
* ``cluster.py``    — ``VisualCluster``, a ``raft.sim.Cluster`` that remembers client
  requests and can start from a preset's hand-made logs.
* ``views.py``      — reading each node's state into plain data, and sending only what changed.
* ``narration.py``  — scenario presets (``presets/*.json``) whose captions wait for events.
* ``sources.py``    — from an event's ``func`` to the Python function and the Go function it mirrors.

The browser never decides anything about the protocol: it renders what the
server sends and sends commands back. The server applies commands between two
simulation callbacks through ``Cluster``'s recorded methods, so a run depends
only on its seed and its recorded interventions, and can be exported, imported
and rewound exactly.
"""
