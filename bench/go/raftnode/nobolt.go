//go:build !bolt

package main

import (
	"errors"

	"github.com/hashicorp/raft"
)

// durableStores is what a build without raft-boltdb has: no durable log.
func durableStores(string) (raft.LogStore, raft.StableStore, error) {
	return nil, nil, errors.New("built without raft-boltdb (build with -tags bolt)")
}
