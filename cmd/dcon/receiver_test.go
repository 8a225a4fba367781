package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// received is one request a test receiver got.
type received struct {
	Path   string
	Header http.Header
	Body   []byte
	Status int // what the receiver answered
}

// testReceiver is a real TLS endpoint that records what it receives and answers
// with the status its answer function picks (200 when nil).
type testReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(r received) int
	notify chan struct{}
}

func newTestReceiver(t *testing.T) *testReceiver {
	t.Helper()
	rc := &testReceiver{notify: make(chan struct{}, 1)}
	rc.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got := received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: http.StatusOK}
		rc.mu.Lock()
		if rc.answer != nil {
			got.Status = rc.answer(got)
		}
		rc.got = append(rc.got, got)
		rc.mu.Unlock()
		w.WriteHeader(got.Status)
		select {
		case rc.notify <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *testReceiver) setAnswer(f func(received) int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *testReceiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// caFile writes the receiver's certificate to a PEM file for --ca-file.
func (rc *testReceiver) caFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "receiver-ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor waits until cond holds over the received requests, re-checking on
// every request, and fails the test after timeout.
func (rc *testReceiver) waitFor(t *testing.T, what string, timeout time.Duration, cond func([]received) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond) // also re-check without new requests
	defer tick.Stop()
	for !cond(rc.requests()) {
		select {
		case <-rc.notify:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// eventID returns the eventId of a delivered body, "" if it has none.
func eventID(body []byte) string {
	var b struct {
		Event struct {
			EventID string `json:"eventId"`
		} `json:"event"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return b.Event.EventID
}

// apiClient calls a dcon API.
type apiClient struct {
	t    *testing.T
	base string
	http *http.Client
	// project is the id of the project the helpers work in.
	project string
}

// call sends a JSON request and decodes a 200 answer into out; it returns the
// status and the raw body.
func (c *apiClient) call(method, path string, in, out any) (int, []byte) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// mustCall is call that fails the test unless the answer is 200.
func (c *apiClient) mustCall(method, path string, in, out any) []byte {
	c.t.Helper()
	status, raw := c.call(method, path, in, out)
	if status != http.StatusOK {
		c.t.Fatalf("%s %s: status %d: %s", method, path, status, raw)
	}
	return raw
}

// concatFiles writes the contents of several files into a new one.
func concatFiles(t *testing.T, paths ...string) string {
	t.Helper()
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	out := filepath.Join(t.TempDir(), "all.pem")
	if err := os.WriteFile(out, all, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}
