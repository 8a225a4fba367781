package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"dcon"
	"dcon/internal/ingest"
	"dcon/internal/memqueue"
	"dcon/internal/pebble"
)

// expireAll publishes n events and expires their deliveries to connector a,
// as the engine would after 12 hours of failures.
func expireAll(t *testing.T, f *fixture, n int) []dcon.Delivery {
	t.Helper()
	ctx := context.Background()
	for range n {
		if _, err := f.in.Publish(ctx, project, f.dev.ID, dcon.EventTemperature, []byte(`{"value":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	var mine []dcon.Delivery
	for _, d := range f.dispatch.take() {
		if d.ConnectorID == connectorA {
			d.Attempts, d.LastError = 9, "HTTP 503 Service Unavailable"
			mine = append(mine, d)
		}
	}
	if err := f.db.Expire(ctx, mine, now.Add(dcon.MaxEventAge)); err != nil {
		t.Fatal(err)
	}
	return mine
}

const connectorA = "c000000000000000000a"

func TestReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	expired := expireAll(t, f, 3)
	n, err := f.in.Replay(ctx, project, connectorA, dcon.ReplayRequest{EventIDs: []string{expired[1].EventID}})
	if err != nil || n != 1 {
		t.Fatalf("Replay(one) = %d, %v; want 1", n, err)
	}
	got := f.dispatch.take()
	if len(got) != 1 {
		t.Fatalf("dispatched %d, want 1", len(got))
	}
	d := got[0]
	want := expired[1]
	if d.EventID != want.EventID || string(d.Body) != string(want.Body) || d.Attempts != 0 || d.LastError != "" ||
		!d.EventTime.Equal(now) || !d.Due.Equal(now.Add(time.Minute)) {
		t.Errorf("replayed %+v\nwant the original id and body, no attempts, EventTime %v, Due %v", d, now, now.Add(time.Minute))
	}
	n, err = f.in.Replay(ctx, project, connectorA, dcon.ReplayRequest{All: true})
	if err != nil || n != 2 {
		t.Fatalf("Replay(all) = %d, %v; want 2", n, err)
	}
	if got := f.dispatch.take(); len(got) != 2 {
		t.Errorf("dispatched %d, want 2", len(got))
	}
	if dls, _ := f.db.DeadLetters(ctx, connectorA, 10); len(dls) != 0 {
		t.Errorf("dead letters left: %d", len(dls))
	}
	if depth, _ := f.db.Depth(ctx, connectorA); depth != 3 {
		t.Errorf("Depth %d, want 3", depth)
	}
}

func TestReplayInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := memqueue.New()
	f := newFixture(t, func(*pebble.DB) dcon.Queue { return q })
	f.dispatch.queue = q
	var ds []dcon.Delivery
	for i := range ingest.ReplayBatch + 10 {
		ds = append(ds, dcon.Delivery{ConnectorID: connectorA, ProjectID: project, EventID: fmt.Sprintf("c82gg9catj3vmh%06d", i),
			EventType: dcon.EventTouch, EventTime: now, Body: []byte("{}"), Due: now})
	}
	if err := q.Enqueue(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := q.Expire(ctx, ds, now); err != nil {
		t.Fatal(err)
	}
	n, err := f.in.Replay(ctx, project, connectorA, dcon.ReplayRequest{Since: now})
	if err != nil || n != len(ds) {
		t.Fatalf("Replay = %d, %v; want %d", n, err, len(ds))
	}
	if got := f.dispatch.take(); len(got) != len(ds) {
		t.Errorf("dispatched %d, want %d", len(got), len(ds))
	}
}

func TestReplayRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	many := make([]string, dcon.MaxReplay+1)
	for i := range many {
		many[i] = "c82gg9catj3vmh4248og"
	}
	tests := []struct {
		name, connector string
		r               dcon.ReplayRequest
		code            string
	}{
		{"nothing named", connectorA, dcon.ReplayRequest{}, dcon.EINVALID},
		{"two kinds", connectorA, dcon.ReplayRequest{All: true, Since: now}, dcon.EINVALID},
		{"too many ids", connectorA, dcon.ReplayRequest{EventIDs: many}, dcon.EINVALID},
		{"a bad id", connectorA, dcon.ReplayRequest{EventIDs: []string{"x/y"}}, dcon.EINVALID},
		{"a disabled connector", "c000000000000000000c", dcon.ReplayRequest{All: true}, dcon.ECONFLICT},
		{"another project's connector", "c000000000000000000d", dcon.ReplayRequest{All: true}, dcon.ENOTFOUND},
		{"no such connector", "c00000000000000000zz", dcon.ReplayRequest{All: true}, dcon.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := f.in.Replay(context.Background(), project, tt.connector, tt.r)
			if code := dcon.ErrorCode(err); code != tt.code {
				t.Errorf("Replay: %v (code %q), want code %q", err, code, tt.code)
			}
		})
	}
}

func TestSweeper(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := memqueue.New()
	clk := &clock{t: now}
	for i, age := range []time.Duration{8 * 24 * time.Hour, 6 * 24 * time.Hour} {
		d := dcon.Delivery{ConnectorID: connectorA, ProjectID: project, EventID: fmt.Sprintf("c82gg9catj3vmh42480%d", i),
			EventTime: now, Due: now}
		if err := q.Enqueue(ctx, []dcon.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		if err := q.Expire(ctx, []dcon.Delivery{d}, now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ingest.NewSweeper(ingest.SweeperConfig{Queue: q, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil { // sweeps at once
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	waitFor(t, "the 8-day-old dead letter is swept at start", func() bool {
		dls, _ := q.DeadLetters(ctx, connectorA, 10)
		return len(dls) == 1
	})
	clk.Advance(2 * 24 * time.Hour)
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if dls, _ := q.DeadLetters(ctx, connectorA, 10); len(dls) != 0 {
		t.Errorf("after 2 more days: %d dead letters, want 0", len(dls))
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// TestSweeperOnPebble: on a real store, the sweeper deletes at start the dead
// letters that expired more than the retention ago and keeps the younger
// ones, then sweeps again every Every by itself, as the clock moves on.
func TestSweeperOnPebble(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: now}
	expiredAgo := []time.Duration{8 * 24 * time.Hour, 6 * 24 * time.Hour, time.Hour}
	for i, age := range expiredAgo {
		d := dcon.Delivery{ConnectorID: connectorA, ProjectID: project, EventID: fmt.Sprintf("c82gg9catj3vmh42481%d", i),
			EventType: dcon.EventTouch, EventTime: now.Add(-age - dcon.MaxEventAge), Body: []byte("{}"), Due: now}
		if err := db.Enqueue(ctx, []dcon.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		if err := db.Expire(ctx, []dcon.Delivery{d}, now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		dls, err := db.DeadLetters(ctx, connectorA, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, dl := range dls {
			ids = append(ids, dl.EventID)
		}
		return ids
	}
	s, err := ingest.NewSweeper(ingest.SweeperConfig{Queue: db, Now: clk.Now, Every: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(ctx) })
	waitFor(t, "the dead letter older than 7 days to go at start", func() bool { return len(left()) == 2 })
	if got := left(); got[0] != "c82gg9catj3vmh424811" || got[1] != "c82gg9catj3vmh424812" {
		t.Errorf("after the first sweep: %v, want the 6-day-old and the 1-hour-old", got)
	}
	clk.Advance(36 * time.Hour) // the 6-day-old is now 7.5 days old
	waitFor(t, "the next sweep, on its own, to delete it", func() bool { return len(left()) == 1 })
	if got := left(); got[0] != "c82gg9catj3vmh424812" {
		t.Errorf("after the next sweep: %v, want the younger one", got)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// waitFor waits, boundedly, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}
