package dcon

import "encoding/json"

// MaxBatchEvents is the most events one bulk publish may carry.
const MaxBatchEvents = 1000

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
