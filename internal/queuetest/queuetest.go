// Package queuetest is the conformance suite that every [dcon.Queue] runs.
//
// A backend's test calls [Run] with a [Harness] that opens fresh, empty queues
// and simulates crashes:
//
//	func TestQueue(t *testing.T) { queuetest.Run(t, harness{}) }
//
// Each rule of the Queue contract is one subtest. The suite uses fixed times
// around a base instant that carries nanoseconds, never the wall clock, so a
// backend's behaviour does not depend on when the suite runs.
//
// What "intact" means: strings, integers and bodies must come back equal (bodies
// compared with [bytes.Equal], so a nil and an empty body are the same); times
// must denote the same instant to the nanosecond ([time.Time.Equal]) — a
// backend may return them in another location (UTC, say) and without a
// monotonic reading. Times must lie in the range of [time.Time.UnixNano]
// (years 1678 to 2262); the zero time may be used for EventTime and must then
// come back as the zero time.
//
// Deliveries passed to Ack, Retry and Expire carry the Due the queue last gave
// them, as the contract requires.
package queuetest

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"dcon"
)

// Harness opens queues for the suite.
type Harness interface {
	// Open returns a fresh, empty queue. The harness closes it when t ends.
	Open(t *testing.T) dcon.Queue
	// Crash simulates a crash of q — no clean close; writes that were not synced
	// may be lost — and returns q reopened on the same data. q is not used
	// again.
	Crash(t *testing.T, q dcon.Queue) dcon.Queue
}

// base is the suite's "now": it has nanoseconds so that truncation shows.
var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.UTC)

// far is a time after every due and lease the suite sets.
var far = base.Add(1000 * time.Hour)

