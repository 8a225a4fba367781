package dcon

import "time"

// MaxEventAge is how long dcon tries to deliver an event: a delivery leaves its
// queue when the endpoint answers 2xx or when its event is this old.
const MaxEventAge = 12 * time.Hour

// Delivery is one connector's durable copy of one event. Its body is rendered
// once, at ingest, and the same bytes are sent on every attempt.
//
// A delivery is identified by (ConnectorID, EventID): enqueueing the same pair
// again replaces the queued copy.
type Delivery struct {
	ConnectorID string
	ProjectID   string
	EventID     string
	EventType   EventType
	EventTime   time.Time // the event's own timestamp; expiry counts from it
	Body        []byte    // the exact bytes POSTed

	Attempts  int       // attempts made so far
	LastError string    // why the last attempt failed, "" before the first failure
	Due       time.Time // no Claim returns the delivery before this time
}

// Deadline is the time at which the delivery expires: MaxEventAge after its event.
func (d *Delivery) Deadline() time.Time { return d.EventTime.Add(MaxEventAge) }

// Expired reports whether the delivery's event is MaxEventAge old at now.
func (d *Delivery) Expired(now time.Time) bool { return !now.Before(d.Deadline()) }

// DeadLetter is a delivery that expired before its endpoint acknowledged it.
type DeadLetter struct {
	Delivery
	ExpireTime time.Time
}

// Outcome is what the delivery engine tells its observers (stats, metrics,
// the delivery log): one attempt, or one expiry.
type Outcome struct {
	ConnectorID string
	ProjectID   string
	EventID     string
	EventTime   time.Time // the event's own timestamp
	Attempt     int       // 1 for the first attempt; attempts made before an expiry
	// Expired is set when the delivery expired instead of being attempted;
	// then StatusCode, Latency and Err are zero and LastError says why the
	// last attempt failed.
	Expired    bool
	StatusCode int           // 0 when no response arrived
	Latency    time.Duration // the attempt's round trip
	Err        error         // nil exactly when the endpoint answered 2xx
	LastError  string        // for an expiry: the last attempt's error
	At         time.Time     // when the attempt ended, or the expiry time
}

// Delivered reports whether the attempt succeeded.
func (o *Outcome) Delivered() bool { return !o.Expired && o.Err == nil }

// Park makes d wait in its queue, at its Deadline, until its connector's
// backlog is drained (BacklogQueue.ClaimConnector) or it expires: the delivery
// engine parks what its flow control does not let it attempt now.
func (d *Delivery) Park() { d.Due = d.Deadline() }

// Parked reports whether d is parked: due at its Deadline.
func (d *Delivery) Parked() bool { return d.Due.Equal(d.Deadline()) }

// FlowMode is where a connector stands in the delivery engine's flow control.
type FlowMode string

// The flow control modes.
const (
	// FlowOpen: attempts succeed; the window grows with each success.
	FlowOpen FlowMode = "OPEN"
	// FlowThrottled: the last attempt failed, or failures halved the window
	// below its initial size; it grows back with each success.
	FlowThrottled FlowMode = "THROTTLED"
	// FlowProbing: the endpoint kept failing — no answer or overload with a
	// window of 1, or nothing but errors many attempts in a row. Fresh events
	// are parked in the connector's backlog and one probe at a time is sent,
	// at a growing interval; a successful probe reopens the connector.
	FlowProbing FlowMode = "PROBING"
	// FlowPaused: the endpoint answered 429 or 503 with Retry-After; nothing
	// is sent before PausedUntil.
	FlowPaused FlowMode = "PAUSED"
)

// FlowBacklog says whether a connector has parked deliveries.
type FlowBacklog string

// The backlog states.
const (
	BacklogNone    FlowBacklog = "NONE"    // nothing parked
	BacklogParked  FlowBacklog = "PARKED"  // parked deliveries wait to be drained, oldest first
	BacklogUnknown FlowBacklog = "UNKNOWN" // after a restart, until the engine looked
)

// FlowState is a connector's flow control, as the delivery engine holds it in
// memory: read-only, for the API and operators.
type FlowState struct {
	Mode        FlowMode
	Window      int // attempts the connector may have in flight
	DrainWindow int // of Window, how many may be backlog deliveries
	InFlight    int // attempts in flight, or reserved for deliveries being enqueued
	// RoundTrip is the smoothed round trip of successful attempts, and
	// LeastRoundTrip the least of the last 10 to 20 seconds; zero before the
	// first success.
	RoundTrip, LeastRoundTrip time.Duration
	Backlog                   FlowBacklog
	PausedUntil               time.Time // zero unless Mode is FlowPaused
	ConsecutiveFailures       int
}
