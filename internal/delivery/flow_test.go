package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dcon"
	"dcon/internal/delivery"
	"dcon/internal/memqueue"
	"dcon/internal/webhook"
)

// countingQueue is a memqueue that counts its writes and remembers the
// order in which ClaimConnector handed deliveries out.
type countingQueue struct {
	*memqueue.Queue
	enqueues, retries atomic.Int64
	mu                sync.Mutex
	drained           map[string][]string // event ids by connector, in claim order
}

func newCountingQueue() *countingQueue {
	return &countingQueue{Queue: memqueue.New(), drained: map[string][]string{}}
}

func (q *countingQueue) Enqueue(ctx context.Context, ds []dcon.Delivery) error {
	q.enqueues.Add(1)
	return q.Queue.Enqueue(ctx, ds)
}

func (q *countingQueue) Retry(ctx context.Context, d dcon.Delivery, at time.Time) error {
	q.retries.Add(1)
	return q.Queue.Retry(ctx, d, at)
}

func (q *countingQueue) ClaimConnector(ctx context.Context, c, from string, lease time.Time, limit int) ([]dcon.Delivery, string, error) {
	ds, next, err := q.Queue.ClaimConnector(ctx, c, from, lease, limit)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		q.drained[c] = append(q.drained[c], d.EventID)
	}
	return ds, next, err
}

func (q *countingQueue) drainOrder(c string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.drained[c])
}

// flowFixture is an engine with small windows over a counting queue.
type flowFixture struct {
	clock    *clock
	queue    *countingQueue
	endpoint *endpoint
	engine   *delivery.Engine
}

func newFlowFixture(t *testing.T, cs connectors, flow delivery.FlowConfig) *flowFixture {
	t.Helper()
	f := &flowFixture{clock: &clock{now: t0}, queue: newCountingQueue(), endpoint: newEndpoint()}
	flow.Rand = func() float64 { return 0.999999 } // probe intervals at their ceiling
	var err error
	f.engine, err = delivery.New(delivery.Config{
		Queue: f.queue, Connectors: cs, Sender: f.endpoint,
		Backoff:      delivery.Backoff{Initial: time.Second, Max: 10 * time.Minute, Rand: func() float64 { return 0.999999 }},
		Now:          f.clock.Now,
		Lease:        time.Minute,
		PollInterval: time.Hour, // the test polls
		Flow:         flow,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.engine.Stop(ctx)
	})
	return f
}

// publish does what ingest does with fresh deliveries: admit, enqueue,
// dispatch. It returns them as enqueued.
func (f *flowFixture) publish(t *testing.T, connector string, eventIDs ...string) []dcon.Delivery {
	t.Helper()
	now := f.clock.Now()
	var ds []dcon.Delivery
	for _, id := range eventIDs {
		ds = append(ds, dcon.Delivery{ConnectorID: connector, EventID: id, EventTime: now,
			Body: []byte(id), Due: now.Add(time.Minute)})
	}
	f.engine.Admit(ds)
	if err := f.queue.Enqueue(context.Background(), ds); err != nil {
		f.engine.Release(ds)
		t.Fatal(err)
	}
	f.engine.Dispatch(ds)
	return ds
}

func (f *flowFixture) poll(t *testing.T, at time.Time) {
	t.Helper()
	f.clock.Set(at)
	if _, err := f.engine.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.engine.Wait()
}

func (f *flowFixture) block(connector string) chan struct{} {
	ch := make(chan struct{})
	f.endpoint.mu.Lock()
	f.endpoint.block[connector] = ch
	f.endpoint.mu.Unlock()
	return ch
}

