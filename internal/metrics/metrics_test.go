package metrics

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"dcon"
	"dcon/internal/memqueue"
	"dcon/internal/webhook"
)

var t0 = time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)

// connectors is a fixed ConnectorLister.
type connectors []string

func (cs connectors) AllConnectors(context.Context) ([]*dcon.Connector, error) {
	out := make([]*dcon.Connector, len(cs))
	for i, id := range cs {
		out[i] = &dcon.Connector{ID: id}
	}
	return out, nil
}

// flow is a fixed FlowReader.
type flow struct{}

func (flow) Flow(string) dcon.FlowState { return dcon.FlowState{Window: 8, InFlight: 3} }

func newMetrics(t *testing.T, cfg Config) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registry, cfg.NoRuntime = reg, true
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestObserve(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t, Config{PerConnector: true})
	outcomes := []dcon.Outcome{
		{ConnectorID: "c1", EventTime: t0, At: t0.Add(2 * time.Second), Latency: 30 * time.Millisecond, StatusCode: 200},
		{ConnectorID: "c1", EventTime: t0, At: t0.Add(time.Second), Latency: time.Second, StatusCode: 503, Err: errors.New("HTTP 503")},
		{ConnectorID: "c1", EventTime: t0, At: t0, StatusCode: 429, Err: errors.New("HTTP 429")},
		{ConnectorID: "c2", EventTime: t0, At: t0, Err: fmt.Errorf("x: %w", webhook.ErrTimeout)},
		{ConnectorID: "c2", EventTime: t0, At: t0.Add(dcon.MaxEventAge), Expired: true, LastError: "HTTP 503"},
	}
	for i := range outcomes {
		m.Observe(&outcomes[i])
	}
	m.Dropped("c2", 5)
	m.Dropped("c2", 0)
	want := `
# HELP dcon_delivery_expired_total Deliveries that expired (12 hours old) and became dead letters.
# TYPE dcon_delivery_expired_total counter
dcon_delivery_expired_total{connector="c1"} 0
dcon_delivery_expired_total{connector="c2"} 1
# HELP dcon_delivery_retries_scheduled_total Retries scheduled after failed attempts.
# TYPE dcon_delivery_retries_scheduled_total counter
dcon_delivery_retries_scheduled_total{connector="c1"} 2
dcon_delivery_retries_scheduled_total{connector="c2"} 1
# HELP dcon_queue_dropped_total Queued deliveries dropped because their connector was disabled or deleted.
# TYPE dcon_queue_dropped_total counter
dcon_queue_dropped_total{connector="c1"} 0
dcon_queue_dropped_total{connector="c2"} 5
`
	// Every class is exported, zero or not: 2+8 series per connector.
	got, err := testutil.GatherAndCount(reg, "dcon_delivery_attempts_total")
	if err != nil || got != 2*(2+numErrorClasses) {
		t.Errorf("attempt series = %d, %v; want %d", got, err, 2*(2+numErrorClasses))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dcon_delivery_expired_total",
		"dcon_delivery_retries_scheduled_total", "dcon_queue_dropped_total"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		outcome, class string
		want           float64
	}{
		{OutcomeDelivered, "", 1}, {OutcomeFailed, ClassHTTP5xx, 1}, {OutcomeFailed, ClassHTTP429, 1},
		{OutcomeFailed, ClassHTTP4xx, 0},
	} {
		if got := testutil.ToFloat64(m.attempts.WithLabelValues("c1", c.outcome, c.class)); got != c.want {
			t.Errorf("attempts{c1,%s,%s} = %v, want %v", c.outcome, c.class, got, c.want)
		}
	}
	if n := histogramCount(t, reg, "dcon_delivery_end_to_end_seconds", "c1"); n != 1 {
		t.Errorf("end-to-end count of c1 = %d, want 1", n)
	}
	if n := histogramCount(t, reg, "dcon_delivery_attempt_duration_seconds", "c1"); n != 3 {
		t.Errorf("attempt duration count of c1 = %d, want 3", n)
	}
}

