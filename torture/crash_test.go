package torture

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCrashLoop publishes continuously, in batches, while dcon is killed with
// SIGKILL at random moments and restarted on the same data directory; one
// endpoint fails 30% of the attempts. Every acknowledged event must arrive at
// both endpoints. It reports duplicates and the recovery time, from the start
// of a process to the first delivery it makes.
func TestCrashLoop(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	rc := newReceiver(t, func(tag, _ string, _ int) action {
		if tag == "flaky" && rand.IntN(10) < 3 {
			return answer500
		}
		return answerOK
	})
	srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t),
		"--retry-initial", "50ms", "--retry-max", "500ms", "--log-level", "warn")
	srv.start()
	c := newClient(t, srv)
	c.connector(rc.tagURL("steady"))
	c.connector(rc.tagURL("flaky"))
	dev := c.device("temperature")

	l := newLedger()
	began := time.Now()
	stop := publishers(c, l, pick(lv, 2, 8), pick(lv, 25, 100), dev, "temperature",
		func(i int) any { return map[string]any{"value": i % 50} })
	crashes := pick(lv, 3, 20)
	var recovery []time.Duration
	for i := range crashes {
		// Run a random while, with at least some events acknowledged since
		// the last start, then crash.
		target := l.count() + 200
		waitUntil(t, "events acknowledged", 60*time.Second, func() bool { return l.count() >= target })
		time.Sleep(time.Duration(rand.Int64N(int64(pick(lv, 1500*time.Millisecond, 5*time.Second)))))
		srv.kill()
		restart := time.Now()
		srv.start()
		var first time.Time
		waitUntil(t, "a delivery after the restart", 60*time.Second, func() bool {
			var ok bool
			first, ok = rc.firstRequestAfter(restart)
			return ok
		})
		recovery = append(recovery, first.Sub(restart))
		t.Logf("crash %d: %d acknowledged so far; start to first delivery %v", i+1, l.count(), first.Sub(restart).Round(time.Millisecond))
	}
	target := l.count() + 200
	waitUntil(t, "events after the last restart", 60*time.Second, func() bool { return l.count() >= target })
	stop()
	elapsed := time.Since(began)

	acked := l.snapshot()
	t.Logf("published; waiting for deliveries")
	steady := rc.waitDelivered(t, "steady", acked, 3*time.Minute)
	flaky := rc.waitDelivered(t, "flaky", acked, 3*time.Minute)
	var worst, sum time.Duration
	for _, d := range recovery {
		worst = max(worst, d)
		sum += d
	}
	t.Logf("crash loop: %d crashes in %v; publishes tried %d, acknowledged %d (%.0f/s), refused %d, unreached %d",
		crashes, elapsed.Round(time.Second), l.tried.Load(), len(acked), float64(len(acked))/elapsed.Seconds(),
		l.refused.Load(), l.unreached.Load())
	t.Logf("steady endpoint: %s", steady)
	t.Logf("flaky endpoint: %s", flaky)
	t.Logf("recovery (start to first delivery): mean %v, worst %v",
		(sum / time.Duration(len(recovery))).Round(time.Millisecond), worst.Round(time.Millisecond))

	if _, err := srv.stop(30 * time.Second); err != nil {
		t.Errorf("after SIGTERM dcon exited with %v, want 0", err)
	}
	report(t, figures{
		scenario:   "crash loop",
		published:  fmt.Sprintf("%d (%.0f/s)", len(acked), float64(len(acked))/elapsed.Seconds()),
		crashes:    fmt.Sprintf("%d SIGKILL", crashes),
		lost:       fmt.Sprint(steady.lost + flaky.lost),
		duplicates: fmt.Sprintf("%d steady, %d flaky", steady.duplicates, flaky.duplicates),
		expired:    "0",
		time:       fmt.Sprintf("%v + delivery", elapsed.Round(time.Second)),
	})
	report(t, figures{
		scenario: "recovery, start to first delivery",
		time: fmt.Sprintf("mean %v, worst %v", (sum / time.Duration(len(recovery))).Round(time.Millisecond),
			worst.Round(time.Millisecond)),
	})
}
