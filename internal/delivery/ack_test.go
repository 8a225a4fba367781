package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dcon"
	"dcon/internal/delivery"
	"dcon/internal/memqueue"
	"dcon/internal/pebble"
	"dcon/internal/webhook"
)

// ackQueue is a queue whose first Ack waits until the test closes release,
// and then fails with firstErr if it is set. It records the size of every
// Ack. It hides whether the queue can park: windows do not hold deliveries
// back.
type ackQueue struct {
	dcon.Queue
	first    chan struct{} // closed when the first Ack begins
	release  chan struct{} // the first Ack waits for it
	firstErr error

	mu    sync.Mutex
	sizes []int
}

func newAckQueue(q dcon.Queue) *ackQueue {
	return &ackQueue{Queue: q, first: make(chan struct{}), release: make(chan struct{})}
}

func (q *ackQueue) Ack(ctx context.Context, ds []dcon.Delivery) error {
	q.mu.Lock()
	n := len(q.sizes)
	q.sizes = append(q.sizes, len(ds))
	q.mu.Unlock()
	if n == 0 {
		close(q.first)
		<-q.release
		if q.firstErr != nil {
			return q.firstErr
		}
	}
	return q.Queue.Ack(ctx, ds)
}

func (q *ackQueue) batches() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]int(nil), q.sizes...)
}

// waitFirstAck waits until the first Ack has begun.
func (q *ackQueue) waitFirstAck(t *testing.T) {
	t.Helper()
	select {
	case <-q.first:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the first Ack")
	}
}

// okSender answers 200 at once and counts the attempts.
type okSender struct{ sent atomic.Int64 }

func (s *okSender) Send(context.Context, *dcon.Connector, webhook.Attempt) webhook.Result {
	s.sent.Add(1)
	return webhook.Result{StatusCode: http.StatusOK}
}

// syncBuffer is a log destination that is safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type ackFixture struct {
	clock  *clock
	queue  *ackQueue
	sender *okSender
	engine *delivery.Engine
}

func newAckFixture(t *testing.T, q dcon.Queue, log *slog.Logger) *ackFixture {
	t.Helper()
	f := &ackFixture{clock: &clock{now: t0}, queue: newAckQueue(q), sender: &okSender{}}
	var err error
	f.engine, err = delivery.New(delivery.Config{Queue: f.queue, Connectors: active("c1"), Sender: f.sender,
		Logger: log, Now: f.clock.Now, Lease: time.Minute, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-f.queue.release:
		default:
			close(f.queue.release) // a failed test must not leave Stop waiting
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.engine.Stop(ctx)
	})
	return f
}

// publish enqueues n deliveries for c1, leased for a minute as ingest leases
// them, and hands them to the engine.
func (f *ackFixture) publish(t *testing.T, prefix string, n int) {
	t.Helper()
	now := f.clock.Now()
	ds := make([]dcon.Delivery, n)
	for i := range ds {
		ds[i] = dcon.Delivery{ConnectorID: "c1", EventID: fmt.Sprintf("%s%05d", prefix, i), EventType: dcon.EventTouch,
			EventTime: now, Body: []byte(`{}`), Due: now.Add(time.Minute)}
	}
	if err := f.queue.Enqueue(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	f.engine.Dispatch(ds)
}

// attemptsEnded waits until n attempts were made and none is under way.
func (f *ackFixture) attemptsEnded(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d attempts ended", n), func() bool {
		return f.sender.sent.Load() == int64(n) && f.engine.InFlight() == 0
	})
}

func (f *ackFixture) depth(t *testing.T) int {
	t.Helper()
	n, err := f.queue.Depth(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAcksAreCommittedInBatchesWithoutHoldingUpAttempts(t *testing.T) {
	t.Parallel()
	f := newAckFixture(t, memqueue.New(), nil)
	const n = 3000
	f.publish(t, "e", n)
	f.queue.waitFirstAck(t)
	// Every attempt ends, although the first ack's commit has not; the
	// batches after it commit meanwhile, on other committers.
	f.attemptsEnded(t, n)
	first := f.queue.batches()[0]
	if d := f.depth(t); d < first {
		t.Fatalf("depth %d while the first ack (of %d) is being committed, want at least %d", d, first, first)
	}
	close(f.queue.release)
	f.engine.Wait()
	if d := f.depth(t); d != 0 {
		t.Errorf("depth %d after the acks, want 0", d)
	}
	sizes := f.queue.batches()
	total := 0
	for _, s := range sizes {
		total += s
		if s > 1024 {
			t.Errorf("an Ack of %d deliveries; at most 1024 at a time", s)
		}
	}
	// Acks handed over while a commit runs join a batch: far fewer commits
	// than acks, though several committers may each take part of them.
	if total != n || len(sizes) > n/10 {
		t.Errorf("Acks of %v: %d deliveries in %d calls, want %d in at most %d", sizes, total, len(sizes), n, n/10)
	}
}

func TestDeliveryWhoseAckIsPendingIsNotClaimedAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		queue func(t *testing.T) dcon.Queue
	}{
		{"memqueue", func(*testing.T) dcon.Queue { return memqueue.New() }},
		{"pebble", func(t *testing.T) dcon.Queue {
			db := openPebble(t, t.TempDir())
			t.Cleanup(func() { _ = db.Close() })
			return db
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAckFixture(t, tc.queue(t), nil)
			f.publish(t, "e", 1)
			f.queue.waitFirstAck(t)
			f.attemptsEnded(t, 1)

			// Until its lease ends the poller does not take it, acked or not.
			f.clock.Set(t0.Add(time.Minute - time.Millisecond))
			if n, err := f.engine.Poll(context.Background()); err != nil || n != 0 {
				t.Errorf("Poll while the ack is pending claimed %d (%v), want 0", n, err)
			}
			close(f.queue.release)
			f.engine.Wait()
			f.clock.Set(t0.Add(time.Hour))
			if n, err := f.engine.Poll(context.Background()); err != nil || n != 0 {
				t.Errorf("Poll after the ack claimed %d (%v), want 0", n, err)
			}
			f.engine.Wait()
			if n := f.sender.sent.Load(); n != 1 {
				t.Errorf("sent %d times, want once", n)
			}
			if d := f.depth(t); d != 0 {
				t.Errorf("depth %d after the ack, want 0", d)
			}
		})
	}
}