// Run runs every conformance subtest against queues from h. The subtests run in
// parallel, so h must be safe for concurrent use.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"EmptyQueue", testEmptyQueue},
		{"ClaimHonoursDue", testClaimHonoursDue},
		{"ClaimEarliestDueFirst", testClaimEarliestDueFirst},
		{"FieldsIntact", testFieldsIntact},
		{"ClaimLimit", testClaimLimit},
		{"LeaseHidesUntilItEnds", testLease},
		{"AckRemoves", testAck},
		{"AckWithEnqueueDue", testAckWithEnqueueDue},
		{"RetryStoresAttemptAndDue", testRetry},
		{"RetryInThePastIsClaimable", testRetryInThePast},
		{"EnqueueBehindLastClaimIsClaimable", testEnqueueBehindLastClaim},
		{"LeaseBeforeNowIsClaimable", testLeaseBeforeNow},
		{"LeaseAtReplacedDueIsClaimable", testLeaseAtReplacedDue},
		{"RetryRacingAckStaysAcked", testRetryRacingAck},
		{"ExpireMovesToDeadLetters", testExpire},
		{"DeadLettersOldestFirst", testDeadLettersOrder},
		{"EnqueueReplaces", testReplace},
		{"ReplacedCopyOutlivesTheOldOnesOutcome", testReplacedCopyOutlivesOld},
		{"DropRemovesOneConnector", testDrop},
		{"DepthPerConnector", testDepth},
		{"ConcurrentEnqueue", testConcurrentEnqueue},
		{"ReopenAfterCrash", testCrash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// id returns a valid 20-character dcon id made of prefix and n.
func id(prefix byte, n int) string { return fmt.Sprintf("%c%019d", prefix, n) }

// connector returns the id of the suite's connector n.
func connector(n int) string { return id('c', n) }

// delivery returns a delivery of event n to connector c, due at due, with a body
// that holds every byte value once.
func delivery(c string, n int, due time.Time) dcon.Delivery {
	body := make([]byte, 0, 300)
	body = fmt.Appendf(body, `{"event":%d}`, n)
	for i := 0; i < 256; i++ {
		body = append(body, byte(i))
	}
	return dcon.Delivery{
		ConnectorID: c,
		ProjectID:   "project-" + c[len(c)-3:],
		EventID:     id('e', n),
		EventType:   dcon.EventTemperature,
		EventTime:   base.Add(-time.Duration(n) * time.Millisecond),
		Body:        body,
		Due:         due,
	}
}

func enqueue(t *testing.T, q dcon.Queue, ds ...dcon.Delivery) {
	t.Helper()
	if err := q.Enqueue(t.Context(), ds); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func claim(t *testing.T, q dcon.Queue, now, lease time.Time, limit int) []dcon.Delivery {
	t.Helper()
	ds, err := q.Claim(t.Context(), now, lease, limit)
	if err != nil {
		t.Fatalf("Claim(now=%v): %v", now, err)
	}
	return ds
}

func depth(t *testing.T, q dcon.Queue, c string) int {
	t.Helper()
	n, err := q.Depth(t.Context(), c)
	if err != nil {
		t.Fatalf("Depth(%s): %v", c, err)
	}
	return n
}

func deadLetters(t *testing.T, q dcon.Queue, c string, limit int) []dcon.DeadLetter {
	t.Helper()
	dls, err := q.DeadLetters(t.Context(), c, limit)
	if err != nil {
		t.Fatalf("DeadLetters(%s): %v", c, err)
	}
	return dls
}

// eventIDs returns the event ids of ds, in order.
func eventIDs(ds []dcon.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.EventID
	}
	return ids
}

// sameDelivery reports how got differs from want, or "" if it does not.
func sameDelivery(got, want dcon.Delivery) string {
	switch {
	case got.ConnectorID != want.ConnectorID:
		return fmt.Sprintf("ConnectorID %q, want %q", got.ConnectorID, want.ConnectorID)
	case got.ProjectID != want.ProjectID:
		return fmt.Sprintf("ProjectID %q, want %q", got.ProjectID, want.ProjectID)
	case got.EventID != want.EventID:
		return fmt.Sprintf("EventID %q, want %q", got.EventID, want.EventID)
	case got.EventType != want.EventType:
		return fmt.Sprintf("EventType %q, want %q", got.EventType, want.EventType)
	case !got.EventTime.Equal(want.EventTime):
		return fmt.Sprintf("EventTime %v, want %v", got.EventTime, want.EventTime)
	case !bytes.Equal(got.Body, want.Body):
		return fmt.Sprintf("Body %q, want %q", got.Body, want.Body)
	case got.Attempts != want.Attempts:
		return fmt.Sprintf("Attempts %d, want %d", got.Attempts, want.Attempts)
	case got.LastError != want.LastError:
		return fmt.Sprintf("LastError %q, want %q", got.LastError, want.LastError)
	case !got.Due.Equal(want.Due):
		return fmt.Sprintf("Due %v, want %v", got.Due, want.Due)
	}
	return ""
}

func checkDelivery(t *testing.T, got, want dcon.Delivery) {
	t.Helper()
	if diff := sameDelivery(got, want); diff != "" {
		t.Errorf("delivery %s/%s: %s", want.ConnectorID, want.EventID, diff)
	}
}

func checkIDs(t *testing.T, what string, got []dcon.Delivery, want ...string) {
	t.Helper()
	ids := eventIDs(got)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("%s: got events %v, want %v", what, ids, want)
	}
}

func testEmptyQueue(t *testing.T, h Harness) {
	q := h.Open(t)
	if got := claim(t, q, far, far, 10); len(got) != 0 {
		t.Errorf("Claim on an empty queue: got %d deliveries", len(got))
	}
	if err := q.Enqueue(t.Context(), nil); err != nil {
		t.Errorf("Enqueue(nil): %v", err)
	}
	if n := depth(t, q, connector(1)); n != 0 {
		t.Errorf("Depth of an empty queue: %d", n)
	}
	n, err := q.Drop(t.Context(), connector(1))
	if err != nil || n != 0 {
		t.Errorf("Drop on an empty queue: %d, %v; want 0, nil", n, err)
	}
	if dls := deadLetters(t, q, connector(1), 10); len(dls) != 0 {
		t.Errorf("DeadLetters of an empty queue: %d", len(dls))
	}
	enqueue(t, q, delivery(connector(1), 1, base))
	if got := claim(t, q, far, far, 0); len(got) != 0 {
		t.Errorf("Claim with limit 0: got %d deliveries", len(got))
	}
}

func testClaimHonoursDue(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q,
		delivery(c, 1, base.Add(time.Second)),
		delivery(c, 2, base.Add(2*time.Second)),
		delivery(c, 3, base.Add(3*time.Second)),
	)
	lease := base.Add(time.Hour)
	if got := claim(t, q, base, lease, 10); len(got) != 0 {
		t.Fatalf("Claim before every Due: got %v", eventIDs(got))
	}
	if got := claim(t, q, base.Add(time.Second-1), lease, 10); len(got) != 0 {
		t.Fatalf("Claim 1ns before the first Due: got %v", eventIDs(got))
	}
	// At exactly the second Due, the first two are due.
	got := claim(t, q, base.Add(2*time.Second), lease, 10)
	checkIDs(t, "Claim at the second Due", got, id('e', 1), id('e', 2))
	got = claim(t, q, base.Add(3*time.Second), lease, 10)
	checkIDs(t, "Claim at the third Due", got, id('e', 3))
}

