package pebble

import (
	"context"
	"fmt"
	"testing"
	"time"

	"dcon"
	"dcon/internal/memqueue"
)

// inspectedQueue is a queue that tells its stats: *DB and *memqueue.Queue.
type inspectedQueue interface {
	dcon.Queue
	dcon.QueueInspector
}

// TestQueueStats runs one table against both queues that implement
// dcon.QueueInspector, and, for Pebble, again after a reopen (counted by the
// scan at Open).
func TestQueueStats(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)
	due := t0.Add(time.Minute)
	d := func(conn, id string, age time.Duration) dcon.Delivery {
		return dcon.Delivery{ConnectorID: conn, ProjectID: "p", EventID: id, EventType: dcon.EventTemperature,
			EventTime: t0.Add(-age), Body: []byte(`{}`), Due: due}
	}
	// Event ids ascend with time, as xids do: e1 is the oldest.
	e1, e2, e3 := d("c1", "e1", 3*time.Minute), d("c1", "e2", 2*time.Minute), d("c1", "e3", time.Minute)
	type step func(ctx context.Context, q dcon.Queue) error
	enqueue := func(ds ...dcon.Delivery) step {
		return func(ctx context.Context, q dcon.Queue) error { return q.Enqueue(ctx, ds) }
	}
	ack := func(ds ...dcon.Delivery) step {
		return func(ctx context.Context, q dcon.Queue) error { return q.Ack(ctx, ds) }
	}
	expire := func(ds ...dcon.Delivery) step {
		return func(ctx context.Context, q dcon.Queue) error { return q.Expire(ctx, ds, t0) }
	}
	drop := func(conn string) step {
		return func(ctx context.Context, q dcon.Queue) error { _, err := q.Drop(ctx, conn); return err }
	}
	retry := func(x dcon.Delivery) step {
		return func(ctx context.Context, q dcon.Queue) error {
			x.Attempts, x.LastError = 1, "HTTP 500"
			return q.Retry(ctx, x, due.Add(time.Hour))
		}
	}
	tests := []struct {
		name  string
		steps []step
		want  dcon.QueueStats // of c1
	}{
		{"empty", nil, dcon.QueueStats{}},
		{"enqueued", []step{enqueue(e1, e2, e3)}, dcon.QueueStats{Depth: 3, Oldest: e1.EventTime}},
		{"another connector apart", []step{enqueue(e2, d("c2", "e1", time.Hour))}, dcon.QueueStats{Depth: 1, Oldest: e2.EventTime}},
		{"replaced, not added", []step{enqueue(e1, e2), enqueue(e2), enqueue(e1)}, dcon.QueueStats{Depth: 2, Oldest: e1.EventTime}},
		{"retried, not added", []step{enqueue(e1, e2), retry(e1)}, dcon.QueueStats{Depth: 2, Oldest: e1.EventTime}},
		{"oldest acked", []step{enqueue(e1, e2, e3), ack(e1)}, dcon.QueueStats{Depth: 2, Oldest: e2.EventTime}},
		{"acked twice", []step{enqueue(e1, e2), ack(e1), ack(e1)}, dcon.QueueStats{Depth: 1, Oldest: e2.EventTime}},
		{"all acked", []step{enqueue(e1, e2), ack(e1, e2)}, dcon.QueueStats{}},
		{"expired", []step{enqueue(e1, e2, e3), expire(e1, e2)}, dcon.QueueStats{Depth: 1, Oldest: e3.EventTime}},
		{"dropped", []step{enqueue(e1, e2, e3), drop("c1")}, dcon.QueueStats{}},
		{"acked after drop", []step{enqueue(e1, e2), drop("c1"), ack(e1), enqueue(e3)}, dcon.QueueStats{Depth: 1, Oldest: e3.EventTime}},
		{"sync copy of an older event", []step{enqueue(e2, e3), ack(e2), enqueue(e1)}, dcon.QueueStats{Depth: 2, Oldest: e1.EventTime}},
		{"after a stats read", []step{enqueue(e2, e3), stats("c1"), ack(e2), stats("c1"), enqueue(e1)}, dcon.QueueStats{Depth: 2, Oldest: e1.EventTime}},
	}
	queues := []struct {
		name   string
		open   func(t *testing.T) inspectedQueue
		reopen func(t *testing.T, q inspectedQueue) inspectedQueue
	}{
		{"memqueue", func(*testing.T) inspectedQueue { return memqueue.New() }, nil},
		{"pebble", func(t *testing.T) inspectedQueue { return openDB(t, t.TempDir(), Options{}) },
			func(t *testing.T, q inspectedQueue) inspectedQueue {
				db := q.(*DB)
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				return openDB(t, db.dir, Options{})
			}},
	}
	for _, qt := range queues {
		for _, tt := range tests {
			t.Run(qt.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				q := qt.open(t)
				for i, s := range tt.steps {
					if err := s(ctx, q); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
				}
				checkStats(t, q, "c1", tt.want)
				if qt.reopen != nil {
					checkStats(t, qt.reopen(t, q), "c1", tt.want)
				}
			})
		}
	}
}

// stats is a step that reads a connector's stats, moving Pebble's seek start.
func stats(conn string) func(ctx context.Context, q dcon.Queue) error {
	return func(ctx context.Context, q dcon.Queue) error {
		_, err := q.(dcon.QueueInspector).QueueStats(ctx, conn)
		return err
	}
}

func checkStats(t *testing.T, q dcon.QueueInspector, conn string, want dcon.QueueStats) {
	t.Helper()
	got, err := q.QueueStats(context.Background(), conn)
	if err != nil {
		t.Fatalf("QueueStats: %v", err)
	}
	if got.Depth != want.Depth || !got.Oldest.Equal(want.Oldest) {
		t.Errorf("QueueStats = %+v, want %+v", got, want)
	}
}

// BenchmarkQueueStats measures one QueueStats call on a connector whose
// first records were acked: the seek skips their tombstones once.
func BenchmarkQueueStats(b *testing.B) {
	db := openDB(b, b.TempDir(), Options{})
	ctx := context.Background()
	t0 := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)
	var ds []dcon.Delivery
	for i := range 10000 {
		ds = append(ds, dcon.Delivery{ConnectorID: "c", ProjectID: "p", EventID: fmt.Sprintf("e%08d", i),
			EventType: dcon.EventTemperature, EventTime: t0.Add(time.Duration(i)), Body: []byte(`{}`), Due: t0})
	}
	if err := db.Enqueue(ctx, ds); err != nil {
		b.Fatal(err)
	}
	if err := db.Ack(ctx, ds[:9000]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.QueueStats(ctx, "c"); err != nil {
			b.Fatal(err)
		}
	}
}