func (f *flowFixture) unblock(connector string) {
	f.endpoint.mu.Lock()
	delete(f.endpoint.block, connector)
	f.endpoint.mu.Unlock()
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

var (
	errHTTP500 = errors.New("HTTP 500 Internal Server Error")
	errHTTP503 = errors.New("HTTP 503 Service Unavailable")
)

// goDead fails c's endpoint until the connector is PROBING.
func (f *flowFixture) goDead(t *testing.T, c string) {
	t.Helper()
	f.endpoint.set(c, webhook.Result{StatusCode: 503, Err: errHTTP503})
	for i := 0; f.engine.Flow(c).Mode != dcon.FlowProbing; i++ {
		if i > 50 {
			t.Fatalf("not PROBING after 50 failures: %+v", f.engine.Flow(c))
		}
		f.publish(t, c, fmt.Sprintf("dead%04d", i))
		f.engine.Wait()
	}
}

func TestWindowGrowsOnSuccessAndHalvesOncePerRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 8, MaxWindow: 100, ProbeAfter: 100})
	for _, id := range ids("ok", 20) {
		f.publish(t, "c1", id)
		f.engine.Wait()
	}
	if s := f.engine.Flow("c1"); s.Window != 28 || s.Mode != dcon.FlowOpen {
		t.Fatalf("after 20 successes: %+v, want window 8+20 and OPEN", s)
	}
	// A burst of 20 failures that all started before the first of them
	// failed: one round trip, one halving.
	release := f.block("c1")
	f.endpoint.set("c1", webhook.Result{StatusCode: 503, Err: errHTTP503})
	f.publish(t, "c1", ids("burst", 20)...)
	waitUntil(t, "20 attempts in flight", func() bool { return f.engine.InFlight() == 20 })
	close(release)
	f.engine.Wait()
	f.unblock("c1")
	if s := f.engine.Flow("c1"); s.Window != 14 || s.Mode != dcon.FlowThrottled || s.ConsecutiveFailures != 20 {
		t.Fatalf("after a burst of failures: %+v, want window 14, THROTTLED, 20 failures", s)
	}
	// The next failure started after the decrease: it halves again.
	f.publish(t, "c1", "late")
	f.engine.Wait()
	if s := f.engine.Flow("c1"); s.Window != 7 {
		t.Fatalf("after one more round trip of failures: window %d, want 7", s.Window)
	}
	// A 500 is the endpoint's verdict on one request, not a sign of load:
	// it leaves the window alone.
	f.endpoint.set("c1", webhook.Result{StatusCode: 500, Err: errHTTP500})
	f.publish(t, "c1", "verdict")
	f.engine.Wait()
	if s := f.engine.Flow("c1"); s.Window != 7 || s.ConsecutiveFailures != 22 {
		t.Fatalf("after a 500: %+v, want window 7 and 22 failures", s)
	}
}

func TestRetryAfterPausesTheConnector(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{})
	f.endpoint.set("c1", webhook.Result{StatusCode: 429, Err: errors.New("HTTP 429"), RetryAfter: 30 * time.Second})
	f.publish(t, "c1", "e1")
	f.engine.Wait()
	s := f.engine.Flow("c1")
	if s.Mode != dcon.FlowPaused || !s.PausedUntil.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("after a 429 with Retry-After 30s: %+v, want PAUSED until t0+30s", s)
	}
	ds := f.publish(t, "c1", "e2")
	if !ds[0].Parked() || f.endpoint.count("e2") != 0 {
		t.Fatalf("a fresh event of a paused connector was not parked")
	}
	f.endpoint.set("c1", webhook.Result{StatusCode: 200})
	f.poll(t, t0.Add(29*time.Second))
	if f.endpoint.count("e1")+f.endpoint.count("e2") != 1 {
		t.Fatalf("sent while paused")
	}
	f.poll(t, t0.Add(30*time.Second))
	if f.endpoint.count("e1") != 2 || f.endpoint.count("e2") != 1 || f.depth(t, "c1") != 0 {
		t.Errorf("after the pause: e1 sent %d, e2 sent %d, depth %d; want 2, 1, 0",
			f.endpoint.count("e1"), f.endpoint.count("e2"), f.depth(t, "c1"))
	}
	if s := f.engine.Flow("c1"); s.Mode == dcon.FlowPaused {
		t.Errorf("still paused after Retry-After: %+v", s)
	}
}

