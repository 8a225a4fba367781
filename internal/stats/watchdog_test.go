package stats_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"

	"dcon"
	"dcon/internal/ingest"
	"dcon/internal/stats"
)

const day = 24 * time.Hour

// watchdogEnv is a Watchdog over a real ingest.Router on a real Pebble store,
// with a settable clock.
type watchdogEnv struct {
	clock   *clock
	tracker *stats.Tracker
	router  *ingest.Router
	dog     *stats.Watchdog
}

func newWatchdogEnv(t *testing.T, after time.Duration) *watchdogEnv {
	t.Helper()
	db := openPebble(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	router, err := ingest.NewRouter(t.Context(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	e := &watchdogEnv{clock: newClock(t0), router: router}
	e.tracker = newTracker(t, stats.Config{Now: e.clock.Now})
	e.dog, err = stats.NewWatchdog(stats.WatchdogConfig{
		Tracker: e.tracker, Connectors: router, After: after, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// connector creates an ACTIVE connector last updated at updated.
func (e *watchdogEnv) connector(t *testing.T, status dcon.ConnectorStatus, updated time.Time) *dcon.Connector {
	t.Helper()
	c := &dcon.Connector{
		ProjectID: "c14u9p094l47cdv1o3pg", ID: xid.New().String(), Type: dcon.ConnectorHTTPPush,
		Status: status, HTTP: dcon.HTTPConfig{URL: "https://example.com/in"},
		CreateTime: updated, UpdateTime: updated,
	}
	if err := e.router.CreateConnector(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkAt runs a check at time at and returns the connector as it is after it.
func (e *watchdogEnv) checkAt(t *testing.T, at time.Time, id string) *dcon.Connector {
	t.Helper()
	e.clock.Set(at)
	if _, err := e.dog.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	c, ok := e.router.Lookup(id)
	if !ok {
		t.Fatalf("connector %s is gone", id)
	}
	return c
}

// failEvery observes a failure every 10 minutes from from to to.
func (e *watchdogEnv) failEvery(id string, from, to time.Time) {
	for at := from; !at.After(to); at = at.Add(stats.BucketWidth) {
		observe(e.tracker, id, false, 10*time.Second, at)
	}
}

func TestWatchdogDisablesAfterFiveDays(t *testing.T) {
	t.Parallel()
	e := newWatchdogEnv(t, 0) // the default: dcon.AutoDisableAfter
	c := e.connector(t, dcon.StatusActive, t0.Add(-30*day))
	e.failEvery(c.ID, t0, t0.Add(5*day))

	for _, at := range []time.Time{t0, t0.Add(4 * day), t0.Add(5*day - stats.BucketWidth), t0.Add(5*day - 1)} {
		if got := e.checkAt(t, at, c.ID); got.Status != dcon.StatusActive || got.StatusReason != "" {
			t.Fatalf("at t0+%v: %s %q; want ACTIVE still", at.Sub(t0), got.Status, got.StatusReason)
		}
	}
	got := e.checkAt(t, t0.Add(5*day), c.ID)
	if got.Status != dcon.StatusSystemDisabled {
		t.Fatalf("at t0+5 days: %s, want SYSTEM_DISABLED", got.Status)
	}
	if want := "no successful delivery since 2026-11-20T08:00:00.000000Z (5 days)"; got.StatusReason != want {
		t.Errorf("reason %q, want %q", got.StatusReason, want)
	}
	if !got.UpdateTime.Equal(t0.Add(5 * day)) {
		t.Errorf("UpdateTime %v, want the time it was disabled", got.UpdateTime)
	}
	// The looked-up connector the router had handed out was not modified.
	if c.Status != dcon.StatusActive {
		t.Error("the watchdog modified a connector it did not own")
	}
	// A disabled connector is left alone.
	e.clock.Set(t0.Add(6 * day))
	if n, err := e.dog.Check(t.Context()); n != 0 || err != nil {
		t.Errorf("Check of a disabled connector = %d, %v; want 0, nil", n, err)
	}
}

func TestWatchdogReviveResetsTheWindow(t *testing.T) {
	t.Parallel()
	e := newWatchdogEnv(t, 0)
	c := e.connector(t, dcon.StatusActive, t0.Add(-day))
	e.failEvery(c.ID, t0, t0.Add(5*day))
	if got := e.checkAt(t, t0.Add(5*day), c.ID); got.Status != dcon.StatusSystemDisabled {
		t.Fatalf("%s, want SYSTEM_DISABLED", got.Status)
	}

	// A user sets it ACTIVE again a day later, as PATCH does; it goes on failing.
	revived := t0.Add(6 * day)
	n, _ := e.router.Lookup(c.ID)
	n = n.Clone()
	n.Status, n.StatusReason, n.UpdateTime = dcon.StatusActive, "", revived
	if err := e.router.UpdateConnector(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	e.failEvery(c.ID, revived, revived.Add(5*day))
	if !e.tracker.FailingSince(c.ID).Equal(t0) {
		t.Fatalf("failing since %v, want t0: only a success resets it", e.tracker.FailingSince(c.ID))
	}
	if got := e.checkAt(t, revived.Add(5*day-1), c.ID); got.Status != dcon.StatusActive {
		t.Fatalf("revived, then failing for 5 days less 1 ns: %s, want ACTIVE", got.Status)
	}
	got := e.checkAt(t, revived.Add(5*day), c.ID)
	if got.Status != dcon.StatusSystemDisabled {
		t.Fatalf("revived, then failing for 5 days: %s, want SYSTEM_DISABLED", got.Status)
	}
	if want := "no successful delivery since 2026-11-26T08:00:00.000000Z (5 days)"; got.StatusReason != want {
		t.Errorf("reason %q, want %q", got.StatusReason, want)
	}
}

func TestWatchdogSuccessResetsTheWindow(t *testing.T) {
	t.Parallel()
	e := newWatchdogEnv(t, 0)
	c := e.connector(t, dcon.StatusActive, t0.Add(-day))
	e.failEvery(c.ID, t0, t0.Add(4*day))
	observe(e.tracker, c.ID, true, time.Millisecond, t0.Add(4*day+time.Minute))
	restart := t0.Add(4*day + time.Hour)
	e.failEvery(c.ID, restart, restart.Add(5*day))

	if got := e.checkAt(t, t0.Add(5*day), c.ID); got.Status != dcon.StatusActive {
		t.Fatalf("5 days after the first failure, with a success since: %s, want ACTIVE", got.Status)
	}
	if got := e.checkAt(t, restart.Add(5*day-stats.BucketWidth), c.ID); got.Status != dcon.StatusActive {
		t.Fatalf("a bucket before 5 days of the new streak: %s, want ACTIVE", got.Status)
	}
	if got := e.checkAt(t, restart.Add(5*day), c.ID); got.Status != dcon.StatusSystemDisabled {
		t.Fatalf("5 days into the new streak: %s, want SYSTEM_DISABLED", got.Status)
	}
}

func TestWatchdogLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	e := newWatchdogEnv(t, 36*time.Hour)
	failing := e.connector(t, dcon.StatusActive, t0.Add(-day))
	userDisabled := e.connector(t, dcon.StatusUserDisabled, t0.Add(-day))
	healthy := e.connector(t, dcon.StatusActive, t0.Add(-day))
	recent := e.connector(t, dcon.StatusActive, t0.Add(day)) // changed a day into the failures
	quiet := e.connector(t, dcon.StatusActive, t0.Add(-day)) // no attempts at all
	for _, c := range []*dcon.Connector{failing, userDisabled, recent} {
		e.failEvery(c.ID, t0, t0.Add(2*day))
	}
	observe(e.tracker, healthy.ID, false, time.Second, t0)
	observe(e.tracker, healthy.ID, true, time.Second, t0.Add(time.Hour))

	e.clock.Set(t0.Add(36 * time.Hour))
	n, err := e.dog.Check(t.Context())
	if n != 1 || err != nil {
		t.Fatalf("Check = %d, %v; want 1 disabled", n, err)
	}
	want := map[string]dcon.ConnectorStatus{
		failing.ID: dcon.StatusSystemDisabled, userDisabled.ID: dcon.StatusUserDisabled,
		healthy.ID: dcon.StatusActive, recent.ID: dcon.StatusActive, quiet.ID: dcon.StatusActive,
	}
	for id, status := range want {
		if c, _ := e.router.Lookup(id); c.Status != status {
			t.Errorf("%s: %s, want %s", id, c.Status, status)
		}
	}
	c, _ := e.router.Lookup(failing.ID)
	if !strings.HasSuffix(c.StatusReason, "(36h0m0s)") {
		t.Errorf("reason %q, want the period as a duration", c.StatusReason)
	}
}

func TestWatchdogForgetsDeletedConnectors(t *testing.T) {
	t.Parallel()
	e := newWatchdogEnv(t, 0)
	c := e.connector(t, dcon.StatusActive, t0)
	observe(e.tracker, c.ID, true, time.Millisecond, t0)
	if err := e.router.DeleteConnector(t.Context(), c.ProjectID, c.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(t0)
	if _, err := e.dog.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m := metricsOf(t, e.tracker, c.ID); m != (dcon.ConnectorMetrics{}) {
		t.Errorf("metrics of a deleted connector after a check: %+v, want zeros", m)
	}
}

// fakeConnectors is a Connectors whose updates fail.
type fakeConnectors struct {
	mu      sync.Mutex
	c       *dcon.Connector
	updates int
}

func (f *fakeConnectors) Lookup(id string) (*dcon.Connector, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.c, f.c.ID == id
}

func (f *fakeConnectors) UpdateConnector(context.Context, *dcon.Connector) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	return dcon.Errorf(dcon.EUNAVAILABLE, "the store is unavailable")
}

func TestWatchdogUpdateFails(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, stats.Config{})
	f := &fakeConnectors{c: &dcon.Connector{ID: "c1", Status: dcon.StatusActive}}
	dog, err := stats.NewWatchdog(stats.WatchdogConfig{Tracker: tr, Connectors: f, Now: func() time.Time { return t0.Add(6 * day) }})
	if err != nil {
		t.Fatal(err)
	}
	observe(tr, "c1", false, time.Second, t0)
	n, err := dog.Check(t.Context())
	if n != 0 || dcon.ErrorCode(err) != dcon.EUNAVAILABLE {
		t.Errorf("Check = %d, %v; want 0 and the store's error", n, err)
	}
	if f.c.Status != dcon.StatusActive || f.c.StatusReason != "" {
		t.Error("the watchdog modified the looked-up connector")
	}
}

func TestWatchdogStartStop(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, stats.Config{})
	f := &fakeConnectors{c: &dcon.Connector{ID: "c1", Status: dcon.StatusActive}}
	dog, err := stats.NewWatchdog(stats.WatchdogConfig{
		Tracker: tr, Connectors: f, CheckInterval: time.Millisecond,
		Now: func() time.Time { return t0.Add(6 * day) },
	})
	if err != nil {
		t.Fatal(err)
	}
	observe(tr, "c1", false, time.Second, t0)
	if err := dog.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := f.updates
		f.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no check within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := dog.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogConfigRejected(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, stats.Config{})
	f := &fakeConnectors{c: &dcon.Connector{ID: "c1"}}
	for name, cfg := range map[string]stats.WatchdogConfig{
		"no tracker":     {Connectors: f},
		"no connectors":  {Tracker: tr},
		"negative after": {Tracker: tr, Connectors: f, After: -time.Second},
	} {
		if _, err := stats.NewWatchdog(cfg); err == nil {
			t.Errorf("%s: NewWatchdog succeeded", name)
		}
	}
	dog, err := stats.NewWatchdog(stats.WatchdogConfig{Tracker: tr, Connectors: f})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := dog.Stop(ctx); err != nil {
		t.Errorf("Stop of a watchdog never started: %v", err)
	}
}
