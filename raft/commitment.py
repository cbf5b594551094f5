"""How a leader decides that an entry is committed.

Paper:   Figure 2 ("Rules for Servers", Leaders, last rule); §5.3; §5.4.2 and Figure 8.
Mirrors: commitment.go.
Read before: replication.py, which reports each follower's progress here.

The leader records, for every voter, the highest index known to be stored on
that voter (its *match index*; the leader's own counts too). An entry is
committed once a majority of voters store it. Sorting the match indexes and
taking the one in the middle gives the highest index stored on a majority.
"""

from __future__ import annotations

from raft.configuration import Configuration, ServerSuffrage
from raft.runtime.channels import Chan
from raft.util import async_notify_ch


class Commitment:
    """The leader's match index per voter, and the commit index they imply.

    Mirrors: commitment.go commitment.
    Differs: no mutex; the replication tasks and the main loop share one thread.
    """

    def __init__(self, commit_ch: Chan[bool], configuration: Configuration, start_index: int) -> None:
        # Poked (without waiting) whenever commit_index moves.
        self.commit_ch = commit_ch
        # Figure 2: matchIndex[], but only for voters: nonvoters never count.
        self.match_indexes: dict[str, int] = {
            s.id: 0 for s in configuration.servers if s.suffrage == ServerSuffrage.Voter
        }
        # Figure 2: commitIndex, as seen by this leader.
        self.commit_index = 0
        # The first index of this leader's term (its no-op). Nothing below it
        # may be committed by counting replicas: see recalculate().
        self.start_index = start_index

    def set_configuration(self, configuration: Configuration) -> None:
        """Track the voters of a new configuration, keeping known match indexes."""
        old = self.match_indexes
        self.match_indexes = {
            s.id: old.get(s.id, 0) for s in configuration.servers if s.suffrage == ServerSuffrage.Voter
        }
        self.recalculate()

    def get_commit_index(self) -> int:
        return self.commit_index

    def match(self, server: str, match_index: int) -> None:
        """Record that ``server`` stores every entry up to ``match_index``.

        Paper:   Figure 2, Leaders: "If successful: update nextIndex and matchIndex".
        Mirrors: commitment.go match.

        Match indexes only grow: a late answer to an old request must not
        move one back.
        """
        previous = self.match_indexes.get(server)
        if previous is not None and match_index > previous:
            self.match_indexes[server] = match_index
            self.recalculate()

    def recalculate(self) -> None:
        """Move the commit index to the highest index stored on a quorum of voters.

        Paper:   Figure 2, Leaders, last rule; §5.4.2 and Figure 8.
        Mirrors: commitment.go recalculate.

        The quorum-th highest match index is stored on a majority. We do not
        move until it reaches start_index, the first entry of this leader's
        term: Figure 8 shows an entry of an older term that looks committed
        and is then overwritten.
        """
        if not self.match_indexes:
            return
        matched = sorted(self.match_indexes.values())
        quorum_match_index = matched[(len(matched) - 1) // 2]
        # Figure 2: "If there exists an N such that N > commitIndex, a majority
        # of matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N".
        # Entries from start_index on are exactly those of the current term.
        if quorum_match_index > self.commit_index and quorum_match_index >= self.start_index:
            self.commit_index = quorum_match_index
            async_notify_ch(self.commit_ch)
