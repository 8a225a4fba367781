package pebble

import (
	"context"
	"fmt"
	"testing"
	"time"

	"dcon"
)

// TestAckBatchCountsEachRecordOnce acks in batches, as the delivery engine
// does, deliveries some of which are gone or repeated: the counts subtract
// each record found once.
func TestAckBatchCountsEachRecordOnce(t *testing.T) {
	t.Parallel()
	due := base.Add(time.Minute)
	d := func(conn, id string) dcon.Delivery {
		return dcon.Delivery{ConnectorID: conn, ProjectID: "p", EventID: id, EventType: dcon.EventTemperature,
			EventTime: base, Body: []byte(`{}`), Due: due}
	}
	e1, e2, e3, other := d("c1", "e1"), d("c1", "e2"), d("c1", "e3"), d("c2", "e1")
	tests := []struct {
		name    string
		dropped bool // c1 is dropped after the enqueue, and e3 enqueued again
		ack     []dcon.Delivery
		want    int // c1's depth
	}{
		{"one of each", false, []dcon.Delivery{e1, e2}, 1},
		{"repeated in the batch", false, []dcon.Delivery{e1, e2, e1, e2, e1}, 1},
		{"with another connector's", false, []dcon.Delivery{other, e1, other}, 2},
		{"acked after a drop", true, []dcon.Delivery{e1, e2, e1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openDB(t, t.TempDir(), Options{})
			if err := db.Enqueue(ctx, []dcon.Delivery{e1, e2, e3, other}); err != nil {
				t.Fatal(err)
			}
			if tt.dropped {
				if _, err := db.Drop(ctx, "c1"); err != nil {
					t.Fatal(err)
				}
				if err := db.Enqueue(ctx, []dcon.Delivery{e3}); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Ack(ctx, tt.ack); err != nil {
				t.Fatal(err)
			}
			checkStats(t, db, "c1", dcon.QueueStats{Depth: tt.want, Oldest: base})
			if n, err := db.Depth(ctx, "c1"); err != nil || n != tt.want {
				t.Errorf("Depth = %d (%v), want %d", n, err, tt.want)
			}
		})
	}
}

// BenchmarkAck acks queued deliveries, per at a time; one op is one
// delivery. The deliveries are enqueued, untimed, in rounds of 10,000, as
// the delivery engine's acks follow its enqueues. per=1 is one Ack per
// attempt; larger ones are what the engine's acker commits under load.
func BenchmarkAck(b *testing.B) {
	for _, per := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("per=%d", per), func(b *testing.B) {
			b.ReportAllocs()
			db := openDB(b, b.TempDir(), Options{})
			ids := benchIDs(b.N)
			ctx := b.Context()
			const round = 10000
			ds := make([]dcon.Delivery, 0, round)
			b.ResetTimer()
			for start := 0; start < b.N; start += round {
				end := min(start+round, b.N)
				b.StopTimer()
				ds = ds[:0]
				for i := start; i < end; i++ {
					ds = append(ds, benchDelivery(ids[i]))
				}
				if err := db.EnqueueEvents(ctx, "p0000000000000000001", nil, ds); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for i := 0; i < len(ds); i += per {
					if err := db.Ack(ctx, ds[i:min(i+per, len(ds))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportDeliveries(b, b.N)
		})
	}
}
