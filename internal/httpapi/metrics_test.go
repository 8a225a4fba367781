package httpapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"dcon"
	"dcon/internal/stats"
)

// fakeMetrics answers the same figures, or err, for every connector, and
// remembers the connector it was asked about.
type fakeMetrics struct {
	m   dcon.ConnectorMetrics
	err error
	got chan string
}

func (f *fakeMetrics) ConnectorMetrics(_ context.Context, connectorID string) (dcon.ConnectorMetrics, error) {
	if f.got != nil {
		f.got <- connectorID
	}
	return f.m, f.err
}

func withMetrics(m MetricsReader) func(*Server) { return func(s *Server) { s.Metrics = m } }

func TestConnectorMetrics(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	path := "/v2/projects/" + project + "/dataconnectors/" + id + ":metrics"
	f := &fakeMetrics{m: dcon.ConnectorMetrics{SuccessCount: 9, ErrorCount: 0, Latency99p: 411 * time.Millisecond}, got: make(chan string, 1)}
	e := newEnv(t, withMetrics(f))
	e.seedConnector(t, id)

	res := e.do(t, "GET", path, "")
	res.want(t, http.StatusOK, "")
	golden(t, "connector_metrics.golden.json", res.body)
	if got := <-f.got; got != id {
		t.Errorf("asked for the metrics of %q, want %q", got, id)
	}
}

func TestConnectorMetricsAnswers(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	path := "/v2/projects/" + project + "/dataconnectors/" + id + ":metrics"
	tests := []struct {
		name    string
		metrics MetricsReader // nil: none
		status  int
		body    string
	}{
		{
			name:   "no metrics reader answers zeros",
			status: http.StatusOK,
			body:   `{"metrics":{"successCount":0,"errorCount":0,"latency99p":"0.000s"}}`,
		},
		{
			name:    "no data answers zeros",
			metrics: &fakeMetrics{},
			status:  http.StatusOK,
			body:    `{"metrics":{"successCount":0,"errorCount":0,"latency99p":"0.000s"}}`,
		},
		{
			name:    "large counts and a slow p99",
			metrics: &fakeMetrics{m: dcon.ConnectorMetrics{SuccessCount: 1 << 40, ErrorCount: 12345, Latency99p: 9*time.Second + 536*time.Millisecond + 700*time.Microsecond}},
			status:  http.StatusOK,
			body:    `{"metrics":{"successCount":1099511627776,"errorCount":12345,"latency99p":"9.537s"}}`,
		},
		{
			name:    "store unavailable",
			metrics: &fakeMetrics{err: dcon.Errorf(dcon.EUNAVAILABLE, "the store is unavailable")},
			status:  http.StatusServiceUnavailable,
			body:    errorJSON(http.StatusServiceUnavailable, "the store is unavailable"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []func(*Server)
			if tt.metrics != nil {
				opts = append(opts, withMetrics(tt.metrics))
			}
			e := newEnv(t, opts...)
			e.seedConnector(t, id)
			e.do(t, "GET", path, "").want(t, tt.status, tt.body)
		})
	}
}

func TestConnectorMetricsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withMetrics(&fakeMetrics{}))
	e.seedConnector(t, "c16pegipidie7lltrefg")
	tests := []struct{ name, path, msg string }{
		{"unknown connector", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltreff:metrics", "data connector not found"},
		{"another project's connector", "/v2/projects/c0md3pm0p7bet3vico8g/dataconnectors/c16pegipidie7lltrefg:metrics", "data connector not found"},
		{"malformed id", "/v2/projects/" + project + "/dataconnectors/nope:metrics", `data connector "nope" not found`},
		{"unknown verb", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg:metricz", `unknown custom method ":metricz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e.do(t, "GET", tt.path, "").wantError(t, http.StatusNotFound, tt.msg)
		})
	}
}

// TestConnectorMetricsFromTracker reads the figures of the real tracker.
func TestConnectorMetricsFromTracker(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	tr, err := stats.New(stats.Config{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		o := &dcon.Outcome{ConnectorID: id, Attempt: 1, StatusCode: 200,
			Latency: 411 * time.Millisecond, At: testNow.Add(-time.Duration(i) * time.Minute)}
		if i%10 == 0 {
			o.StatusCode, o.Err = 500, errors.New("HTTP 500")
		}
		tr.Observe(o)
	}
	e := newEnv(t, withMetrics(tr))
	e.seedConnector(t, id)
	// 411 ms is in the bin (100 µs × 1.25^37, 100 µs × 1.25^38] = (385.2 ms, 481.5 ms].
	e.do(t, "GET", "/v2/projects/"+project+"/dataconnectors/"+id+":metrics", "").
		want(t, http.StatusOK, `{"metrics":{"successCount":90,"errorCount":10,"latency99p":"0.481s"}}`)
}

func TestFormatSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.000s"},
		{100 * time.Microsecond, "0.000s"},
		{411 * time.Millisecond, "0.411s"},
		{481_482 * time.Microsecond, "0.481s"},
		{1500 * time.Millisecond, "1.500s"},
		{127 * time.Second, "127.000s"},
	}
	for _, tt := range tests {
		if got := formatSeconds(tt.d); got != tt.want {
			t.Errorf("formatSeconds(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
