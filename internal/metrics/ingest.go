package metrics

import (
	"context"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dcon"
)

// Ingester is the ingest path as the API uses it (httpapi.Ingester);
// *ingest.Ingester implements it.
type Ingester interface {
	Publish(ctx context.Context, projectID, deviceID string, t dcon.EventType, data json.RawMessage) (*dcon.Event, error)
	SetDeviceLabels(ctx context.Context, projectID, deviceID string, labels map[string]string) (*dcon.Device, error)
	PublishBatch(ctx context.Context, projectID string, reqs []dcon.PublishRequest) []dcon.PublishResult
	Sync(ctx context.Context, projectID, connectorID string) (int, error)
}

// resultOK is the result label of an event ingest took.
const resultOK = "ok"

// errorCodes are the results of refused events: every dcon error code.
var errorCodes = []string{dcon.EINVALID, dcon.ENOTFOUND, dcon.ECONFLICT, dcon.ETOOLARGE, dcon.EUNSUPPORTED,
	dcon.EUNAVAILABLE, dcon.EUNAUTHORIZED, dcon.EFORBIDDEN, dcon.ERATELIMITED, dcon.EINTERNAL}

// ingestMetrics are the ingest metrics bound to their label values, made once.
type ingestMetrics struct {
	ok       prometheus.Counter
	refused  map[string]prometheus.Counter // by error code; read-only after init
	publish  prometheus.Observer
	batch    prometheus.Observer
	labels   prometheus.Observer
	resyncOp prometheus.Observer
}

func (im *ingestMetrics) init(m *Metrics) {
	im.ok = m.ingestEvents.WithLabelValues(resultOK)
	im.refused = make(map[string]prometheus.Counter, len(errorCodes))
	for _, code := range errorCodes {
		im.refused[code] = m.ingestEvents.WithLabelValues(code)
	}
	im.publish = m.ingestTime.WithLabelValues("publish")
	im.batch = m.ingestTime.WithLabelValues("batch_publish")
	im.labels = m.ingestTime.WithLabelValues("set_labels")
	im.resyncOp = m.ingestTime.WithLabelValues("sync")
}

// count counts one event's result.
func (im *ingestMetrics) count(err error) {
	if err == nil {
		im.ok.Inc()
		return
	}
	c, ok := im.refused[dcon.ErrorCode(err)]
	if !ok {
		c = im.refused[dcon.EINTERNAL]
	}
	c.Inc()
}

// Ingest returns next, counting the events it takes or refuses and timing
// its calls.
func (m *Metrics) Ingest(next Ingester) Ingester {
	return &ingester{next: next, m: &m.ingest, now: m.cfg.Now}
}

type ingester struct {
	next Ingester
	m    *ingestMetrics
	now  func() time.Time
}

func (in *ingester) Publish(ctx context.Context, projectID, deviceID string, t dcon.EventType, data json.RawMessage) (*dcon.Event, error) {
	start := in.now()
	ev, err := in.next.Publish(ctx, projectID, deviceID, t, data)
	in.m.publish.Observe(in.now().Sub(start).Seconds())
	in.m.count(err)
	return ev, err
}

func (in *ingester) SetDeviceLabels(ctx context.Context, projectID, deviceID string, labels map[string]string) (*dcon.Device, error) {
	start := in.now()
	d, err := in.next.SetDeviceLabels(ctx, projectID, deviceID, labels)
	in.m.labels.Observe(in.now().Sub(start).Seconds())
	in.m.count(err)
	return d, err
}

func (in *ingester) PublishBatch(ctx context.Context, projectID string, reqs []dcon.PublishRequest) []dcon.PublishResult {
	start := in.now()
	rs := in.next.PublishBatch(ctx, projectID, reqs)
	in.m.batch.Observe(in.now().Sub(start).Seconds())
	for i := range rs {
		in.m.count(rs[i].Err)
	}
	return rs
}

// Sync re-sends events already counted when they were published: it is only
// timed.
func (in *ingester) Sync(ctx context.Context, projectID, connectorID string) (int, error) {
	start := in.now()
	n, err := in.next.Sync(ctx, projectID, connectorID)
	in.m.resyncOp.Observe(in.now().Sub(start).Seconds())
	return n, err
}
