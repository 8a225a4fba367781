package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
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

// Ingester publishes events: validate, route, render, enqueue durably, hand off.
type Ingester struct {
	devices  dcon.DeviceStore
	router   *Router
	queue    dcon.Queue
	dispatch Dispatcher
	now      func() time.Time
	lease    time.Duration

	labelsMu sync.Mutex // serialises label changes, so each labelsChanged event sees the labels before it
}

// Config configures an Ingester.
type Config struct {
	Devices  dcon.DeviceStore
	Router   *Router
	Queue    dcon.Queue
	Dispatch Dispatcher
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
	return &Ingester{
		devices:  cfg.Devices,
		router:   cfg.Router,
		queue:    cfg.Queue,
		dispatch: cfg.Dispatch,
		now:      cfg.Now,
		lease:    cfg.Lease,
	}, nil
}

// Publish validates and publishes one event of type t for a device; data is the
// value inside {"<eventType>": ...}. It returns once the event is durable for
// every connector that receives it.
func (in *Ingester) Publish(ctx context.Context, projectID, deviceID string, t dcon.EventType, data json.RawMessage) (*dcon.Event, error) {
	if !t.Valid() {
		return nil, dcon.Errorf(dcon.EINVALID, "unknown event type %q", t)
	}
	if t == dcon.EventLabelsChanged {
		return nil, dcon.Errorf(dcon.EINVALID, "labelsChanged events cannot be published: change the device's labels instead")
	}
	dev, err := in.devices.Device(ctx, projectID, deviceID)
	if err != nil {
		return nil, err
	}
	if !dev.Type.Emits(t) {
		return nil, dcon.Errorf(dcon.EINVALID, "a %s device does not send %s events", dev.Type, t)
	}
	now := in.now()
	body, err := dcon.ParseEventData(t, data, now)
	if err != nil {
		return nil, err
	}
	ev := &dcon.Event{ID: xid.New().String(), TargetName: dev.Name(), Type: t, Data: body, Timestamp: now}
	if err := in.publish(ctx, ev, dev); err != nil {
		return nil, err
	}
	return ev, nil
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

// publish routes ev, enqueues its deliveries durably and hands them off.
func (in *Ingester) publish(ctx context.Context, ev *dcon.Event, dev *dcon.Device) error {
	ds := in.Route(ev, dev, in.now().Add(in.lease))
	if len(ds) == 0 {
		return nil
	}
	if err := in.queue.Enqueue(ctx, ds); err != nil {
		return dcon.WrapError(dcon.EUNAVAILABLE, err, "the event could not be stored; try again")
	}
	in.dispatch.Dispatch(ds)
	return nil
}

// Route returns one delivery of ev for every active connector of the device's
// project that wants its type, each with its own body, due at lease.
func (in *Ingester) Route(ev *dcon.Event, dev *dcon.Device, lease time.Time) []dcon.Delivery {
	conns := in.router.Active(dev.ProjectID)
	if len(conns) == 0 {
		return nil
	}
	var envelope []byte
	var ds []dcon.Delivery
	for _, c := range conns {
		if !c.Wants(ev.Type) {
			continue
		}
		if envelope == nil {
			envelope = ev.AppendJSON(make([]byte, 0, 256+len(ev.Data)))
			ds = make([]dcon.Delivery, 0, len(conns))
		}
		body := AppendBody(make([]byte, 0, len(envelope)+160), envelope, dev, c.Labels)
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
	return ds
}
