package httpapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testNow is the time of every test server's clock.
var testNow = time.Date(2022, 2, 10, 12, 42, 13, 313949000, time.UTC)

const project = "c14u9p094l47cdv1o3pg"

// env is a real HTTP server over in-memory fakes.
type env struct {
	url    string
	client *http.Client
	conns  *fakeConnectors
	devs   *fakeDevices
	ingest *fakeIngester
	logs   *syncBuffer
}

// newEnv starts a test server; opts may change its Server before it starts.
func newEnv(t *testing.T, opts ...func(*Server)) *env {
	t.Helper()
	e := &env{conns: newFakeConnectors(), devs: newFakeDevices(), logs: &syncBuffer{}}
	e.ingest = &fakeIngester{devices: e.devs, now: testNow}
	s := &Server{
		Connectors: e.conns,
		Devices:    e.devs,
		Ingest:     e.ingest,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        func() time.Time { return testNow },
	}
	for _, o := range opts {
		o(s)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.client = srv.Client()
	return e
}

// response is what a request answered.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request; a non-empty body goes as application/json unless the
// header pairs say otherwise.
func (e *env) do(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// want checks the status and, unless body is "", the exact body.
func (r response) want(t *testing.T, status int, body string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if body != "" && r.body != body {
		t.Errorf("body\n got %s\nwant %s", r.body, body)
	}
}

// wantError checks an error answer: its status, and the contract's body.
func (r response) wantError(t *testing.T, status int, msg string) {
	t.Helper()
	r.want(t, status, errorJSON(status, msg))
}

func errorJSON(status int, msg string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(errorBody{Error: msg, Code: status, Help: helpLink})
	return strings.TrimSuffix(buf.String(), "\n")
}

// decode decodes the body of r into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSuffix(string(want), "\n") {
		t.Errorf("%s:\n got %s\nwant %s", name, got, want)
	}
}

// idOf returns the last segment of a resource name.
func idOf(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// seedConnector stores a connector directly and returns it.
func (e *env) seedConnector(t *testing.T, id string) *dcon.Connector {
	t.Helper()
	c := &dcon.Connector{
		ProjectID:   project,
		ID:          id,
		DisplayName: "seed",
		Type:        dcon.ConnectorHTTPPush,
		Status:      dcon.StatusActive,
		Events:      []dcon.EventType{dcon.EventTouch},
		Labels:      []string{"name"},
		HTTP: dcon.HTTPConfig{
			URL:             "https://example.com/seed",
			SignatureSecret: "secret",
			Headers:         map[string]string{"x-seed": "1"},
		},
		CreateTime: testNow.Add(-time.Hour),
		UpdateTime: testNow.Add(-time.Hour),
	}
	if err := e.conns.CreateConnector(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
