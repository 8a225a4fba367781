package torture

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// chaos picks what a chaos endpoint does with one attempt: 500 30% of the
// time, hang past the attempt timeout 10%, reset the connection 5%, answer
// slowly 10%, 429 with Retry-After 5%, a redirect 5%, an endless body 5%, and
// a plain 200 otherwise.
func chaos(string, string, int) action {
	switch n := rand.IntN(100); {
	case n < 30:
		return answer500
	case n < 40:
		return answerHang
	case n < 45:
		return answerReset
	case n < 55:
		return answerSlow
	case n < 60:
		return answer429
	case n < 65:
		return answer302
	case n < 70:
		return answerEndless
	default:
		return answerOK
	}
}

// TestChaosReceivers publishes rounds of events to three endpoints that
// misbehave in every way chaos knows. Everything must be delivered; dcon's
// memory must not grow from one round to the next; and once the last round is
// delivered and the endpoints have closed their idle keep-alive connections
// (after 2 s, or 5 s for one that never carried a request), dcon's sockets,
// file descriptors and goroutines must be back to where they were before the
// first event.
func TestChaosReceivers(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	rc := newReceiver(t, chaos)
	timeout := pick(lv, 2*time.Second, 10*time.Second) // the attempt timeout; a hang outlasts it
	rc.hang = timeout + time.Second
	srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t), "--timeout", timeout.String(),
		"--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "error", "--test-debug")
	srv.start()
	c := newClient(t, srv)
	tags := []string{"chaos-a", "chaos-b", "chaos-c"}
	ids := map[string]string{} // tag → connector id
	for _, tag := range tags {
		ids[tag] = c.connector(rc.tagURL(tag))
	}
	dev := c.device("temperature")
	before, haveProc := procUsage(srv.pid())
	goBefore, err := srv.goroutineCount()
	if err != nil {
		t.Fatal(err)
	}

	l := newLedger()
	rounds, perRound := pick(lv, 3, 6), pick(lv, 200, 5000)
	var usages []usage
	published := time.Now()
	for round := range rounds {
		start := time.Now()
		for i := 0; i < perRound; i += 100 {
			c.publishBatch(l, dev, "temperature", 100, func(i int) any { return map[string]any{"value": i} })
		}
		acked := l.snapshot()
		for _, tag := range tags {
			wait := pick(lv, 2*time.Minute, 10*time.Minute)
			if ty, ok := rc.awaitDelivered(tag, acked, wait); !ok {
				// The endpoint answers 2xx 30 % of the time and retries are
				// at most 1 s apart: an event not delivered in minutes is
				// stalled. Capture why before failing.
				t.Fatalf("%s: after %v, %s; stalled: %v\n%s", tag, wait, ty, ty.lostIDs,
					diagnoseStall(t, srv, rc, tag, ids[tag], ty.lostIDs))
			}
		}
		u, _ := procUsage(srv.pid())
		usages = append(usages, u)
		t.Logf("round %d: %d events delivered to %d chaos endpoints in %v; dcon holds %s; receiver has %d connections open",
			round+1, perRound, len(tags), time.Since(start).Round(time.Millisecond), u, rc.conns.Load())
	}
	delivered := time.Since(published)
	acked := l.snapshot()
	var sum tally
	for _, tag := range tags {
		ty := rc.tally(tag, acked)
		t.Logf("%s: %s", tag, ty)
		for _, id := range ty.dupIDs {
			t.Logf("%s: a duplicate: %s", tag, rc.history(tag, id))
		}
		sum.acked += ty.acked
		sum.delivered += ty.delivered
		sum.lost += ty.lost
		sum.duplicates += ty.duplicates
		sum.attempts += ty.attempts
	}
	if l.refused.Load()+l.unreached.Load() != 0 {
		t.Errorf("publishes refused %d, unreached %d", l.refused.Load(), l.unreached.Load())
	}
	// Round 1 warms up; later rounds must not grow dcon's memory.
	if len(usages) >= 2 && haveProc {
		first, last := usages[0], usages[len(usages)-1]
		if last.rssKB > first.rssKB*3/2+32<<10 {
			t.Errorf("dcon's memory grew: after round 1 %s, after round %d %s", first, len(usages), last)
		}
	}
	after, goAfter := checkSettled(t, srv, before, goBefore)
	report(t, figures{
		scenario:   "chaos receivers",
		published:  fmt.Sprintf("%d × %d endpoints", len(acked), len(tags)),
		lost:       fmt.Sprint(sum.lost),
		duplicates: fmt.Sprint(sum.duplicates),
		expired:    "0",
		time: fmt.Sprintf("%v to deliver all; %.1f attempts per copy; %d s timeout; sockets %d → %d, fds %d → %d, goroutines %d → %d",
			delivered.Round(time.Second), float64(sum.attempts)/float64(max(sum.acked, 1)), int(timeout.Seconds()),
			before.sockets, after.sockets, before.fds, after.fds, goBefore, goAfter),
	})
}

// checkSettled waits, once every event is delivered, until dcon holds no
// more sockets and file descriptors than before (within 4: a connection of
// the suite's API client may come and go) and no more goroutines (within
// 10), and fails the test if that does not happen within 30 s. The endpoints
// close idle keep-alive connections after 2 s (the receiver's IdleTimeout; 5 s,
// its ReadHeaderTimeout, for one dialled but never used), and dcon's end of
// each then closes too, with its two goroutines; what
// remains after that is a leak: a connection, a timer or an attempt that
// never ended.
func checkSettled(t *testing.T, srv *server, before usage, goBefore int) (usage, int) {
	t.Helper()
	const slack, goSlack = 4, 10
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, ok := procUsage(srv.pid())
		n, err := srv.goroutineCount()
		if err != nil {
			t.Errorf("count dcon's goroutines: %v", err)
			return u, 0
		}
		settled := n <= goBefore+goSlack && (!ok || u.sockets <= before.sockets+slack && u.fds <= before.fds+slack)
		if settled {
			return u, n
		}
		if time.Now().After(deadline) {
			dump, _ := srv.goroutines(true)
			path := filepath.Join(os.TempDir(), fmt.Sprintf("dcon-%s-%d.goroutines", sanitize(t.Name()), time.Now().UnixNano()))
			_ = os.WriteFile(path, []byte(dump), 0o644)
			t.Errorf("dcon leaks: before the first event %s and %d goroutines, 30 s after the last delivery %s and %d goroutines (saved in %s)\n%s",
				before, goBefore, u, n, path, ownGoroutines())
			return u, n
		}
		time.Sleep(200 * time.Millisecond)
	}
}
