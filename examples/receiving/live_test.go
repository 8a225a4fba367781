package receiving_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"dcon/internal/signature"
)

// moduleRoot is the directory of go.mod, found upwards from the test's
// working directory (the package directory).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// liveDcon is a running `dcon serve --dev` binary.
type liveDcon struct {
	base   string // http://127.0.0.1:port, also its --issuer
	out    *syncBuffer
	client *http.Client
}

// startLiveDcon builds dcon and starts `dcon serve --dev` on a loopback port
// picked free beforehand, so that its --issuer is the URL where receivers
// really find its keys (the default, http://<addr>, would be
// http://127.0.0.1:0 with --addr 127.0.0.1:0). Retries are fast, and the log
// is at debug level, where every failed attempt is logged with its status.
func startLiveDcon(t *testing.T) *liveDcon {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dcon")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dcon")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dcon: %v\n%s", err, out)
	}
	// The port is free when picked, but something may take it before dcon
	// listens: try a few ports.
retry:
	for try := 1; ; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		base := "http://" + addr
		cmd := exec.Command(bin, "serve", "--dev", "--addr", addr, "--issuer", base, "--data", t.TempDir(),
			"--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "debug")
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", cmd, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "listening on "+base+" ") {
			select {
			case <-exited:
				if try < 3 && strings.Contains(out.String(), "address already in use") {
					t.Logf("port %s was taken; trying another", addr)
					continue retry
				}
				t.Fatalf("dcon exited before listening:\n%s", out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("dcon did not listen on %s within 30s:\n%s", addr, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return &liveDcon{base: base, out: out, client: &http.Client{Timeout: 10 * time.Second}}
	}
}

// call sends a JSON request to the API and decodes the answer, which must
// have status 200, into v (unless v is nil).
func (d *liveDcon) call(t *testing.T, method, path string, body, v any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, answer)
	}
	if v != nil {
		if err := json.Unmarshal(answer, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, answer)
		}
	}
}

