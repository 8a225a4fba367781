package jetstream

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"dcon"
	"dcon/internal/jetstream/natstest"
)

// benchBody is the size of a typical rendered event body.
var benchBody = make([]byte, 512)

// benchQueue opens a queue on a fresh in-process server.
func benchQueue(b *testing.B) *Queue {
	b.Helper()
	srv := natstest.StartServer(b, nil)
	return openQueue(b, Config{URLs: []string{srv.ClientURL()}})
}

func benchDelivery(n int64, due time.Time) dcon.Delivery {
	return dcon.Delivery{
		ConnectorID: fmt.Sprintf("c%04d", n%1000), ProjectID: "p1", EventID: fmt.Sprintf("e%012d", n),
		EventType: dcon.EventTemperature, EventTime: due, Body: benchBody, Due: due,
	}
}

// BenchmarkEnqueue enqueues one delivery per call, from 1 and from 64
// concurrent writers; each call waits for its PubAck.
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			q := benchQueue(b)
			due := time.Now()
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(writers) // × GOMAXPROCS goroutines; see the report
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := q.Enqueue(b.Context(), []dcon.Delivery{benchDelivery(n.Add(1), due)}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkClaimAck claims deliveries enqueued beforehand, 100 at a time,
// and acks them.
func BenchmarkClaimAck(b *testing.B) {
	q := benchQueue(b)
	due := time.Now()
	ds := make([]dcon.Delivery, b.N)
	for i := range ds {
		ds[i] = benchDelivery(int64(i), due)
	}
	for i := 0; i < len(ds); i += 500 {
		if err := q.Enqueue(b.Context(), ds[i:min(i+500, len(ds))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		got, err := q.Claim(b.Context(), due, due.Add(time.Minute), 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			b.Fatalf("Claim: nothing after %d of %d", done, b.N)
		}
		if err := q.Ack(b.Context(), got); err != nil {
			b.Fatal(err)
		}
		done += len(got)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
