package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"dcon"
)

// metricsResource is what :metrics answers (contract section 4):
// {"metrics":{"successCount":9,"errorCount":0,"latency99p":"0.411s"}}.
type metricsResource struct {
	Metrics metricsFields `json:"metrics"`
}

type metricsFields struct {
	SuccessCount int64  `json:"successCount"`
	ErrorCount   int64  `json:"errorCount"`
	Latency99p   string `json:"latency99p"`
}

func newMetricsResource(m dcon.ConnectorMetrics) metricsResource {
	return metricsResource{Metrics: metricsFields{
		SuccessCount: m.SuccessCount,
		ErrorCount:   m.ErrorCount,
		Latency99p:   formatSeconds(m.Latency99p),
	}}
}

// formatSeconds writes d in seconds with three decimals and "s": "0.411s".
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s"
}

// connectorMetrics answers GET …/dataconnectors/{d}:metrics: the connector's
// attempts over the last three hours (dcon.MetricsWindow). The connector must
// exist in the project; without a MetricsReader the figures are zeros.
func (a *api) connectorMetrics(w http.ResponseWriter, r *http.Request, projectID, connectorID string) error {
	if _, err := a.connectors.Connector(r.Context(), projectID, connectorID); err != nil {
		return err
	}
	var m dcon.ConnectorMetrics
	if a.metrics != nil {
		var err error
		if m, err = a.metrics.ConnectorMetrics(r.Context(), connectorID); err != nil {
			return err
		}
	}
	return a.respond(w, http.StatusOK, newMetricsResource(m))
}