func (f *flowFixture) depth(t *testing.T, c string) int {
	t.Helper()
	n, err := f.queue.Depth(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeadEndpointProbesOneAtATimeAndParksFreshEvents(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 4, ProbeAfter: 3,
		ProbeInterval: time.Second, MaxProbeInterval: 8 * time.Second})
	f.goDead(t, "c1")
	s := f.engine.Flow("c1")
	if s.Window != 1 || s.Backlog != dcon.BacklogParked || s.ConsecutiveFailures < 3 {
		t.Fatalf("dead endpoint: %+v, want window 1, a parked backlog", s)
	}

	// Fresh events are parked as they are enqueued: one write each (the
	// Enqueue), no retry, no attempt, no goroutine.
	enq, ret := f.queue.enqueues.Load(), f.queue.retries.Load()
	goroutines := runtime.NumGoroutine()
	for _, id := range ids("fresh", 200) {
		if ds := f.publish(t, "c1", id); !ds[0].Parked() {
			t.Fatalf("%s was not parked", id)
		}
	}
	if n := f.queue.enqueues.Load() - enq; n != 200 {
		t.Errorf("%d Enqueues for 200 publishes", n)
	}
	if n := f.queue.retries.Load() - ret; n != 0 {
		t.Errorf("%d extra writes for parked events", n)
	}
	// Other tests run in parallel and start goroutines too: a goroutine per
	// parked event would add 200; allow half that for the others.
	if g := runtime.NumGoroutine(); g > goroutines+100 {
		t.Errorf("goroutines grew from %d to %d while parking 200 events", goroutines, g)
	}
	if f.engine.InFlight() != 0 || f.endpoint.count("fresh0000") != 0 {
		t.Errorf("a parked event was attempted")
	}

	// Probes: one at a time, each after the probe interval, which doubles.
	release := f.block("c1")
	f.poll(t, t0.Add(500*time.Millisecond))
	if f.engine.InFlight() != 0 {
		t.Fatalf("probed before the probe interval")
	}
	f.clock.Set(t0.Add(time.Second))
	for range 3 {
		if _, err := f.engine.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.engine.InFlight(); n != 1 {
		t.Fatalf("%d probes in flight, want 1", n)
	}
	close(release)
	f.engine.Wait()
	f.unblock("c1")
	if s := f.engine.Flow("c1"); s.Mode != dcon.FlowProbing {
		t.Fatalf("after a failed probe: %+v", s)
	}
	sent := f.endpoint.total()
	f.poll(t, t0.Add(2*time.Second)) // the next probe comes 2s after the failure
	if n := f.endpoint.total() - sent; n != 0 {
		t.Errorf("%d attempts before the next probe interval", n)
	}
	f.poll(t, t0.Add(3*time.Second))
	if n := f.endpoint.total() - sent; n != 1 {
		t.Errorf("%d attempts at the next probe, want 1", n)
	}
	if f.depth(t, "c1") < 200 {
		t.Errorf("the backlog shrank while the endpoint is dead")
	}
}

func TestRecoveryDrainsOldestFirstWhileFreshEventsGoAtOnce(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 4, ProbeAfter: 3, ReopenWindow: 4})
	f.goDead(t, "c1")
	backlog := ids("x", 100) // after the dead events: the probe is one of those
	f.publish(t, "c1", backlog...)
	if err := f.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The endpoint comes back, but hangs on the newer part of the backlog
	// (the x events) until released; the probe (the oldest) succeeds.
	release := make(chan struct{})
	f.endpoint.mu.Lock()
	f.endpoint.hold["x"] = release
	f.endpoint.mu.Unlock()
	f.endpoint.set("c1", webhook.Result{StatusCode: 200})
	f.clock.Set(t0.Add(time.Minute))
	if _, err := f.engine.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the backlog draining into the hanging part", func() bool {
		s := f.engine.Flow("c1")
		return s.Mode == dcon.FlowOpen && s.InFlight >= s.Window && s.InFlight > 0
	})

	// A fresh event goes out at once, past the hanging backlog.
	f.publish(t, "c1", "fresh")
	waitUntil(t, "the fresh event delivered", func() bool { return f.endpoint.count("fresh") == 1 })
	for _, id := range backlog {
		if f.endpoint.count(id) != 0 {
			t.Fatalf("backlog event %s was delivered before the fresh event got through", id)
		}
	}

	close(release)
	waitUntil(t, "the backlog drained", func() bool { return f.depth(t, "c1") == 0 && f.engine.InFlight() == 0 })
	order := f.queue.drainOrder("c1")
	if !slices.IsSorted(order) {
		t.Errorf("backlog drained out of order: %v", order)
	}
	if s := f.engine.Flow("c1"); s.Mode != dcon.FlowOpen && s.Mode != dcon.FlowThrottled || s.Backlog != dcon.BacklogNone {
		t.Errorf("after the drain: %+v", s)
	}
}

