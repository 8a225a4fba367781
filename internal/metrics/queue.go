package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the queue collector's reads of the store.
const scrapeTimeout = 5 * time.Second

// queueCollector exports, at scrape time, every connector's queue depth and
// oldest event age (from Config.Queue) and flow-control window (from
// Config.Flow), and removes the series of connectors that no longer exist.
type queueCollector struct {
	m *Metrics
}

var (
	labelsConnector = []string{"connector"}
	depthName       = "dcon_queue_depth"
	depthHelp       = "Deliveries queued for the connector, in flight or waiting for a retry."
	oldestName      = "dcon_queue_oldest_event_age_seconds"
	oldestHelp      = "Age of the oldest event queued for the connector; 0 when its queue is empty."
	windowName      = "dcon_delivery_flow_window"
	windowHelp      = "The connector's flow-control window: how many attempts it may have in flight."
	inFlightName    = "dcon_delivery_flow_in_flight"
	inFlightHelp    = "Attempts the connector has in flight."
)

func (q *queueCollector) descs() (depth, oldest, window, inFlight *prometheus.Desc) {
	var labels []string
	if q.m.cfg.PerConnector {
		labels = labelsConnector
	}
	return prometheus.NewDesc(depthName, depthHelp, labels, nil),
		prometheus.NewDesc(oldestName, oldestHelp, labels, nil),
		prometheus.NewDesc(windowName, windowHelp, labels, nil),
		prometheus.NewDesc(inFlightName, inFlightHelp, labels, nil)
}

// Describe implements prometheus.Collector.
func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	depth, oldest, window, inFlight := q.descs()
	ch <- depth
	ch <- oldest
	if q.m.cfg.Flow != nil {
		ch <- window
		ch <- inFlight
	}
}

// Collect implements prometheus.Collector. A failure to read leaves the
// metric out of this scrape (the handler logs it).
func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	m := q.m
	depthDesc, oldestDesc, windowDesc, inFlightDesc := q.descs()
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	cs, err := m.cfg.Connectors.AllConnectors(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	now := m.cfg.Now()
	live := make(map[string]struct{}, len(cs))
	var (
		sumDepth, sumWindow, sumInFlight int
		maxAge                           float64
	)
	for _, c := range cs {
		live[c.ID] = struct{}{}
		st, err := m.cfg.Queue.QueueStats(ctx, c.ID)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(depthDesc, err)
			return
		}
		age := 0.0
		if st.Depth > 0 && !st.Oldest.IsZero() {
			age = max(now.Sub(st.Oldest).Seconds(), 0)
		}
		var window, inFlight int
		if m.cfg.Flow != nil {
			f := m.cfg.Flow.Flow(c.ID)
			window, inFlight = f.Window, f.InFlight
		}
		if !m.cfg.PerConnector {
			sumDepth += st.Depth
			maxAge = max(maxAge, age)
			sumWindow += window
			sumInFlight += inFlight
			continue
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(st.Depth), c.ID)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age, c.ID)
		if m.cfg.Flow != nil {
			ch <- prometheus.MustNewConstMetric(windowDesc, prometheus.GaugeValue, float64(window), c.ID)
			ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(inFlight), c.ID)
		}
	}
	if !m.cfg.PerConnector {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(sumDepth))
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, maxAge)
		if m.cfg.Flow != nil {
			ch <- prometheus.MustNewConstMetric(windowDesc, prometheus.GaugeValue, float64(sumWindow))
			ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(sumInFlight))
		}
	}
	m.forgetOthers(live)
}
