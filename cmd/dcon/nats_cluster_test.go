package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	jsapi "github.com/nats-io/nats.go/jetstream"

	"dcon/internal/jetstream/natstest"
)

// countingReceiver counts, by path and event id, the deliveries it answered
// 200. It takes a few milliseconds per request and answers every tenth with
// a 500, so that retries happen throughout.
type countingReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    map[string]map[string]int // path → event id → 200 answers
	served atomic.Int64
}

func newCountingReceiver(t *testing.T) *countingReceiver {
	t.Helper()
	rc := &countingReceiver{got: map[string]map[string]int{}}
	rc.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		n := rc.served.Add(1)
		select {
		case <-time.After(time.Duration(n%5) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		if n%10 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		rc.mu.Lock()
		if rc.got[r.URL.Path] == nil {
			rc.got[r.URL.Path] = map[string]int{}
		}
		rc.got[r.URL.Path][eventID(body)]++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// caFile writes the receiver's certificate to a PEM file for --ca-file.
func (rc *countingReceiver) caFile(t *testing.T) string {
	return (&testReceiver{Server: rc.Server}).caFile(t)
}

// missing returns, of ids, those that have not reached every path, and the
// number of deliveries beyond the first of those that have.
func (rc *countingReceiver) missing(paths, ids []string) (missing []string, duplicates int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, id := range ids {
		for _, p := range paths {
			switch n := rc.got[p][id]; {
			case n == 0:
				missing = append(missing, p+" "+id)
			case n > 1:
				duplicates += n - 1
			}
		}
	}
	return missing, duplicates
}

// clusterLoad publishes through some nodes, from a few goroutines per node,
// until stopped, and records what was acknowledged.
type clusterLoad struct {
	project string
	device  string
	stop    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	acked    []string                // event ids answered 200
	lastOK   map[*natsNode]time.Time // each node's latest 200
	failures map[int]int             // status (0: no answer) → count
	slowest  time.Duration
}

// start runs workers publishers on each node; a node's publishers end when
// it is killed.
func (l *clusterLoad) start(t *testing.T, nodes []*natsNode, workers int) {
	for w, n := range nodes {
		for i := range workers {
			l.wg.Go(func() { l.publishLoop(t, n, w*workers+i) })
		}
	}
}

func (l *clusterLoad) publishLoop(t *testing.T, n *natsNode, worker int) {
	tick := time.NewTicker(10 * time.Millisecond) // pace: a few hundred publishes a second in all
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		case <-n.dead:
			return
		case <-tick.C:
		}
		var ev struct {
			EventID string `json:"eventId"`
		}
		began := time.Now()
		status, raw := n.api.call("POST", "/v2/projects/"+l.project+"/devices/"+l.device+":publish",
			map[string]any{"temperature": map[string]any{"value": worker*100000 + i}}, &ev)
		took := time.Since(began)
		l.mu.Lock()
		l.slowest = max(l.slowest, took)
		switch {
		case status == http.StatusOK && ev.EventID != "":
			l.acked = append(l.acked, ev.EventID)
			l.lastOK[n] = time.Now()
		case status == http.StatusServiceUnavailable && !isErrorBody(raw, http.StatusServiceUnavailable):
			t.Errorf("a 503 without the contract's error body: %s", raw)
			fallthrough
		default:
			l.failures[status]++
		}
		l.mu.Unlock()
	}
}

// isErrorBody reports whether raw is the contract's error body with code.
func isErrorBody(raw []byte, code int) bool {
	var e struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
	}
	return json.Unmarshal(raw, &e) == nil && e.Error != "" && e.Code == code
}

// ackedCount returns how many publishes were acknowledged so far.
func (l *clusterLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// okSince reports whether every node of nodes acknowledged a publish after t.
func (l *clusterLoad) okSince(nodes []*natsNode, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range nodes {
		if !l.lastOK[n].After(t) {
			return false
		}
	}
	return true
}

// streamLeader returns the server that leads the queue stream's raft group,
// or the first server if none answers.
func streamLeader(t *testing.T, servers []*server.Server, urls string) *server.Server {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jsapi.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "DCON_QUEUE")
	if err == nil && s.CachedInfo().Cluster != nil {
		for _, srv := range servers {
			if srv.Name() == s.CachedInfo().Cluster.Leader {
				return srv
			}
		}
	}
	t.Logf("no leader of DCON_QUEUE found (%v); stopping %s", err, servers[0].Name())
	return servers[0]
}