func testClaimEarliestDueFirst(t *testing.T, h Harness) {
	q := h.Open(t)
	// Dues interleave across connectors and are enqueued out of order.
	var ds []dcon.Delivery
	var want []string
	for i := 0; i < 12; i++ {
		n := (i*7)%12 + 1
		ds = append(ds, delivery(connector(n%3), n, base.Add(time.Duration(n)*time.Minute)))
	}
	for n := 1; n <= 12; n++ {
		want = append(want, id('e', n))
	}
	enqueue(t, q, ds[:5]...)
	enqueue(t, q, ds[5:]...)
	got := claim(t, q, far, far, 100)
	checkIDs(t, "Claim", got, want...)
}

func testFieldsIntact(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	full := delivery(c, 1, base)
	full.Attempts = 7
	full.LastError = "endpoint answered 503 Service Unavailable ü"
	full.EventType = dcon.EventLabelsChanged
	empty := dcon.Delivery{ConnectorID: c, EventID: id('e', 2), Due: base}
	enqueue(t, q, full, empty)
	// The caller's bytes are the queue's no more once Enqueue returns.
	full.Body[0] = 'X'

	lease := base.Add(90 * time.Second)
	got := claim(t, q, base, lease, 10)
	if len(got) != 2 {
		t.Fatalf("Claim: got %d deliveries, want 2", len(got))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].EventID < got[j].EventID })
	full.Body[0] = '{'
	full.Due, empty.Due = lease, lease
	checkDelivery(t, got[0], full)
	checkDelivery(t, got[1], empty)
	if !got[1].EventTime.IsZero() {
		t.Errorf("zero EventTime came back as %v", got[1].EventTime)
	}
}

func testClaimLimit(t *testing.T, h Harness) {
	q := h.Open(t)
	var ds []dcon.Delivery
	for n := 1; n <= 10; n++ {
		ds = append(ds, delivery(connector(n%2), n, base.Add(time.Duration(n)*time.Second)))
	}
	enqueue(t, q, ds...)
	lease := base.Add(time.Hour)
	now := base.Add(time.Minute)
	checkIDs(t, "first Claim(3)", claim(t, q, now, lease, 3), id('e', 1), id('e', 2), id('e', 3))
	checkIDs(t, "second Claim(3)", claim(t, q, now, lease, 3), id('e', 4), id('e', 5), id('e', 6))
	checkIDs(t, "third Claim(3)", claim(t, q, now, lease, 3), id('e', 7), id('e', 8), id('e', 9))
	checkIDs(t, "fourth Claim(3)", claim(t, q, now, lease, 3), id('e', 10))
	checkIDs(t, "fifth Claim(3)", claim(t, q, now, lease, 3))
}

func testLease(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, delivery(c, 1, base))
	lease := base.Add(10 * time.Second)
	got := claim(t, q, base, lease, 10)
	if len(got) != 1 || !got[0].Due.Equal(lease) {
		t.Fatalf("Claim: got %v, want one delivery due at the lease %v", got, lease)
	}
	if got := claim(t, q, lease.Add(-1), lease.Add(time.Hour), 10); len(got) != 0 {
		t.Fatalf("Claim 1ns before the lease ends: got %v", eventIDs(got))
	}
	lease2 := lease.Add(time.Hour)
	got = claim(t, q, lease, lease2, 10)
	if len(got) != 1 || !got[0].Due.Equal(lease2) {
		t.Fatalf("Claim when the lease ends: got %v, want one delivery due at %v", got, lease2)
	}
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth after two claims: %d, want 1", n)
	}
}

func testAck(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, delivery(c, 1, base), delivery(c, 2, base), delivery(c, 3, base))
	lease := base.Add(time.Minute)
	got := claim(t, q, base, lease, 10)
	if len(got) != 3 {
		t.Fatalf("Claim: got %d deliveries, want 3", len(got))
	}
	if err := q.Ack(t.Context(), []dcon.Delivery{got[0], got[2]}); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth after acking 2 of 3: %d, want 1", n)
	}
	checkIDs(t, "Claim after Ack", claim(t, q, far, far, 10), got[1].EventID)
	if err := q.Ack(t.Context(), nil); err != nil {
		t.Errorf("Ack(nil): %v", err)
	}
}

