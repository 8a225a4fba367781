package ingest

import (
	"context"
	"runtime"

	"dcon"
)

// PublishBatch publishes many events of a project, for gateways that forward
// the events of many devices at once. Each request is validated on its own,
// with the checks of Publish; its result, in the same position, holds either
// its event or the error that refused it (ENOTFOUND device, EINVALID type or
// data). Each distinct device is looked up once.
//
// The deliveries of every valid event are stored in one Enqueue — one sync for
// the whole batch — and handed to the dispatcher together, only then. If they
// cannot be stored, every valid request's result is EUNAVAILABLE: an event is
// reported published only when every copy of it is durable. Callers bound the
// batch (dcon.MaxBatchEvents); PublishBatch does not.
//
// As with Publish, the events are recorded as their devices' latest events
// with the Enqueue: in the same commit when the queue is an EventQueue, else
// just before it (see putLatest). In the second case, if the Enqueue then
// fails, they stay recorded, and a later Sync may send an event whose
// publisher was answered EUNAVAILABLE; the publisher's retry, a newer event
// of the same type, replaces it.
func (in *Ingester) PublishBatch(ctx context.Context, projectID string, reqs []dcon.PublishRequest) []dcon.PublishResult {
	results := make([]dcon.PublishResult, len(reqs))
	if len(reqs) == 0 {
		return results
	}
	devs := make(map[string]deviceLookup)
	latest := make([]dcon.DeviceEvent, 0, len(reqs))
	ds := make([]dcon.Delivery, 0, len(reqs)*len(in.router.Active(projectID)))
	lease := in.now().Add(in.lease)
	for i, req := range reqs {
		if i > 0 && i%dcon.BatchYieldEvery == 0 {
			runtime.Gosched()
		}
		ev, dev, err := in.prepare(ctx, projectID, req, devs)
		if err != nil {
			results[i].Err = err
			continue
		}
		results[i].Event = ev
		latest = append(latest, dcon.DeviceEvent{DeviceID: dev.ID, Event: ev})
		ds = in.appendRoute(ds, ev, dev, lease)
	}
	if err := in.store(ctx, projectID, latest, ds); err != nil {
		for i := range results {
			if results[i].Event != nil {
				results[i] = dcon.PublishResult{Err: err}
			}
		}
	}
	return results
}

// deviceLookup is the outcome of one device lookup of a batch.
type deviceLookup struct {
	dev *dcon.Device
	err error
}

// prepare validates one request of a batch, looking its device up in devs
// first and in the store only once per device, and returns its event.
func (in *Ingester) prepare(ctx context.Context, projectID string, req dcon.PublishRequest, devs map[string]deviceLookup) (*dcon.Event, *dcon.Device, error) {
	if err := checkPublishable(req.Type); err != nil {
		return nil, nil, err
	}
	l, ok := devs[req.DeviceID]
	if !ok {
		l.dev, l.err = in.devices.Device(ctx, projectID, req.DeviceID)
		devs[req.DeviceID] = l
	}
	if l.err != nil {
		return nil, nil, l.err
	}
	ev, err := in.newEvent(l.dev, req.Type, req.Data)
	if err != nil {
		return nil, nil, err
	}
	return ev, l.dev, nil
}
