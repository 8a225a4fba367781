package pebble

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

// benchBody is the size of a typical rendered event body.
var benchBody = []byte(`{"event":{"eventId":"c0ffee0000000000beef","targetName":"projects/p/devices/d",` +
	`"eventType":"temperature","data":{"temperature":{"value":21.5,"updateTime":"2025-03-14T15:09:26.535897Z"}},` +
	`"timestamp":"2025-03-14T15:09:26.535897Z"},"labels":{"room":"kitchen"},"metadata":{"deviceId":"d","projectId":"p",` +
	`"deviceType":"temperature","productNumber":""}}`)

// benchIDs makes n event ids before the timer starts.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("e%019d", i)
	}
	return ids
}

func benchDelivery(eventID string) dcon.Delivery {
	return dcon.Delivery{
		ConnectorID: "c0000000000000000001", ProjectID: "p0000000000000000001", EventID: eventID,
		EventType: dcon.EventTemperature, EventTime: base, Body: benchBody, Due: base.Add(10 * time.Second),
	}
}

func reportDeliveries(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkEnqueue enqueues one delivery per call, synced, from one goroutine.
func BenchmarkEnqueue(b *testing.B) {
	b.ReportAllocs()
	db := openDB(b, b.TempDir(), Options{})
	ids := benchIDs(b.N)
	ctx := b.Context()
	ds := make([]dcon.Delivery, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ds[0] = benchDelivery(ids[i])
		if err := db.Enqueue(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	reportDeliveries(b, b.N)
}

// BenchmarkEnqueueParallel enqueues one delivery per call from about 64
// goroutines: Pebble's group commit lets concurrent commits share WAL syncs.
func BenchmarkEnqueueParallel(b *testing.B) {
	b.ReportAllocs()
	db := openDB(b, b.TempDir(), Options{})
	ids := benchIDs(b.N)
	ctx := b.Context()
	var next atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ds := make([]dcon.Delivery, 1)
		for pb.Next() {
			ds[0] = benchDelivery(ids[next.Add(1)-1])
			if err := db.Enqueue(ctx, ds); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportDeliveries(b, b.N)
}

// BenchmarkEnqueueBatch100 enqueues 100 deliveries per call; one op is one
// delivery.
func BenchmarkEnqueueBatch100(b *testing.B) {
	b.ReportAllocs()
	db := openDB(b, b.TempDir(), Options{})
	ids := benchIDs(b.N)
	ctx := b.Context()
	ds := make([]dcon.Delivery, 0, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		ds = ds[:0]
		for j := i; j < min(i+100, b.N); j++ {
			ds = append(ds, benchDelivery(ids[j]))
		}
		if err := db.Enqueue(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	reportDeliveries(b, b.N)
}

// BenchmarkClaimAck claims due deliveries 100 at a time and acks them; one op
// is one delivery. The deliveries are enqueued, untimed, in rounds of 10,000
// with a due of their own, as a backlog of retries would be.
func BenchmarkClaimAck(b *testing.B) {
	b.ReportAllocs()
	db := openDB(b, b.TempDir(), Options{})
	ids := benchIDs(b.N)
	ctx := b.Context()
	const round = 10000
	now, lease := base.Add(time.Hour), base.Add(2*time.Hour)
	ds := make([]dcon.Delivery, 0, 1000)
	b.ResetTimer()
	for start := 0; start < b.N; start += round {
		end := min(start+round, b.N)
		b.StopTimer()
		for i := start; i < end; i += cap(ds) {
			ds = ds[:0]
			for j := i; j < min(i+cap(ds), end); j++ {
				d := benchDelivery(ids[j])
				d.Due = base.Add(time.Duration(start) * time.Microsecond)
				ds = append(ds, d)
			}
			if err := db.Enqueue(ctx, ds); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for done := start; done < end; {
			got, err := db.Claim(ctx, now, lease, 100)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) == 0 {
				b.Fatalf("Claim returned nothing after %d of %d", done, b.N)
			}
			if err := db.Ack(ctx, got); err != nil {
				b.Fatal(err)
			}
			done += len(got)
		}
	}
	reportDeliveries(b, b.N)
}

// BenchmarkDecodeRecord decodes one delivery record.
func BenchmarkDecodeRecord(b *testing.B) {
	b.ReportAllocs()
	d := benchDelivery("e0000000000000000001")
	enc := appendRecord(nil, &d, nanos(d.Due))
	var got dcon.Delivery
	for i := 0; i < b.N; i++ {
		if _, _, err := decodeRecord(enc, &got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommit measures what running each commit in a goroutine of its own
// (engine.commit, so that no caller is left behind in a failed Pebble) costs
// over committing in the caller's goroutine (engine.apply): one small NoSync
// batch per op, like an Ack.
func BenchmarkCommit(b *testing.B) {
	for _, bb := range []struct {
		name   string
		commit func(e *engine, batch *pebble.Batch) error
	}{
		{"caller", func(e *engine, batch *pebble.Batch) error { return e.apply(batch, pebble.NoSync) }},
		{"goroutine", func(e *engine, batch *pebble.Batch) error { return e.commit(batch, pebble.NoSync) }},
		{"new-goroutine", func(e *engine, batch *pebble.Batch) error { // the hand-off before committers were reused
			done := make(chan error, 1)
			go func() { done <- e.apply(batch, pebble.NoSync) }()
			return <-done
		}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			db := openDB(b, b.TempDir(), Options{})
			e := db.db.cur.Load()
			key := []byte("q/m/c/e")
			for b.Loop() {
				batch := e.pdb.NewBatch()
				if err := batch.Delete(key, nil); err != nil {
					b.Fatal(err)
				}
				if err := bb.commit(e, batch); err != nil {
					b.Fatal(err)
				}
				e.closeBatch(batch)
			}
		})
	}
}
