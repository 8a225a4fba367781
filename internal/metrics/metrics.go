package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"dcon"
)

// ConnectorLister lists every connector; *ingest.Router implements it. The
// queue collector reads it at each scrape.
type ConnectorLister interface {
	AllConnectors(ctx context.Context) ([]*dcon.Connector, error)
}

// FlowReader tells a connector's flow-control state: its window and the
// attempts it has in flight. *delivery.Engine implements it.
type FlowReader interface {
	Flow(connectorID string) dcon.FlowState
}

// Config configures Metrics. Registry is required.
type Config struct {
	// Registry receives every collector. Required.
	Registry *prometheus.Registry
	// PerConnector labels delivery and queue metrics with the connector id.
	// Off, they have no connector label: queue depth is summed, oldest age
	// is the maximum over connectors. Default: false (the zero value); dcon
	// serve turns it on unless --metrics-per-connector=false.
	PerConnector bool
	// Queue and Connectors, when both set, export every connector's queue
	// depth and oldest event age at scrape time. Default: nil (not exported).
	Queue      dcon.QueueInspector
	Connectors ConnectorLister
	// Flow, when set, exports every connector's flow-control window and
	// attempts in flight. Default: nil.
	Flow FlowReader
	// NoRuntime leaves out the Go runtime and process collectors (tests
	// that compare a whole registry). Default: false: they are registered.
	NoRuntime bool
	// Now is the clock of oldest-event ages. Default: time.Now.
	Now func() time.Time
	// Logger logs scrape failures. Default: discard.
	Logger *slog.Logger
}

// Metrics holds dcon's collectors. Its methods are safe for concurrent use.
type Metrics struct {
	cfg Config
	log *slog.Logger

	attempts      *prometheus.CounterVec   // connector?, outcome, error_class
	attemptTime   *prometheus.HistogramVec // connector?
	endToEnd      *prometheus.HistogramVec // connector?
	retries       *prometheus.CounterVec   // connector?
	expired       *prometheus.CounterVec   // connector?
	dropped       *prometheus.CounterVec   // connector?
	commitTime    prometheus.Histogram
	ingestEvents  *prometheus.CounterVec   // result
	ingestTime    *prometheus.HistogramVec // op
	connectorVecs []*prometheus.MetricVec  // the vectors with a connector label

	byConnector sync.Map          // connector id → *connectorMetrics, with PerConnector
	all         *connectorMetrics // without PerConnector

	ingest ingestMetrics
}

// Outcomes, the values of the outcome label.
const (
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeExpired   = "expired"
)

// Bucket boundaries, in seconds.
var (
	attemptBuckets   = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	endToEndBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 3 * 3600, 12 * 3600}
	commitBuckets    = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	ingestTimeBucket = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
)

// New makes dcon's collectors and registers them on cfg.Registry.
func New(cfg Config) (*Metrics, error) {
	if cfg.Registry == nil {
		return nil, errors.New("metrics: Registry is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{cfg: cfg, log: cfg.Logger}
	conn := func(labels ...string) []string {
		if cfg.PerConnector {
			return append([]string{"connector"}, labels...)
		}
		return labels
	}
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dcon_delivery_attempts_total",
		Help: "Delivery attempts by outcome (delivered, failed, expired) and, for failures, error class.",
	}, conn("outcome", "error_class"))
	m.attemptTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dcon_delivery_attempt_duration_seconds",
		Help:    "Round trip of one delivery attempt, delivered or failed.",
		Buckets: attemptBuckets,
	}, conn())
	m.endToEnd = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dcon_delivery_end_to_end_seconds",
		Help:    "From the event's time (its publication) to the endpoint's 2xx, retries included.",
		Buckets: endToEndBuckets,
	}, conn())
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dcon_delivery_retries_scheduled_total",
		Help: "Retries scheduled after failed attempts.",
	}, conn())
	m.expired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dcon_delivery_expired_total",
		Help: "Deliveries that expired (12 hours old) and became dead letters.",
	}, conn())
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dcon_queue_dropped_total",
		Help: "Queued deliveries dropped because their connector was disabled or deleted.",
	}, conn())
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "dcon_store_commit_duration_seconds",
		Help:    "Synced commits of the store (enqueues, expiries, configuration), fsync included.",
		Buckets: commitBuckets,
	})
	m.ingestEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dcon_ingest_events_total",
		Help: "Events offered to ingest, by result: ok, or the error code (invalid, not_found, unavailable, ...).",
	}, []string{"result"})
	m.ingestTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dcon_ingest_request_duration_seconds",
		Help:    "Ingest calls (publish, batch_publish, set_labels, sync) until their events are durable.",
		Buckets: ingestTimeBucket,
	}, []string{"op"})
	m.connectorVecs = []*prometheus.MetricVec{m.attempts.MetricVec, m.attemptTime.MetricVec,
		m.endToEnd.MetricVec, m.retries.MetricVec, m.expired.MetricVec, m.dropped.MetricVec}

	cs := []prometheus.Collector{m.attempts, m.attemptTime, m.endToEnd, m.retries, m.expired, m.dropped,
		m.commitTime, m.ingestEvents, m.ingestTime}
	if cfg.Queue != nil && cfg.Connectors != nil {
		cs = append(cs, &queueCollector{m: m})
	}
	if !cfg.NoRuntime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	m.ingest.init(m)
	if !cfg.PerConnector {
		m.all = m.newConnectorMetrics()
	}
	return m, nil
}

// Handler serves the registry in the Prometheus exposition formats. A
// collector that fails is logged and left out; the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ObserveCommit records how long one synced commit of the store took; it is
// pebble.Options.OnSyncedCommit.
func (m *Metrics) ObserveCommit(d time.Duration) { m.commitTime.Observe(d.Seconds()) }

// Dropped counts n deliveries dropped with a connector's queue; it is
// ingest.Router's drop hook.
func (m *Metrics) Dropped(connectorID string, n int) {
	if n > 0 {
		m.of(connectorID).dropped.Add(float64(n))
	}
}

// forgetOthers removes the series of every connector not in live.
func (m *Metrics) forgetOthers(live map[string]struct{}) {
	if !m.cfg.PerConnector {
		return
	}
	m.byConnector.Range(func(k, _ any) bool {
		id := k.(string)
		if _, ok := live[id]; !ok {
			m.byConnector.Delete(id)
			for _, v := range m.connectorVecs {
				v.DeletePartialMatch(prometheus.Labels{"connector": id})
			}
		}
		return true
	})
}

// WatchQueues exports every connector's queue depth and oldest event age
// from q, for the connectors cs lists, at each scrape; flow, if not nil,
// adds their flow-control window and attempts in flight. It is Config.Queue,
// Connectors and Flow for callers that make those after Metrics (the store
// needs ObserveCommit before the router exists). Call it once, before the
// first scrape.
func (m *Metrics) WatchQueues(q dcon.QueueInspector, cs ConnectorLister, flow FlowReader) error {
	if m.cfg.Queue != nil {
		return errors.New("metrics: queues are watched already")
	}
	m.cfg.Queue, m.cfg.Connectors, m.cfg.Flow = q, cs, flow
	return m.cfg.Registry.Register(&queueCollector{m: m})
}
