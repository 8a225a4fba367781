package main

import (
	"bufio"
	"bytes"
	"fmt"
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
