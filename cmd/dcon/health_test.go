package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogsKeepSecrets runs a real node with authentication, at debug and at
// info level, through a whole flow — a connector with a signature secret and
// header values, a publish, a delivery that fails with a response body, a
// bad bearer token — and checks that at info level the log holds no secret
// and no event body (at debug level, only the receiver's error snippet may
// appear, as the attempt's error).
func TestLogsKeepSecrets(t *testing.T) {
	t.Parallel()
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			t.Parallel()
			const (
				sigSecret   = "sig-secret-4f1c9a"
				headerValue = "header-value-77e2b1"
				bearer      = "Bearer conn-token-9d3e0c"
				badBearer   = "Bearer caller-token-5a6b7c"
				labelValue  = "label-marker-c0ffee"
			)
			rc := newTestReceiver(t)
			rc.setAnswer(func(received) int { return http.StatusInternalServerError })
			var buf syncBuffer
			log := newLogger(&buf, level)
			cfg := serveConfig{Data: t.TempDir(), CAFile: rc.caFile(t), Timeout: 5 * time.Second,
				RetryInitial: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, LogLevel: level}
			n, err := openNode(context.Background(), cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(n.Handler())
			t.Cleanup(func() {
				srv.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				_ = n.Close(ctx)
			})
			creds := n.credentials.ServiceAccount
			api := &apiClient{t: t, base: srv.URL, project: n.credentials.Project,
				http: &http.Client{Transport: basicAuth{creds.KeyID, creds.Secret}}}
			createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{
				"url": rc.URL + "/hook", "signatureSecret": sigSecret,
				"headers": map[string]string{"x-custom": headerValue, "Authorization": bearer}}})
			dev := createDevice(api, "temperature", map[string]string{"name": labelValue})
			publish(api, dev, "temperature", map[string]any{"value": 21.5})
			rc.waitFor(t, "two failed attempts", 20*time.Second, func(got []received) bool { return len(got) >= 2 })
			body := rc.requests()[0].Body

			req, _ := http.NewRequest("GET", srv.URL+"/v2/projects", nil)
			req.Header.Set("Authorization", badBearer)
			if resp, err := http.DefaultTransport.RoundTrip(req); err == nil {
				resp.Body.Close()
			}

			out := buf.String()
			if level == slog.LevelDebug && !strings.Contains(out, "delivery failed") {
				t.Fatalf("the debug log does not show the failed attempts:\n%s", out)
			}
			secrets := map[string]string{
				"signature secret":        sigSecret,
				"header value":            headerValue,
				"connector bearer token":  strings.TrimPrefix(bearer, "Bearer "),
				"caller bearer token":     strings.TrimPrefix(badBearer, "Bearer "),
				"service account secret":  creds.Secret,
				"event body":              string(body),
				"event body, JSON-quoted": strings.Trim(strconvQuote(string(body)), `"`),
			}
			if level == slog.LevelInfo {
				secrets["device label (inside the body)"] = labelValue
			}
			for what, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("the %s log holds the %s %q", level, what, s)
				}
			}
		})
	}
}

// basicAuth adds HTTP Basic credentials to every request.
type basicAuth struct{ user, pass string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return http.DefaultTransport.RoundTrip(r)
}

// strconvQuote quotes s as encoding/json would inside a log line.
func strconvQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return `"` + b.String() + `"`
}

func TestHealth(t *testing.T) {
	t.Parallel()
	api := startNode(t, serveConfig{})
	for _, path := range []string{"/healthz", "/readyz"} {
		if st, body := api.call("GET", path, nil, nil); st != http.StatusOK || string(body) != "ok\n" {
			t.Errorf("GET %s = %d %q, want 200 ok", path, st, body)
		}
	}
}

// TestReadyzWhileStopped shows /readyz answers 503 with its reason once the
// node stops, while /healthz still answers.
func TestReadyzWhileStopped(t *testing.T) {
	t.Parallel()
	cfg := serveConfig{Data: t.TempDir(), NoAuth: true, Timeout: time.Second}
	n, err := openNode(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := n.Handler()
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/healthz", 200, "ok\n"},
		{"/readyz", 503, "not ready: the delivery engine is not running\n"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
		if w.Code != c.status || w.Body.String() != c.body {
			t.Errorf("GET %s = %d %q, want %d %q", c.path, w.Code, w.Body.String(), c.status, c.body)
		}
	}
}

// TestLogFormat: serve logs JSON lines when stderr is not a terminal (a
// pipe, a file), at the level asked for. (On a terminal, text: isTerminal
// looks for a character device.)
func TestLogFormat(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []io.Writer{&buf, f} {
		log := newLogger(w, slog.LevelInfo)
		log.Debug("hidden")
		log.Info("shown", "component", "test")
	}
	fromFile, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for what, out := range map[string]string{"a buffer": buf.String(), "a file": string(fromFile)} {
		var line struct {
			Level, Msg, Component string
		}
		if err := json.Unmarshal([]byte(out), &line); err != nil || line.Level != "INFO" || line.Msg != "shown" || line.Component != "test" {
			t.Errorf("the log to %s is %q (%v), want one JSON line at INFO", what, out, err)
		}
	}
	if isTerminal(f) {
		t.Error("a file is a terminal")
	}
}

// TestReadyzDuringDiskFault: while the disk fails the store's writes, /readyz
// answers 503 with the reason (and /healthz still 200); once the fault
// clears and the store has reopened, 200 again.
func TestReadyzDuringDiskFault(t *testing.T) {
	t.Parallel()
	fault := filepath.Join(t.TempDir(), "fault")
	api := startNode(t, serveConfig{TestFaultFile: fault})
	t.Cleanup(func() { _ = os.Remove(fault) }) // before the node closes
	createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": "https://127.0.0.1:1/"}})
	dev := createDevice(api, "touch", nil)
	probe := func(path string) (int, string) {
		st, body := api.call("GET", path, nil, nil)
		return st, string(body)
	}
	if err := os.WriteFile(fault, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A publish, whose delivery is a synced write, meets the fault: the store
	// fences its engine off and reopens it until the writes succeed again.
	pub := "/v2/projects/" + api.project + "/devices/" + dev.id() + ":publish"
	if st, body := api.call("POST", pub, map[string]any{"touch": map[string]any{}}, nil); st != http.StatusServiceUnavailable {
		t.Fatalf("publish during the fault: %d %s, want 503", st, body)
	}
	waitUntil(t, "/readyz to say the store is unavailable", 20*time.Second, func() bool {
		st, body := probe("/readyz")
		return st == http.StatusServiceUnavailable && body == "not ready: the store is unavailable\n"
	})
	if st, body := probe("/healthz"); st != http.StatusOK {
		t.Errorf("GET /healthz during the fault: %d %q, want 200", st, body)
	}
	if err := os.Remove(fault); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/readyz to recover", 20*time.Second, func() bool {
		st, _ := probe("/readyz")
		return st == http.StatusOK
	})
}
