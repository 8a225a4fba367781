package queuetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"dcon"
)

// RunDeadLetters runs the conformance subtests of [dcon.DeadLetterQueue]
// against queues from h, which must implement it. It is separate from [Run]
// so that a backend can pass Run before it implements dead-letter replay.
func RunDeadLetters(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"PagesInOrder", testDeadLetterPages},
		{"ReplayByEventIDs", testReplayByIDs},
		{"ReplaySince", testReplaySince},
		{"ReplayAllInChunks", testReplayAllInChunks},
		{"ReplayIsDurable", testReplayDurable},
		{"ReplayReplacesQueued", testReplayReplaces},
		{"ConcurrentReplaysQueueOnce", testConcurrentReplays},
		{"PurgeBefore", testPurge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// dlq returns q as a DeadLetterQueue.
func dlq(t *testing.T, q dcon.Queue) dcon.DeadLetterQueue {
	t.Helper()
	d, ok := q.(dcon.DeadLetterQueue)
	if !ok {
		t.Fatalf("%T does not implement dcon.DeadLetterQueue", q)
	}
	return d
}

// expireAt enqueues deliveries n of c, one per expiry, and expires event
// ns[i] at expires[i], with 3 attempts and a last error.
func expireAt(t *testing.T, q dcon.Queue, c string, ns []int, expires []time.Time) []dcon.Delivery {
	t.Helper()
	var ds []dcon.Delivery
	for _, n := range ns {
		d := delivery(c, n, base)
		d.Attempts, d.LastError = 3, fmt.Sprintf("HTTP 503 (event %d)", n)
		ds = append(ds, d)
	}
	enqueue(t, q, ds...)
	for i := range ds {
		if err := q.Expire(t.Context(), ds[i:i+1], expires[i]); err != nil {
			t.Fatalf("Expire: %v", err)
		}
	}
	return ds
}

func replay(t *testing.T, q dcon.Queue, c string, r dcon.ReplayRequest, now, due time.Time, limit int) []dcon.Delivery {
	t.Helper()
	ds, err := dlq(t, q).Replay(t.Context(), c, r, now, due, limit)
	if err != nil {
		t.Fatalf("Replay(%+v): %v", r, err)
	}
	return ds
}

func deadLetterIDs(t *testing.T, q dcon.Queue, c string) []string {
	t.Helper()
	var ids []string
	for _, dl := range deadLetters(t, q, c, 1000) {
		ids = append(ids, dl.EventID)
	}
	return ids
}

func testDeadLetterPages(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	at := base.Add(12 * time.Hour)
	// Events 3 and 1 expire together: within one expiry, by event id.
	expireAt(t, q, c, []int{5, 3, 1, 4, 2}, []time.Time{at, at.Add(time.Second), at.Add(time.Second), at.Add(time.Minute), at.Add(time.Hour)})
	expireAt(t, q, connector(2), []int{9}, []time.Time{at})
	var got []string
	var cur dcon.DeadLetterCursor
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatalf("more than 5 pages: %v", got)
		}
		dls, err := dlq(t, q).DeadLettersAfter(t.Context(), c, cur, 2)
		if err != nil {
			t.Fatalf("DeadLettersAfter: %v", err)
		}
		if len(dls) > 2 {
			t.Fatalf("DeadLettersAfter(limit 2): got %d", len(dls))
		}
		if len(dls) == 0 {
			break
		}
		for _, dl := range dls {
			got = append(got, dl.EventID)
		}
		cur = dcon.CursorOf(&dls[len(dls)-1])
	}
	want := []string{id('e', 5), id('e', 1), id('e', 3), id('e', 4), id('e', 2)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages: got %v, want %v", got, want)
	}
}

func testReplayByIDs(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	at := base.Add(12 * time.Hour)
	ds := expireAt(t, q, c, []int{1, 2, 3}, []time.Time{at, at.Add(time.Second), at.Add(2 * time.Second)})
	now, due := at.Add(time.Hour), at.Add(time.Hour+time.Minute)
	got := replay(t, q, c, dcon.ReplayRequest{EventIDs: []string{id('e', 3), id('e', 1), id('e', 99)}}, now, due, 1000)
	checkIDs(t, "Replay", got, id('e', 1), id('e', 3))
	if ids := deadLetterIDs(t, q, c); fmt.Sprint(ids) != fmt.Sprint([]string{id('e', 2)}) {
		t.Errorf("dead letters after Replay: %v, want [%s]", ids, id('e', 2))
	}
	if n := depth(t, q, c); n != 2 {
		t.Errorf("Depth after Replay: %d, want 2", n)
	}
	if got := claim(t, q, due.Add(-time.Nanosecond), far, 10); len(got) != 0 {
		t.Errorf("Claim before the replay's due: got %v", eventIDs(got))
	}
	claimed := claim(t, q, due, far, 10)
	checkIDs(t, "Claim at the replay's due", claimed, id('e', 1), id('e', 3))
	for i, n := range []int{0, 2} {
		if i >= len(got) {
			break
		}
		want := ds[n]
		want.EventTime, want.Attempts, want.LastError, want.Due = now, 0, "", due
		checkDelivery(t, got[i], want)
		want.Due = far
		if i < len(claimed) {
			checkDelivery(t, claimed[i], want)
		}
	}
}