func TestParkedDeliveriesExpireAtTwelveHours(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 2, ProbeAfter: 2})
	f.goDead(t, "c1")
	ds := f.publish(t, "c1", "late")
	if !ds[0].Parked() {
		t.Fatal("not parked")
	}
	f.poll(t, ds[0].Deadline().Add(-time.Second))
	f.endpoint.set("c1", webhook.Result{StatusCode: 500, Err: errHTTP500})
	f.poll(t, ds[0].Deadline())
	dead, err := f.queue.DeadLetters(context.Background(), "c1", 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, dl := range dead {
		if dl.EventID == "late" {
			found = true
			if !dl.ExpireTime.Equal(ds[0].Deadline()) {
				t.Errorf("expired at %v, want %v", dl.ExpireTime, ds[0].Deadline())
			}
		}
	}
	if !found {
		t.Errorf("the parked delivery is not a dead letter at 12 hours: %d dead letters", len(dead))
	}
	if f.depth(t, "c1") != 0 {
		t.Errorf("%d deliveries still queued after 12 hours", f.depth(t, "c1"))
	}
}

func TestFlowOfAnUnknownConnectorIsOpen(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 16})
	want := dcon.FlowState{Mode: dcon.FlowOpen, Window: 16, DrainWindow: 16, Backlog: dcon.BacklogNone}
	if s := f.engine.Flow("nobody"); s != want {
		t.Errorf("Flow = %+v, want %+v", s, want)
	}
}

func TestIdleConnectorsStateIsForgotten(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 4, IdleAfter: time.Minute})
	f.publish(t, "c1", "e1")
	f.engine.Wait()
	if s := f.engine.Flow("c1"); s.Window != 5 {
		t.Fatalf("window %d, want 5", s.Window)
	}
	f.poll(t, t0.Add(2*time.Minute))
	if s := f.engine.Flow("c1"); s.Window != 4 {
		t.Errorf("an idle connector's state was kept: %+v", s)
	}
}

// total returns how many attempts the endpoint received.
func (p *endpoint) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.sent {
		n += c
	}
	return n
}

func TestAFreshEventMayBeTheProbe(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 2, ProbeAfter: 2})
	f.goDead(t, "c1")
	f.clock.Set(t0.Add(time.Minute))
	if ds := f.publish(t, "c1", "probe"); ds[0].Parked() {
		t.Fatal("a fresh event at probe time was parked instead of probing")
	}
	f.engine.Wait()
	if s := f.engine.Flow("c1"); s.Mode != dcon.FlowProbing || s.InFlight != 0 {
		t.Fatalf("after the failed fresh probe: %+v", s)
	}
	// The next probe still comes: the fresh probe gave its turn back.
	sent := f.endpoint.total()
	f.endpoint.set("c1", webhook.Result{StatusCode: 200})
	f.poll(t, t0.Add(2*time.Minute))
	if f.endpoint.total() == sent || f.engine.Flow("c1").Mode == dcon.FlowProbing {
		t.Errorf("no probe after a fresh event probed: %+v", f.engine.Flow("c1"))
	}
}

// TestRequestsThatHangDoNotCollapseTheWindow: a request that gets no answer
// while the endpoint answers others is a request that hangs, not an endpoint
// that is down or overloaded: it leaves the window alone. The same timeouts
// with no answer in between halve it.
func TestRequestsThatHangDoNotCollapseTheWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		answered   bool // others are answered while the requests hang
		wantWindow int
	}{
		{"others answered meanwhile", true, 8 + 4},
		{"nothing answered meanwhile", false, 8 / 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 8, MaxWindow: 100, ProbeAfter: 100})
			release := make(chan struct{})
			f.endpoint.mu.Lock()
			f.endpoint.hold["hang"] = release
			f.endpoint.byBody["hang"] = webhook.Result{Err: fmt.Errorf("no answer: %w", webhook.ErrTimeout)}
			f.endpoint.mu.Unlock()
			f.publish(t, "c1", ids("hang", 4)...)
			waitUntil(t, "4 attempts hanging", func() bool { return f.engine.InFlight() == 4 })
			if tt.answered {
				for _, id := range ids("ok", 4) {
					f.publish(t, "c1", id)
					waitUntil(t, "the answered attempt done", func() bool { return f.engine.InFlight() == 4 })
				}
			}
			close(release)
			f.engine.Wait()
			if s := f.engine.Flow("c1"); s.Window != tt.wantWindow {
				t.Fatalf("%+v, want window %d", s, tt.wantWindow)
			}
		})
	}
}

