package torture

import (
	"fmt"
	"testing"
	"time"
)

// TestShutdown sends SIGTERM while events flow to a slow endpoint and to one
// that hangs past the drain deadline. dcon must exit 0 within the deadline
// (and a margin), the slow endpoint's attempts under way must have been
// finished and recorded (no duplicate there after the restart), and after a
// restart every acknowledged event must arrive at both.
func TestShutdown(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	var hanging = true
	rc := newReceiver(t, func(tag, _ string, _ int) action {
		switch {
		case tag == "slow":
			return answerSlow
		case tag == "hang" && hanging:
			return answerHang
		}
		return answerOK
	})
	rc.slow = 300 * time.Millisecond
	rc.hang = 20 * time.Second
	drain := 3 * time.Second
	srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t), "--drain-timeout", drain.String(),
		"--timeout", "10s", "--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "warn")
	srv.start()
	c := newClient(t, srv)
	c.connector(rc.tagURL("slow"))
	c.connector(rc.tagURL("hang"))
	dev := c.device("temperature")

	l := newLedger()
	stop := publishers(c, l, 4, 20, dev, "temperature", func(i int) any { return map[string]any{"value": i} })
	waitUntil(t, "load", time.Minute, func() bool { return l.count() >= pick(lv, 400, 5000) })
	took, err := srv.stop(drain + 20*time.Second)
	stop()
	if err != nil {
		t.Errorf("after SIGTERM under load dcon exited with %v, want 0", err)
	}
	if took > drain+5*time.Second {
		t.Errorf("dcon took %v to stop, with a drain deadline of %v", took, drain)
	}
	t.Logf("SIGTERM under load: exited in %v (drain deadline %v)", took.Round(time.Millisecond), drain)

	// The slow endpoint's attempts finished before the exit: nothing it
	// acknowledged is sent again after the restart.
	before := rc.tally("slow", l.snapshot())
	rc.mu.Lock()
	hanging = false
	rc.mu.Unlock()
	srv.start()
	acked := l.snapshot()
	slow := rc.waitDelivered(t, "slow", acked, 2*time.Minute)
	hang := rc.waitDelivered(t, "hang", acked, 2*time.Minute)
	t.Logf("slow endpoint: %s (before the restart: delivered %d)", slow, before.delivered)
	t.Logf("hanging endpoint: %s", hang)
	if slow.duplicates != 0 {
		t.Errorf("the slow endpoint got %d duplicates: attempts under way at SIGTERM were not drained", slow.duplicates)
	}
	if _, err := srv.stop(30 * time.Second); err != nil {
		t.Errorf("after SIGTERM dcon exited with %v, want 0", err)
	}
	report(t, figures{
		scenario:   "shutdown",
		published:  fmt.Sprint(len(acked)),
		crashes:    "SIGTERM",
		lost:       fmt.Sprint(slow.lost + hang.lost),
		duplicates: fmt.Sprintf("%d at the drained endpoint", slow.duplicates),
		time:       fmt.Sprintf("exit 0 after %v (deadline %v)", took.Round(10*time.Millisecond), drain),
	})
}
