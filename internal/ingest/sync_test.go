package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"dcon"
	"dcon/internal/ingest"
	"dcon/internal/pebble"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingQueue counts Enqueue calls.
type countingQueue struct {
	dcon.Queue
	mu       sync.Mutex
	enqueues []int // the size of each
}

func (q *countingQueue) Enqueue(ctx context.Context, ds []dcon.Delivery) error {
	q.mu.Lock()
	q.enqueues = append(q.enqueues, len(ds))
	q.mu.Unlock()
	return q.Queue.Enqueue(ctx, ds)
}

func (q *countingQueue) sizes() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.enqueues)
}

// countingDevices counts device lookups.
type countingDevices struct {
	dcon.DeviceStore
	mu      sync.Mutex
	lookups map[string]int
}

func (d *countingDevices) Device(ctx context.Context, projectID, id string) (*dcon.Device, error) {
	d.mu.Lock()
	d.lookups[id]++
	d.mu.Unlock()
	return d.DeviceStore.Device(ctx, projectID, id)
}

// latestFixture is the fixture of ingest_test.go with an Ingester that keeps
// latest events, a settable clock, and counters on the queue and the devices.
type latestFixture struct {
	*fixture
	clock   *clock
	queue   *countingQueue
	devices *countingDevices
}

func newLatestFixture(t *testing.T, queue func(*pebble.DB) dcon.Queue) *latestFixture {
	t.Helper()
	f := &latestFixture{fixture: newFixture(t, nil), clock: &clock{t: now}}
	q := dcon.Queue(f.db)
	if queue != nil {
		q = queue(f.db)
	}
	f.queue = &countingQueue{Queue: q}
	f.devices = &countingDevices{DeviceStore: f.db, lookups: map[string]int{}}
	var err error
	f.in, err = ingest.New(ingest.Config{Devices: f.devices, Router: f.router, Queue: f.queue, Dispatch: f.dispatch,
		Latest: f.db, Now: f.clock.Now, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *latestFixture) publish(t *testing.T, deviceID string, typ dcon.EventType, data string) *dcon.Event {
	t.Helper()
	ev, err := f.in.Publish(context.Background(), project, deviceID, typ, json.RawMessage(data))
	if err != nil {
		t.Fatalf("publish %s: %v", typ, err)
	}
	f.clock.Advance(time.Second)
	return ev
}

// latestIDs returns a device's latest event ids, by event type.
func (f *latestFixture) latestIDs(t *testing.T, projectID, deviceID string) map[dcon.EventType]string {
	t.Helper()
	evs, err := f.db.LatestEvents(context.Background(), projectID, deviceID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[dcon.EventType]string{}
	for _, ev := range evs {
		m[ev.Type] = ev.ID
	}
	return m
}

func TestPublishKeepsTheLatestEventOfEachType(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLatestFixture(t, nil)
	t1 := f.publish(t, f.dev.ID, dcon.EventTemperature, `{"value":1}`)
	touch := f.publish(t, f.dev.ID, dcon.EventTouch, `{}`)
	if got := f.latestIDs(t, project, f.dev.ID); fmt.Sprint(got) != fmt.Sprint(map[dcon.EventType]string{"temperature": t1.ID, "touch": touch.ID}) {
		t.Errorf("latest = %v, want temperature %s and touch %s", got, t1.ID, touch.ID)
	}
	t2 := f.publish(t, f.dev.ID, dcon.EventTemperature, `{"value":2}`)
	if _, err := f.in.Publish(ctx, project, f.dev.ID, dcon.EventTemperature, json.RawMessage(`{"value":"hot"}`)); err == nil {
		t.Fatal("bad data was published")
	}
	dev, err := f.in.SetDeviceLabels(ctx, project, f.dev.ID, map[string]string{"name": "lab"})
	if err != nil {
		t.Fatal(err)
	}
	labels := f.dispatch.take()
	changed := labels[len(labels)-1].EventID

	want := map[dcon.EventType]string{"labelsChanged": changed, "temperature": t2.ID, "touch": touch.ID}
	if got := f.latestIDs(t, project, f.dev.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("latest = %v, want %v", got, want)
	}
	evs, _ := f.db.LatestEvents(ctx, project, f.dev.ID)
	for _, ev := range evs {
		if ev.ID == t2.ID && (string(ev.AppendJSON(nil)) != string(t2.AppendJSON(nil))) {
			t.Errorf("latest temperature\n got %s\nwant %s", ev.AppendJSON(nil), t2.AppendJSON(nil))
		}
	}

	// An event that no connector takes is kept too: a connector made later
	// catches up with it.
	quiet := &dcon.Device{ProjectID: "quiet-project", ID: "emuc17m6d7lq0bgk44smcqh", Type: dcon.DeviceTouch, Labels: dev.Labels}
	if err := f.db.CreateDevice(ctx, quiet); err != nil {
		t.Fatal(err)
	}
	ev, err := f.in.Publish(ctx, quiet.ProjectID, quiet.ID, dcon.EventTouch, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.latestIDs(t, quiet.ProjectID, quiet.ID); got[dcon.EventTouch] != ev.ID || len(got) != 1 {
		t.Errorf("latest of a device nobody listens to = %v, want touch %s", got, ev.ID)
	}
}

func TestSyncResendsTheLatestEventsThroughOneConnector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLatestFixture(t, nil)
	other := &dcon.Device{ProjectID: project, ID: "emuc17m6d7lq0bgk44smcqh", Type: dcon.DeviceTouch,
		Labels: map[string]string{"name": "door"}}
	if err := f.db.CreateDevice(ctx, other); err != nil {
		t.Fatal(err)
	}
	f.publish(t, f.dev.ID, dcon.EventTemperature, `{"value":1}`)
	touch := f.publish(t, f.dev.ID, dcon.EventTouch, `{}`)
	temp := f.publish(t, f.dev.ID, dcon.EventTemperature, `{"value":2}`)
	battery := f.publish(t, f.dev.ID, dcon.EventBatteryStatus, `{"percentage":80}`)
	otherTouch := f.publish(t, other.ID, dcon.EventTouch, `{}`)
	if _, err := f.in.SetDeviceLabels(ctx, project, f.dev.ID, map[string]string{"name": "lab", "room": "c7"}); err != nil {
		t.Fatal(err)
	}
	labels := f.dispatch.take()
	changed := labels[len(labels)-1]
	envelope := func(d dcon.Delivery) string { // the labelsChanged envelope, as sent
		var b struct{ Event json.RawMessage }
		json.Unmarshal(d.Body, &b)
		return string(b.Event)
	}(changed)
	originals := map[string]string{ // event id → its envelope
		touch.ID: string(touch.AppendJSON(nil)), temp.ID: string(temp.AppendJSON(nil)),
		battery.ID: string(battery.AppendJSON(nil)), otherTouch.ID: string(otherTouch.AppendJSON(nil)),
		changed.EventID: envelope,
	}
	f.clock.Advance(time.Hour)
	syncTime := f.clock.Now()

	tests := []struct {
		connector string
		want      map[string]map[string]string // event id → labels in its body
	}{
		{"c000000000000000000b", map[string]map[string]string{ // temperature only; labels room, name, missing
			temp.ID: {"name": "lab", "room": "c7"},
		}},
		{"c000000000000000000a", map[string]map[string]string{ // every event; labels name
			touch.ID: {"name": "lab"}, temp.ID: {"name": "lab"}, battery.ID: {"name": "lab"},
			changed.EventID: {"name": "lab"}, otherTouch.ID: {"name": "door"},
		}},
	}
	for _, tt := range tests {
		n, err := f.in.Sync(ctx, project, tt.connector)
		if err != nil {
			t.Fatalf("sync %s: %v", tt.connector, err)
		}
		got := f.dispatch.take()
		if n != len(tt.want) || len(got) != len(tt.want) {
			t.Errorf("sync %s: count %d, dispatched %d, want %d", tt.connector, n, len(got), len(tt.want))
		}
		for _, d := range got {
			labels, ok := tt.want[d.EventID]
			if !ok {
				t.Errorf("sync %s re-sent event %s (%s), which it should not", tt.connector, d.EventID, d.EventType)
				continue
			}
			b := decode(t, d.Body)
			var sent struct{ Event json.RawMessage }
			json.Unmarshal(d.Body, &sent)
			if string(sent.Event) != originals[d.EventID] {
				t.Errorf("sync %s: event\n got %s\nwant %s (the original envelope)", tt.connector, sent.Event, originals[d.EventID])
			}
			if d.ConnectorID != tt.connector {
				t.Errorf("sync %s sent %s to connector %s", tt.connector, d.EventID, d.ConnectorID)
			}
			if fmt.Sprint(b.Labels) != fmt.Sprint(labels) {
				t.Errorf("sync %s: %s carries labels %v, want the current %v", tt.connector, d.EventType, b.Labels, labels)
			}
			if !d.EventTime.Equal(syncTime) || !d.Due.Equal(syncTime.Add(time.Minute)) {
				t.Errorf("sync %s: event time %v, due %v; want the sync time %v and its lease", tt.connector, d.EventTime, d.Due, syncTime)
			}
		}
	}
	if sizes := f.queue.sizes(); len(sizes) != 2+6 {
		t.Errorf("%d Enqueues (%v), want one per publish and one per sync", len(sizes), sizes)
	}
}

func TestSyncRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLatestFixture(t, nil)
	f.publish(t, f.dev.ID, dcon.EventTemperature, `{"value":1}`)
	f.dispatch.take()
	noLatest, err := ingest.New(ingest.Config{Devices: f.db, Router: f.router, Queue: f.db, Dispatch: f.dispatch})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		in        *ingest.Ingester
		connector string
		code      string
	}{
		{"a disabled connector", f.in, "c000000000000000000c", dcon.EINVALID},
		{"a connector of another project", f.in, "c000000000000000000d", dcon.ENOTFOUND},
		{"an unknown connector", f.in, "c00000000000000000zz", dcon.ENOTFOUND},
		{"without a latest-event store", noLatest, "c000000000000000000a", dcon.EINTERNAL},
	}
	for _, tt := range tests {
		n, err := tt.in.Sync(ctx, project, tt.connector)
		if dcon.ErrorCode(err) != tt.code || n != 0 {
			t.Errorf("%s: %d, %v (code %q), want code %q", tt.name, n, err, dcon.ErrorCode(err), tt.code)
		}
	}
	if got := f.dispatch.take(); len(got) != 0 {
		t.Errorf("refused syncs dispatched %d deliveries", len(got))
	}
	if n, _ := f.db.Depth(ctx, "c000000000000000000c"); n != 0 {
		t.Errorf("the disabled connector has %d queued deliveries", n)
	}
}

// TestSyncPagesAndBatches: a connector made after the events catches up with
// every device, over several pages of devices, in batches of SyncBatch.
func TestSyncPagesAndBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLatestFixture(t, nil)
	const p = "big-project"
	const devices = dcon.MaxPageSize + 20 // two pages
	data := map[dcon.EventType]string{
		dcon.EventTemperature: `{"value":1}`, dcon.EventProbeWireStatus: `{"state":"TWO_WIRE"}`, dcon.EventTouch: `{}`,
		dcon.EventBatteryStatus: `{"percentage":50}`, dcon.EventNetworkStatus: `{"signalStrength":50,"rssi":-80}`,
	}
	var reqs []dcon.PublishRequest
	for i := range devices {
		dev := &dcon.Device{ProjectID: p, ID: fmt.Sprintf("emu%020d", i), Type: dcon.DeviceTemperature}
		if err := f.db.CreateDevice(ctx, dev); err != nil {
			t.Fatal(err)
		}
		for typ, d := range data {
			reqs = append(reqs, dcon.PublishRequest{DeviceID: dev.ID, Type: typ, Data: json.RawMessage(d)})
		}
	}
	for i, r := range f.in.PublishBatch(ctx, p, reqs) {
		if r.Err != nil {
			t.Fatalf("request %d: %v", i, r.Err)
		}
	}
	if got := f.dispatch.take(); len(got) != 0 {
		t.Fatalf("a project without connectors dispatched %d deliveries", len(got))
	}
	c := &dcon.Connector{ProjectID: p, ID: "c00000000000000000p1", Type: dcon.ConnectorHTTPPush, Status: dcon.StatusActive,
		HTTP: dcon.HTTPConfig{URL: "https://example.com/"}}
	if err := f.router.CreateConnector(ctx, c); err != nil {
		t.Fatal(err)
	}
	n, err := f.in.Sync(ctx, p, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := f.dispatch.take()
	ids := map[string]bool{}
	for _, d := range got {
		ids[d.EventID] = true
	}
	if want := devices * len(data); n != want || len(got) != want || len(ids) != want {
		t.Errorf("sync count %d, dispatched %d, distinct %d; want %d", n, len(got), len(ids), want)
	}
	if sizes := f.queue.sizes(); fmt.Sprint(sizes) != fmt.Sprint([]int{ingest.SyncBatch, devices*len(data) - ingest.SyncBatch}) {
		t.Errorf("Enqueue sizes %v, want batches of at most %d", sizes, ingest.SyncBatch)
	}
	if depth, _ := f.db.Depth(ctx, c.ID); depth != devices*len(data) {
		t.Errorf("depth %d, want %d", depth, devices*len(data))
	}
}
