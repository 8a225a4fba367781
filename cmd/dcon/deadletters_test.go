package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// TestDeliveryLogKeepsSecrets: an endpoint that echoes, in its error body,
// the connector's signature secret, header values and URL query leaves none
// of them in what dcon keeps and shows of the failure: the delivery log (API,
// CLI), the dead letter's last error and the dashboard. The errors come from
// the webhook client, which redacts them; this checks the whole way.
func TestDeliveryLogKeepsSecrets(t *testing.T) {
	t.Parallel()
	const (
		sigSecret  = "sig-secret-4f1c9a"
		apiKey     = "header-value-77e2b1"
		bearer     = "Bearer conn-token-9d3e0c"
		queryToken = "query-token-3e5f9a"
	)
	echo := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "denied: secret %s; x-api-key %s; authorization %s; query %s",
			sigSecret, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"), r.URL.RawQuery)
	}))
	t.Cleanup(echo.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: echo.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := newTestClockFile(t)
	api := startNode(t, serveConfig{CAFile: caFile, TestClockFile: clock.path, RetryInitial: 10 * time.Hour, RetryMax: 10 * time.Hour})
	conn := createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{
		"url": echo.URL + "/hook?token=" + queryToken, "signatureSecret": sigSecret,
		"headers": map[string]string{"X-Api-Key": apiKey, "Authorization": bearer}}})
	c := resourceID(conn.Name)
	connPath := "/v2/projects/" + api.project + "/dataconnectors/" + c
	publish(api, createDevice(api, "touch", nil), "touch", map[string]any{})

	var log deliveriesPage
	waitUntil(t, "the failed attempt in the delivery log", 10*time.Second, func() bool {
		api.mustCall("GET", connPath+"/deliveries", nil, &log)
		return countOutcome(log.Deliveries, "FAILED") == 1
	})
	failure := log.Deliveries[0].Error
	if !strings.HasPrefix(failure, "HTTP 401 Unauthorized: denied:") || !strings.Contains(failure, "[redacted]") {
		t.Errorf("the logged error %q: want the status, the body's start, and [redacted] in place of the secrets", failure)
	}
	clock.set(t, 13*time.Hour) // the retry comes due after the deadline: a dead letter
	var dls struct {
		DeadLetters []cliDeadLetter `json:"deadLetters"`
	}
	waitUntil(t, "the dead letter", 10*time.Second, func() bool {
		api.mustCall("GET", connPath+"/deadletters", nil, &dls)
		return len(dls.DeadLetters) == 1
	})
	if dls.DeadLetters[0].LastError != failure {
		t.Errorf("the dead letter's last error %q, want the logged %q", dls.DeadLetters[0].LastError, failure)
	}
	waitUntil(t, "the expiry in the delivery log", 10*time.Second, func() bool {
		api.mustCall("GET", connPath+"/deliveries", nil, &log)
		return countOutcome(log.Deliveries, "EXPIRED") == 1
	})

	_, apiLog := api.call("GET", connPath+"/deliveries?after=0", nil, nil)
	_, deadLetters := api.call("GET", connPath+"/deadletters", nil, nil)
	_, page := api.call("GET", "/dashboard/projects/"+api.project+"/connectors/"+c, nil, nil)
	shown := map[string]string{
		"GET …/deliveries":       string(apiLog),
		"GET …/deadletters":      string(deadLetters),
		"connectors deliveries":  mustCLI(t, api.base, "connectors", "deliveries", c, "--project", api.project).stdout,
		"connectors deadletters": mustCLI(t, api.base, "connectors", "deadletters", c, "--project", api.project).stdout,
		"the dashboard":          string(page),
	}
	if !strings.Contains(shown["the dashboard"], "denied:") {
		t.Errorf("the dashboard's connector page does not show the error:\n%s", page)
	}
	for where, text := range shown {
		for what, secret := range map[string]string{"signature secret": sigSecret, "header value": apiKey,
			"bearer token": strings.TrimPrefix(bearer, "Bearer "), "URL query": queryToken} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows the %s %q:\n%s", where, what, secret, text)
			}
		}
	}
}

