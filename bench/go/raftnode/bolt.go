//go:build bolt

package main

import (
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb"
)

// durableStores opens a raft-boltdb file as the stable store and, behind a
// LogCache of 1024 entries, as the log store: the same shape as our node's
// SQLite store behind its LogCache.
func durableStores(path string) (raft.LogStore, raft.StableStore, error) {
	bolt, err := raftboltdb.NewBoltStore(path)
	if err != nil {
		return nil, nil, err
	}
	cached, err := raft.NewLogCache(1024, bolt)
	return cached, bolt, err
}