// TestRetryAfterAmongSuccessesDoesNotPause: a 429 with Retry-After for a
// request sent before the endpoint answered another with success speaks of
// that request, not of the endpoint: the connector keeps sending.
func TestRetryAfterAmongSuccessesDoesNotPause(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 8})
	release := make(chan struct{})
	f.endpoint.mu.Lock()
	f.endpoint.hold["limited"] = release
	f.endpoint.byBody["limited"] = webhook.Result{StatusCode: 429, Err: errors.New("HTTP 429"), RetryAfter: 30 * time.Second}
	f.endpoint.mu.Unlock()
	f.publish(t, "c1", "limited")
	waitUntil(t, "the limited request in flight", func() bool { return f.engine.InFlight() == 1 })
	f.publish(t, "c1", "ok1")
	waitUntil(t, "the other request answered", func() bool { return f.endpoint.count("ok1") == 1 && f.engine.InFlight() == 1 })
	close(release)
	f.engine.Wait()
	if s := f.engine.Flow("c1"); s.Mode == dcon.FlowPaused {
		t.Fatalf("paused by a 429 sent before a success: %+v", s)
	}
	if ds := f.publish(t, "c1", "ok2"); ds[0].Parked() {
		t.Fatalf("a fresh event was parked")
	}
	f.engine.Wait()
	if f.endpoint.count("ok2") != 1 {
		t.Errorf("the fresh event was not sent at once")
	}
}

// TestBusyEndpointKeepsItsInitialWindow: overload answers halve the window,
// but while other requests succeed in between it stays at least at its
// initial size; only overload with no success takes it lower.
func TestBusyEndpointKeepsItsInitialWindow(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 8, MaxWindow: 100, ProbeAfter: 100})
	for _, id := range ids("ok", 8) {
		f.publish(t, "c1", id)
		f.engine.Wait()
	}
	f.endpoint.mu.Lock()
	f.endpoint.byBody["busy"] = webhook.Result{StatusCode: 503, Err: errHTTP503}
	f.endpoint.mu.Unlock()
	for round, want := range []int{8, 8} { // 16 → 8, then 8 stays
		release := make(chan struct{})
		f.endpoint.mu.Lock()
		f.endpoint.hold["busy"] = release
		f.endpoint.mu.Unlock()
		f.publish(t, "c1", fmt.Sprintf("busy%d", round))
		waitUntil(t, "the busy request in flight", func() bool { return f.engine.InFlight() == 1 })
		f.publish(t, "c1", fmt.Sprintf("fine%d", round))
		waitUntil(t, "a success meanwhile", func() bool { return f.engine.InFlight() == 1 })
		close(release)
		f.engine.Wait()
		if s := f.engine.Flow("c1"); s.Window != want+1 && s.Window != want {
			t.Fatalf("round %d: window %d, want %d", round, s.Window, want)
		}
	}
	// With nothing succeeding in between, it goes below.
	f.endpoint.set("c1", webhook.Result{StatusCode: 503, Err: errHTTP503})
	f.publish(t, "c1", "down")
	f.engine.Wait()
	if s := f.engine.Flow("c1"); s.Window >= 8 {
		t.Fatalf("after overload with no success: window %d, want below 8", s.Window)
	}
}

// sequential publishes events one at a time, each attempted and answered
// before the next.
func (f *flowFixture) sequential(t *testing.T, connector string, eventIDs ...string) {
	t.Helper()
	for _, id := range eventIDs {
		f.publish(t, connector, id)
		f.engine.Wait()
	}
}

