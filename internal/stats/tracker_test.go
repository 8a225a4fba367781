package stats_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"dcon"
	"dcon/internal/delivery"
	"dcon/internal/httpapi"
	"dcon/internal/ingest"
	"dcon/internal/pebble"
	"dcon/internal/stats"
)

var (
	_ delivery.Observer     = (*stats.Tracker)(nil)
	_ httpapi.MetricsReader = (*stats.Tracker)(nil)
	_ stats.Store           = (*pebble.DB)(nil)
	_ stats.Connectors      = (*ingest.Router)(nil)
)

// t0 is the start of a bucket: 2026-11-20 08:00 UTC.
var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newTracker(t testing.TB, cfg stats.Config) *stats.Tracker {
	t.Helper()
	tr, err := stats.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func metricsOf(t testing.TB, tr *stats.Tracker, id string) dcon.ConnectorMetrics {
	t.Helper()
	m, err := tr.ConnectorMetrics(context.Background(), id)
	if err != nil {
		t.Fatalf("ConnectorMetrics: %v", err)
	}
	return m
}

// attempt is one observed attempt.
type attempt struct {
	ok      bool
	latency time.Duration
	n       int // how many such attempts
}

func TestMetricsCountsAndP99(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		attempts []attempt
		success  int64
		errors   int64
		p99      time.Duration // the true 99th percentile; the tracker's is in [p99, 1.25 × p99)
	}{
		{name: "no attempts"},
		{name: "one success", attempts: []attempt{{true, 411 * time.Millisecond, 1}},
			success: 1, p99: 411 * time.Millisecond},
		{name: "99 % fast, 1 % slow: the fast", attempts: []attempt{{true, 10 * time.Millisecond, 990}, {false, 2 * time.Second, 10}},
			success: 990, errors: 10, p99: 10 * time.Millisecond},
		{name: "over 1 % slow: the slow", attempts: []attempt{{true, 10 * time.Millisecond, 989}, {false, 2 * time.Second, 11}},
			success: 989, errors: 11, p99: 2 * time.Second},
		{name: "uniform 1 to 100 ms", attempts: uniform(1, 100),
			success: 100, p99: 99 * time.Millisecond},
		{name: "failures count in the latency", attempts: []attempt{{true, time.Millisecond, 50}, {false, 10 * time.Second, 50}},
			success: 50, errors: 50, p99: 10 * time.Second},
		{name: "timeouts at the webhook limit", attempts: []attempt{{false, 10 * time.Second, 3}},
			errors: 3, p99: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := newTracker(t, stats.Config{Now: func() time.Time { return t0.Add(time.Hour) }})
			at := t0
			for _, a := range tt.attempts {
				for range a.n {
					observe(tr, "c1", a.ok, a.latency, at)
					at = at.Add(time.Second)
				}
			}
			m := metricsOf(t, tr, "c1")
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

// uniform returns one success of each latency from lo to hi milliseconds.
func uniform(lo, hi int) []attempt {
	var as []attempt
	for ms := lo; ms <= hi; ms++ {
		as = append(as, attempt{true, time.Duration(ms) * time.Millisecond, 1})
	}
	return as
}

// TestP99Bins checks the reported bound of single latencies across the range:
// never below the latency, less than 25 % above it.
func TestP99Bins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		latency time.Duration
		want    time.Duration // exact, when set
	}{
		{latency: 0, want: 100 * time.Microsecond},
		{latency: 50 * time.Microsecond, want: 100 * time.Microsecond},
		{latency: 100 * time.Microsecond, want: 100 * time.Microsecond},
		{latency: 101 * time.Microsecond, want: 125 * time.Microsecond},
		{latency: time.Millisecond},
		{latency: 411 * time.Millisecond},
		{latency: time.Second},
		{latency: 10 * time.Second},
		{latency: 100 * time.Second},
		{latency: time.Hour, want: 127_447_352_891}, // the last bin: 100 µs × 1.25^63
	}
	for _, tt := range tests {
		tr := newTracker(t, stats.Config{Now: func() time.Time { return t0 }})
		observe(tr, "c1", true, tt.latency, t0)
		got := metricsOf(t, tr, "c1").Latency99p
		switch {
		case tt.want != 0 && got != tt.want:
			t.Errorf("latency %v: p99 %v, want %v", tt.latency, got, tt.want)
		case tt.want == 0 && (got < tt.latency || float64(got) >= 1.25*float64(tt.latency)):
			t.Errorf("latency %v: p99 %v, want in [%v, 1.25 × %v)", tt.latency, got, tt.latency, tt.latency)
		}
	}
}

func TestMetricsWindowSlides(t *testing.T) {
	t.Parallel()
	now := newClock(t0)
	tr := newTracker(t, stats.Config{Now: now.Now})
	observe(tr, "c1", true, time.Millisecond, t0)                         // the first bucket's start
	observe(tr, "c1", false, time.Millisecond, t0.Add(stats.BucketWidth)) // the second bucket's start

	tests := []struct {
		now         time.Time
		success, ko int64
	}{
		{t0, 1, 0},
		{t0.Add(stats.BucketWidth - 1), 1, 0},
		{t0.Add(stats.BucketWidth), 1, 1},
		{t0.Add(dcon.MetricsWindow - 1), 1, 1},                     // the first bucket's last moment in the window
		{t0.Add(dcon.MetricsWindow), 0, 1},                         // 3 h later: the first bucket fell out
		{t0.Add(dcon.MetricsWindow + stats.BucketWidth - 1), 0, 1}, // the second still in
		{t0.Add(dcon.MetricsWindow + stats.BucketWidth), 0, 0},     // 3 h + 1 bucket: both out
		{t0.Add(-time.Nanosecond), 0, 0},                           // before them: not yet
	}
	for _, tt := range tests {
		now.Set(tt.now)
		m := metricsOf(t, tr, "c1")
		if m.SuccessCount != tt.success || m.ErrorCount != tt.ko {
			t.Errorf("at t0+%v: %d ok, %d errors; want %d, %d", tt.now.Sub(t0), m.SuccessCount, m.ErrorCount, tt.success, tt.ko)
		}
	}

	// The ring comes back to the first bucket's slot three hours on: it is
	// reset, and an attempt observed late for the old bucket no longer counts.
	later := t0.Add(dcon.MetricsWindow)
	now.Set(later)
	observe(tr, "c1", true, time.Second, later)
	observe(tr, "c1", true, time.Second, t0.Add(time.Minute)) // late: its bucket is gone
	m := metricsOf(t, tr, "c1")
	if m.SuccessCount != 1 || m.ErrorCount != 1 || m.Latency99p < time.Second || m.Latency99p >= 1250*time.Millisecond {
		t.Errorf("after the ring came round: %+v; want 1 ok (1 s), 1 error", m)
	}
}

func TestFailingSince(t *testing.T) {
	t.Parallel()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type obs struct {
		ok bool
		m  int // minutes after t0
	}
	tests := []struct {
		name string
		obs  []obs
		want int // minutes after t0; -1: not failing
	}{
		{"nothing observed", nil, -1},
		{"successes only", []obs{{true, 0}, {true, 1}}, -1},
		{"first failure starts the streak", []obs{{false, 3}, {false, 4}, {false, 9}}, 3},
		{"a success ends it", []obs{{false, 3}, {true, 4}}, -1},
		{"the first failure after the success", []obs{{false, 1}, {true, 2}, {false, 5}, {false, 6}}, 5},
		{"a late earlier failure moves the start back", []obs{{true, 0}, {false, 5}, {false, 3}}, 3},
		{"a failure older than the last success is not a streak", []obs{{true, 5}, {false, 3}}, -1},
		{"a success older than the streak does not end it", []obs{{false, 5}, {true, 3}}, 5},
		{"a success at the streak's start ends it", []obs{{false, 5}, {true, 5}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := newTracker(t, stats.Config{})
			for _, o := range tt.obs {
				observe(tr, "c1", o.ok, time.Millisecond, at(o.m))
			}
			got := tr.FailingSince("c1")
			want := time.Time{}
			if tt.want >= 0 {
				want = at(tt.want)
			}
			if !got.Equal(want) {
				t.Errorf("FailingSince = %v, want %v", got, want)
			}
		})
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	tr := newTracker(t, stats.Config{Now: func() time.Time { return t0 }})
	observe(tr, "c1", false, time.Millisecond, t0)
	observe(tr, "c2", true, time.Millisecond, t0)
	tr.Forget("c1")
	tr.Forget("c9") // unknown: nothing happens
	if m := metricsOf(t, tr, "c1"); m != (dcon.ConnectorMetrics{}) {
		t.Errorf("metrics after Forget = %+v, want zeros", m)
	}
	if !tr.FailingSince("c1").IsZero() {
		t.Error("still failing after Forget")
	}
	if m := metricsOf(t, tr, "c2"); m.SuccessCount != 1 {
		t.Errorf("the other connector's metrics = %+v, want 1 success", m)
	}
}

// openPebble opens a Pebble store in dir.
func openPebble(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestPersistence writes the figures to a real Pebble store and reads them
// back after a reopen.
func TestPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	now := func() time.Time { return t0.Add(2 * time.Hour) }

	db := openPebble(t, dir)
	tr := newTracker(t, stats.Config{Store: db, Now: now})
	for i := range 200 {
		at := t0.Add(time.Duration(i) * 30 * time.Second) // over 100 minutes: 10 buckets
		observe(tr, "c1", i%4 != 0, time.Duration(i+1)*time.Millisecond, at)
	}
	observe(tr, "c2", false, 3*time.Second, t0.Add(time.Hour))
	observe(tr, "c3", true, time.Second, t0)
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Stop(ctx); err != nil { // the last flush
		t.Fatal(err)
	}
	tr.Forget("c3")
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]dcon.ConnectorMetrics{
		"c1": metricsOf(t, tr, "c1"),
		"c2": metricsOf(t, tr, "c2"),
		"c3": {},
	}
	wantFailing := tr.FailingSince("c2")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openPebble(t, dir)
	defer db.Close()
	tr = newTracker(t, stats.Config{Store: db, Now: now})
	if err := tr.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		if got := metricsOf(t, tr, id); got != w {
			t.Errorf("%s after reopen: %+v, want %+v", id, got, w)
		}
	}
	if w := want["c1"]; w.SuccessCount != 150 || w.ErrorCount != 50 {
		t.Errorf("c1 before the reopen: %+v, want 150 ok, 50 errors", w)
	}
	if got := tr.FailingSince("c2"); !got.Equal(wantFailing) || !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("c2 failing since %v after reopen, want %v", got, t0.Add(time.Hour))
	}
	// Observing goes on from the loaded state.
	observe(tr, "c1", true, time.Millisecond, t0.Add(2*time.Hour))
	if got := metricsOf(t, tr, "c1"); got.SuccessCount != 151 {
		t.Errorf("c1 after one more success: %+v, want 151 ok", got)
	}
}