func testAckWithEnqueueDue(t *testing.T, h Harness) {
	// The engine acks deliveries it attempted straight after Enqueue, with the
	// lease Enqueue gave them, without a Claim in between.
	q := h.Open(t)
	c := connector(1)
	d1, d2 := delivery(c, 1, base.Add(time.Minute)), delivery(c, 2, base.Add(time.Minute))
	enqueue(t, q, d1, d2)
	if err := q.Ack(t.Context(), []dcon.Delivery{d1}); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth after Ack: %d, want 1", n)
	}
	checkIDs(t, "Claim after Ack", claim(t, q, far, far, 10), d2.EventID)
}

func testRetry(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, delivery(c, 1, base))
	got := claim(t, q, base, base.Add(time.Minute), 10)
	if len(got) != 1 {
		t.Fatalf("Claim: got %d deliveries, want 1", len(got))
	}
	d := got[0]
	d.Attempts = 1
	d.LastError = "connection refused"
	at := base.Add(30 * time.Second)
	if err := q.Retry(t.Context(), d, at); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if got := claim(t, q, at.Add(-1), far, 10); len(got) != 0 {
		t.Fatalf("Claim 1ns before the retry time: got %v", eventIDs(got))
	}
	lease := at.Add(time.Minute)
	got = claim(t, q, at, lease, 10)
	if len(got) != 1 {
		t.Fatalf("Claim at the retry time: got %d deliveries, want 1", len(got))
	}
	want := d
	want.Due = lease
	checkDelivery(t, got[0], want)
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth after Retry: %d, want 1", n)
	}
}

func testRetryInThePast(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, delivery(c, 1, base))
	got := claim(t, q, base, base.Add(time.Minute), 10)
	if len(got) != 1 {
		t.Fatalf("Claim: got %d deliveries, want 1", len(got))
	}
	// A later claim finds nothing due: a queue that remembers how far it has
	// looked must still see what comes due behind that point.
	if got := claim(t, q, base.Add(50*time.Second), far, 10); len(got) != 0 {
		t.Fatalf("Claim inside the lease: got %v", eventIDs(got))
	}
	d := got[0]
	d.Attempts = 1
	d.LastError = "timeout"
	if err := q.Retry(t.Context(), d, base.Add(-time.Hour)); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	got = claim(t, q, base.Add(50*time.Second), far, 10)
	if len(got) != 1 || got[0].Attempts != 1 || got[0].LastError != "timeout" {
		t.Fatalf("Claim after a Retry due in the past: got %+v, want the retried delivery", got)
	}
}

func testEnqueueBehindLastClaim(t *testing.T, h Harness) {
	// The clock may jump backwards, and ingest may enqueue with a lease shorter
	// than the poller's horizon: a Due before the last Claim's now is claimable.
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, delivery(c, 1, base.Add(time.Hour)))
	checkIDs(t, "Claim at base+1h", claim(t, q, base.Add(time.Hour), far, 10), id('e', 1))
	enqueue(t, q, delivery(c, 2, base))
	checkIDs(t, "Claim at base+1h after an Enqueue due at base", claim(t, q, base.Add(time.Hour), far, 10), id('e', 2))
	enqueue(t, q, delivery(c, 3, base.Add(-24*time.Hour)))
	checkIDs(t, "Claim at base-1h after the clock went back", claim(t, q, base.Add(-time.Hour), far, 10), id('e', 3))
}

func testLeaseBeforeNow(t *testing.T, h Harness) {
	// A lease that ends before the claim's now makes the deliveries due again
	// at once.
	q := h.Open(t)
	enqueue(t, q, delivery(connector(1), 1, base), delivery(connector(1), 2, base))
	now := base.Add(time.Hour)
	checkIDs(t, "Claim(1)", claim(t, q, now, base.Add(-time.Hour), 1), id('e', 1))
	checkIDs(t, "second Claim", claim(t, q, now, base.Add(-time.Hour), 10), id('e', 1), id('e', 2))
	checkIDs(t, "third Claim", claim(t, q, now, far, 10), id('e', 1), id('e', 2))
}

