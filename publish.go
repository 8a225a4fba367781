package dcon

import "encoding/json"

// MaxBatchEvents is the most events one bulk publish may carry.
const MaxBatchEvents = 1000

// BatchYieldEvery is how many events of a bulk publish are handled — decoded
// by the API, prepared by ingest — between yields of the processor: a batch
// of a thousand events is milliseconds of CPU, and without a yield a single
// publish that arrives meanwhile (a healthy connector's next event) waits for
// it in the run queue (Go preempts only after 10ms). A yield costs well
// under a microsecond.
const BatchYieldEvery = 32

// PublishRequest is one event of a bulk publish: an event of type Type for a
// device, Data being the value inside {"<eventType>": ...}.
type PublishRequest struct {
	DeviceID string
	Type     EventType
	Data     json.RawMessage
}

// PublishResult is the outcome of one event of a bulk publish: the published
// event, durable for every connector, or the error that refused it.
type PublishResult struct {
	Event *Event
	Err   error
}