// TestNATSCluster: three dcon nodes on a 3-server JetStream cluster (R3),
// each connected to every server, under a steady publish load through all
// of them. One dcon node is killed (no drain), then the NATS server leading
// the queue stream is shut down, while the load goes on. Publishes through
// the surviving nodes succeed again within 30 s of the server's death, and
// every acknowledged publish reaches every connector: lost = 0 (duplicates
// are allowed and logged).
func TestNATSCluster(t *testing.T) {
	t.Parallel()
	servers := natstest.StartCluster(t, 3)
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	nc := natsConfig{URLs: strings.Join(urls, ","), Partitions: 4, Replicas: 3, Prefix: "DCON", AckWait: 3 * time.Second}
	rc := newCountingReceiver(t)
	ca := rc.caFile(t)
	a := startNATSNode(t, nc, ca)
	b := startNATSNode(t, nc, ca)
	c := startNATSNode(t, nc, ca)
	project := createProject(a.api)
	for _, n := range []*natsNode{a, b, c} {
		n.api.project = project
	}
	paths := []string{"/c0", "/c1", "/c2"}
	for _, p := range paths {
		createConnector(a.api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + p}})
	}
	dev := createDevice(a.api, "temperature", map[string]string{"name": "hall"})
	waitConnectors(t, []*natsNode{b, c}, project, len(paths))

	phase := 150 // acknowledged publishes per phase
	workers := 2
	if testing.Short() {
		phase, workers = 50, 1
	}
	load := &clusterLoad{project: project, device: dev.id(), stop: make(chan struct{}),
		lastOK: map[*natsNode]time.Time{}, failures: map[int]int{}}
	load.start(t, []*natsNode{a, b, c}, workers)
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(load.stop)
			load.wg.Wait()
		}
	}
	defer stopLoad()
	began := time.Now()

	waitUntil(t, "the first publishes", 30*time.Second, func() bool { return load.ackedCount() >= phase })
	a.stop(0) // killed: no drain, its fetched deliveries are handed back to nobody
	killedA := load.ackedCount()
	t.Logf("%v: node A killed after %d acknowledged publishes", time.Since(began).Round(time.Millisecond), killedA)

	waitUntil(t, "publishes after node A's death", 30*time.Second, func() bool { return load.ackedCount() >= killedA+phase })
	victim := streamLeader(t, servers, nc.URLs)
	victim.Shutdown()
	died := time.Now()
	killedS := load.ackedCount()
	t.Logf("%v: NATS server %s (the queue stream's leader) shut down after %d acknowledged publishes",
		time.Since(began).Round(time.Millisecond), victim.Name(), killedS)

	// Every surviving node accepts publishes again within 30 s.
	waitUntil(t, "publishes through every surviving node after the server's death", 30*time.Second, func() bool {
		return load.okSince([]*natsNode{b, c}, died)
	})
	t.Logf("%v: both surviving nodes acknowledge publishes again, %v after the server's death",
		time.Since(began).Round(time.Millisecond), time.Since(died).Round(time.Millisecond))
	waitUntil(t, "publishes after the server's death", 30*time.Second, func() bool { return load.ackedCount() >= killedS+phase })
	stopLoad()

	load.mu.Lock()
	acked := append([]string(nil), load.acked...)
	t.Logf("%v: load stopped: %d publishes acknowledged, failures by status %v, slowest publish %v",
		time.Since(began).Round(time.Millisecond), len(acked), load.failures, load.slowest.Round(time.Millisecond))
	load.mu.Unlock()

	// Copies leased to node A's hand-off, or whose outcome could not be
	// recorded while the stream had no leader, are due again when their
	// lease (40 s) ends: let the survivors' clocks run ahead, a minute now
	// and another every 10 s, as time would pass. Not faster: a node hands
	// a fetched delivery due more than ParkAfter (2 min) after its latest
	// Claim's now back to the server for that long in real time, so clocks
	// that run ahead faster than Claims follow would park deliveries for
	// minutes.
	deadline := time.Now().Add(2 * time.Minute)
	jumped := time.Duration(0)
	for next := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		missing, dups := rc.missing(paths, acked)
		if len(missing) == 0 {
			t.Logf("%v: all %d acknowledged events reached all %d connectors: lost 0, %d duplicates, %d requests served",
				time.Since(began).Round(time.Millisecond), len(acked), len(paths), dups, rc.served.Load())
			break
		}
		if time.Now().After(deadline) {
			logNATSQueue(t, nc.URLs)
			t.Fatalf("after 2 minutes, %d of the %d acknowledged deliveries never arrived (lost), e.g. %v",
				len(missing), len(acked)*len(paths), missing[:min(len(missing), 10)])
		}
		if time.Now().After(next) {
			jumped += time.Minute
			b.jump(t, jumped)
			c.jump(t, jumped)
			next = time.Now().Add(10 * time.Second)
		}
	}
}