func testLeaseAtReplacedDue(t *testing.T, h Harness) {
	// A lease may end at the Due of a copy that was replaced, and before the
	// claim's now: the delivery is then due again at once, and stays queued.
	q := h.Open(t)
	c := connector(1)
	lease := base.Add(2 * time.Hour)
	enqueue(t, q, delivery(c, 1, lease))
	enqueue(t, q, delivery(c, 1, base)) // replaces the copy due at lease
	now := base.Add(3 * time.Hour)
	checkIDs(t, "Claim leasing until the replaced Due", claim(t, q, now, lease, 10), id('e', 1))
	checkIDs(t, "Claim after that lease ended", claim(t, q, now, far, 10), id('e', 1))
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth: %d, want 1", n)
	}
}

func testRetryRacingAck(t *testing.T, h Harness) {
	// An Ack and a Retry of the same delivery may race (an attempt that outlived
	// its lease and the attempt of the next holder): whichever comes first, the
	// delivery ends acked — a Retry never brings back an acked delivery.
	q := h.Open(t)
	c := connector(1)
	const n = 300
	for i := range n {
		d := delivery(c, i, base)
		enqueue(t, q, d)
		retried := d
		retried.Attempts, retried.LastError = 1, "timeout"
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := q.Retry(t.Context(), retried, base.Add(time.Second)); err != nil {
				t.Errorf("Retry: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := q.Ack(t.Context(), []dcon.Delivery{d}); err != nil {
				t.Errorf("Ack: %v", err)
			}
		}()
		wg.Wait()
		if got := depth(t, q, c); got != 0 {
			t.Fatalf("race %d: Depth after an Ack raced a Retry: %d, want 0", i, got)
		}
	}
}

func testExpire(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	enqueue(t, q, delivery(c, 1, base), delivery(c, 2, base))
	got := claim(t, q, base, base.Add(time.Minute), 10)
	if len(got) != 2 {
		t.Fatalf("Claim: got %d deliveries, want 2", len(got))
	}
	d := got[0]
	d.Attempts = 12
	d.LastError = "endpoint answered 500"
	at := base.Add(12 * time.Hour)
	if err := q.Expire(t.Context(), []dcon.Delivery{d}, at); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth after Expire: %d, want 1", n)
	}
	checkIDs(t, "Claim after Expire", claim(t, q, far, far, 10), got[1].EventID)
	dls := deadLetters(t, q, c, 10)
	if len(dls) != 1 {
		t.Fatalf("DeadLetters: got %d, want 1", len(dls))
	}
	if !dls[0].ExpireTime.Equal(at) {
		t.Errorf("ExpireTime %v, want %v", dls[0].ExpireTime, at)
	}
	// A dead letter's Due says nothing; every other field is kept.
	dl := dls[0].Delivery
	dl.Due = d.Due
	checkDelivery(t, dl, d)
	if dls := deadLetters(t, q, connector(2), 10); len(dls) != 0 {
		t.Errorf("another connector has %d dead letters", len(dls))
	}
}

func testDeadLettersOrder(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	var ds []dcon.Delivery
	for n := 1; n <= 5; n++ {
		ds = append(ds, delivery(c, n, base))
	}
	enqueue(t, q, ds...)
	// Expired newest first, one by one.
	for i, d := range ds {
		if err := q.Expire(t.Context(), []dcon.Delivery{d}, base.Add(time.Duration(10-i)*time.Minute)); err != nil {
			t.Fatalf("Expire: %v", err)
		}
	}
	dls := deadLetters(t, q, c, 3)
	var got []string
	for _, dl := range dls {
		got = append(got, dl.EventID)
	}
	want := []string{id('e', 5), id('e', 4), id('e', 3)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DeadLetters(limit 3): got %v, want %v", got, want)
	}
	if n := len(deadLetters(t, q, c, 10)); n != 5 {
		t.Errorf("DeadLetters(limit 10): got %d, want 5", n)
	}
}

func testReplace(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	first := delivery(c, 1, base.Add(time.Second))
	second := first
	second.Body = []byte(`{"second":true}`)
	second.Due = base.Add(2 * time.Second)
	enqueue(t, q, first)
	enqueue(t, q, second)
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth after enqueueing the same delivery twice: %d, want 1", n)
	}
	// The replaced copy's Due no longer counts.
	if got := claim(t, q, base.Add(time.Second), far, 10); len(got) != 0 {
		t.Fatalf("Claim at the replaced Due: got %v", eventIDs(got))
	}
	lease := base.Add(time.Hour)
	got := claim(t, q, far, lease, 10)
	if len(got) != 1 {
		t.Fatalf("Claim: got %d deliveries, want 1", len(got))
	}
	second.Due = lease
	checkDelivery(t, got[0], second)

	// Replacing with an earlier Due, in one call, also leaves one copy.
	third := first
	third.Due = base
	enqueue(t, q, first, third)
	got = claim(t, q, far, far, 10)
	if len(got) != 1 {
		t.Fatalf("Claim after replacing within one Enqueue: got %d deliveries, want 1", len(got))
	}
}

