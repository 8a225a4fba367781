package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMetricsEndToEnd publishes events through a real node to a real TLS
// receiver that fails some, and checks /metrics: attempts by outcome and
// class, histogram counts, queue depth, drops, ingest results.
func TestMetricsEndToEnd(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	var mu sync.Mutex
	seen := map[string]bool{} // flaky: event ids attempted once already
	rc.setAnswer(func(r received) int {
		switch r.Path {
		case "/down":
			return http.StatusServiceUnavailable
		case "/flaky":
			mu.Lock()
			defer mu.Unlock()
			id := eventID(r.Body)
			if !seen[id] {
				seen[id] = true
				return http.StatusInternalServerError
			}
		}
		return http.StatusOK
	})
	api := startNode(t, serveConfig{CAFile: rc.caFile(t), RetryInitial: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	id := func(c connectorResource) string { return c.Name[strings.LastIndexByte(c.Name, '/')+1:] }
	ok := id(createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/ok"}}))
	flaky := id(createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/flaky"}}))
	// down answers 503 until the end, with long retries: its queue stays.
	down := createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/down"}})
	dev := createDevice(api, "touch", nil)

	const n = 4
	for range n {
		publish(api, dev, "touch", map[string]any{})
	}
	if st, _ := api.call("POST", "/v2/projects/"+api.project+"/devices/emunotadevice0000000000:publish", map[string]any{"touch": map[string]any{}}, nil); st != http.StatusNotFound {
		t.Fatalf("publish to a missing device: %d", st)
	}

	series := func(name, connector string, labels ...string) string {
		ls := []string{`connector="` + connector + `"`}
		ls = append(ls, labels...)
		return name + "{" + strings.Join(ls, ",") + "}"
	}
	want := map[string]float64{
		series("dcon_delivery_attempts_total", ok, `error_class=""`, `outcome="delivered"`):            n,
		series("dcon_delivery_attempts_total", ok, `error_class="http_5xx"`, `outcome="failed"`):       0,
		series("dcon_delivery_attempts_total", flaky, `error_class=""`, `outcome="delivered"`):         n,
		series("dcon_delivery_attempts_total", flaky, `error_class="http_5xx"`, `outcome="failed"`):    n,
		series("dcon_delivery_retries_scheduled_total", ok):                                            0,
		series("dcon_delivery_retries_scheduled_total", flaky):                                         n,
		series("dcon_delivery_attempt_duration_seconds_count", ok):                                     n,
		series("dcon_delivery_attempt_duration_seconds_count", flaky):                                  2 * n,
		series("dcon_delivery_end_to_end_seconds_count", ok):                                           n,
		series("dcon_delivery_end_to_end_seconds_count", flaky):                                        n,
		series("dcon_queue_depth", ok):                                                                 0,
		series("dcon_queue_depth", flaky):                                                              0,
		series("dcon_queue_depth", id(down)):                                                           n,
		`dcon_ingest_events_total{result="ok"}`:                                                        n,
		`dcon_ingest_events_total{result="not_found"}`:                                                 1,
		`dcon_ingest_request_duration_seconds_count{op="publish"}`:                                     n + 1,
		series("dcon_delivery_attempts_total", id(down), `error_class=""`, `outcome="delivered"`):      0,
		series("dcon_delivery_attempts_total", id(down), `error_class="http_4xx"`, `outcome="failed"`): 0,
	}
	got := waitForMetrics(t, api, want, 20*time.Second)
	if got[series("dcon_queue_oldest_event_age_seconds", id(down))] <= 0 {
		t.Errorf("oldest event age of the down connector = %v, want > 0", got[series("dcon_queue_oldest_event_age_seconds", id(down))])
	}
	if got["dcon_store_commit_duration_seconds_count"] < n {
		t.Errorf("synced commits = %v, want at least %d", got["dcon_store_commit_duration_seconds_count"], n)
	}
	if got["go_goroutines"] <= 0 {
		t.Error("no go_goroutines: the runtime collector is missing")
	}
	checkLabelsBounded(t, got)

	// Disabling the down connector drops its queue, and says so.
	api.mustCall("PATCH", "/v2/projects/"+api.project+"/dataconnectors/"+id(down)+"?updateMask=status", map[string]any{"status": "USER_DISABLED"}, nil)
	waitForMetrics(t, api, map[string]float64{
		series("dcon_queue_dropped_total", id(down)): n,
		series("dcon_queue_depth", id(down)):         0,
	}, 10*time.Second)

	// Deleting it removes its series at the next scrape.
	api.mustCall("DELETE", "/v2/projects/"+api.project+"/dataconnectors/"+id(down), nil, nil)
	scrape(t, api) // the scrape that sees it gone
	for k := range scrape(t, api) {
		if strings.Contains(k, id(down)) {
			t.Errorf("deleted connector still has %s", k)
		}
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		if st, body := api.call("GET", path, nil, nil); st != http.StatusOK || string(body) != "ok\n" {
			t.Errorf("GET %s = %d %q, want 200 ok", path, st, body)
		}
	}
}

// TestMetricsAddr: with --metrics-addr and --metrics-per-connector=false, a
// node with authentication serves /metrics, /healthz and /readyz on a
// listener of its own, without authentication, and nothing else there; the
// API listener no longer serves /metrics, even to an owner; and no series
// has a connector label.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	registerMetricsFlags(fs, &cfg)
	if err := fs.Parse([]string{"--metrics-addr", "127.0.0.1:0", "--metrics-per-connector=false"}); err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsAddr != "127.0.0.1:0" || !cfg.MetricsNoPerConnector {
		t.Fatalf("flags parsed into %q, no per-connector %v", cfg.MetricsAddr, cfg.MetricsNoPerConnector)
	}
	rc := newTestReceiver(t)
	cfg.CAFile = rc.caFile(t)
	a := startAuthNode(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := a.node.serveMetricsOn(ln, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { stop(context.Background()) })
	scraper := &apiClient{t: t, base: "http://" + ln.Addr().String(), http: &http.Client{}} // no credentials

	owner := a.client(t, basic(a.creds.ServiceAccount.KeyID, a.creds.ServiceAccount.Secret))
	owner.project = a.creds.Project
	createConnector(owner, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/in"}})
	publish(owner, createDevice(owner, "touch", nil), "touch", map[string]any{})

	got := waitForMetrics(t, scraper, map[string]float64{
		`dcon_delivery_attempts_total{error_class="",outcome="delivered"}`: 1,
		`dcon_delivery_end_to_end_seconds_count`:                           1,
		`dcon_queue_depth`:                                                 0,
		`dcon_ingest_events_total{result="ok"}`:                            1,
	}, 20*time.Second)
	for series := range got {
		if strings.Contains(series, "connector=") {
			t.Errorf("--metrics-per-connector=false, yet %s", series)
		}
	}
	checkLabelsBounded(t, got)
	for _, c := range []struct {
		who    *apiClient
		path   string
		status int
	}{
		{scraper, "/healthz", http.StatusOK},
		{scraper, "/readyz", http.StatusOK},
		{scraper, "/v2/projects", http.StatusNotFound},          // the API is not on the metrics listener
		{scraper, "/dashboard/", http.StatusNotFound},           // nor the dashboard
		{owner, "/metrics", http.StatusNotFound},                // and /metrics is not on the API listener
		{owner, "/v2/projects/" + owner.project, http.StatusOK}, // which still serves the API
	} {
		if st, body := c.who.call("GET", c.path, nil, nil); st != c.status {
			t.Errorf("GET %s%s = %d %s, want %d", c.who.base, c.path, st, body, c.status)
		}
	}
	// An address in use is an error that names the flag.
	if _, err := a.node.serveMetrics(serveConfig{MetricsAddr: ln.Addr().String()}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("serveMetrics on an address in use: %v, want an error naming --metrics-addr", err)
	}
}

// boundedLabels are the only label names dcon's series have: each a bounded
// set of values (connector ids at most; never event or device ids).
var boundedLabels = map[string]bool{"connector": true, "outcome": true, "error_class": true, "result": true, "op": true, "le": true}

// checkLabelsBounded fails the test if a dcon_ series has another label.
func checkLabelsBounded(t *testing.T, scraped map[string]float64) {
	t.Helper()
	for series := range scraped {
		name, labels, ok := strings.Cut(series, "{")
		if !ok || !strings.HasPrefix(name, "dcon_") {
			continue
		}
		for pair := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
			if label, _, _ := strings.Cut(pair, "="); !boundedLabels[label] {
				t.Errorf("series %s has the label %q: labels must be bounded", series, label)
			}
		}
	}
}

// waitForMetrics scrapes until every series in want has its value, then
// checks once more that none went past it, and returns the last scrape.
func waitForMetrics(t *testing.T, api *apiClient, want map[string]float64, timeout time.Duration) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := scrape(t, api)
		var diff []string
		for k, v := range want {
			if got[k] != v {
				diff = append(diff, fmt.Sprintf("%s = %v, want %v", k, got[k], v))
			}
		}
		if len(diff) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after %v:\n%s", timeout, strings.Join(diff, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape reads /metrics into series → value (series as exposed:
// name{labels}, labels sorted).
func scrape(t *testing.T, api *apiClient) map[string]float64 {
	t.Helper()
	st, body := api.call("GET", "/metrics", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", st, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}
