package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon"
	"dcon/internal/delivery"
	"dcon/internal/memqueue"
	"dcon/internal/webhook"
)

var t0 = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

// clock is a clock that moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// endpoint is a Sender whose answer is chosen per connector by the test.
type endpoint struct {
	mu     sync.Mutex
	answer map[string]webhook.Result // by connector id; absent = 200
	sent   map[string]int            // by event id
	block  map[string]chan struct{}  // by connector id: Send waits for the channel
	hold   map[string]chan struct{}  // by body prefix: Send waits for the channel
	byBody map[string]webhook.Result // by body prefix: the answer, before answer's
}

func newEndpoint() *endpoint {
	return &endpoint{answer: map[string]webhook.Result{}, sent: map[string]int{},
		block: map[string]chan struct{}{}, hold: map[string]chan struct{}{}, byBody: map[string]webhook.Result{}}
}

func (p *endpoint) Send(ctx context.Context, c *dcon.Connector, a webhook.Attempt) webhook.Result {
	body := a.Body
	p.mu.Lock()
	block := p.block[c.ID]
	for prefix, ch := range p.hold {
		if strings.HasPrefix(string(body), prefix) {
			block = ch
		}
	}
	p.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return webhook.Result{Err: ctx.Err()}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent[string(body)]++
	for prefix, r := range p.byBody {
		if strings.HasPrefix(string(body), prefix) {
			return r
		}
	}
	if r, ok := p.answer[c.ID]; ok {
		return r
	}
	return webhook.Result{StatusCode: http.StatusOK}
}

func (p *endpoint) set(connector string, r webhook.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer[connector] = r
}

func (p *endpoint) count(event string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[event]
}

// connectors is a fixed set of connectors.
type connectors map[string]*dcon.Connector

func (cs connectors) Lookup(id string) (*dcon.Connector, bool) { c, ok := cs[id]; return c, ok }

func active(ids ...string) connectors {
	cs := connectors{}
	for _, id := range ids {
		cs[id] = &dcon.Connector{ID: id, Status: dcon.StatusActive, HTTP: dcon.HTTPConfig{URL: "https://example.com/" + id}}
	}
	return cs
}

type fixture struct {
	clock    *clock
	queue    *memqueue.Queue
	endpoint *endpoint
	engine   *delivery.Engine
}

func newFixture(t *testing.T, cs connectors) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{now: t0}, queue: memqueue.New(), endpoint: newEndpoint()}
	var err error
	f.engine, err = delivery.New(delivery.Config{
		Queue:      f.queue,
		Connectors: cs,
		Sender:     f.endpoint,
		// The upper end of the jitter range: delays are exactly the ceiling.
		Backoff:      delivery.Backoff{Initial: time.Second, Max: 10 * time.Minute, Rand: func() float64 { return 0.999999 }},
		Now:          f.clock.Now,
		Lease:        time.Minute,
		PollInterval: time.Hour, // the test polls
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

// publish enqueues one delivery per connector of a fresh event, as ingest
// does, and hands them to the engine.
func (f *fixture) publish(t *testing.T, eventID string, connectorIDs ...string) []dcon.Delivery {
	t.Helper()
	now := f.clock.Now()
	var ds []dcon.Delivery
	for _, c := range connectorIDs {
		ds = append(ds, dcon.Delivery{ConnectorID: c, EventID: eventID, EventType: dcon.EventTouch,
			EventTime: now, Body: []byte(eventID), Due: now.Add(time.Minute)})
	}
	if err := f.queue.Enqueue(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	f.engine.Dispatch(ds)
	f.engine.Wait()
	return ds
}

// poll moves the clock to at and lets the engine take what came due.
func (f *fixture) poll(t *testing.T, at time.Time) int {
	t.Helper()
	f.clock.Set(at)
	n, err := f.engine.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.engine.Wait()
	return n
}

func (f *fixture) depth(t *testing.T, connector string) int {
	t.Helper()
	n, err := f.queue.Depth(context.Background(), connector)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDispatchDeliversAtOnceAndAcks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("c1", "c2"))
	f.publish(t, "e1", "c1", "c2")
	if n := f.endpoint.count("e1"); n != 2 {
		t.Errorf("sent %d times, want once per connector", n)
	}
	if f.depth(t, "c1")+f.depth(t, "c2") != 0 {
		t.Errorf("acknowledged deliveries are still queued")
	}
	if n := f.poll(t, t0.Add(time.Hour)); n != 0 {
		t.Errorf("an hour later the queue handed out %d deliveries, want 0", n)
	}
}

func TestFailedDeliveryIsRetriedWithBackoffUntilAcknowledged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("c1"))
	f.endpoint.set("c1", webhook.Result{StatusCode: 503, Err: errors.New("HTTP 503 Service Unavailable")})
	f.publish(t, "e1", "c1")

	// Attempt n fails at time at; the next is due within the ceiling: 2s, 4s, 8s…
	at := t0
	for n := 1; n <= 4; n++ {
		ceiling := time.Duration(1<<n) * time.Second
		if got := f.poll(t, at.Add(ceiling-10*time.Millisecond)); got != 0 {
			t.Fatalf("after failure %d, the retry came before its due time", n)
		}
		if got := f.poll(t, at.Add(ceiling)); got != 1 {
			t.Fatalf("after failure %d, the retry was not due at %v", n, ceiling)
		}
		at = at.Add(ceiling)
		if sent := f.endpoint.count("e1"); sent != n+1 {
			t.Fatalf("sent %d times, want %d", sent, n+1)
		}
	}
	f.endpoint.set("c1", webhook.Result{StatusCode: 204})
	f.poll(t, at.Add(time.Hour))
	if f.depth(t, "c1") != 0 {
		t.Errorf("a delivery answered 204 is still queued")
	}
	if got := f.poll(t, at.Add(2*time.Hour)); got != 0 {
		t.Errorf("acknowledged delivery handed out again")
	}
}