func TestStopCommitsPendingAcks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ctx  func() context.Context
	}{
		{"with time to drain", context.Background},
		{"with its deadline passed", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			db := openPebble(t, dir)
			f := newAckFixture(t, db, nil)
			const n = 100
			f.publish(t, "e", n)
			f.queue.waitFirstAck(t)
			f.attemptsEnded(t, n)

			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				_ = f.engine.Stop(tc.ctx())
			}()
			select {
			case <-stopped:
				t.Fatal("Stop returned before the pending acks were committed")
			default:
			}
			close(f.queue.release)
			<-stopped
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openPebble(t, dir)
			defer db.Close()
			if d, err := db.Depth(context.Background(), "c1"); err != nil || d != 0 {
				t.Errorf("after Stop and a reopen, depth %d (%v), want 0", d, err)
			}
		})
	}
}

func TestFailedAckBatchIsLoggedAndLaterOnesCommitted(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	f := newAckFixture(t, memqueue.New(), slog.New(slog.NewTextHandler(&logs, nil)))
	f.queue.firstErr = errors.New("disk on fire")
	f.publish(t, "a", 1)
	f.queue.waitFirstAck(t)
	f.publish(t, "b", 99)
	f.attemptsEnded(t, 100)
	close(f.queue.release)
	f.engine.Wait()

	if sizes := f.queue.batches(); len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 99 {
		t.Errorf("Acks of %v, want [1 99]", sizes)
	}
	if d := f.depth(t); d != 1 {
		t.Errorf("depth %d, want 1: the failed ack's delivery waits for its lease to end", d)
	}
	if !bytes.Contains([]byte(logs.String()), []byte("disk on fire")) {
		t.Errorf("the failed ack was not logged:\n%s", logs.String())
	}
	// Its lease ends: it is delivered again, as at-least-once allows.
	f.clock.Set(t0.Add(time.Hour))
	if n, err := f.engine.Poll(context.Background()); err != nil || n != 1 {
		t.Errorf("Poll after the lease claimed %d (%v), want 1", n, err)
	}
	f.engine.Wait()
	if d := f.depth(t); d != 0 {
		t.Errorf("depth %d after the redelivery, want 0", d)
	}
}

// BenchmarkEngineAcks makes b.N attempts through the engine against a real
// Pebble queue, with an endpoint that answers 200 at once, 1,000 handed over
// at a time: the cost of an attempt's bookkeeping, most of it the ack. The
// deliveries are enqueued before the timer starts.
func BenchmarkEngineAcks(b *testing.B) {
	b.ReportAllocs()
	db, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cs := active("c1")
	e, err := delivery.New(delivery.Config{Queue: db, Connectors: cs, Sender: &okSender{},
		PollInterval: time.Hour, Flow: delivery.FlowConfig{InitialWindow: 1024, MaxWindow: 1024}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Stop(context.Background())
	now := time.Now()
	const chunk = 1000
	all := make([]dcon.Delivery, b.N)
	for i := range all {
		all[i] = dcon.Delivery{ConnectorID: "c1", ProjectID: "p1", EventID: fmt.Sprintf("e%019d", i), EventType: dcon.EventTouch,
			EventTime: now, Body: []byte(`{"event":{}}`), Due: now.Add(time.Minute)}
	}
	for i := 0; i < len(all); i += chunk {
		if err := db.Enqueue(context.Background(), all[i:min(i+chunk, len(all))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < len(all); i += chunk {
		e.Dispatch(all[i:min(i+chunk, len(all))])
		e.Wait()
	}
	b.StopTimer()
	if n, err := db.Depth(context.Background(), "c1"); err != nil || n != 0 {
		b.Fatalf("depth %d (%v) after every ack", n, err)
	}
}
