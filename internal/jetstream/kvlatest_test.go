package jetstream

import (
	"testing"
	"time"

	"dcon"
	"dcon/internal/jetstream/natstest"
	"dcon/internal/stats"
)

var _ stats.Peers = (*Store)(nil)

// TestFleetMetricsAcrossNodes: three nodes deliver for the same connector,
// each counting its own attempts and flushing them to the statistics bucket;
// any node's Fleet answers the sum, and a node's own unflushed attempts
// count at once.
func TestFleetMetricsAcrossNodes(t *testing.T) {
	t.Parallel()
	h := &storeHarness{srv: natstest.StartServer(t, nil)}
	p := h.prefix()
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0.Add(time.Hour) }
	type node struct {
		store   *Store
		tracker *stats.Tracker
		fleet   *stats.Fleet
	}
	nodes := make(map[string]*node)
	for _, name := range []string{"a", "b", "c"} {
		s := h.open(t, p, name)
		tr, err := stats.New(stats.Config{Store: s, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		f, err := stats.NewFleet(tr, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes[name] = &node{s, tr, f}
	}
	observe := func(n *node, ok bool, latency time.Duration, count int) {
		for i := range count {
			o := &dcon.Outcome{ConnectorID: "c1", Latency: latency, At: t0.Add(time.Duration(i) * time.Second)}
			if !ok {
				o.Err = dcon.Errorf(dcon.EUNAVAILABLE, "HTTP 503")
			}
			n.tracker.Observe(o)
		}
	}
	// a: 600 fast successes; b: 394 fast successes and 6 slow failures, so
	// that b alone has a slow p99 and the fleet (0.6 % slow) a fast one.
	observe(nodes["a"], true, 5*time.Millisecond, 600)
	observe(nodes["b"], true, 5*time.Millisecond, 394)
	observe(nodes["b"], false, 3*time.Second, 6)
	for _, name := range []string{"a", "b"} {
		if err := nodes[name].tracker.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// c, which made no attempt, has not flushed: a's unflushed attempt below
	// counts on a only.
	observe(nodes["a"], true, 5*time.Millisecond, 1)

	for _, tc := range []struct {
		node    string
		success int64
	}{{"a", 995}, {"b", 994}, {"c", 994}} {
		m, err := nodes[tc.node].fleet.ConnectorMetrics(t.Context(), "c1")
		if err != nil {
			t.Fatalf("%s: ConnectorMetrics: %v", tc.node, err)
		}
		if m.SuccessCount != tc.success || m.ErrorCount != 6 {
			t.Errorf("%s: %d successes, %d errors; want %d, 6", tc.node, m.SuccessCount, m.ErrorCount, tc.success)
		}
		if m.Latency99p < 5*time.Millisecond || m.Latency99p >= 6250*time.Microsecond {
			t.Errorf("%s: p99 %v, want the fast attempts' (5 ms, at most 25 %% above)", tc.node, m.Latency99p)
		}
	}
	if alone, _ := nodes["b"].tracker.ConnectorMetrics(t.Context(), "c1"); alone.Latency99p < 3*time.Second {
		t.Errorf("b alone: p99 %v, want the slow failures' (3 s)", alone.Latency99p)
	}

	// A deleted connector's statistics go, every node's.
	if err := nodes["c"].store.DeleteStats(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	if got, err := nodes["c"].store.PeerStats(t.Context(), "c1"); err != nil || len(got) != 0 {
		t.Errorf("PeerStats after DeleteStats = %d states, %v; want none", len(got), err)
	}
	if _, err := nodes["c"].store.PeerStats(t.Context(), "c.1"); dcon.ErrorCode(err) != dcon.EINVALID {
		t.Errorf("PeerStats of an invalid id: %v, want EINVALID", err)
	}
}

// TestSecretsRotateAcrossNodes: a secret replaced through one node reaches
// every node's WatchSecret within a second; a replacement over a stale
// revision is refused.
func TestSecretsRotateAcrossNodes(t *testing.T) {
	t.Parallel()
	h := &storeHarness{srv: natstest.StartServer(t, nil)}
	p := h.prefix()
	a, b := h.open(t, p, "a"), h.open(t, p, "b")
	ctx := t.Context()
	if err := a.CreateSecret(ctx, "signing-keys", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 8)
	if err := b.WatchSecret(ctx, "signing-keys", func(val []byte, _ uint64) { seen <- string(val) }); err != nil {
		t.Fatal(err)
	}
	waitSecret(t, seen, "v1") // the value it has when the watch starts

	val, rev, err := a.SecretRevision(ctx, "signing-keys")
	if err != nil || string(val) != "v1" {
		t.Fatalf("SecretRevision = %q, %v", val, err)
	}
	rev2, err := a.UpdateSecret(ctx, "signing-keys", []byte("v2"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("UpdateSecret = revision %d, %v; want one after %d", rev2, err, rev)
	}
	waitSecret(t, seen, "v2")
	if _, err := b.UpdateSecret(ctx, "signing-keys", []byte("v3"), rev); dcon.ErrorCode(err) != dcon.ECONFLICT {
		t.Errorf("UpdateSecret over a stale revision: %v, want ECONFLICT", err)
	}
	if _, _, err := a.SecretRevision(ctx, "none"); dcon.ErrorCode(err) != dcon.ENOTFOUND {
		t.Errorf("SecretRevision of a missing secret: %v, want ENOTFOUND", err)
	}
	// Close stops the watch; a watch on a closed store is refused.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.WatchSecret(ctx, "signing-keys", func([]byte, uint64) {}); err == nil {
		t.Error("WatchSecret on a closed Store succeeded")
	}
}

func waitSecret(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("secret %q, want %q", got, want)
		}
	case <-time.After(time.Second):
		t.Fatalf("secret %q not seen within a second", want)
	}
}