func TestRetryAfterIsAFloor(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("c1"))
	f.endpoint.set("c1", webhook.Result{StatusCode: 429, Err: errors.New("HTTP 429"), RetryAfter: 90 * time.Second})
	f.publish(t, "e1", "c1")
	if got := f.poll(t, t0.Add(89*time.Second)); got != 0 {
		t.Errorf("retried before Retry-After")
	}
	if got := f.poll(t, t0.Add(90*time.Second)); got != 1 {
		t.Errorf("not retried when Retry-After passed")
	}
}

func TestBackoffCeilingDoublesAndCaps(t *testing.T) {
	t.Parallel()
	b := delivery.Backoff{Initial: time.Second, Max: 10 * time.Minute}
	tests := []struct {
		attempt int
		want    time.Duration
	}{{1, 2 * time.Second}, {2, 4 * time.Second}, {5, 32 * time.Second}, {9, 512 * time.Second}, {10, 10 * time.Minute}, {500, 10 * time.Minute}}
	for _, tt := range tests {
		if got := b.Ceiling(tt.attempt); got != tt.want {
			t.Errorf("Ceiling(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	for _, r := range []float64{0, 0.5, 0.999} {
		b.Rand = func() float64 { return r }
		if got, want := b.Delay(3, 0), time.Duration(r*float64(8*time.Second)); got != want {
			t.Errorf("Delay with rand %v = %v, want %v", r, got, want)
		}
		if got := b.Delay(1, time.Minute); got != time.Minute {
			t.Errorf("Delay with Retry-After 1m = %v", got)
		}
	}
	// Full jitter: the first delay averages Initial.
	var sum time.Duration
	for range 10000 {
		sum += delivery.DefaultBackoff.Delay(1, 0)
	}
	if avg := sum / 10000; avg < 900*time.Millisecond || avg > 1100*time.Millisecond {
		t.Errorf("first delay averages %v, want about 1s", avg)
	}
}

func TestDeliveryExpiresTwelveHoursAfterItsEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("c1"))
	f.endpoint.set("c1", webhook.Result{StatusCode: 500, Err: errors.New("HTTP 500 Internal Server Error")})
	ds := f.publish(t, "e1", "c1")
	deadline := ds[0].EventTime.Add(12 * time.Hour)

	// Keep failing until the last retry before the deadline.
	for now := t0; now.Before(deadline.Add(-10 * time.Minute)); now = now.Add(10 * time.Minute) {
		f.poll(t, now)
	}
	f.poll(t, deadline.Add(-time.Second))
	if dead, _ := f.queue.DeadLetters(context.Background(), "c1", 10); len(dead) != 0 {
		t.Fatalf("expired before 12 hours")
	}
	if f.depth(t, "c1") != 1 {
		t.Fatalf("the delivery left the queue before 12 hours")
	}
	sent := f.endpoint.count("e1")
	f.poll(t, deadline)
	dead, err := f.queue.DeadLetters(context.Background(), "c1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].EventID != "e1" || dead[0].LastError != "HTTP 500 Internal Server Error" {
		t.Fatalf("dead letters = %+v, want e1 with its last error", dead)
	}
	if !dead[0].ExpireTime.Equal(deadline) {
		t.Errorf("expired at %v, want %v", dead[0].ExpireTime, deadline)
	}
	if f.depth(t, "c1") != 0 || f.endpoint.count("e1") != sent {
		t.Errorf("an expired delivery is still queued or was sent again")
	}
	if sent < 60 {
		t.Errorf("only %d attempts in 12 hours with a 10 minute cap", sent)
	}
}

