package torture

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestExpiry publishes events for a dead endpoint and moves the server's
// clock (--test-clock-offset-file) close to their 12-hour deadline: none may
// expire before it, and each must be a dead letter, with its last error,
// within one scheduling tick (the 100ms poll) of it, plus the slack below. A
// second batch crosses its deadline across a SIGKILL and a restart; the first
// batch's dead letters survive it.
func TestExpiry(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	began := time.Now()
	const tick = 100 * time.Millisecond
	// A dead letter's expire time is the clock reading of the poll that
	// claimed it, taken before the claim: neither the claim nor the expiry's
	// synced write (one per claim batch) is in it. Lateness past the tick is
	// the poller starting late (the previous poll overran its tick, or the
	// process waited for a CPU), or an attempt under way at the deadline,
	// expired by the poll after it failed (the endpoint answers 500 at once).
	// Five runs on a loaded 2-core machine (load average 10) saw at most
	// 97 ms. The slack bounds that with room, and stays far below what a
	// missed claim costs: a wait for the lease to end (50 s).
	slack := pick(lv, time.Second, 2*time.Second)
	bin := buildDcon(t)
	rc := newReceiver(t, func(string, string, int) action { return answer500 })
	clock := newClockFile(t)
	srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t), "--test-clock-offset-file", string(clock),
		"--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "warn")
	srv.start()
	c := newClient(t, srv)
	dead := c.connector(rc.tagURL("dead"))
	dev := c.device("touch")
	n := pick(lv, 50, 1000)

	check := func(what string, acked map[string]published, dls []deadLetter) time.Duration {
		t.Helper()
		var worst time.Duration
		n := 0
		for _, dl := range dls {
			if _, ok := acked[dl.EventID]; !ok {
				continue
			}
			n++
			late := dl.ExpireTime.Sub(dl.EventTime) - 12*time.Hour
			worst = max(worst, late)
			if late < 0 {
				t.Errorf("%s: event %s expired %v before its 12 hours", what, dl.EventID, -late)
			}
			if late > tick+slack {
				t.Errorf("%s: event %s expired %v after its 12 hours, want within a tick (%v) and %v of slack", what, dl.EventID, late, tick, slack)
			}
			// An event published while the connector was PROBING (every
			// answer an error) was parked, never attempted: its dead letter
			// says so, with the connector's last error.
			if !strings.Contains(dl.LastError, "500") ||
				dl.Attempts == 0 && !strings.Contains(dl.LastError, "before any attempt") {
				t.Errorf("%s: dead letter %+v: want the last error, a 500, and its attempts", what, dl)
			}
		}
		t.Logf("%s: %d dead letters, latest %v after the 12 hours (tick %v, slack %v)", what, n, worst, tick, slack)
		return worst
	}
	expired := func(acked map[string]published) func() bool {
		return func() bool {
			got := 0
			for _, dl := range c.deadLetters(dead) {
				if _, ok := acked[dl.EventID]; ok {
					got++
				}
			}
			return got == len(acked)
		}
	}
	// An endpoint that answers every attempt with a 500 has its connector
	// PROBING once enough attempts in a row failed (delivery.FlowConfig's
	// ProbeAfterErrors): from then on its events are parked and one probe at
	// a time is sent. So a batch expires from both states: the deliveries
	// retried on their own backoff, and the parked ones.
	probing := func() bool {
		var res struct {
			FlowControl struct {
				State string `json:"state"`
			} `json:"flowControl"`
		}
		c.must("GET", "/v2/projects/"+c.project+"/dataconnectors/"+dead, nil, &res)
		return res.FlowControl.State == "PROBING"
	}
	attempted := func(acked map[string]published) func() bool {
		return func() bool {
			got := rc.deliveries("dead")
			for id := range acked {
				if got[id].attempts > 0 {
					return probing()
				}
			}
			return false
		}
	}

	// Batch 1: just before the deadline nothing has expired, and the
	// endpoint is still being tried; then the clock runs over it.
	l1 := newLedger()
	for i := 0; i < n; i += 50 {
		c.publishBatch(l1, dev, "touch", 50, func(int) any { return map[string]any{} })
	}
	batch1 := l1.snapshot()
	waitUntil(t, "batch 1 tried, its connector PROBING", time.Minute, attempted(batch1))
	published := time.Now()
	clock.set(t, 12*time.Hour-time.Minute)
	before := rc.tally("dead", batch1).attempts
	waitUntil(t, "probes 1 minute before the deadline", time.Minute, func() bool { return rc.tally("dead", batch1).attempts > before })
	if dls := c.deadLetters(dead); len(dls) != 0 {
		t.Fatalf("%d dead letters a minute before the deadline", len(dls))
	}
	// The deadline comes 3 s of real time from now.
	clock.set(t, 12*time.Hour-3*time.Second-time.Since(published))
	waitUntil(t, "batch 1 expired", time.Minute, expired(batch1))
	worst1 := check("batch 1", batch1, c.deadLetters(dead))

	// Batch 2: published now, killed, restarted with its deadline 5 s of
	// real time after the restart.
	clock.set(t, 0)
	time.Sleep(300 * time.Millisecond) // the server re-reads the clock every 100ms
	l2 := newLedger()
	for i := 0; i < n; i += 50 {
		c.publishBatch(l2, dev, "touch", 50, func(int) any { return map[string]any{} })
	}
	batch2 := l2.snapshot()
	var first time.Time
	for _, p := range batch2 {
		if first.IsZero() || p.Sent.Before(first) {
			first = p.Sent
		}
	}
	waitUntil(t, "batch 2 tried, its connector PROBING", time.Minute, attempted(batch2))
	srv.kill()
	clock.set(t, 12*time.Hour-5*time.Second-time.Since(first))
	srv.start()
	if got := len(c.deadLetters(dead)); got < len(batch1) {
		t.Errorf("after the restart %d dead letters, want at least batch 1's %d", got, len(batch1))
	}
	waitUntil(t, "batch 2 expired after a restart", time.Minute, expired(batch2))
	worst2 := check("batch 2, across a restart", batch2, c.deadLetters(dead))
	if _, err := srv.stop(30 * time.Second); err != nil {
		t.Errorf("after SIGTERM dcon exited with %v, want 0", err)
	}
	report(t, figures{
		scenario:  "expiry",
		published: fmt.Sprint(len(batch1) + len(batch2)),
		crashes:   "1 SIGKILL",
		lost:      "0",
		expired:   fmt.Sprintf("%d, at most %v after 12 h (%v across the restart)", len(batch1)+len(batch2), worst1.Round(time.Millisecond), worst2.Round(time.Millisecond)),
		time:      time.Since(began).Round(time.Second).String(),
	})
}
