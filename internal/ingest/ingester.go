package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/xid"

	"dcon"
)

// Dispatcher takes deliveries that are durable in the queue and attempts them
// at once; the delivery engine implements it.
type Dispatcher interface {
	Dispatch(ds []dcon.Delivery)
}

// Admitter is a Dispatcher with flow control; the delivery engine implements
// it. Before the Enqueue, Admit reserves a slot in its connector's window for
// each delivery that may be attempted at once, and parks the others
// (dcon.Delivery.Park), so that they are enqueued parked at no extra cost.
// Dispatch then takes them all; if the Enqueue failed, Release gives the
// reservations back.
type Admitter interface {
	Admit(ds []dcon.Delivery)
	Release(ds []dcon.Delivery)
}

// EventQueue is a Queue that is also the LatestEventStore, and can store what
// a publish writes in one commit: evs, events of one project, as their
// devices' latest events, and ds, their deliveries, durably as Enqueue does
// when there are any. The events must be new (fresh ids): it need not look
// for queued deliveries to replace. *pebble.DB implements it; the Ingester
// uses it when Config.Queue and Config.Latest are the same store.
type EventQueue interface {
	EnqueueEvents(ctx context.Context, projectID string, evs []dcon.DeviceEvent, ds []dcon.Delivery) error
}

// Ingester publishes events: validate, route, render, enqueue durably, hand off.
type Ingester struct {
	devices  dcon.DeviceStore
	router   *Router
	queue    dcon.Queue
	dispatch Dispatcher
	latest   dcon.LatestEventStore // nil: no latest events, no Sync
	events   EventQueue            // nil: the latest events and the deliveries are written apart
	now      func() time.Time
	lease    time.Duration

	labelsMu sync.Mutex // serialises label changes, so each labelsChanged event sees the labels before it
	envs     sync.Pool  // of *[]byte: the buffers events' envelopes are rendered in
}

// Config configures an Ingester.
type Config struct {
	Devices  dcon.DeviceStore
	Router   *Router
	Queue    dcon.Queue
	Dispatch Dispatcher
	// Latest keeps every device's latest event of each type, for Sync. Every
	// publish records its event there with its Enqueue; give it the store
	// that holds the Queue, so that the Enqueue's sync makes it durable too
	// (when that store is an EventQueue, as *pebble.DB is, both are one
	// commit). Default: nil, no latest events are kept and Sync fails.
	Latest dcon.LatestEventStore
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Lease is how long a fresh delivery is reserved for the in-memory hand-off
	// before the queue's poller may claim it (after a crash, for instance). It
	// must exceed the delivery engine's longest attempt. Default 1 minute.
	Lease time.Duration
}

