package metrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"dcon"
	"dcon/internal/webhook"
)

// Error classes, the values of the error_class label of failed attempts: a
// small fixed set. Delivered and expired attempts have none ("").
const (
	ClassHTTP4xx    = "http_4xx"
	ClassHTTP5xx    = "http_5xx"
	ClassHTTP429    = "http_429"
	ClassTimeout    = "timeout"
	ClassConnection = "connection"
	ClassTLS        = "tls"
	ClassRefused    = "refused_destination"
	ClassOther      = "other"
	noErrorClass    = ""
)

// The index of each class in errorClasses and connectorMetrics.failed.
const (
	iHTTP4xx = iota
	iHTTP5xx
	iHTTP429
	iTimeout
	iConnection
	iTLS
	iRefused
	iOther
	numErrorClasses
)

// errorClasses lists the classes by index.
var errorClasses = [numErrorClasses]string{ClassHTTP4xx, ClassHTTP5xx, ClassHTTP429, ClassTimeout,
	ClassConnection, ClassTLS, ClassRefused, ClassOther}

// connectorMetrics are one connector's label-bound metrics, made once.
type connectorMetrics struct {
	delivered   prometheus.Counter
	failed      [numErrorClasses]prometheus.Counter
	expiredAtt  prometheus.Counter // attempts_total{outcome="expired"}
	expired     prometheus.Counter
	retries     prometheus.Counter
	dropped     prometheus.Counter
	attemptTime prometheus.Observer
	endToEnd    prometheus.Observer
}

// newConnectorMetrics binds the connector-labelled metrics to the given
// label values: the connector id, or none without PerConnector.
func (m *Metrics) newConnectorMetrics(connector ...string) *connectorMetrics {
	lv := func(more ...string) []string { return append(append([]string(nil), connector...), more...) }
	c := &connectorMetrics{
		delivered:   m.attempts.WithLabelValues(lv(OutcomeDelivered, noErrorClass)...),
		expiredAtt:  m.attempts.WithLabelValues(lv(OutcomeExpired, noErrorClass)...),
		expired:     m.expired.WithLabelValues(lv()...),
		retries:     m.retries.WithLabelValues(lv()...),
		dropped:     m.dropped.WithLabelValues(lv()...),
		attemptTime: m.attemptTime.WithLabelValues(lv()...),
		endToEnd:    m.endToEnd.WithLabelValues(lv()...),
	}
	for i, class := range errorClasses {
		c.failed[i] = m.attempts.WithLabelValues(lv(OutcomeFailed, class)...)
	}
	return c
}

// of returns a connector's metrics, making them on first use.
func (m *Metrics) of(connectorID string) *connectorMetrics {
	if !m.cfg.PerConnector {
		return m.all
	}
	if c, ok := m.byConnector.Load(connectorID); ok {
		return c.(*connectorMetrics)
	}
	c, _ := m.byConnector.LoadOrStore(connectorID, m.newConnectorMetrics(connectorID))
	return c.(*connectorMetrics)
}

// Observe records one attempt or expiry; it implements delivery.Observer. It
// does not allocate once the connector's metrics exist.
func (m *Metrics) Observe(o *dcon.Outcome) {
	c := m.of(o.ConnectorID)
	switch {
	case o.Expired:
		c.expiredAtt.Inc()
		c.expired.Inc()
	case o.Err == nil:
		c.delivered.Inc()
		c.attemptTime.Observe(o.Latency.Seconds())
		if !o.EventTime.IsZero() {
			c.endToEnd.Observe(max(o.At.Sub(o.EventTime).Seconds(), 0))
		}
	default:
		c.failed[classify(o)].Inc()
		c.attemptTime.Observe(o.Latency.Seconds())
		c.retries.Inc() // the engine schedules a retry after every failure (at the latest, at the deadline)
	}
}

// classify returns the index in errorClasses of a failed attempt's class.
func classify(o *dcon.Outcome) int {
	switch s := o.StatusCode; {
	case s == 429:
		return iHTTP429
	case s >= 400 && s <= 499:
		return iHTTP4xx
	case s >= 500 && s <= 599:
		return iHTTP5xx
	case s != 0:
		return iOther // 1xx, 3xx
	}
	err := o.Err
	var (
		certErr     *tls.CertificateVerificationError
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalidCert x509.CertificateInvalidError
		recordHdr   tls.RecordHeaderError
		alert       tls.AlertError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, webhook.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return iTimeout
	case errors.Is(err, webhook.ErrForbiddenDestination):
		return iRefused
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostname),
		errors.As(err, &invalidCert), errors.As(err, &recordHdr), errors.As(err, &alert):
		return iTLS
	case errors.As(err, &netErr):
		return iConnection
	}
	return iOther
}
