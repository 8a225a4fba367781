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