// lastSegment is the id at the end of a resource name.
func lastSegment(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// createProject creates a project and returns its id.
func (d *liveDcon) createProject(t *testing.T, displayName string) string {
	t.Helper()
	var p struct{ Name string }
	d.call(t, http.MethodPost, "/v2/projects", map[string]any{"displayName": displayName}, &p)
	return lastSegment(p.Name)
}

// createConnector creates a connector that sends to url with every signature
// the examples verify, and returns its id.
func (d *liveDcon) createConnector(t *testing.T, project, url, secret, whsec string) string {
	t.Helper()
	var c struct {
		Name       string
		HTTPConfig struct {
			AsymmetricSignature    bool
			StandardWebhookSecrets []string
		}
	}
	d.call(t, http.MethodPost, "/v2/projects/"+project+"/dataconnectors", map[string]any{
		"type":   "HTTP_PUSH",
		"labels": []string{"name"},
		"httpConfig": map[string]any{
			"url":                    url,
			"signatureSecret":        secret,
			"standardWebhookSecrets": []string{whsec},
			"asymmetricSignature":    true,
		},
	}, &c)
	if !c.HTTPConfig.AsymmetricSignature || len(c.HTTPConfig.StandardWebhookSecrets) != 1 {
		t.Fatalf("the connector does not sign with all three schemes: %+v", c)
	}
	return lastSegment(c.Name)
}

// createDevice creates an emulated device and returns its id.
func (d *liveDcon) createDevice(t *testing.T, project, typ string) string {
	t.Helper()
	var dev struct{ Name string }
	d.call(t, http.MethodPost, "/v2/projects/"+project+"/devices",
		map[string]any{"type": typ, "labels": map[string]string{"name": "live"}}, &dev)
	return lastSegment(dev.Name)
}

// publish publishes one event and returns its id.
func (d *liveDcon) publish(t *testing.T, project, device, typ string, data any) string {
	t.Helper()
	var ev struct{ EventID, EventType string }
	d.call(t, http.MethodPost, "/v2/projects/"+project+"/devices/"+device+":publish", map[string]any{typ: data}, &ev)
	if ev.EventID == "" || ev.EventType != typ {
		t.Fatalf("publish %s: answered %+v", typ, ev)
	}
	return ev.EventID
}

type liveMetrics struct{ SuccessCount, ErrorCount int64 }

func (d *liveDcon) metrics(t *testing.T, project, connector string) liveMetrics {
	t.Helper()
	var m struct{ Metrics liveMetrics }
	d.call(t, http.MethodGet, "/v2/projects/"+project+"/dataconnectors/"+connector+":metrics", nil, &m)
	return m.Metrics
}

// waitMetrics polls the connector's metrics until done says they are
// complete, for at most 30 seconds, and returns the last ones read.
func (d *liveDcon) waitMetrics(t *testing.T, project, connector string, done func(liveMetrics) bool) liveMetrics {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := d.metrics(t, project, connector)
		if done(m) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failedStatuses are the statuses of the failed attempts to a connector, as
// dcon logs them (JSON lines, at debug level).
func (d *liveDcon) failedStatuses(connector string) []int {
	var statuses []int
	lines := bufio.NewScanner(strings.NewReader(d.out.String()))
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var l struct {
			Msg       string
			Connector string
			Status    int
		}
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "delivery failed" && l.Connector == connector {
			statuses = append(statuses, l.Status)
		}
	}
	return statuses
}

// TestExamplesLive runs each example receiver of docs/receiving.md against a
// real `dcon serve --dev`: a connector signing with X-Dt-Signature,
// DT-Asymmetric-Signature (keys by OIDC discovery from dcon itself) and
// Standard Webhooks delivers events of several types, and the example must
// accept each one, with dcon counting only successes. A connector whose
// secret is not the example's must be refused with 401, and dcon must count
// the errors.
func TestExamplesLive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the dcon binary")
	}
	t.Parallel()
	d := startLiveDcon(t)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			whsec := signature.NewWhsec()
			url, out := start(t, ex.command(t, []string{
				"--port", "0", "--secret", newSecret, "--issuer", d.base, "--standard-secret", whsec,
			}))
			defer func() {
				if t.Failed() {
					t.Logf("output of the %s example:\n%s", ex.name, out.String())
				}
			}()

			// Every event of a temperature sensor, and a labelsChanged.
			project := d.createProject(t, "live-"+ex.name)
			conn := d.createConnector(t, project, url+"/", newSecret, whsec)
			dev := d.createDevice(t, project, "temperature")
			events := []struct {
				typ  string
				data any
				id   string
			}{
				{typ: "temperature", data: map[string]any{"value": 21.5}},
				{typ: "probeWireStatus", data: map[string]any{"state": "TWO_WIRE"}},
				{typ: "touch", data: map[string]any{}},
				{typ: "batteryStatus", data: map[string]any{"percentage": 80}},
				{typ: "networkStatus", data: map[string]any{"signalStrength": 50, "rssi": -70}},
			}
			for i := range events {
				events[i].id = d.publish(t, project, dev, events[i].typ, events[i].data)
			}
			d.call(t, http.MethodPatch, "/v2/projects/"+project+"/devices/"+dev,
				map[string]any{"labels": map[string]string{"name": "moved"}}, nil)
			want := len(events) + 1

			for _, ev := range events {
				waitFor(t, out, "event "+ev.id+" "+ev.typ+"\n")
			}
			labelsChanged := regexp.MustCompile(`(?m)^event \S+ labelsChanged$`)
			for deadline := time.Now().Add(15 * time.Second); !labelsChanged.MatchString(out.String()); {
				if time.Now().After(deadline) {
					t.Fatal("the example never handled the labelsChanged event")
				}
				time.Sleep(10 * time.Millisecond)
			}
			m := d.waitMetrics(t, project, conn, func(m liveMetrics) bool { return m.SuccessCount >= int64(want) || m.ErrorCount > 0 })
			if m.SuccessCount != int64(want) || m.ErrorCount != 0 {
				t.Errorf("metrics of the connector: %+v, want %d successes and no error (failed attempts: %v)",
					m, want, d.failedStatuses(conn))
			}
			handled := regexp.MustCompile(`(?m)^event `).FindAllString(out.String(), -1)
			if len(handled) != want || strings.Contains(out.String(), "refused") || strings.Contains(out.String(), "duplicate") {
				t.Errorf("the example handled %d events, want %d once each and nothing refused", len(handled), want)
			}

			// A connector with another secret: every attempt is refused.
			badProject := d.createProject(t, "live-bad-"+ex.name)
			bad := d.createConnector(t, badProject, url+"/", "not-"+newSecret, whsec)
			badID := d.publish(t, badProject, d.createDevice(t, badProject, "touch"), "touch", map[string]any{})
			m = d.waitMetrics(t, badProject, bad, func(m liveMetrics) bool { return m.ErrorCount >= 2 || m.SuccessCount > 0 })
			if m.ErrorCount < 2 || m.SuccessCount != 0 {
				t.Errorf("metrics of the connector with a wrong secret: %+v, want errors (at least 2: the first attempt and a retry) and no success", m)
			}
			var statuses []int
			for deadline := time.Now().Add(15 * time.Second); len(statuses) < 2 && time.Now().Before(deadline); {
				statuses = d.failedStatuses(bad)
				time.Sleep(10 * time.Millisecond)
			}
			if len(statuses) < 2 {
				t.Errorf("dcon logged %d failed attempts of the connector with a wrong secret, want at least 2", len(statuses))
			}
			for _, s := range statuses {
				if s != http.StatusUnauthorized {
					t.Errorf("the example answered %d to a wrong secret, want 401 (all statuses: %v)", s, statuses)
					break
				}
			}
			if ex.name != "go" { // verify.py and verify.mjs print why they refuse
				waitFor(t, out, "refused: X-Dt-Signature")
			}
			if strings.Contains(out.String(), badID) {
				t.Errorf("the example handled event %s, signed with a wrong secret", badID)
			}
			// Stop the retries.
			d.call(t, http.MethodDelete, "/v2/projects/"+badProject+"/dataconnectors/"+bad, nil, nil)
		})
	}
}
