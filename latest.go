package dcon

import "context"

// DeviceEvent is an event of one device: what a [LatestEventStore] records.
type DeviceEvent struct {
	DeviceID string
	Event    *Event
}

// LatestEventStore keeps, for every device, its latest event of each type:
// what a connector's :sync re-sends. Ingest records every published event in it
// (single, bulk, and the labelsChanged events of label changes), so a connector
// created or re-enabled later can catch up with the current state of every
// device.
//
// Errors carry EUNAVAILABLE when the store cannot read or write.
type LatestEventStore interface {
	// PutLatest records evs, devices of one project, each as the latest event
	// of its device and type, replacing the one recorded before. When evs holds
	// several events of the same device and type, the last one wins. It need
	// not sync: ingest calls it just before the queue's synced Enqueue, which,
	// in a store that shares its write-ahead log with the queue, makes it
	// durable too.
	PutLatest(ctx context.Context, projectID string, evs []DeviceEvent) error

	// LatestEvents returns a device's latest events, one per event type,
	// ordered by type, with their original ids, data and timestamps; none (and
	// no error) for a device that has no events or does not exist.
	LatestEvents(ctx context.Context, projectID, deviceID string) ([]*Event, error)

	// DeleteLatest forgets a device's latest events, when the device is deleted.
	DeleteLatest(ctx context.Context, projectID, deviceID string) error
}