// memStore is an in-memory Store whose calls can be made to fail.
type memStore struct {
	mu     sync.Mutex
	m      map[string][]byte
	err    error
	saves  int
	loaded map[string][]byte // what LoadStats answers, when set
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) SaveStats(_ context.Context, states map[string][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.saves++
	for id, v := range states {
		s.m[id] = v
	}
	return nil
}

func (s *memStore) LoadStats(context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded != nil {
		return s.loaded, s.err
	}
	out := make(map[string][]byte, len(s.m))
	for id, v := range s.m {
		out[id] = v
	}
	return out, s.err
}

func (s *memStore) DeleteStats(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	delete(s.m, id)
	return nil
}

func (s *memStore) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *memStore) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}

func (s *memStore) saveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

func TestFlushWritesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := newMemStore()
	tr := newTracker(t, stats.Config{Store: st})
	if err := tr.Flush(ctx); err != nil || st.saveCount() != 0 {
		t.Fatalf("flush with nothing observed: %v, %d saves; want none", err, st.saveCount())
	}
	observe(tr, "c1", true, time.Millisecond, t0)
	if err := tr.Flush(ctx); err != nil || !st.has("c1") {
		t.Fatalf("flush: %v, stored c1 %v", err, st.has("c1"))
	}
	if err := tr.Flush(ctx); err != nil || st.saveCount() != 1 {
		t.Fatalf("second flush with nothing new: %v, %d saves; want 1", err, st.saveCount())
	}

	// A failed flush keeps what it could not write for the next one.
	observe(tr, "c2", true, time.Millisecond, t0)
	tr.Forget("c1")
	st.fail(errors.New("disk on fire"))
	if err := tr.Flush(ctx); err == nil {
		t.Fatal("flush into a failing store succeeded")
	}
	st.fail(nil)
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !st.has("c2") || st.has("c1") {
		t.Errorf("after the retried flush: c2 stored %v (want true), c1 stored %v (want false)", st.has("c2"), st.has("c1"))
	}

	// A connector forgotten and observed again is saved, not deleted.
	tr.Forget("c2")
	observe(tr, "c2", false, time.Millisecond, t0)
	if err := tr.Flush(ctx); err != nil || !st.has("c2") {
		t.Errorf("re-observed c2: %v, stored %v; want stored", err, st.has("c2"))
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := newMemStore()
	tr := newTracker(t, stats.Config{Store: src})
	observe(tr, "good", false, time.Millisecond, t0)
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	st := newMemStore()
	st.loaded = map[string][]byte{"good": src.m["good"], "bad": {1, 0xff}}
	st.m["bad"] = st.loaded["bad"]
	tr = newTracker(t, stats.Config{Store: st})
	if err := tr.Load(ctx); err != nil {
		t.Fatalf("Load with one undecodable state: %v", err)
	}
	if !tr.FailingSince("good").Equal(t0) {
		t.Errorf("good: failing since %v, want %v", tr.FailingSince("good"), t0)
	}
	if err := tr.Flush(ctx); err != nil || st.has("bad") {
		t.Errorf("the undecodable state after a flush: %v, stored %v; want deleted", err, st.has("bad"))
	}

	st.fail(errors.New("unreadable"))
	if err := tr.Load(ctx); err == nil {
		t.Error("Load from a failing store succeeded")
	}
	// Without a store, there is nothing to load or write.
	tr = newTracker(t, stats.Config{})
	if err := tr.Load(ctx); err != nil {
		t.Error(err)
	}
	if err := tr.Flush(ctx); err != nil {
		t.Error(err)
	}
}

