package dcon

import "time"

// MetricsWindow is the span of a connector's :metrics: the last three hours.
const MetricsWindow = 3 * time.Hour

// ConnectorMetrics are a connector's delivery figures over MetricsWindow, per
// attempt: what `:metrics` answers.
type ConnectorMetrics struct {
	SuccessCount int64
	ErrorCount   int64
	Latency99p   time.Duration // the 99th percentile of attempt round trips
}

// AutoDisableAfter is how long a connector may fail continuously, with no
// success, before dcon disables it (SYSTEM_DISABLED). Configurable per server.
const AutoDisableAfter = 5 * 24 * time.Hour
