package torture

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// TestClockJumps steps the wall clock under the server
// (--test-wall-offset-file) back by an hour and forward by an hour, twice,
// while events flow to a steady and a flaky endpoint. dcon's running clock
// reads the wall clock only at start (cmd/dcon's stableClock), so nothing may
// be lost, expire early or stall: what was acknowledged before each step
// arrives, retries included, within the stall limit.
func TestClockJumps(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	rc := newReceiver(t, func(tag, _ string, _ int) action {
		if tag == "flaky" && rand.IntN(10) < 3 {
			return answer500
		}
		return answerOK
	})
	wall := clockFile(filepath.Join(t.TempDir(), "wall-offset"))
	wall.set(t, 0)
	srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t), "--test-wall-offset-file", string(wall),
		"--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "warn")
	srv.start()
	c := newClient(t, srv)
	steady := c.connector(rc.tagURL("steady"))
	flaky := c.connector(rc.tagURL("flaky"))
	dev := c.device("temperature")
	l := newLedger()
	began := time.Now()
	var slowest time.Duration                        // from publishing stopped to everything delivered, over the steps
	stall := pick(lv, 15*time.Second, 2*time.Minute) // what counts as a stall

	for _, jump := range []struct {
		name   string
		offset time.Duration
	}{
		{"back 1h", -time.Hour},
		{"forward 1h", 0},
		{"forward 1h again", time.Hour},
		{"back 1h again", 0},
	} {
		stop := publishers(c, l, 2, 50, dev, "temperature", func(i int) any { return map[string]any{"value": i} })
		target := l.count() + pick(lv, 300, 3000)
		waitUntil(t, "load", time.Minute, func() bool { return l.count() >= target })
		wall.set(t, jump.offset)
		target = l.count() + pick(lv, 300, 3000)
		waitUntil(t, "load after the jump", time.Minute, func() bool { return l.count() >= target })
		stop()
		acked := l.snapshot()
		start := time.Now()
		for _, tag := range []string{"steady", "flaky"} {
			deadline := time.Now().Add(stall)
			for {
				ty := rc.tally(tag, acked)
				if ty.lost == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: %s: delivery stalled after the wall clock stepped: %s", jump.name, tag, ty)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		slowest = max(slowest, time.Since(start))
		t.Logf("%s: everything acknowledged so far (%d) delivered %v after publishing stopped; steady %s; flaky %s",
			jump.name, len(acked), time.Since(start).Round(time.Millisecond), rc.tally("steady", acked), rc.tally("flaky", acked))
	}
	acked := l.snapshot()
	steadyTy := rc.waitDelivered(t, "steady", acked, 2*time.Minute)
	flakyTy := rc.waitDelivered(t, "flaky", acked, 2*time.Minute)
	expired := 0
	for _, id := range []string{steady, flaky} {
		if dls := c.deadLetters(id); len(dls) != 0 {
			expired += len(dls)
			t.Errorf("%d events expired early after clock jumps: %+v", len(dls), dls[0])
		}
	}
	report(t, figures{
		scenario:   "clock jumps",
		published:  fmt.Sprint(len(acked)),
		lost:       fmt.Sprint(steadyTy.lost + flakyTy.lost),
		duplicates: fmt.Sprintf("%d steady, %d flaky", steadyTy.duplicates, flakyTy.duplicates),
		expired:    fmt.Sprint(expired),
		time: fmt.Sprintf("%v; each step's backlog delivered within %v after publishing stopped",
			time.Since(began).Round(time.Second), slowest.Round(100*time.Millisecond)),
	})
	if _, err := srv.stop(30 * time.Second); err != nil {
		t.Errorf("after SIGTERM dcon exited with %v, want 0", err)
	}
}