func TestDrainWindowFollowsRoundTrips(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 8, MaxWindow: 200, ProbeAfter: 100,
		QueueingDelay: time.Millisecond})
	ok := func(d time.Duration) { f.endpoint.set("c1", webhook.Result{StatusCode: 200, Duration: d}) }

	// Answers as fast as ever: both windows grow.
	ok(10 * time.Millisecond)
	f.sequential(t, "c1", ids("fast", 20)...)
	s := f.engine.Flow("c1")
	if s.Window != 28 || s.DrainWindow != 28 || s.RoundTrip != 10*time.Millisecond || s.LeastRoundTrip != 10*time.Millisecond {
		t.Fatalf("after 20 answers in 10ms: %+v, want both windows 28 and round trips of 10ms", s)
	}

	// Answers in 30ms, more than twice the least: the smoothed round trip
	// crosses 21ms within a few answers, and the drain window stops there,
	// while the window grows on.
	ok(30 * time.Millisecond)
	f.sequential(t, "c1", ids("slower", 20)...)
	s = f.engine.Flow("c1")
	held := s.DrainWindow
	if s.Window != 48 || held <= 28 || held >= 40 || s.LeastRoundTrip != 10*time.Millisecond {
		t.Fatalf("after 20 answers in 30ms: %+v, want window 48 and the drain window held between 28 and 40", s)
	}

	// Answers in 100ms, more than four times the least: the drain window
	// shrinks by one per answer.
	ok(100 * time.Millisecond)
	f.sequential(t, "c1", ids("queued", 20)...)
	s = f.engine.Flow("c1")
	if s.Window != 68 || s.DrainWindow >= held || s.DrainWindow < held-20 {
		t.Fatalf("after 20 answers in 100ms: %+v, want window 68 and the drain window below %d", s, held)
	}
}

func TestBacklogDrainsWithinTheDrainWindow(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), delivery.FlowConfig{InitialWindow: 2, MaxWindow: 100, ReopenWindow: 1,
		ProbeAfter: 100, QueueingDelay: time.Millisecond})
	if err := f.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Fast answers, then answers queued far beyond the least round trip:
	// the window grows to 48, the drain window shrinks back to InitialWindow.
	f.endpoint.set("c1", webhook.Result{StatusCode: 200, Duration: time.Millisecond})
	f.sequential(t, "c1", ids("a", 6)...)
	f.endpoint.set("c1", webhook.Result{StatusCode: 200, Duration: 50 * time.Millisecond})
	f.sequential(t, "c1", ids("b", 40)...)
	if s := f.engine.Flow("c1"); s.Window != 48 || s.DrainWindow != 2 {
		t.Fatalf("before the backlog: %+v, want window 48, drain window 2", s)
	}

	// 48 fresh events fill the window; 12 more are parked.
	release := f.block("c1")
	f.publish(t, "c1", ids("c", 48)...)
	waitUntil(t, "the window full", func() bool { return f.engine.InFlight() == 48 })
	f.publish(t, "c1", ids("p", 12)...)
	if s := f.engine.Flow("c1"); s.Backlog == dcon.BacklogNone {
		t.Fatalf("12 events past a full window: %+v, want a backlog", s)
	}
	hold := make(chan struct{})
	f.endpoint.mu.Lock()
	f.endpoint.hold["p"] = hold
	f.endpoint.mu.Unlock()
	f.unblock("c1")
	close(release)
	// The fresh events are answered, and the backlog drains two at a time
	// (held by the endpoint), however often the engine looks.
	waitUntil(t, "the fresh events answered, two backlog attempts out", func() bool {
		for _, id := range ids("c", 48) {
			if f.endpoint.count(id) != 1 {
				return false
			}
		}
		return f.engine.InFlight() == 2
	})
	for range 3 {
		if _, err := f.engine.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := f.engine.InFlight(); n != 2 {
			t.Fatalf("%d backlog attempts in flight, want the drain window's 2", n)
		}
	}
	close(hold)
	waitUntil(t, "the backlog drained", func() bool {
		if _, err := f.engine.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		return f.depth(t, "c1") == 0 && f.engine.InFlight() == 0
	})
}

// probeOnErrors is the flow configuration of the tests of a connector whose
// endpoint answers only errors: PROBING after 8 in a row, probes 1 to 4 s
// apart.
var probeOnErrors = delivery.FlowConfig{InitialWindow: 4, ProbeAfterErrors: 8,
	ProbeInterval: time.Second, MaxProbeInterval: 4 * time.Second}

