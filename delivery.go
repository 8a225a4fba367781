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
