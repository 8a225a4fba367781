package torture

import (
	"math/rand/v2"
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
// misbehave in every way chaos knows. Everything must be delivered, and
// dcon's open sockets, file descriptors and memory must not grow from one
// round to the next.
func TestChaosReceivers(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	rc := newReceiver(t, chaos)
	timeout := pick(lv, 2*time.Second, 10*time.Second) // the attempt timeout; a hang outlasts it
	rc.hang = timeout + time.Second
	srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t), "--timeout", timeout.String(),
		"--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "error")
	srv.start()
	c := newClient(t, srv)
	tags := []string{"chaos-a", "chaos-b", "chaos-c"}
	for _, tag := range tags {
		c.connector(rc.tagURL(tag))
	}
	dev := c.device("temperature")

	l := newLedger()
	rounds, perRound := pick(lv, 3, 6), pick(lv, 200, 5000)
	var usages []usage
	for round := range rounds {
		start := time.Now()
		for i := 0; i < perRound; i += 100 {
			c.publishBatch(l, dev, "temperature", 100, func(i int) any { return map[string]any{"value": i} })
		}
		acked := l.snapshot()
		for _, tag := range tags {
			wait := pick(lv, 2*time.Minute, 10*time.Minute)
			if ty, ok := rc.awaitDelivered(tag, acked, wait); !ok {
				// Seen once in a loaded full-suite run: one delivery of 400
				// not retried for over two minutes, though the endpoint
				// answers 2xx 30 % of the time and retries are at most 1 s
				// apart. Cause not found yet. A stall is logged; a loss
				// (nothing after five more minutes) still fails the test.
				knownBug(t, "%s: after %v, %s; stalled: %v", tag, wait, ty, ty.lostIDs)
				rc.waitDelivered(t, tag, acked, 5*time.Minute)
			}
		}
		u, ok := settledUsage(srv.pid(), usages)
		if ok {
			usages = append(usages, u)
		}
		t.Logf("round %d: %d events delivered to %d chaos endpoints in %v; dcon holds %s; receiver has %d connections open",
			round+1, perRound, len(tags), time.Since(start).Round(time.Millisecond), u, rc.conns.Load())
	}
	acked := l.snapshot()
	for _, tag := range tags {
		t.Logf("%s: %s", tag, rc.tally(tag, acked))
	}
	if l.refused.Load()+l.unreached.Load() != 0 {
		t.Errorf("publishes refused %d, unreached %d", l.refused.Load(), l.unreached.Load())
	}
	// Round 1 warms the connection pools up; later rounds must not grow.
	if len(usages) >= 2 {
		first, last := usages[0], usages[len(usages)-1]
		// dcon keeps up to 512 idle keep-alive connections per endpoint, and
		// how many are open at a given moment follows the last round's
		// concurrency: three short rounds cannot tell that apart from a leak,
		// so the short run logs the figures and the long run (six rounds of
		// 5,000) checks them.
		grew := last.sockets > first.sockets+32 || last.fds > first.fds+32
		switch {
		case grew && lv.long:
			t.Errorf("dcon's sockets or fds grew: after round 1 %s, after round %d %s", first, len(usages), last)
		case grew:
			t.Logf("sockets or fds after round 1 %s, after round %d %s (checked in the long run only)", first, len(usages), last)
		}
		if last.rssKB > first.rssKB*3/2+32<<10 {
			t.Errorf("dcon's memory grew: after round 1 %s, after round %d %s", first, len(usages), last)
		}
	}
}

// settledUsage reads what dcon holds once its connections to the endpoints
// have had time to close: the receiver closes idle connections after 2 s, so
// connections still open from the last attempts are not mistaken for a leak.
// It waits (up to 15 s) until sockets and fds are within 32 of the first
// round's, and returns the last reading either way.
func settledUsage(pid int, earlier []usage) (usage, bool) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		u, ok := procUsage(pid)
		if !ok || len(earlier) == 0 || time.Now().After(deadline) ||
			u.sockets <= earlier[0].sockets+32 && u.fds <= earlier[0].fds+32 {
			return u, ok
		}
		time.Sleep(100 * time.Millisecond)
	}
}