// TestEndpointAnsweringOnlyErrorsIsProbed: an endpoint that answers, but
// with nothing but errors, has its connector PROBING after
// ProbeAfterErrors failures in a row; failures mixed with successes do not.
func TestEndpointAnsweringOnlyErrorsIsProbed(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), probeOnErrors)
	// Seven failures, a success, seven failures: never eight in a row.
	f.endpoint.set("c1", webhook.Result{StatusCode: 500, Err: errHTTP500})
	f.sequential(t, "c1", ids("a", 7)...)
	f.endpoint.set("c1", webhook.Result{StatusCode: 200})
	f.sequential(t, "c1", "ok")
	f.endpoint.set("c1", webhook.Result{StatusCode: 500, Err: errHTTP500})
	f.sequential(t, "c1", ids("b", 7)...)
	if s := f.engine.Flow("c1"); s.Mode != dcon.FlowThrottled || s.ConsecutiveFailures != 7 || s.Window != 5 {
		t.Fatalf("after 7 failures, a success and 7 failures: %+v, want THROTTLED, window 5", s)
	}
	f.sequential(t, "c1", "b0007")
	if s := f.engine.Flow("c1"); s.Mode != dcon.FlowProbing {
		t.Fatalf("after 8 failures in a row: %+v, want PROBING", s)
	}

	// Fresh events are parked as they are enqueued, not attempted.
	sent := f.endpoint.total()
	for _, id := range ids("f", 20) {
		if ds := f.publish(t, "c1", id); !ds[0].Parked() {
			t.Fatalf("%s was not parked", id)
		}
	}
	f.engine.Wait()
	if n := f.endpoint.total() - sent; n != 0 {
		t.Errorf("%d attempts of fresh events of a PROBING connector", n)
	}

	// An error answer to a probe does not reopen it; only a success does.
	for i := 1; i <= 8; i++ {
		f.poll(t, t0.Add(time.Duration(i)*time.Second))
	}
	if n := f.endpoint.total() - sent; n < 2 || n > 8 {
		t.Errorf("%d attempts in 8 s of probing, want one per probe interval", n)
	}
	if s := f.engine.Flow("c1"); s.Mode != dcon.FlowProbing {
		t.Fatalf("after probes answered with errors: %+v, want PROBING", s)
	}
	f.endpoint.set("c1", webhook.Result{StatusCode: 200})
	for i := 9; i <= 20 && f.depth(t, "c1") > 0; i++ {
		f.poll(t, t0.Add(time.Duration(i)*time.Second))
	}
	if n := f.depth(t, "c1"); n != 0 {
		t.Errorf("%d deliveries left after the endpoint recovered: %+v", n, f.engine.Flow("c1"))
	}
}

// TestPoisonEventDoesNotHoldUpTheBacklog: after its connector went PROBING
// on errors, an endpoint that takes every event again but one (the oldest)
// gets the rest at once: a probe answered with an error keeps its own
// backoff instead of being parked, where it would be the oldest again and
// the next probe, and the next.
func TestPoisonEventDoesNotHoldUpTheBacklog(t *testing.T) {
	t.Parallel()
	f := newFlowFixture(t, active("c1"), probeOnErrors)
	f.endpoint.set("c1", webhook.Result{StatusCode: 500, Err: errHTTP500})
	f.sequential(t, "c1", ids("e", 8)...)
	if s := f.engine.Flow("c1"); s.Mode != dcon.FlowProbing {
		t.Fatalf("after 8 failures in a row: %+v, want PROBING", s)
	}
	f.publish(t, "c1", ids("p", 30)...)
	// A minute of failed probes: the retries the poller meets while the
	// connector has no room are parked too, until the backlog holds them all.
	for i := 1; i <= 60; i++ {
		f.poll(t, t0.Add(time.Duration(i)*time.Second))
	}

	// The endpoint recovers, but refuses e0000 — the oldest, and so the
	// next probe — whenever it comes.
	f.endpoint.mu.Lock()
	f.endpoint.byBody["e0000"] = webhook.Result{StatusCode: 500, Err: errHTTP500}
	f.endpoint.mu.Unlock()
	f.endpoint.set("c1", webhook.Result{StatusCode: 200})
	for i := 61; i <= 90 && f.depth(t, "c1") > 1; i++ {
		f.poll(t, t0.Add(time.Duration(i)*time.Second))
	}
	if n := f.depth(t, "c1"); n != 1 {
		t.Fatalf("%d deliveries left, want only the poison event: %+v", n, f.engine.Flow("c1"))
	}
	if n := f.endpoint.count("e0000"); n < 2 {
		t.Errorf("the poison event was attempted %d times, want it probed too", n)
	}
	if s := f.engine.Flow("c1"); s.Mode == dcon.FlowProbing {
		t.Errorf("still PROBING after the endpoint took the backlog: %+v", s)
	}
}
