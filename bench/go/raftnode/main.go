// Command raftnode is one hashicorp/raft node for bench/realworld.py, the
// third column next to raft-textbook (bench/raft_node.py) and PySyncObj
// (bench/pysyncobj_node.py).
//
// It uses only hashicorp/raft's public API: raft.DefaultConfig with nothing
// changed but LocalID, raft.NewTCPTransport on 127.0.0.1, raft.NewInmemStore
// for the in-memory log or raft-boltdb (behind raft.NewLogCache, as our
// SQLite store sits behind our LogCache) for the durable one, and
// raft.NewInmemSnapshotStore. Every node bootstraps the same three-server
// configuration, as the Python node does.
//
// It speaks the same protocol as the two Python nodes: the same flags, and
// one JSON object per line on stdout, {"event": "ready"}, {"event":
// "leader"}, {"event": "start"} when the client begins, and on the leader
// {"event": "result"}. Modes:
//
//   - throughput: the leader keeps -inflight commands of 16 bytes
//     outstanding for -seconds (raft.Apply futures, waited for oldest
//     first) and counts the acknowledged ones;
//   - latency: the leader applies one command at a time;
//   - idle: just run (for the failover measurement).
//
// Build (GOPATH mode, offline, against Debian's golang-github-hashicorp-raft-dev
// and golang-github-hashicorp-raft-boltdb-dev; without the tag "bolt" the node
// builds without raft-boltdb and refuses -store bolt):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -tags bolt -o raftnode ./bench/go/raftnode
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// counter is the state machine of all three sides: it counts applied commands.
type counter struct{ applied uint64 }

func (c *counter) Apply(*raft.Log) interface{} { return atomic.AddUint64(&c.applied, 1) }

func (c *counter) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(atomic.LoadUint64(&c.applied)), nil
}

func (c *counter) Restore(source io.ReadCloser) error {
	defer source.Close()
	var applied uint64
	err := json.NewDecoder(source).Decode(&applied)
	atomic.StoreUint64(&c.applied, applied)
	return err
}

// countSnapshot exists because the default config snapshots every two
// minutes or so; a benchmark run is shorter, but the node must not panic if one comes.
type countSnapshot uint64

