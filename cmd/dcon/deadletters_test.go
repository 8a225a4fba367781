package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDeadLettersAndReplay follows events that cannot be delivered to the
// end of their 12 hours and back: a real TLS endpoint that answers 503, time
// moved 13 hours so that the events expire, their dead letters read (with
// their last error) through the API and the CLI; the endpoint recovers, one
// dead letter is replayed by id and the rest with --all; the endpoint
// receives each with its original eventId and body and a valid signature,
// and the delivery log shows every event's failed attempt, its expiry and its
// delivery, in that order, as `deliveries --follow` streamed them.
func TestDeadLettersAndReplay(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	rc.setAnswer(func(received) int { return http.StatusServiceUnavailable })
	clock := newTestClockFile(t)
	// Retries far apart: each event gets its first attempt only before it
	// expires, so that attempt counts (and the golden files) are exact.
	api := startNode(t, serveConfig{CAFile: rc.caFile(t), TestClockFile: clock.path,
		RetryInitial: 10 * time.Hour, RetryMax: 10 * time.Hour})
	conn := createConnector(api, map[string]any{"type": "HTTP_PUSH",
		"httpConfig": map[string]any{"url": rc.URL + "/in", "signatureSecret": "s3cret"}})
	c := resourceID(conn.Name)
	p := api.project
	dev := createDevice(api, "touch", nil)
	var ids []string
	for range 3 {
		ids = append(ids, eventID([]byte(`{"event":`+string(publish(api, dev, "touch", map[string]any{}))+`}`)))
	}
	rc.waitFor(t, "a first attempt of each event", 10*time.Second, func(got []received) bool { return len(got) >= 3 })
	// The engine logs an attempt just before it records the retry; the clock
	// file is read every 100ms, long after.
	connPath := "/v2/projects/" + p + "/dataconnectors/" + c
	waitUntil(t, "3 failed attempts in the delivery log", 10*time.Second, func() bool {
		var log deliveriesPage
		api.mustCall("GET", connPath+"/deliveries", nil, &log)
		return countOutcome(log.Deliveries, "FAILED") == 3
	})
	firstBody := map[string][]byte{}
	for _, r := range rc.requests() {
		firstBody[eventID(r.Body)] = r.Body
	}

	// 13 hours later, the retries come due past the events' deadline.
	clock.set(t, 13*time.Hour)
	var dls struct {
		DeadLetters []cliDeadLetter `json:"deadLetters"`
	}
	waitUntil(t, "3 dead letters", 10*time.Second, func() bool {
		api.mustCall("GET", connPath+"/deadletters", nil, &dls)
		return len(dls.DeadLetters) == 3
	})
	for _, dl := range dls.DeadLetters {
		if !slices.Contains(ids, dl.EventID) || dl.Attempts != 1 || dl.LastError != "HTTP 503 Service Unavailable" {
			t.Errorf("dead letter %+v, want one of %v with 1 attempt and the last error", dl, ids)
		}
	}
	n := newNormalizer()
	n.apply(p)
	n.apply(c)
	golden := func(name string, args ...string) {
		t.Helper()
		checkGolden(t, n, name, runCLI(t, api.base, args...))
	}
	golden("connectors_deadletters_table", "connectors", "deadletters", c, "--project", p)
	golden("connectors_deadletters_json", "connectors", "deadletters", c, "--project", p, "--output", "json")

	// Follow the delivery log while the dead letters are replayed.
	follow := startFollow(t, api.base, "connectors", "deliveries", c, "--project", p, "--follow", "--output", "json")

	rc.setAnswer(nil)
	golden("connectors_replay_event", "connectors", "replay", c, "--project", p, "--event", ids[1])
	rc.waitFor(t, "the replayed event", 10*time.Second, func(got []received) bool { return len(delivered(got)) == 1 })
	if got := delivered(rc.requests()); got[0] != ids[1] {
		t.Errorf("delivered %v, want %s first", got, ids[1])
	}
	golden("connectors_replay_all", "connectors", "replay", c, "--project", p, "--all")
	rc.waitFor(t, "every replayed event", 10*time.Second, func(got []received) bool { return len(delivered(got)) == 3 })
	golden("connectors_replay_none", "connectors", "replay", c, "--project", p, "--all")

	for _, r := range rc.requests() {
		if r.Status != http.StatusOK {
			continue
		}
		id := eventID(r.Body)
		if !bytes.Equal(r.Body, firstBody[id]) {
			t.Errorf("event %s was replayed with another body:\n got %s\nwant %s", id, r.Body, firstBody[id])
		}
		verifySignature(t, r, "s3cret")
	}
	api.mustCall("GET", connPath+"/deadletters", nil, &dls)
	if len(dls.DeadLetters) != 0 {
		t.Errorf("dead letters after replay: %+v", dls.DeadLetters)
	}

	// The delivery log, oldest first: each event failed, expired, was delivered.
	var log deliveriesPage
	api.mustCall("GET", connPath+"/deliveries?after=0", nil, &log)
	checkLog(t, "the delivery log", log.Deliveries, ids)
	streamed := follow.stop(t, func(ds []cliDelivery) bool { return countOutcome(ds, "DELIVERED") == 3 })
	checkLog(t, "deliveries --follow", streamed, ids)
}