// histogramCount returns the sample count of a histogram's series of a
// connector ("" for the one without a connector label).
func histogramCount(t *testing.T, reg *prometheus.Registry, name, connector string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got := ""
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "connector" {
					got = lp.GetValue()
				}
			}
			if got == connector {
				return mt.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		err    error
		want   string
	}{
		{404, errors.New("HTTP 404"), ClassHTTP4xx},
		{429, errors.New("HTTP 429"), ClassHTTP429},
		{500, errors.New("HTTP 500"), ClassHTTP5xx},
		{302, errors.New("HTTP 302"), ClassOther},
		{0, fmt.Errorf("t: %w", webhook.ErrTimeout), ClassTimeout},
		{0, fmt.Errorf("r: %w", webhook.ErrForbiddenDestination), ClassRefused},
		{0, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ClassConnection},
		{0, &net.DNSError{Name: "x", IsNotFound: true}, ClassConnection},
		{0, x509.UnknownAuthorityError{}, ClassTLS},
		{0, errors.New("something"), ClassOther},
	}
	for _, tt := range tests {
		o := &dcon.Outcome{StatusCode: tt.status, Err: tt.err}
		if got := errorClasses[classify(o)]; got != tt.want {
			t.Errorf("classify(%d, %v) = %s, want %s", tt.status, tt.err, got, tt.want)
		}
	}
}

// TestObserveDoesNotAllocate is not parallel: AllocsPerRun cannot be.
func TestObserveDoesNotAllocate(t *testing.T) {
	for _, per := range []bool{true, false} {
		m, _ := newMetrics(t, Config{PerConnector: per})
		ok := &dcon.Outcome{ConnectorID: "c1", EventTime: t0, At: t0.Add(time.Second), Latency: time.Millisecond, StatusCode: 200}
		failed := &dcon.Outcome{ConnectorID: "c1", EventTime: t0, At: t0, StatusCode: 503, Err: errors.New("HTTP 503")}
		m.Observe(ok) // makes c1's metrics
		if n := testing.AllocsPerRun(1000, func() { m.Observe(ok); m.Observe(failed) }); n != 0 {
			t.Errorf("PerConnector=%v: Observe allocates %v times per call", per, n)
		}
	}
}

func TestQueueCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := memqueue.New()
	d := func(conn, id string, age time.Duration) dcon.Delivery {
		return dcon.Delivery{ConnectorID: conn, EventID: id, EventTime: t0.Add(-age), Due: t0}
	}
	if err := q.Enqueue(ctx, []dcon.Delivery{d("c1", "a", time.Minute), d("c1", "b", time.Second), d("c2", "a", 90*time.Second)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"per connector", Config{PerConnector: true, Flow: flow{}}, `
# HELP dcon_queue_depth Deliveries queued for the connector, in flight or waiting for a retry.
# TYPE dcon_queue_depth gauge
dcon_queue_depth{connector="c1"} 2
dcon_queue_depth{connector="c2"} 1
dcon_queue_depth{connector="c3"} 0
# HELP dcon_queue_oldest_event_age_seconds Age of the oldest event queued for the connector; 0 when its queue is empty.
# TYPE dcon_queue_oldest_event_age_seconds gauge
dcon_queue_oldest_event_age_seconds{connector="c1"} 60
dcon_queue_oldest_event_age_seconds{connector="c2"} 90
dcon_queue_oldest_event_age_seconds{connector="c3"} 0
# HELP dcon_delivery_flow_window The connector's flow-control window: how many attempts it may have in flight.
# TYPE dcon_delivery_flow_window gauge
dcon_delivery_flow_window{connector="c1"} 8
dcon_delivery_flow_window{connector="c2"} 8
dcon_delivery_flow_window{connector="c3"} 8
`},
		{"fleet", Config{}, `
# HELP dcon_queue_depth Deliveries queued for the connector, in flight or waiting for a retry.
# TYPE dcon_queue_depth gauge
dcon_queue_depth 3
# HELP dcon_queue_oldest_event_age_seconds Age of the oldest event queued for the connector; 0 when its queue is empty.
# TYPE dcon_queue_oldest_event_age_seconds gauge
dcon_queue_oldest_event_age_seconds 90
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Queue, tt.cfg.Connectors = q, connectors{"c1", "c2", "c3"}
			_, reg := newMetrics(t, tt.cfg)
			names := []string{"dcon_queue_depth", "dcon_queue_oldest_event_age_seconds"}
			if tt.cfg.Flow != nil {
				names = append(names, "dcon_delivery_flow_window")
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want), names...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDeletedConnectorForgotten shows a deleted connector's series go at the
// next scrape.
func TestDeletedConnectorForgotten(t *testing.T) {
	t.Parallel()
	live := connectors{"c1", "c2"}
	cfg := Config{PerConnector: true, Queue: memqueue.New()}
	lister := &switchable{cs: live}
	cfg.Connectors = lister
	m, reg := newMetrics(t, cfg)
	m.Observe(&dcon.Outcome{ConnectorID: "c1", StatusCode: 200})
	m.Observe(&dcon.Outcome{ConnectorID: "c2", StatusCode: 200})
	if n, _ := testutil.GatherAndCount(reg, "dcon_delivery_retries_scheduled_total"); n != 2 {
		t.Fatalf("series before = %d, want 2", n)
	}
	lister.cs = connectors{"c1"}
	if _, err := reg.Gather(); err != nil { // the scrape that sees c2 gone
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(reg, "dcon_delivery_retries_scheduled_total"); n != 1 {
		t.Errorf("series after = %d, want 1", n)
	}
}

type switchable struct{ cs connectors }

func (s *switchable) AllConnectors(ctx context.Context) ([]*dcon.Connector, error) {
	return s.cs.AllConnectors(ctx)
}

// fakeIngester answers every call with err.
type fakeIngester struct{ err error }

func (f fakeIngester) Publish(context.Context, string, string, dcon.EventType, json.RawMessage) (*dcon.Event, error) {
	return nil, f.err
}
func (f fakeIngester) SetDeviceLabels(context.Context, string, string, map[string]string) (*dcon.Device, error) {
	return nil, f.err
}
func (f fakeIngester) PublishBatch(_ context.Context, _ string, reqs []dcon.PublishRequest) []dcon.PublishResult {
	rs := make([]dcon.PublishResult, len(reqs))
	for i := range rs {
		if i%2 == 1 {
			rs[i].Err = dcon.Errorf(dcon.EINVALID, "bad")
		}
	}
	return rs
}
func (f fakeIngester) Sync(context.Context, string, string) (int, error) { return 0, f.err }

func TestIngest(t *testing.T) {
	t.Parallel()
	m, reg := newMetrics(t, Config{})
	ctx := context.Background()
	ok := m.Ingest(fakeIngester{})
	notFound := m.Ingest(fakeIngester{err: dcon.Errorf(dcon.ENOTFOUND, "no device")})
	broken := m.Ingest(fakeIngester{err: errors.New("boom")})
	ok.Publish(ctx, "p", "d", dcon.EventTemperature, nil)
	notFound.Publish(ctx, "p", "d", dcon.EventTemperature, nil)
	broken.Publish(ctx, "p", "d", dcon.EventTemperature, nil)
	ok.PublishBatch(ctx, "p", make([]dcon.PublishRequest, 3))
	ok.Sync(ctx, "p", "c")
	for result, want := range map[string]float64{"ok": 3, "not_found": 1, "internal": 1, "invalid": 1, "unavailable": 0} {
		if got := testutil.ToFloat64(m.ingestEvents.WithLabelValues(result)); got != want {
			t.Errorf("ingest events{%s} = %v, want %v", result, got, want)
		}
	}
	for op, want := range map[string]uint64{"publish": 3, "batch_publish": 1, "sync": 1, "set_labels": 0} {
		if n := opCount(t, reg, op); n != want {
			t.Errorf("ingest duration{%s} count = %d, want %d", op, n, want)
		}
	}
}

func opCount(t *testing.T, reg *prometheus.Registry, op string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "dcon_ingest_request_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if mt.GetLabel()[0].GetValue() == op {
				return mt.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestCommitAndRuntime(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := New(Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveCommit(2 * time.Millisecond)
	if n := histogramCount(t, reg, "dcon_store_commit_duration_seconds", ""); n != 1 {
		t.Errorf("commit count = %d, want 1", n)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	if _, err := New(Config{Registry: reg}); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}
