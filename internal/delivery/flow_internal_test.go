package delivery

import (
	"testing"
	"time"

	"dcon"
	"dcon/internal/webhook"
)

// TestBacklogIsClaimedInBatches: a claim costs an iterator and a seek
// whatever it takes, so a draining connector with attempts in flight claims
// again only once a quarter of its drain window is free — not a delivery
// per attempt that ends.
func TestBacklogIsClaimedInBatches(t *testing.T) {
	cfg := FlowConfig{}
	cfg.setDefaults()
	fs := newFlows(cfg, true, 20000)
	now := time.Unix(1e9, 0)
	fs.parked("c1", "e1", now)
	gs := fs.grants(now, 1000)
	if len(gs) != 1 || gs[0].n != cfg.InitialWindow {
		t.Fatalf("first drain pass: %+v, want one grant of the drain window (%d)", gs, cfg.InitialWindow)
	}
	ts := fs.claimed(gs[0], gs[0].n, "e9", nil)
	// Attempts end one at a time; each success frees its slot and grows both
	// windows by one. Every claim made meanwhile takes a quarter of the
	// drain window at least.
	claims := 0
	for len(ts) > 0 {
		fs.finish("c1", ts[0], webhook.Result{StatusCode: 200, Duration: time.Millisecond}, now)
		ts = ts[1:]
		for _, g := range fs.grants(now, 1000) {
			if quarter := min(claimMin, fs.m["c1"].drainWindow/4); g.n < quarter {
				t.Fatalf("a claim of %d with %d attempts in flight, want %d at least", g.n, len(ts), quarter)
			}
			claims++
			ts = append(ts, fs.claimed(g, g.n, "e9", nil)...)
		}
		if claims > 20 {
			break
		}
	}
	if claims == 0 {
		t.Fatal("no claim while attempts ended")
	}

	// Attempts that hang hold their slots: a round trip after the last
	// claim, whatever is free is claimed.
	fs.finish("c1", ts[0], webhook.Result{StatusCode: 200, Duration: time.Millisecond}, now)
	if gs := fs.grants(now, 1000); len(gs) != 0 {
		t.Fatalf("a claim of %d at once with %d attempts in flight", gs[0].n, len(ts)-1)
	}
	later := now.Add(2 * time.Millisecond)
	if gs := fs.grants(later, 1000); len(gs) != 1 || gs[0].n < 1 {
		t.Fatalf("a round trip after the last claim: %+v, want a claim of what is free", gs)
	}
	if s := fs.state("c1", now); s.Backlog != dcon.BacklogParked {
		t.Errorf("state: %+v", s)
	}
}