func (s countSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(uint64(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s countSnapshot) Release() {}

var out = struct {
	sync.Mutex
	*json.Encoder
}{Encoder: json.NewEncoder(os.Stdout)}

// emit prints one JSON line; os.Stdout is unbuffered, so the harness sees it at once.
func emit(fields map[string]interface{}) {
	out.Lock()
	defer out.Unlock()
	if err := out.Encode(fields); err != nil {
		os.Exit(1)
	}
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

type options struct {
	id, peers, mode, store, dataDir string
	seconds                         float64
	inflight                        int
}

func parseOptions() options {
	var o options
	flag.StringVar(&o.id, "id", "", "this node's ID")
	flag.StringVar(&o.peers, "peers", "", "id=host:port,...")
	flag.StringVar(&o.mode, "mode", "", "throughput, latency or idle")
	flag.Float64Var(&o.seconds, "seconds", 5, "length of the run")
	flag.IntVar(&o.inflight, "inflight", 1000, "commands the pipelined client keeps outstanding")
	flag.StringVar(&o.store, "store", "memory", "memory or bolt")
	flag.StringVar(&o.dataDir, "data-dir", ".", "where the bolt file goes")
	flag.Parse()
	if o.id == "" || o.peers == "" || (o.mode != "throughput" && o.mode != "latency" && o.mode != "idle") ||
		(o.store != "memory" && o.store != "bolt") || o.inflight < 1 {
		flag.Usage()
		os.Exit(2)
	}
	return o
}

func stores(o options) (raft.LogStore, raft.StableStore, error) {
	if o.store == "memory" {
		store := raft.NewInmemStore()
		return store, store, nil
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return nil, nil, err
	}
	return durableStores(filepath.Join(o.dataDir, o.id+".bolt"))
}

// start builds the node and bootstraps the cluster; ids maps each address back to its ID.
func start(o options, fsm raft.FSM) (*raft.Raft, map[raft.ServerAddress]string, error) {
	var configuration raft.Configuration
	ids := map[raft.ServerAddress]string{}
	for _, item := range strings.Split(o.peers, ",") {
		parts := strings.SplitN(item, "=", 2)
		if len(parts) != 2 {
			return nil, nil, fmt.Errorf("peer %q is not id=host:port", item)
		}
		address := raft.ServerAddress(parts[1])
		ids[address] = parts[0]
		configuration.Servers = append(configuration.Servers,
			raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(parts[0]), Address: address})
	}
	var self raft.ServerAddress
	for address, id := range ids {
		if id == o.id {
			self = address
		}
	}
	advertise, err := net.ResolveTCPAddr("tcp", string(self))
	if err != nil {
		return nil, nil, err
	}
	transport, err := raft.NewTCPTransport(string(self), advertise, 3, 2*time.Second, os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	config := raft.DefaultConfig()
	config.LocalID = raft.ServerID(o.id) // the one setting we change
	logs, stable, err := stores(o)
	if err != nil {
		return nil, nil, err
	}
	snapshots := raft.NewInmemSnapshotStore()
	if err := raft.BootstrapCluster(config, logs, stable, snapshots, transport, configuration); err != nil {
		return nil, nil, err
	}
	node, err := raft.NewRaft(config, fsm, logs, stable, snapshots, transport)
	return node, ids, err
}

// waitForLeadership reports every change of leader and returns once this
// node leads (never, in idle mode: it keeps reporting).
func waitForLeadership(o options, node *raft.Raft, ids map[raft.ServerAddress]string) {
	reported := "?"
	for {
		var current interface{}
		name := ids[node.Leader()]
		if name != "" {
			current = name
		}
		if name != reported {
			reported = name
			emit(map[string]interface{}{"event": "leader", "node": o.id, "leader": current, "t": now()})
		}
		if node.State() == raft.Leader && o.mode != "idle" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// throughput keeps o.inflight applies outstanding and waits for the oldest.
// A future that never completes cannot stall the report: a watchdog
// reports what was acknowledged two seconds after the deadline.
func throughput(o options, node *raft.Raft, fsm *counter) {
	payload := []byte("xxxxxxxxxxxxxxxx")
	var done uint64
	var once sync.Once
	begin := time.Now()
	report := func(stalled bool) {
		once.Do(func() {
			elapsed := time.Since(begin).Seconds()
			acked := atomic.LoadUint64(&done)
			emit(map[string]interface{}{"event": "result", "mode": "throughput", "ops": acked,
				"applied": atomic.LoadUint64(&fsm.applied), "seconds": elapsed,
				"rate": float64(acked) / elapsed, "stalled": stalled})
			os.Exit(0)
		})
	}
	deadline := begin.Add(time.Duration(o.seconds * float64(time.Second)))
	time.AfterFunc(time.Until(deadline)+2*time.Second, func() { report(true) })
	emit(map[string]interface{}{"event": "start", "node": o.id, "t": now()})
	pending := make([]raft.ApplyFuture, o.inflight) // a ring, oldest at head
	head, outstanding := 0, 0
	for time.Now().Before(deadline) {
		for ; outstanding < o.inflight; outstanding++ {
			pending[(head+outstanding)%o.inflight] = node.Apply(payload, 0)
		}
		oldest := pending[head]
		head, outstanding = (head+1)%o.inflight, outstanding-1
		if oldest.Error() == nil {
			atomic.AddUint64(&done, 1)
		}
	}
	report(false)
}

func latency(o options, node *raft.Raft) {
	payload := []byte("xxxxxxxxxxxxxxxx")
	latencies := []float64{}
	emit(map[string]interface{}{"event": "start", "node": o.id, "t": now()})
	begin := time.Now()
	for time.Since(begin).Seconds() < o.seconds {
		sent := time.Now()
		if node.Apply(payload, 0).Error() == nil {
			latencies = append(latencies, time.Since(sent).Seconds())
		}
	}
	emit(map[string]interface{}{"event": "result", "mode": "latency", "latencies": latencies})
}

func main() {
	o := parseOptions()
	fsm := &counter{}
	node, ids, err := start(o, fsm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftnode:", err)
		os.Exit(1)
	}
	emit(map[string]interface{}{"event": "ready", "node": o.id})
	waitForLeadership(o, node, ids)
	time.Sleep(500 * time.Millisecond) // as the Python nodes do: let the new leader settle
	switch o.mode {
	case "throughput":
		throughput(o, node, fsm)
	case "latency":
		latency(o, node)
	}
	select {} // idle, or a finished latency run: stay up until the harness kills us
}
