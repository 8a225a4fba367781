package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dcon/internal/signature"
)

// startNode runs a whole dcon in process, on a fresh data directory, with its
// API on a real HTTP server, without authentication (startAuthNode has it).
func startNode(t *testing.T, cfg serveConfig) *apiClient {
	t.Helper()
	cfg.NoAuth = true
	if cfg.Data == "" {
		cfg.Data = t.TempDir()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RetryInitial == 0 {
		cfg.RetryInitial = 20 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 200 * time.Millisecond
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := openNode(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		api.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	c := &apiClient{t: t, base: api.URL, http: api.Client()}
	c.project = createProject(c)
	return c
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type connectorResource struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName"`
	Type        string   `json:"type"`
	Status      string   `json:"status"`
	Events      []string `json:"events"`
	Labels      []string `json:"labels"`
	HTTPConfig  struct {
		URL                string            `json:"url"`
		SignatureSecret    string            `json:"signatureSecret"`
		SignatureSecretSet bool              `json:"signatureSecretSet"`
		Headers            map[string]string `json:"headers"`
	} `json:"httpConfig"`
}

type deviceResource struct {
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	ProductNumber string            `json:"productNumber"`
	Labels        map[string]string `json:"labels"`
}

func (d deviceResource) id() string { return d.Name[strings.LastIndexByte(d.Name, '/')+1:] }

// createProject makes a project through the API and returns its id.
func createProject(c *apiClient) string {
	c.t.Helper()
	var res struct {
		Name string `json:"name"`
	}
	c.mustCall("POST", "/v2/projects", map[string]any{"displayName": "e2e"}, &res)
	return strings.TrimPrefix(res.Name, "projects/")
}

func createConnector(c *apiClient, body map[string]any) connectorResource {
	c.t.Helper()
	var res connectorResource
	c.mustCall("POST", "/v2/projects/"+c.project+"/dataconnectors", body, &res)
	return res
}

func createDevice(c *apiClient, typ string, labels map[string]string) deviceResource {
	c.t.Helper()
	var res deviceResource
	c.mustCall("POST", "/v2/projects/"+c.project+"/devices", map[string]any{"type": typ, "labels": labels}, &res)
	return res
}

// publish publishes one event and returns its envelope as the API answered it.
func publish(c *apiClient, device deviceResource, eventType string, data any) json.RawMessage {
	c.t.Helper()
	var ev json.RawMessage
	c.mustCall("POST", "/v2/projects/"+c.project+"/devices/"+device.id()+":publish", map[string]any{eventType: data}, &ev)
	return ev
}

// TestEndToEnd runs the real server and a real TLS receiver: connectors and a
// device made through the HTTP API, events of several types published, and
// every event checked at the receiver — once each, signed, the exact body, the
// custom headers, only the chosen labels.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	api := startNode(t, serveConfig{CAFile: rc.caFile(t)})

	signed := createConnector(api, map[string]any{
		"displayName": "signed",
		"type":        "HTTP_PUSH",
		"events":      []string{"temperature", "touch"},
		"labels":      []string{"name", "floor"},
		"httpConfig": map[string]any{
			"url":             rc.URL + "/signed",
			"signatureSecret": "some-very-good-secret",
			"headers":         map[string]string{"some-header": "abc123", "Authorization": "Bearer xyz"},
		},
	})
	everything := createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/everything"}})
	if everything.Status != "ACTIVE" || everything.Events == nil || everything.HTTPConfig.Headers == nil {
		t.Fatalf("minimal connector = %+v, want ACTIVE with empty fields present", everything)
	}
	if signed.Type != "HTTP_PUSH" || (signed.HTTPConfig.SignatureSecret != "" || !signed.HTTPConfig.SignatureSecretSet) || len(signed.Events) != 2 || signed.HTTPConfig.Headers["some-header"] != "abc123" {
		t.Fatalf("created connector = %+v", signed)
	}
	createConnector(api, map[string]any{"type": "HTTP_PUSH", "status": "USER_DISABLED", "httpConfig": map[string]any{"url": rc.URL + "/disabled"}})

	dev := createDevice(api, "temperature", map[string]string{"name": "office", "room": "b12"})
	if !strings.HasPrefix(dev.id(), "emu") || len(dev.id()) != 23 || dev.Labels["virtual-sensor"] != "" {
		t.Fatalf("device = %+v", dev)
	}

	type sent struct {
		eventType string
		envelope  json.RawMessage
	}
	var events []sent
	for _, e := range []struct {
		typ  string
		data any
	}{
		{"temperature", map[string]any{"value": 21.5}},
		{"touch", map[string]any{}},
		{"batteryStatus", map[string]any{"percentage": 87}},
		{"networkStatus", map[string]any{"signalStrength": 45, "rssi": -83}},
		{"temperature", map[string]any{"value": -3.25, "updateTime": "2026-11-25T10:00:00Z"}},
	} {
		events = append(events, sent{e.typ, publish(api, dev, e.typ, e.data)})
	}

	// signed takes temperature and touch (3 events); everything takes all 5.
	rc.waitFor(t, "8 deliveries", 30*time.Second, func(got []received) bool { return len(got) >= 8 })

	byPath := map[string]map[string][]received{} // path → event id → requests
	for _, r := range rc.requests() {
		id := eventID(r.Body)
		if byPath[r.Path] == nil {
			byPath[r.Path] = map[string][]received{}
		}
		byPath[r.Path][id] = append(byPath[r.Path][id], r)
	}
	if len(byPath["/disabled"]) != 0 {
		t.Errorf("a USER_DISABLED connector received %d events", len(byPath["/disabled"]))
	}
	for _, ev := range events {
		var env struct {
			EventID string `json:"eventId"`
		}
		if err := json.Unmarshal(ev.envelope, &env); err != nil || env.EventID == "" {
			t.Fatalf("publish answered %s", ev.envelope)
		}
		wantSigned := ev.eventType == "temperature" || ev.eventType == "touch"
		for path, labels := range map[string]string{"/signed": `{"name":"office"}`, "/everything": `{}`} {
			got := byPath[path][env.EventID]
			if path == "/signed" && !wantSigned {
				if len(got) != 0 {
					t.Errorf("%s received a %s event it did not subscribe to", path, ev.eventType)
				}
				continue
			}
			if len(got) != 1 {
				t.Errorf("%s received %s event %s %d times, want once", path, ev.eventType, env.EventID, len(got))
				continue
			}
			r := got[0]
			wantBody := fmt.Sprintf(`{"event":%s,"labels":%s,"metadata":{"deviceId":%q,"projectId":%q,"deviceType":"temperature","productNumber":""}}`,
				ev.envelope, labels, dev.id(), api.project)
			if string(r.Body) != wantBody {
				t.Errorf("%s body\n got: %s\nwant: %s", path, r.Body, wantBody)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "dcon/") {
				t.Errorf("User-Agent = %q", ua)
			}
			if path == "/everything" {
				if r.Header.Get("X-Dt-Signature") != "" {
					t.Errorf("a connector without a secret sent a signature")
				}
				continue
			}
			if r.Header.Get("Some-Header") != "abc123" || r.Header.Get("Authorization") != "Bearer xyz" {
				t.Errorf("custom headers missing: %v", r.Header)
			}
			verifySignature(t, r, "some-very-good-secret")
		}
	}
}

// verifySignature checks X-Dt-Signature with dcon's verifier and with a
// standard JWT library, as a receiver in any language would.
func verifySignature(t *testing.T, r received, secret string) {
	t.Helper()
	token := r.Header.Get("X-Dt-Signature")
	if _, err := signature.VerifyDT(token, r.Body, [][]byte{[]byte(secret)}, time.Now(), time.Minute); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Errorf("golang-jwt rejects the signature: %v", err)
	}
	if _, err := signature.VerifyDT(token, r.Body, [][]byte{[]byte("wrong")}, time.Now(), time.Minute); err == nil {
		t.Errorf("signature verifies with the wrong secret")
	}
}

// TestDownEndpointDoesNotHoldUpOthers: one connector's endpoint is down; its
// events wait and are retried — once it has failed often enough, by one probe
// at a time while the rest wait parked (flow control) — while another
// connector's events keep arriving at once; when the endpoint comes back,
// everything it missed arrives.
func TestDownEndpointDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	down := newTestReceiver(t)
	down.setAnswer(func(received) int { return http.StatusServiceUnavailable })
	up := newTestReceiver(t)
	ca := writeCAs(t, down, up)
	api := startNode(t, serveConfig{CAFile: ca, RetryInitial: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	downConn := createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": down.URL}})
	createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": up.URL}})
	dev := createDevice(api, "touch", nil)

	const n = 20
	for i := range n {
		start := time.Now()
		publish(api, dev, "touch", map[string]any{})
		// The healthy endpoint has the event promptly, whatever the other does.
		up.waitFor(t, fmt.Sprintf("event %d at the healthy endpoint", i), 5*time.Second, func(got []received) bool { return len(got) == i+1 })
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("event %d took %v to reach the healthy endpoint", i, d)
		}
	}
	// The down endpoint was tried, and tried again. Not necessarily with every
	// event: once its window has shrunk, new events wait parked on disk.
	down.waitFor(t, "retries at the down endpoint", 10*time.Second, func(got []received) bool {
		seen := map[string]int{}
		for _, r := range got {
			seen[eventID(r.Body)]++
		}
		return len(seen) > 0 && len(got) > len(seen)
	})
	// 20 answers of 503 in a row: the connector probes instead of firing
	// every retry, and says so.
	var state struct {
		FlowControl struct {
			State   string `json:"state"`
			Backlog string `json:"backlog"`
		} `json:"flowControl"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		api.mustCall("GET", "/v2/"+downConn.Name, nil, &state)
		if state.FlowControl.State == "PROBING" && state.FlowControl.Backlog == "PARKED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the down connector's flow control is %+v, want PROBING with a PARKED backlog", state.FlowControl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	down.setAnswer(nil)
	down.waitFor(t, "every event delivered after recovery", 10*time.Second, func(got []received) bool {
		ok := map[string]bool{}
		for _, r := range got {
			if r.Status == http.StatusOK {
				ok[eventID(r.Body)] = true
			}
		}
		return len(ok) == n
	})
	if got := len(up.requests()); got != n {
		t.Errorf("the healthy endpoint got %d requests, want exactly %d", got, n)
	}
}

// writeCAs writes the certificates of several receivers into one PEM file.
func writeCAs(t *testing.T, rcs ...*testReceiver) string {
	t.Helper()
	var paths []string
	for _, rc := range rcs {
		paths = append(paths, rc.caFile(t))
	}
	return concatFiles(t, paths...)
}