func testReplacedCopyOutlivesOld(t *testing.T, h Harness) {
	// A :sync or a replay re-sends a queued event: Enqueue replaces its copy
	// with one of a later EventTime. The outcome of an attempt of the old copy,
	// still under way then, is not the new one's: its Ack must not remove the
	// new copy, nor its Retry (a failure, or parking) reschedule it.
	q := h.Open(t)
	c := connector(1)
	old := delivery(c, 1, base)
	enqueue(t, q, old)
	resent := old
	resent.EventTime = base.Add(time.Hour)
	resent.Body = []byte(`{"resent":true}`)
	resent.Due = base.Add(time.Second)
	enqueue(t, q, resent)

	failed := old
	failed.Attempts, failed.LastError = 1, "HTTP 500"
	if err := q.Retry(t.Context(), failed, far); err != nil {
		t.Fatalf("Retry of the old copy: %v", err)
	}
	if err := q.Ack(t.Context(), []dcon.Delivery{old}); err != nil {
		t.Fatalf("Ack of the old copy: %v", err)
	}
	if n := depth(t, q, c); n != 1 {
		t.Fatalf("Depth after the old copy's Retry and Ack: %d, want 1 (the new copy)", n)
	}
	lease := base.Add(time.Hour)
	got := claim(t, q, resent.Due, lease, 10)
	if len(got) != 1 {
		t.Fatalf("Claim at the new copy's Due: got %d deliveries, want 1", len(got))
	}
	resent.Due = lease
	checkDelivery(t, got[0], resent)

	// The new copy's own Ack removes it.
	if err := q.Ack(t.Context(), got); err != nil {
		t.Fatalf("Ack of the new copy: %v", err)
	}
	if n := depth(t, q, c); n != 0 {
		t.Errorf("Depth after the new copy's Ack: %d, want 0", n)
	}
}

func testDrop(t *testing.T, h Harness) {
	q := h.Open(t)
	c1, c2 := connector(1), connector(2)
	var ds []dcon.Delivery
	for n := 1; n <= 5; n++ {
		ds = append(ds, delivery(c1, n, base))
	}
	for n := 6; n <= 8; n++ {
		ds = append(ds, delivery(c2, n, base))
	}
	enqueue(t, q, ds...)
	// One of c1's is claimed, so it is in flight with a lease.
	if got := claim(t, q, base, base.Add(time.Minute), 1); len(got) != 1 {
		t.Fatalf("Claim: got %d deliveries, want 1", len(got))
	}
	n, err := q.Drop(t.Context(), c1)
	if err != nil {
		t.Fatalf("Drop: %v", err)
	}
	if n != 5 {
		t.Errorf("Drop returned %d, want 5", n)
	}
	if n := depth(t, q, c1); n != 0 {
		t.Errorf("Depth of the dropped connector: %d, want 0", n)
	}
	if n := depth(t, q, c2); n != 3 {
		t.Errorf("Depth of the other connector: %d, want 3", n)
	}
	got := claim(t, q, far, far, 100)
	checkIDs(t, "Claim after Drop", got, id('e', 6), id('e', 7), id('e', 8))
	for i, d := range got {
		want := ds[5+i]
		want.Due = far
		checkDelivery(t, d, want)
	}
	if n, err := q.Drop(t.Context(), c1); err != nil || n != 0 {
		t.Errorf("second Drop: %d, %v; want 0, nil", n, err)
	}
}

