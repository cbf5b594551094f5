"""The simulator: a whole cluster in one process, in virtual time, with faults on demand.

Mirrors: testing.go's ``MakeCluster`` and ``cluster`` type, and hashicorp's
fuzzy/ package (the fault scenarios).

Reading order: ``network`` (a seeded network that delays, drops, duplicates
and reorders), ``cluster`` (``Cluster``: build, drive, crash and partition
nodes), ``fuzz`` (hashicorp's fuzzy scenarios plus crashes and snapshots,
checked by ``raft.checkers``), ``cli`` (``raft-sim``).

Dependencies point one way: the protocol (``raft.*``) knows nothing of this
package; the checkers know the protocol; the simulator uses both; the CLI
and the visualizer sit on top.
"""

from raft.sim.cluster import (
    RECORDABLE_CONFIG,
    RECORDABLE_FAULTS,
    ApplyResult,
    Cluster,
    Intervention,
    NodeHandle,
    SimulationError,
    make_cluster,
    make_cluster_no_bootstrap,
)
from raft.sim.network import LinkFaults, SimNetwork

__all__ = [
    "RECORDABLE_CONFIG",
    "RECORDABLE_FAULTS",
    "ApplyResult",
    "Cluster",
    "Intervention",
    "LinkFaults",
    "NodeHandle",
    "SimNetwork",
    "SimulationError",
    "make_cluster",
    "make_cluster_no_bootstrap",
]