// checkLog checks that each event's entries are, in order, a FAILED first
// attempt, an EXPIRED, and a DELIVERED, and that sequence numbers increase.
func checkLog(t *testing.T, what string, ds []cliDelivery, ids []string) {
	t.Helper()
	byEvent := map[string][]string{}
	var last uint64
	for _, d := range ds {
		if d.Seq <= last {
			t.Errorf("%s: seq %d after %d", what, d.Seq, last)
		}
		last = d.Seq
		byEvent[d.EventID] = append(byEvent[d.EventID], fmt.Sprintf("%s/%d/%s", d.Outcome, d.StatusCode, d.ErrorClass))
	}
	want := []string{"FAILED/503/http_5xx", "EXPIRED/0/expired", "DELIVERED/200/"}
	for _, id := range ids {
		if !slices.Equal(byEvent[id], want) {
			t.Errorf("%s of event %s: %v, want %v", what, id, byEvent[id], want)
		}
	}
}

func countOutcome(ds []cliDelivery, outcome string) int {
	n := 0
	for _, d := range ds {
		if d.Outcome == outcome {
			n++
		}
	}
	return n
}

// delivered returns the event ids the receiver answered 200, in order.
func delivered(got []received) []string {
	var ids []string
	for _, r := range got {
		if r.Status == http.StatusOK {
			ids = append(ids, eventID(r.Body))
		}
	}
	return ids
}

// waitUntil waits, boundedly, until cond holds.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// follower is a `dcon … --follow --output json` running in process.
type follower struct {
	out    lockedBuffer
	stderr lockedBuffer
	cancel context.CancelFunc
	code   chan int
}

func startFollow(t *testing.T, base string, args ...string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel, code: make(chan int, 1)}
	t.Cleanup(cancel)
	go func() { f.code <- run(ctx, append(args, "--server", base), &f.out, &f.stderr) }()
	return f
}

// stop waits until what the follower printed satisfies done, interrupts it,
// and returns what it printed: one delivery per line.
func (f *follower) stop(t *testing.T, done func([]cliDelivery) bool) []cliDelivery {
	t.Helper()
	var ds []cliDelivery
	parse := func() []cliDelivery {
		ds = ds[:0]
		for line := range strings.Lines(f.out.String()) {
			var d cliDelivery
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatalf("--follow printed %q: %v", line, err)
			}
			ds = append(ds, d)
		}
		return ds
	}
	waitUntil(t, "--follow to show the deliveries", 10*time.Second, func() bool { return done(parse()) })
	f.cancel()
	select {
	case code := <-f.code:
		if code != exitOK {
			t.Errorf("--follow exited %d: %s", code, f.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not stop when interrupted")
	}
	return parse()
}
