package jetstream

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"dcon"
	"dcon/internal/jetstream/natstest"
	"dcon/internal/queuetest"
)

// testAckWait is the consumers' AckWait in tests: how long after a crash the
// reopened queue waits for the dead one's deliveries.
const testAckWait = 300 * time.Millisecond

// harness opens each queue under its own prefix on one shared server. A crash
// closes the connection without handing anything back; the reopened queue
// takes over once the consumers' AckWait has passed.
type harness struct {
	srv *server.Server
	n   atomic.Int64
}

func (h *harness) config(prefix string) Config {
	return Config{URLs: []string{h.srv.ClientURL()}, Prefix: prefix, Partitions: 8, AckWait: testAckWait}
}

func (h *harness) Open(t *testing.T) dcon.Queue {
	return openQueue(t, h.config(fmt.Sprintf("T%d", h.n.Add(1))))
}

func (h *harness) Crash(t *testing.T, dq dcon.Queue) dcon.Queue {
	q := dq.(*Queue)
	q.crash()
	q2 := openQueue(t, q.cfg)
	waitHoldsAll(t, q2)
	return q2
}

// openQueue opens a queue that is closed when t ends.
func openQueue(t testing.TB, cfg Config) *Queue {
	t.Helper()
	q, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// waitHoldsAll waits until q has fetched every message of its stream: after a
// crash, when the dead queue's AckWait has passed.
func waitHoldsAll(t testing.TB, q *Queue) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := q.fetch(context.Background()); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		info, err := q.queue.Info(context.Background())
		if err != nil {
			t.Fatalf("stream info: %v", err)
		}
		q.mu.Lock()
		held := 0
		for _, e := range q.held {
			if e.msg != nil {
				held++
			}
		}
		q.mu.Unlock()
		if uint64(held) == info.State.Msgs {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a crash: the reopened queue holds %d of %d deliveries", held, info.State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, &harness{srv: natstest.StartServer(t, nil)})
}

func TestPartitionsFixed(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t, nil)
	cfg := Config{URLs: []string{srv.ClientURL()}, Prefix: "P", Partitions: 4}
	openQueue(t, cfg)
	cfg.Partitions = 8
	if q, err := Open(context.Background(), cfg); err == nil {
		q.Close()
		t.Fatal("Open with another partition count succeeded")
	}
}

// TestParkLongBackoff: a delivery due long after the latest Claim's now is
// handed back to the server, so it holds no consumer slot.
func TestParkLongBackoff(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t, nil)
	q := openQueue(t, Config{URLs: []string{srv.ClientURL()}, Partitions: 1, ParkAfter: time.Minute})
	now := time.Now()
	d := dcon.Delivery{ConnectorID: "c1", EventID: "e1", EventTime: now, Due: now.Add(time.Hour)}
	if err := q.Enqueue(t.Context(), []dcon.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	if got, err := q.Claim(t.Context(), now, now.Add(time.Minute), 10); err != nil || len(got) != 0 {
		t.Fatalf("Claim: %v, %v; want nothing", got, err)
	}
	q.mu.Lock()
	_, held := q.held[key{"c1", "e1"}]
	q.mu.Unlock()
	if held {
		t.Error("a delivery due in an hour is still held")
	}
	if n, err := q.Depth(t.Context(), "c1"); err != nil || n != 1 {
		t.Errorf("Depth: %d, %v; want 1", n, err)
	}
}

// TestClusterR3 runs a queue with 3 replicas on a 3-server cluster.
func TestClusterR3(t *testing.T) {
	t.Parallel()
	servers := natstest.StartCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	q := openQueue(t, Config{URLs: urls, Replicas: 3, Partitions: 4, AckWait: testAckWait})
	now := time.Now()
	d := dcon.Delivery{ConnectorID: "c1", EventID: "e1", EventTime: now, Body: []byte("x"), Due: now}
	if err := q.Enqueue(t.Context(), []dcon.Delivery{d}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	var got []dcon.Delivery
	deadline := time.Now().Add(10 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		var err error
		if got, err = q.Claim(t.Context(), now, now.Add(time.Minute), 10); err != nil {
			t.Fatalf("Claim: %v", err)
		}
	}
	if len(got) != 1 {
		t.Fatalf("Claim on R3: got %d deliveries, want 1", len(got))
	}
	if err := q.Ack(t.Context(), got); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n, err := q.Depth(t.Context(), "c1"); err != nil || n != 0 {
		t.Errorf("Depth after Ack: %d, %v", n, err)
	}
}