// TestReplayListAndSince replays, on a real node and store, the dead letters
// that expired since a time through the API, leaving the older ones, then a
// list of them through the CLI, with --event repeated and comma-separated.
func TestReplayListAndSince(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	rc.setAnswer(func(received) int { return http.StatusServiceUnavailable })
	clock := newTestClockFile(t)
	api := startNode(t, serveConfig{CAFile: rc.caFile(t), TestClockFile: clock.path,
		RetryInitial: 10 * time.Hour, RetryMax: 10 * time.Hour})
	conn := createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/in"}})
	c := resourceID(conn.Name)
	connPath := "/v2/projects/" + api.project + "/dataconnectors/" + c
	dev := createDevice(api, "touch", nil)
	var dls struct {
		DeadLetters []cliDeadLetter `json:"deadLetters"`
	}
	// expire publishes n events and moves the clock to offset, past their
	// deadline: n more dead letters (attempted once, or parked by the flow
	// control of a failing endpoint).
	expire := func(n int, offset time.Duration) []string {
		t.Helper()
		var ids []string
		for range n {
			ids = append(ids, eventID([]byte(`{"event":`+string(publish(api, dev, "touch", map[string]any{}))+`}`)))
		}
		before := len(dls.DeadLetters)
		clock.set(t, offset)
		waitUntil(t, "the new dead letters", 10*time.Second, func() bool {
			api.mustCall("GET", connPath+"/deadletters", nil, &dls)
			return len(dls.DeadLetters) == before+n
		})
		return ids
	}
	older := expire(3, 13*time.Hour)
	newer := expire(2, 26*time.Hour)
	var since time.Time
	for _, dl := range dls.DeadLetters {
		exp, err := time.Parse(time.RFC3339Nano, dl.ExpireTime)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(newer, dl.EventID) && (since.IsZero() || exp.Before(since)) {
			since = exp
		}
	}
	rc.setAnswer(nil)

	// Through the API: those that expired since the newer ones' expiry.
	var res struct {
		Replayed int `json:"replayed"`
	}
	api.mustCall("POST", connPath+"/deadletters:replay", map[string]any{"since": since.Format(time.RFC3339Nano)}, &res)
	if res.Replayed != len(newer) {
		t.Errorf("replay since %v: %d replayed, want %d", since, res.Replayed, len(newer))
	}
	rc.waitFor(t, "the newer events", 10*time.Second, func(got []received) bool { return len(delivered(got)) == len(newer) })
	if got := delivered(rc.requests()); !sameSet(got, newer) {
		t.Errorf("delivered %v, want the newer %v", got, newer)
	}
	api.mustCall("GET", connPath+"/deadletters", nil, &dls)
	var left []string
	for _, dl := range dls.DeadLetters {
		left = append(left, dl.EventID)
	}
	if !sameSet(left, older) {
		t.Errorf("dead letters left %v, want the older %v", left, older)
	}

	// Through the CLI: a list, --event repeated and comma-separated.
	r := mustCLI(t, api.base, "connectors", "replay", c, "--project", api.project,
		"--event", older[0], "--event", older[1]+","+older[2])
	if want := fmt.Sprintf("replayed 3 dead letters of data connector %s\n", c); r.stdout != want {
		t.Errorf("replay --event ×3 printed %q, want %q", r.stdout, want)
	}
	rc.waitFor(t, "every event", 10*time.Second, func(got []received) bool { return len(delivered(got)) == len(older)+len(newer) })
	if got := delivered(rc.requests()); !sameSet(got, append(slices.Clone(older), newer...)) {
		t.Errorf("delivered %v, want %v and %v", got, older, newer)
	}
	api.mustCall("GET", connPath+"/deadletters", nil, &dls)
	if len(dls.DeadLetters) != 0 {
		t.Errorf("dead letters after replay: %+v", dls.DeadLetters)
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestProgressBar: replay's progress bar redraws one line in place on a
// terminal, and draws nothing elsewhere (a pipe, a file, a buffer).
func TestProgressBar(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	b := &progressBar{w: &buf, label: "replaying", total: 4} // as on a terminal
	b.set(0)
	b.set(2)
	b.set(4)
	b.done()
	want := "\r\033[Kreplaying [..............................]   0%  0/4" +
		"\r\033[Kreplaying [###############...............]  50%  2/4" +
		"\r\033[Kreplaying [##############################] 100%  4/4\n"
	if buf.String() != want {
		t.Errorf("the bar drew %q, want %q", buf.String(), want)
	}
	buf.Reset()
	b = newProgressBar(&buf, "replaying", 4) // not a terminal
	b.set(2)
	b.done()
	if buf.Len() != 0 {
		t.Errorf("the bar drew %q on a buffer, want nothing", buf.String())
	}
}
