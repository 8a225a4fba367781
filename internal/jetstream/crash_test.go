package jetstream

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"dcon"
	"dcon/internal/jetstream/natstest"
)

// TestCrashWhileOthersAck is issue 6's kill case on one partition: queue 1
// fetches every delivery, claims those due and crashes; meanwhile queue 2
// acks other deliveries of the partition, one by one, as a busy fleet does. Once queue
// 1's AckWait has passed, queue 2 must claim what queue 1 held: the acks of
// neighbouring deliveries must not take the crashed queue's messages off the
// consumer. (With acks as subject purges, each purge emptied the consumer's
// redelivery queue, so a busy partition never redelivered them.)
func TestCrashWhileOthersAck(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t, nil)
	cfg := Config{URLs: []string{srv.ClientURL()}, Prefix: "K", Partitions: 1, AckWait: testAckWait}
	q1, q2 := openQueue(t, cfg), openQueue(t, cfg)
	now := time.Now()
	later := now.Add(2 * time.Minute) // queue 2's clock, past queue 1's leases
	const n = 40
	ds := make([]dcon.Delivery, n)
	for i := range ds {
		ds[i] = dcon.Delivery{ConnectorID: "c1", EventID: fmt.Sprintf("e%03d", i), EventTime: now, Due: now, Body: []byte("x")}
	}
	if err := q2.Enqueue(t.Context(), ds); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	// Deliveries of another connector of the partition, due later: queue 2
	// acks them one by one while queue 1's AckWait passes, as a busy fleet
	// acks its fresh copies.
	others := make([]dcon.Delivery, 1500)
	for i := range others {
		others[i] = dcon.Delivery{ConnectorID: "c2", EventID: fmt.Sprintf("x%04d", i), EventTime: now, Due: now.Add(time.Minute)}
	}
	if err := q2.Enqueue(t.Context(), others); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	claimed := 0
	deadline := time.Now().Add(10 * time.Second)
	for claimed < n {
		got, err := q1.Claim(t.Context(), now, now.Add(time.Minute), n)
		if err != nil {
			t.Fatalf("queue 1 Claim: %v", err)
		}
		claimed += len(got)
		if time.Now().After(deadline) {
			t.Fatalf("queue 1 claimed %d of %d", claimed, n)
		}
	}
	q1.Abandon()
	crashed := time.Now()

	// Queue 2 acks every other one of queue 1's deliveries, then the other
	// connector's, one at a time.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < n; i += 2 {
			if err := q2.Ack(t.Context(), ds[i:i+1]); err != nil {
				t.Errorf("queue 2 Ack: %v", err)
				return
			}
		}
		for i := range others {
			if err := q2.Ack(t.Context(), others[i:i+1]); err != nil {
				t.Errorf("queue 2 Ack: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	defer wg.Wait()

	want := make(map[string]bool)
	for i := 1; i < n; i += 2 {
		want[ds[i].EventID] = true
	}
	deadline = crashed.Add(8 * testAckWait)
	for len(want) > 0 {
		got, err := q2.Claim(t.Context(), later, later.Add(time.Minute), n)
		if err != nil {
			t.Fatalf("queue 2 Claim: %v", err)
		}
		for _, d := range got {
			if d.ConnectorID == "c2" {
				continue // due on queue 2's clock
			}
			if !want[d.EventID] {
				t.Errorf("queue 2 claimed %s/%s: acked or claimed already", d.ConnectorID, d.EventID)
			}
			delete(want, d.EventID)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after queue 1 crashed (AckWait %v), queue 2 has not claimed %d of its %d deliveries", time.Since(crashed).Round(time.Millisecond), testAckWait, len(want), n/2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, err := q2.Depth(t.Context(), "c1"); err != nil || got != n/2 {
		t.Errorf("Depth of c1: %d, %v; want %d", got, err, n/2)
	}
}