func testDepth(t *testing.T, h Harness) {
	q := h.Open(t)
	var ds []dcon.Delivery
	for c := 1; c <= 3; c++ {
		for n := 0; n < c*4; n++ {
			ds = append(ds, delivery(connector(c), c*100+n, base))
		}
	}
	enqueue(t, q, ds...)
	for c := 1; c <= 3; c++ {
		if n := depth(t, q, connector(c)); n != c*4 {
			t.Errorf("Depth(%s) = %d, want %d", connector(c), n, c*4)
		}
	}
	// Claimed deliveries are still queued.
	claim(t, q, base, base.Add(time.Minute), 5)
	if n := depth(t, q, connector(1)) + depth(t, q, connector(2)) + depth(t, q, connector(3)); n != 24 {
		t.Errorf("total Depth after a Claim: %d, want 24", n)
	}
	if n := depth(t, q, connector(4)); n != 0 {
		t.Errorf("Depth of a connector with nothing queued: %d", n)
	}
}

func testConcurrentEnqueue(t *testing.T, h Harness) {
	q := h.Open(t)
	const writers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := w*each + i
				d := delivery(connector(n%4), n, base.Add(time.Duration(n)*time.Microsecond))
				if err := q.Enqueue(t.Context(), []dcon.Delivery{d}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Enqueue: %v", err)
	}
	total := 0
	for c := 0; c < 4; c++ {
		total += depth(t, q, connector(c))
	}
	if total != writers*each {
		t.Errorf("total Depth: %d, want %d", total, writers*each)
	}
	got := claim(t, q, far, far, 2*writers*each)
	seen := make(map[string]bool, len(got))
	for _, d := range got {
		seen[d.EventID] = true
	}
	if len(got) != writers*each || len(seen) != writers*each {
		t.Errorf("Claim: got %d deliveries, %d distinct; want %d", len(got), len(seen), writers*each)
	}
}

func testCrash(t *testing.T, h Harness) {
	q := h.Open(t)
	c1, c2 := connector(1), connector(2)
	var ds []dcon.Delivery
	for n := 1; n <= 20; n++ {
		ds = append(ds, delivery([]string{c1, c2}[n%2], n, base.Add(time.Duration(n)*time.Second)))
	}
	enqueue(t, q, ds[:10]...)
	enqueue(t, q, ds[10:]...)

	// Some are claimed, some of those acked, one retried, one expired.
	claimed := claim(t, q, base.Add(6*time.Second), base.Add(time.Hour), 10)
	if len(claimed) != 6 {
		t.Fatalf("Claim: got %d deliveries, want 6", len(claimed))
	}
	acked := map[string]bool{claimed[0].EventID: true, claimed[1].EventID: true}
	if err := q.Ack(t.Context(), claimed[:2]); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	retried := claimed[2]
	retried.Attempts, retried.LastError = 1, "503"
	if err := q.Retry(t.Context(), retried, base.Add(time.Minute)); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	dead := claimed[3]
	dead.LastError = "gone"
	expireAt := base.Add(12 * time.Hour)
	if err := q.Expire(t.Context(), []dcon.Delivery{dead}, expireAt); err != nil {
		t.Fatalf("Expire: %v", err)
	}

	q = h.Crash(t, q)

	// Everything enqueued survives except the expired one; acked ones may
	// come back (a duplicate delivery), and the retry may be lost (an attempt
	// repeated), but no delivery is lost.
	got := claim(t, q, far, far, 100)
	byID := make(map[string]dcon.Delivery, len(got))
	for _, d := range got {
		if _, dup := byID[d.EventID]; dup {
			t.Errorf("Claim after the crash returned %s twice", d.EventID)
		}
		byID[d.EventID] = d
	}
	for _, d := range ds {
		g, ok := byID[d.EventID]
		switch {
		case d.EventID == dead.EventID:
			if ok {
				t.Errorf("the expired delivery %s is queued again after the crash", d.EventID)
			}
		case !ok && !acked[d.EventID]:
			t.Errorf("delivery %s was lost in the crash", d.EventID)
		case ok:
			want := d
			want.Due = far
			if d.EventID == retried.EventID && g.Attempts == 1 {
				want.Attempts, want.LastError = 1, "503"
			}
			checkDelivery(t, g, want)
		}
	}
	dls := deadLetters(t, q, dead.ConnectorID, 10)
	if len(dls) != 1 || dls[0].EventID != dead.EventID || dls[0].LastError != "gone" || !dls[0].ExpireTime.Equal(expireAt) {
		t.Errorf("dead letters after the crash: %+v, want %s expired at %v", dls, dead.EventID, expireAt)
	}
	// The reopened queue works.
	enqueue(t, q, delivery(c1, 99, base))
	checkIDs(t, "Claim of a delivery enqueued after the crash", claim(t, q, base, far, 10), id('e', 99))
}