func TestStartFlushesPeriodically(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	tr := newTracker(t, stats.Config{Store: st, FlushInterval: time.Millisecond})
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	observe(tr, "c1", true, time.Millisecond, t0)
	deadline := time.Now().Add(10 * time.Second)
	for !st.has("c1") {
		if time.Now().After(deadline) {
			t.Fatal("c1 was not flushed within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := tr.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestConfigRejected(t *testing.T) {
	t.Parallel()
	if _, err := stats.New(stats.Config{FlushInterval: -time.Second}); err == nil {
		t.Error("New with a negative FlushInterval succeeded")
	}
}

// TestConcurrent observes, reads, flushes and forgets at once; run with -race.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := newMemStore()
	tr := newTracker(t, stats.Config{Store: st, Now: func() time.Time { return t0.Add(time.Hour) }})
	const goroutines, each, conns = 32, 500, 8
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("c%d", (g+i)%conns)
				observe(tr, id, i%10 != 0, time.Duration(i)*time.Microsecond, t0.Add(time.Duration(i)*time.Second))
			}
		})
	}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			metricsOf(t, tr, "c1")
			if err := tr.Flush(ctx); err != nil {
				t.Error(err)
			}
			tr.Forget("gone")
			observe(tr, "gone", false, time.Millisecond, t0)
		}
	})
	wg.Wait()
	close(stop)
	bg.Wait()

	var ok, ko int64
	for c := range conns {
		m := metricsOf(t, tr, fmt.Sprintf("c%d", c))
		ok += m.SuccessCount
		ko += m.ErrorCount
	}
	if ok+ko != goroutines*each || ko != goroutines*each/10 {
		t.Errorf("%d ok + %d errors, want %d attempts, %d errors", ok, ko, goroutines*each, goroutines*each/10)
	}
}