func testReplaySince(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	at := base.Add(12 * time.Hour)
	expireAt(t, q, c, []int{1, 2, 3}, []time.Time{at, at.Add(time.Minute), at.Add(time.Hour)})
	got := replay(t, q, c, dcon.ReplayRequest{Since: at.Add(time.Minute)}, at.Add(2*time.Hour), at.Add(3*time.Hour), 1000)
	checkIDs(t, "Replay since the second expiry", got, id('e', 2), id('e', 3))
	if ids := deadLetterIDs(t, q, c); fmt.Sprint(ids) != fmt.Sprint([]string{id('e', 1)}) {
		t.Errorf("dead letters after Replay: %v, want [%s]", ids, id('e', 1))
	}
}

func testReplayAllInChunks(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	at := base.Add(12 * time.Hour)
	expireAt(t, q, c, []int{1, 2, 3, 4, 5}, []time.Time{at, at, at, at, at})
	expireAt(t, q, connector(2), []int{6}, []time.Time{at})
	var sizes []int
	for range 4 {
		sizes = append(sizes, len(replay(t, q, c, dcon.ReplayRequest{All: true}, at, at, 2)))
	}
	if fmt.Sprint(sizes) != "[2 2 1 0]" {
		t.Errorf("Replay(All, limit 2) four times: %v, want [2 2 1 0]", sizes)
	}
	if n := depth(t, q, c); n != 5 {
		t.Errorf("Depth: %d, want 5", n)
	}
	if ids := deadLetterIDs(t, q, connector(2)); len(ids) != 1 {
		t.Errorf("another connector's dead letters: %v, want one", ids)
	}
}

func testReplayDurable(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	at := base.Add(12 * time.Hour)
	expireAt(t, q, c, []int{1, 2}, []time.Time{at, at})
	replay(t, q, c, dcon.ReplayRequest{EventIDs: []string{id('e', 2)}}, at, at, 10)
	q = h.Crash(t, q)
	if ids := deadLetterIDs(t, q, c); fmt.Sprint(ids) != fmt.Sprint([]string{id('e', 1)}) {
		t.Errorf("dead letters after a crash: %v, want [%s]", ids, id('e', 1))
	}
	checkIDs(t, "Claim after a crash", claim(t, q, far, far, 10), id('e', 2))
}

func testReplayReplaces(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	at := base.Add(12 * time.Hour)
	ds := expireAt(t, q, c, []int{1}, []time.Time{at})
	enqueue(t, q, ds[0]) // queued again, by a :sync for instance
	replay(t, q, c, dcon.ReplayRequest{All: true}, at, at.Add(time.Minute), 10)
	if n := depth(t, q, c); n != 1 {
		t.Errorf("Depth: %d, want 1", n)
	}
	got := claim(t, q, far, far, 10)
	checkIDs(t, "Claim", got, id('e', 1))
	if len(got) == 1 && got[0].Attempts != 0 {
		t.Errorf("Attempts %d, want 0", got[0].Attempts)
	}
}

func testConcurrentReplays(t *testing.T, h Harness) {
	q := h.Open(t)
	c := connector(1)
	at := base.Add(12 * time.Hour)
	const n = 50
	var ns []int
	var expires []time.Time
	for i := 1; i <= n; i++ {
		ns = append(ns, i)
		expires = append(expires, at.Add(time.Duration(i)*time.Millisecond))
	}
	expireAt(t, q, c, ns, expires)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		seen  = map[string]int{}
	)
	for range 4 {
		wg.Go(func() {
			for {
				ds, err := dlq(t, q).Replay(t.Context(), c, dcon.ReplayRequest{All: true}, at, at, 7)
				if err != nil {
					t.Errorf("Replay: %v", err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				total += len(ds)
				for _, d := range ds {
					seen[d.EventID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if total != n || len(seen) != n {
		t.Errorf("concurrent replays queued %d deliveries of %d events, want %d of %d", total, len(seen), n, n)
	}
	if ids := deadLetterIDs(t, q, c); len(ids) != 0 {
		t.Errorf("dead letters left: %v", ids)
	}
}

func testPurge(t *testing.T, h Harness) {
	q := h.Open(t)
	at := base.Add(12 * time.Hour)
	for _, c := range []string{connector(1), connector(2)} {
		expireAt(t, q, c, []int{1, 2, 3}, []time.Time{at, at.Add(time.Hour), at.Add(2 * time.Hour)})
	}
	if err := dlq(t, q).PurgeDeadLetters(t.Context(), at.Add(time.Hour)); err != nil {
		t.Fatalf("PurgeDeadLetters: %v", err)
	}
	for _, c := range []string{connector(1), connector(2)} {
		if ids := deadLetterIDs(t, q, c); fmt.Sprint(ids) != fmt.Sprint([]string{id('e', 2), id('e', 3)}) {
			t.Errorf("%s: dead letters after the purge: %v, want [%s %s]", c, ids, id('e', 2), id('e', 3))
		}
	}
	if err := dlq(t, q).PurgeDeadLetters(t.Context(), far); err != nil {
		t.Fatalf("PurgeDeadLetters: %v", err)
	}
	if ids := deadLetterIDs(t, q, connector(1)); len(ids) != 0 {
		t.Errorf("dead letters after purging all: %v", ids)
	}
}