func TestDeletedConnectorsDeliveriesAreDroppedNotSent(t *testing.T) {
	t.Parallel()
	cs := active("c1")
	f := newFixture(t, cs)
	f.endpoint.set("c1", webhook.Result{StatusCode: 500, Err: errors.New("HTTP 500")})
	f.publish(t, "e1", "c1")
	delete(cs, "c1")
	f.poll(t, t0.Add(time.Hour))
	if f.endpoint.count("e1") != 1 || f.depth(t, "c1") != 0 {
		t.Errorf("sent %d times, depth %d: a deleted connector's delivery must be dropped unsent", f.endpoint.count("e1"), f.depth(t, "c1"))
	}
}

func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("slow", "fast"))
	release := make(chan struct{})
	f.endpoint.mu.Lock()
	f.endpoint.block["slow"] = release
	f.endpoint.mu.Unlock()
	now := f.clock.Now()
	for i := range 50 {
		ds := []dcon.Delivery{
			{ConnectorID: "slow", EventID: fmt.Sprint("s", i), EventTime: now, Body: []byte(fmt.Sprint("s", i)), Due: now.Add(time.Minute)},
			{ConnectorID: "fast", EventID: fmt.Sprint("f", i), EventTime: now, Body: []byte(fmt.Sprint("f", i)), Due: now.Add(time.Minute)},
		}
		if err := f.queue.Enqueue(context.Background(), ds); err != nil {
			t.Fatal(err)
		}
		f.engine.Dispatch(ds)
	}
	// Every fast delivery completes while all 50 slow ones are still hanging.
	waitUntil(t, "fast deliveries acknowledged", func() bool {
		return f.depth(t, "fast") == 0 && f.engine.InFlight() == 50
	})
	if got := f.engine.InFlight(); got != 50 {
		t.Errorf("%d attempts in flight, want the 50 slow ones", got)
	}
	if f.depth(t, "fast") != 0 {
		t.Errorf("fast connector still has %d queued while the slow one hangs", f.depth(t, "fast"))
	}
	close(release)
	f.engine.Wait()
	if f.depth(t, "slow") != 0 {
		t.Errorf("slow deliveries not acknowledged after release")
	}
}

func TestStartRecoversDeliveriesLeftInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("c1"))
	// A previous process enqueued these with a lease and died before sending.
	var ds []dcon.Delivery
	for i := range 5 {
		ds = append(ds, dcon.Delivery{ConnectorID: "c1", EventID: fmt.Sprint("e", i), EventTime: t0,
			Body: []byte(fmt.Sprint("e", i)), Due: t0.Add(time.Minute)})
	}
	if err := f.queue.Enqueue(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(time.Second))
	if err := f.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.engine.Wait()
	for i := range 5 {
		if n := f.endpoint.count(fmt.Sprint("e", i)); n != 1 {
			t.Errorf("e%d sent %d times at start, want once", i, n)
		}
	}
	if f.depth(t, "c1") != 0 {
		t.Errorf("recovered deliveries not acknowledged")
	}
}

func TestStopWaitsForAttemptsUnderWay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("c1"))
	release := make(chan struct{})
	f.endpoint.mu.Lock()
	f.endpoint.block["c1"] = release
	f.endpoint.mu.Unlock()
	now := f.clock.Now()
	d := dcon.Delivery{ConnectorID: "c1", EventID: "e1", EventTime: now, Body: []byte("e1"), Due: now.Add(time.Minute)}
	if err := f.queue.Enqueue(context.Background(), []dcon.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	f.engine.Dispatch([]dcon.Delivery{d})
	stopped := make(chan error, 1)
	go func() { stopped <- f.engine.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while an attempt was under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if f.endpoint.count("e1") != 1 || f.depth(t, "c1") != 0 {
		t.Errorf("the attempt under way was not finished and acknowledged")
	}
}

func TestStopCancelsAttemptsAtItsDeadlineAndKeepsThemQueued(t *testing.T) {
	t.Parallel()
	f := newFixture(t, active("c1"))
	f.endpoint.mu.Lock()
	f.endpoint.block["c1"] = make(chan struct{}) // never released
	f.endpoint.mu.Unlock()
	now := f.clock.Now()
	d := dcon.Delivery{ConnectorID: "c1", EventID: "e1", EventTime: now, Body: []byte("e1"), Due: now.Add(time.Minute)}
	if err := f.queue.Enqueue(context.Background(), []dcon.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	f.engine.Dispatch([]dcon.Delivery{d})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.engine.Stop(ctx); err == nil {
		t.Error("Stop reported a clean stop though it cancelled an attempt")
	}
	if f.depth(t, "c1") != 1 {
		t.Errorf("a cancelled attempt's delivery left the queue")
	}
}

// waitUntil checks cond every millisecond until it holds, and fails the test
// if it does not within 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