// TestObserveDoesNotAllocate is not parallel: AllocsPerRun counts every
// goroutine's allocations.
func TestObserveDoesNotAllocate(t *testing.T) {
	tr := newTracker(t, stats.Config{})
	id := "c16pegipidie7lltrefg"
	observe(tr, id, true, time.Millisecond, t0) // the connector's one allocation
	o := &dcon.Outcome{ConnectorID: id, Attempt: 1, StatusCode: 500,
		Err: errors.New("HTTP 500"), Latency: 200 * time.Millisecond, At: t0}
	allocs := testing.AllocsPerRun(1000, func() {
		o.At = o.At.Add(time.Second) // crosses buckets too
		tr.Observe(o)
	})
	if allocs != 0 {
		t.Errorf("Observe allocates %v times, want 0", allocs)
	}
}

func BenchmarkObserve(b *testing.B) {
	tr := newTracker(b, stats.Config{})
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%019d", i)
		observe(tr, ids[i], true, time.Millisecond, t0)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			observe(tr, ids[i%len(ids)], i%7 != 0, time.Duration(i%1000)*time.Millisecond, t0.Add(time.Duration(i)*time.Millisecond))
		}
	})
}

func BenchmarkObserveOneConnector(b *testing.B) {
	tr := newTracker(b, stats.Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			observe(tr, "c1", true, time.Duration(i%1000)*time.Millisecond, t0)
		}
	})
}

// TestStopFlushesPastItsDeadline: Stop writes the last figures even when the
// shutdown's deadline has passed.
func TestStopFlushesPastItsDeadline(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	tr := newTracker(t, stats.Config{Store: st})
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	observe(tr, "c1", true, time.Millisecond, t0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_ = tr.Stop(ctx) // may report the deadline if the loop had not yet seen the stop
	if !st.has("c1") {
		t.Error("Stop with a done ctx did not flush")
	}
}

// observe records one attempt as the delivery engine reports it.
func observe(tr *stats.Tracker, connectorID string, ok bool, latency time.Duration, at time.Time) {
	o := &dcon.Outcome{ConnectorID: connectorID, Attempt: 1, Latency: latency, At: at}
	if !ok {
		o.Err = errors.New("HTTP 500 Internal Server Error")
		o.StatusCode = 500
	} else {
		o.StatusCode = 200
	}
	tr.Observe(o)
}