// New returns an Ingester.
func New(cfg Config) (*Ingester, error) {
	if cfg.Devices == nil || cfg.Router == nil || cfg.Queue == nil || cfg.Dispatch == nil {
		return nil, fmt.Errorf("ingest: Devices, Router, Queue and Dispatch are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	var events EventQueue
	if eq, ok := cfg.Queue.(EventQueue); ok && cfg.Latest != nil && any(cfg.Latest) == any(cfg.Queue) {
		events = eq
	}
	return &Ingester{
		events:   events,
		devices:  cfg.Devices,
		router:   cfg.Router,
		queue:    cfg.Queue,
		dispatch: cfg.Dispatch,
		latest:   cfg.Latest,
		now:      cfg.Now,
		lease:    cfg.Lease,
	}, nil
}

// Publish validates and publishes one event of type t for a device; data is the
// value inside {"<eventType>": ...}. It returns once the event is durable for
// every connector that receives it.
func (in *Ingester) Publish(ctx context.Context, projectID, deviceID string, t dcon.EventType, data json.RawMessage) (*dcon.Event, error) {
	if err := checkPublishable(t); err != nil {
		return nil, err
	}
	dev, err := in.devices.Device(ctx, projectID, deviceID)
	if err != nil {
		return nil, err
	}
	ev, err := in.newEvent(dev, t, data)
	if err != nil {
		return nil, err
	}
	if err := in.publish(ctx, ev, dev); err != nil {
		return nil, err
	}
	return ev, nil
}

// checkPublishable refuses event types that cannot be published: unknown ones,
// and labelsChanged, which only label changes make.
func checkPublishable(t dcon.EventType) error {
	if !t.Valid() {
		return dcon.Errorf(dcon.EINVALID, "unknown event type %q", t)
	}
	if t == dcon.EventLabelsChanged {
		return dcon.Errorf(dcon.EINVALID, "labelsChanged events cannot be published: change the device's labels instead")
	}
	return nil
}

// newEvent validates data as an event of type t of dev and returns the event,
// with a new id, timestamped now.
func (in *Ingester) newEvent(dev *dcon.Device, t dcon.EventType, data json.RawMessage) (*dcon.Event, error) {
	if !dev.Type.Emits(t) {
		return nil, dcon.Errorf(dcon.EINVALID, "a %s device does not send %s events", dev.Type, t)
	}
	now := in.now()
	body, err := dcon.ParseEventData(t, data, now)
	if err != nil {
		return nil, err
	}
	id, target := newEventNames(dev)
	return &dcon.Event{ID: id, TargetName: target, Type: t, Data: body, Timestamp: now}, nil
}

// newEventNames returns a new event id and dev's resource name, the event's
// targetName, made in one allocation.
func newEventNames(dev *dcon.Device) (id, target string) {
	const prefix, devices = "projects/", "/devices/"
	b := make([]byte, 0, dcon.IDLen+len(prefix)+len(dev.ProjectID)+len(devices)+len(dev.ID))
	b = xid.New().Encode(b[:dcon.IDLen])
	b = append(b, prefix...)
	b = append(b, dev.ProjectID...)
	b = append(b, devices...)
	b = append(b, dev.ID...)
	s := string(b)
	return s[:dcon.IDLen], s[dcon.IDLen:]
}

// SetDeviceLabels replaces a device's labels and publishes a labelsChanged event
// when they changed. An emulated device keeps its virtual-sensor label.
func (in *Ingester) SetDeviceLabels(ctx context.Context, projectID, deviceID string, labels map[string]string) (*dcon.Device, error) {
	if err := dcon.ValidateLabels(labels); err != nil {
		return nil, err
	}
	in.labelsMu.Lock()
	defer in.labelsMu.Unlock()
	dev, err := in.devices.Device(ctx, projectID, deviceID)
	if err != nil {
		return nil, err
	}
	next := maps.Clone(labels)
	if next == nil {
		next = map[string]string{}
	}
	if v, ok := dev.Labels[dcon.LabelEmulated]; ok {
		if _, set := next[dcon.LabelEmulated]; !set {
			next[dcon.LabelEmulated] = v
		}
	}
	change, changed := dcon.LabelsChangedData(dev.Labels, next)
	if !changed {
		return dev, nil
	}
	now := in.now()
	updated := *dev
	updated.Labels = next
	updated.UpdateTime = now
	if err := in.devices.UpdateDevice(ctx, &updated); err != nil {
		return nil, err
	}
	// The event carries the new labels: a connector listing a removed key no
	// longer receives it, one listing an added key does.
	ev := &dcon.Event{ID: xid.New().String(), TargetName: dev.Name(), Type: dcon.EventLabelsChanged, Data: change, Timestamp: now}
	if err := in.publish(ctx, ev, &updated); err != nil {
		return nil, err
	}
	return &updated, nil
}

// publish records ev as its device's latest event of its type, routes it,
// enqueues its deliveries durably and hands them off.
func (in *Ingester) publish(ctx context.Context, ev *dcon.Event, dev *dcon.Device) error {
	return in.store(ctx, dev.ProjectID, []dcon.DeviceEvent{{DeviceID: dev.ID, Event: ev}},
		in.Route(ev, dev, in.now().Add(in.lease)))
}

// store records evs, new events of one project, as their devices' latest
// events, stores ds, their deliveries, durably, and only then hands ds to the
// dispatcher: in one commit when the queue is an EventQueue, else with
// putLatest and enqueue.
func (in *Ingester) store(ctx context.Context, projectID string, evs []dcon.DeviceEvent, ds []dcon.Delivery) error {
	if in.events == nil {
		if err := in.putLatest(ctx, projectID, evs); err != nil {
			return err
		}
		return in.enqueue(ctx, ds)
	}
	a, admits := in.dispatch.(Admitter)
	if admits && len(ds) > 0 {
		a.Admit(ds)
	}
	if err := in.events.EnqueueEvents(ctx, projectID, evs, ds); err != nil {
		if admits && len(ds) > 0 {
			a.Release(ds)
		}
		return dcon.WrapError(dcon.EUNAVAILABLE, err, "the event could not be stored; try again")
	}
	if len(ds) > 0 {
		in.dispatch.Dispatch(ds)
	}
	return nil
}

// putLatest records evs as their devices' latest events, when the Ingester
// keeps them. The write need not sync: it comes before the Enqueue, whose
// synced commit to the same write-ahead log (Pebble's is one ordered log)
// makes it durable too. An event that no connector takes has no Enqueue of
// its own: it becomes durable with the next synced write of the store, and a
// crash before that may lose it (nothing was promised to a connector).
func (in *Ingester) putLatest(ctx context.Context, projectID string, evs []dcon.DeviceEvent) error {
	if in.latest == nil || len(evs) == 0 {
		return nil
	}
	if err := in.latest.PutLatest(ctx, projectID, evs); err != nil {
		return dcon.WrapError(dcon.EUNAVAILABLE, err, "the event could not be stored; try again")
	}
	return nil
}

// enqueue stores ds durably, in one Enqueue (one sync), and only then hands
// them to the dispatcher.
func (in *Ingester) enqueue(ctx context.Context, ds []dcon.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	if err := in.admitEnqueue(ctx, ds); err != nil {
		return dcon.WrapError(dcon.EUNAVAILABLE, err, "the event could not be stored; try again")
	}
	in.dispatch.Dispatch(ds)
	return nil
}

// admitEnqueue has ds admitted, when the dispatcher has flow control, and
// stores them durably in one Enqueue.
func (in *Ingester) admitEnqueue(ctx context.Context, ds []dcon.Delivery) error {
	a, ok := in.dispatch.(Admitter)
	if ok {
		a.Admit(ds)
	}
	if err := in.queue.Enqueue(ctx, ds); err != nil {
		if ok {
			a.Release(ds)
		}
		return err
	}
	return nil
}

// Route returns one delivery of ev for every active connector of the device's
// project that wants its type, each with its own body, due at lease.
func (in *Ingester) Route(ev *dcon.Event, dev *dcon.Device, lease time.Time) []dcon.Delivery {
	return in.appendRoute(nil, ev, dev, lease)
}

// appendRoute appends the deliveries that Route returns to ds.
func (in *Ingester) appendRoute(ds []dcon.Delivery, ev *dcon.Event, dev *dcon.Device, lease time.Time) []dcon.Delivery {
	conns := in.router.Active(dev.ProjectID)
	if len(conns) == 0 {
		return ds
	}
	var bp *[]byte // the envelope, rendered once into a pooled buffer: only the bodies are kept
	var envelope []byte
	for _, c := range conns {
		if !c.Wants(ev.Type) {
			continue
		}
		if bp == nil {
			if bp, _ = in.envs.Get().(*[]byte); bp == nil {
				bp = new([]byte)
			}
			envelope = ev.AppendJSON(slices.Grow((*bp)[:0], 256+len(ev.Data)))
			ds = slices.Grow(ds, len(conns))
		}
		body := AppendBody(make([]byte, 0, bodyLen(envelope, dev, c.Labels)), envelope, dev, c.Labels)
		ds = append(ds, dcon.Delivery{
			ConnectorID: c.ID,
			ProjectID:   dev.ProjectID,
			EventID:     ev.ID,
			EventType:   ev.Type,
			EventTime:   ev.Timestamp,
			Body:        body,
			Due:         lease,
		})
	}
	if bp != nil {
		*bp = envelope
		in.envs.Put(bp)
	}
	return ds
}
