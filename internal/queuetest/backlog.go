package queuetest

import (
	"testing"
	"time"

	"dcon"
)

// RunBacklog runs the conformance subtests of [dcon.BacklogQueue] against
// queues from h, which must implement it. It is separate from [Run] so that a
// backend can pass Run before it parks.
func RunBacklog(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"ParkedOldestEventFirst", testBacklogOrder},
		{"LimitAndResume", testBacklogResume},
		{"FromSkipsEarlierEvents", testBacklogFrom},
		{"OneConnectorOnly", testBacklogOneConnector},
		{"LeaseHidesClaimed", testBacklogLease},
		{"ParkedAgainKeepsAttempts", testBacklogParkAgain},
		{"AckedNotReturned", testBacklogAcked},
		{"ParkedExpireAtDeadline", testBacklogExpire},
		{"ParkedSurviveCrash", testBacklogCrash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// parked returns delivery n of connector c, parked.
func parked(c string, n int) dcon.Delivery {
	d := delivery(c, n, time.Time{})
	d.Park()
	return d
}

func backlogQueue(t *testing.T, q dcon.Queue) dcon.BacklogQueue {
	t.Helper()
	bq, ok := q.(dcon.BacklogQueue)
	if !ok {
		t.Fatalf("%T does not implement dcon.BacklogQueue", q)
	}
	return bq
}

func claimConnector(t *testing.T, q dcon.Queue, c, from string, lease time.Time, limit int) ([]dcon.Delivery, string) {
	t.Helper()
	ds, next, err := backlogQueue(t, q).ClaimConnector(t.Context(), c, from, lease, limit)
	if err != nil {
		t.Fatalf("ClaimConnector(%s, from %q): %v", c, from, err)
	}
	return ds, next
}

func testBacklogOrder(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	lease := base.Add(time.Minute)
	// Enqueued out of order, one of them in flight (not parked).
	enqueue(t, q, parked(c, 3), parked(c, 1), delivery(c, 2, lease), parked(c, 4))
	enqueue(t, q, parked(c, 0))
	got, _ := claimConnector(t, q, c, "", lease, 10)
	checkIDs(t, "ClaimConnector", got, id('e', 0), id('e', 1), id('e', 3), id('e', 4))
	for i, n := range []int{0, 1, 3, 4} {
		if i < len(got) {
			want := parked(c, n)
			want.Due = lease
			checkDelivery(t, got[i], want)
		}
	}
	if again, _ := claimConnector(t, q, c, "", lease, 10); len(again) != 0 {
		t.Errorf("claimed deliveries handed out again: %v", eventIDs(again))
	}
}

func testBacklogResume(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	for n := range 5 {
		enqueue(t, q, parked(c, n))
	}
	lease := base.Add(time.Minute)
	from := ""
	for _, want := range [][]string{{id('e', 0), id('e', 1)}, {id('e', 2), id('e', 3)}, {id('e', 4)}, {}} {
		var got []dcon.Delivery
		got, from = claimConnector(t, q, c, from, lease, 2)
		checkIDs(t, "ClaimConnector from the last position", got, want...)
	}
}

func testBacklogFrom(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, parked(c, 1), parked(c, 2), parked(c, 3))
	got, _ := claimConnector(t, q, c, id('e', 2), base.Add(time.Minute), 10)
	checkIDs(t, "ClaimConnector from e2", got, id('e', 2), id('e', 3))
	// What was before from is still there for a claim from the start.
	got, _ = claimConnector(t, q, c, "", base.Add(time.Minute), 10)
	checkIDs(t, "ClaimConnector from the start", got, id('e', 1))
}

func testBacklogOneConnector(t *testing.T, h Harness) {
	q := h.Open(t)
	c1, c2 := connector(1), connector(2)
	enqueue(t, q, parked(c1, 1), parked(c2, 2), parked(c1, 3))
	got, _ := claimConnector(t, q, c1, "", base.Add(time.Minute), 10)
	checkIDs(t, "ClaimConnector(c1)", got, id('e', 1), id('e', 3))
	got, _ = claimConnector(t, q, c2, "", base.Add(time.Minute), 10)
	checkIDs(t, "ClaimConnector(c2)", got, id('e', 2))
}

func testBacklogLease(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, parked(c, 1))
	lease := base.Add(time.Minute)
	claimConnector(t, q, c, "", lease, 10)
	if got := claim(t, q, lease.Add(-time.Nanosecond), far, 10); len(got) != 0 {
		t.Errorf("Claim before the lease ended: got %v", eventIDs(got))
	}
	got := claim(t, q, lease, far, 10)
	checkIDs(t, "Claim when the lease ended", got, id('e', 1))
}

func testBacklogParkAgain(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, parked(c, 1))
	lease := base.Add(time.Minute)
	got, _ := claimConnector(t, q, c, "", lease, 10)
	if len(got) != 1 {
		t.Fatalf("ClaimConnector: got %d deliveries, want 1", len(got))
	}
	d := got[0]
	d.Attempts, d.LastError = 3, "HTTP 503"
	if err := q.Retry(t.Context(), d, d.Deadline()); err != nil {
		t.Fatal(err)
	}
	again, _ := claimConnector(t, q, c, "", lease.Add(time.Minute), 10)
	if len(again) != 1 {
		t.Fatalf("a delivery parked again: claimed %d, want 1", len(again))
	}
	want := d
	want.Due = lease.Add(time.Minute)
	checkDelivery(t, again[0], want)
}

func testBacklogAcked(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, parked(c, 1), parked(c, 2))
	if err := q.Ack(t.Context(), []dcon.Delivery{parked(c, 1)}); err != nil {
		t.Fatal(err)
	}
	got, _ := claimConnector(t, q, c, "", base.Add(time.Minute), 10)
	checkIDs(t, "ClaimConnector after an ack", got, id('e', 2))
}

func testBacklogExpire(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	d := parked(c, 1)
	enqueue(t, q, d)
	if got := claim(t, q, d.Deadline().Add(-time.Nanosecond), far, 10); len(got) != 0 {
		t.Errorf("a parked delivery was claimed before its deadline")
	}
	got := claim(t, q, d.Deadline(), far, 10)
	checkIDs(t, "Claim at the deadline", got, id('e', 1))
}

func testBacklogCrash(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, parked(c, 1), parked(c, 2))
	q = h.Crash(t, q)
	got, _ := claimConnector(t, q, c, "", base.Add(time.Minute), 10)
	checkIDs(t, "ClaimConnector after a crash", got, id('e', 1), id('e', 2))
}
