package stats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"dcon"
	"dcon/internal/httpapi"
	"dcon/internal/stats"
)

var _ httpapi.MetricsReader = (*stats.Fleet)(nil)

// peerStores are the stores of the other nodes of a fleet, by node name.
type peerStores struct {
	nodes map[string]*memStore
	err   error
}

func (p *peerStores) PeerStats(_ context.Context, connectorID string) (map[string][]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	out := map[string][]byte{}
	for node, s := range p.nodes {
		s.mu.Lock()
		if v, ok := s.m[connectorID]; ok {
			out[node] = v
		}
		s.mu.Unlock()
	}
	return out, nil
}

// fleetNode is one node's attempts: observed by a Tracker that flushes to
// its own store.
type fleetNode struct {
	attempts []attempt
}

func TestFleetMetrics(t *testing.T) {
	t.Parallel()
	fast, slow := 10*time.Millisecond, 2*time.Second
	tests := []struct {
		name    string
		local   []attempt
		peers   []fleetNode
		success int64
		errors  int64
		p99     time.Duration // the true p99 of the union; the answer is in [p99, 1.25 × p99)
	}{
		{name: "no attempts anywhere", peers: []fleetNode{{}, {}}},
		{name: "only this node", local: []attempt{{true, fast, 7}}, success: 7, p99: fast},
		{name: "only another node", peers: []fleetNode{{[]attempt{{false, slow, 3}}}}, errors: 3, p99: slow},
		{name: "counts add up over three nodes",
			local:   []attempt{{true, fast, 5}, {false, fast, 1}},
			peers:   []fleetNode{{[]attempt{{true, fast, 7}}}, {[]attempt{{true, fast, 11}, {false, fast, 2}}}},
			success: 23, errors: 3, p99: fast},
		{name: "p99 of the union, not the largest node's p99",
			// Alone, the peer's p99 is 2 s; in the union its 10 slow attempts are 1 %.
			local: []attempt{{true, fast, 990}}, peers: []fleetNode{{[]attempt{{false, slow, 10}}}},
			success: 990, errors: 10, p99: fast},
		{name: "p99 of the union, over 1 % slow",
			local: []attempt{{true, fast, 985}}, peers: []fleetNode{{[]attempt{{false, slow, 15}}}},
			success: 985, errors: 15, p99: slow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := func() time.Time { return t0.Add(time.Hour) }
			peers := &peerStores{nodes: map[string]*memStore{}}
			for i, n := range tt.peers {
				st := newMemStore()
				tr := newTracker(t, stats.Config{Store: st, Now: now})
				observeAll(tr, "c1", n.attempts)
				if err := tr.Flush(t.Context()); err != nil {
					t.Fatal(err)
				}
				peers.nodes[string(rune('a'+i))] = st
			}
			local := newTracker(t, stats.Config{Now: now})
			observeAll(local, "c1", tt.local)
			f, err := stats.NewFleet(local, peers, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := f.ConnectorMetrics(t.Context(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if m.SuccessCount != tt.success || m.ErrorCount != tt.errors {
				t.Errorf("counts %d ok, %d errors; want %d, %d", m.SuccessCount, m.ErrorCount, tt.success, tt.errors)
			}
			if tt.p99 == 0 {
				if m.Latency99p != 0 {
					t.Errorf("p99 %v without data, want 0", m.Latency99p)
				}
				return
			}
			if m.Latency99p < tt.p99 || float64(m.Latency99p) >= 1.25*float64(tt.p99) {
				t.Errorf("p99 %v, want in [%v, 1.25 × %v)", m.Latency99p, tt.p99, tt.p99)
			}
		})
	}
}

// TestFleetWindow: a node that stopped flushing (dead) keeps counting until
// its attempts are older than the window, measured at this node's now.
func TestFleetWindow(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	dead := newMemStore()
	tr := newTracker(t, stats.Config{Store: dead, Now: clk.Now})
	observe(tr, "c1", true, time.Millisecond, t0)
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	local := newTracker(t, stats.Config{Now: clk.Now})
	f, err := stats.NewFleet(local, &peerStores{nodes: map[string]*memStore{"dead": dead}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after time.Duration
		want  int64
	}{
		{0, 1},
		{2 * time.Hour, 1},
		{dcon.MetricsWindow - stats.BucketWidth, 1},
		{dcon.MetricsWindow, 0},
	} {
		clk.Set(t0.Add(tc.after))
		m, err := f.ConnectorMetrics(t.Context(), "c1")
		if err != nil {
			t.Fatal(err)
		}
		if m.SuccessCount != tc.want {
			t.Errorf("%v after the dead node's attempt: %d successes, want %d", tc.after, m.SuccessCount, tc.want)
		}
	}
}

func TestFleetSkipsUndecodableStates(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return t0 }
	bad := newMemStore()
	bad.m["c1"] = []byte("not a state")
	good := newMemStore()
	tr := newTracker(t, stats.Config{Store: good, Now: now})
	observe(tr, "c1", false, time.Millisecond, t0)
	if err := tr.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := stats.NewFleet(newTracker(t, stats.Config{Now: now}), &peerStores{nodes: map[string]*memStore{"bad": bad, "good": good}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.ConnectorMetrics(t.Context(), "c1")
	if err != nil || m.ErrorCount != 1 {
		t.Errorf("ConnectorMetrics = %+v, %v; want the good node's 1 error", m, err)
	}
}

func TestFleetFailsWhenPeersCannotBeRead(t *testing.T) {
	t.Parallel()
	down := dcon.Errorf(dcon.EUNAVAILABLE, "the store is unavailable")
	f, err := stats.NewFleet(newTracker(t, stats.Config{}), &peerStores{err: down}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ConnectorMetrics(t.Context(), "c1"); !errors.Is(err, down) {
		t.Errorf("ConnectorMetrics error %v, want %v", err, down)
	}
	if _, err := stats.NewFleet(nil, &peerStores{}, nil); err == nil {
		t.Error("NewFleet without a Tracker succeeded")
	}
}

// observeAll records attempts a second apart from t0.
func observeAll(tr *stats.Tracker, connectorID string, as []attempt) {
	at := t0
	for _, a := range as {
		for range a.n {
			observe(tr, connectorID, a.ok, a.latency, at)
			at = at.Add(time.Second)
		}
	}
}
