package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"dcon"
	"dcon/internal/ingest"
	"dcon/internal/pebble"
)

const project = "c14u9p094l47cdv1o3pg"

var now = time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC)

// recorder is a Dispatcher that remembers what it was handed, and checks that
// every delivery was durable in the queue when it was.
type recorder struct {
	t     *testing.T
	queue dcon.Queue
	mu    sync.Mutex
	got   []dcon.Delivery
}

func (r *recorder) Dispatch(ds []dcon.Delivery) {
	for _, d := range ds {
		n, err := r.queue.Depth(context.Background(), d.ConnectorID)
		if err != nil || n == 0 {
			r.t.Errorf("delivery %s/%s handed off before it was in the queue (depth %d, err %v)", d.ConnectorID, d.EventID, n, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ds...)
}

func (r *recorder) take() []dcon.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// failingQueue refuses every Enqueue, as a full or broken disk would.
type failingQueue struct{ dcon.Queue }

func (failingQueue) Enqueue(context.Context, []dcon.Delivery) error { return errors.New("disk full") }

type fixture struct {
	db       *pebble.DB
	router   *ingest.Router
	in       *ingest.Ingester
	dispatch *recorder
	dev      *dcon.Device
}

func newFixture(t *testing.T, queue func(*pebble.DB) dcon.Queue) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q := dcon.Queue(db)
	if queue != nil {
		q = queue(db)
	}
	f := &fixture{db: db, dispatch: &recorder{t: t, queue: db}}
	for _, c := range []*dcon.Connector{
		{ID: "c000000000000000000a", Events: nil, Labels: []string{"name"}},
		{ID: "c000000000000000000b", Events: []dcon.EventType{dcon.EventTemperature}, Labels: []string{"room", "name", "missing"}},
		{ID: "c000000000000000000c", Status: dcon.StatusUserDisabled},
		{ID: "c000000000000000000d", ProjectID: "another-project"},
	} {
		if c.ProjectID == "" {
			c.ProjectID = project
		}
		if c.Status == "" {
			c.Status = dcon.StatusActive
		}
		c.Type = dcon.ConnectorHTTPPush
		c.HTTP.URL = "https://example.com/" + c.ID
		if err := db.CreateConnector(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	f.router, err = ingest.NewRouter(ctx, db, db)
	if err != nil {
		t.Fatal(err)
	}
	f.in, err = ingest.New(ingest.Config{Devices: db, Router: f.router, Queue: q, Dispatch: f.dispatch,
		Now: func() time.Time { return now }, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.dev = &dcon.Device{ProjectID: project, ID: "emuc17m6d7lq0bgk44smcqg", Type: dcon.DeviceTemperature,
		Labels: map[string]string{"name": "office", "room": "b12", dcon.LabelEmulated: ""}}
	if err := db.CreateDevice(ctx, f.dev); err != nil {
		t.Fatal(err)
	}
	return f
}

type body struct {
	Event struct {
		EventID    string          `json:"eventId"`
		TargetName string          `json:"targetName"`
		EventType  string          `json:"eventType"`
		Data       json.RawMessage `json:"data"`
		Timestamp  string          `json:"timestamp"`
	} `json:"event"`
	Labels   map[string]string `json:"labels"`
	Metadata map[string]string `json:"metadata"`
}

func decode(t *testing.T, b []byte) body {
	t.Helper()
	var v body
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, b)
	}
	return v
}

func byConnector(ds []dcon.Delivery) map[string]dcon.Delivery {
	m := make(map[string]dcon.Delivery)
	for _, d := range ds {
		m[d.ConnectorID] = d
	}
	return m
}

func TestPublishRoutesToActiveConnectorsThatWantTheEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	tests := []struct {
		eventType dcon.EventType
		data      string
		want      map[string]map[string]string // connector → labels in its body
	}{
		{dcon.EventTemperature, `{"value":21.5}`, map[string]map[string]string{
			"c000000000000000000a": {"name": "office"},
			"c000000000000000000b": {"name": "office", "room": "b12"},
		}},
		{dcon.EventTouch, `{}`, map[string]map[string]string{
			"c000000000000000000a": {"name": "office"},
		}},
	}
	for _, tt := range tests {
		ev, err := f.in.Publish(ctx, project, f.dev.ID, tt.eventType, json.RawMessage(tt.data))
		if err != nil {
			t.Fatalf("publish %s: %v", tt.eventType, err)
		}
		got := byConnector(f.dispatch.take())
		if len(got) != len(tt.want) {
			t.Errorf("%s went to %d connectors, want %d: %v", tt.eventType, len(got), len(tt.want), got)
		}
		for id, labels := range tt.want {
			d, ok := got[id]
			if !ok {
				t.Errorf("%s: connector %s got nothing", tt.eventType, id)
				continue
			}
			b := decode(t, d.Body)
			if b.Event.EventID != ev.ID || d.EventID != ev.ID || b.Event.EventType != string(tt.eventType) {
				t.Errorf("%s: delivery for %s carries event %s/%s, want %s", tt.eventType, id, b.Event.EventID, b.Event.EventType, ev.ID)
			}
			if fmt.Sprint(b.Labels) != fmt.Sprint(labels) {
				t.Errorf("%s: %s got labels %v, want %v", tt.eventType, id, b.Labels, labels)
			}
			if b.Metadata["projectId"] != project || b.Metadata["deviceType"] != "temperature" || b.Metadata["deviceId"] != f.dev.ID {
				t.Errorf("metadata = %v", b.Metadata)
			}
			if b.Event.Timestamp != "2026-11-25T12:00:00.123456Z" || !d.EventTime.Equal(now) {
				t.Errorf("timestamp = %s, event time %v", b.Event.Timestamp, d.EventTime)
			}
			if !d.Due.Equal(now.Add(time.Minute)) {
				t.Errorf("due = %v, want the lease %v", d.Due, now.Add(time.Minute))
			}
		}
	}
}

func TestPublishRefusesBadInputAndStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		device string
		typ    dcon.EventType
		data   string
		code   string
	}{
		{"unknown device", "emuc17m6d7lq0bgk44smcqx", dcon.EventTemperature, `{"value":1}`, dcon.ENOTFOUND},
		{"unknown event type", f.dev.ID, "smell", `{}`, dcon.EINVALID},
		{"labelsChanged", f.dev.ID, dcon.EventLabelsChanged, `{}`, dcon.EINVALID},
		{"type the device does not send", f.dev.ID, dcon.EventMotion, `{"state":"MOTION_DETECTED"}`, dcon.EINVALID},
		{"bad data", f.dev.ID, dcon.EventTemperature, `{"value":"hot"}`, dcon.EINVALID},
	}
	for _, tt := range tests {
		_, err := f.in.Publish(ctx, project, tt.device, tt.typ, json.RawMessage(tt.data))
		if dcon.ErrorCode(err) != tt.code {
			t.Errorf("%s: err = %v (code %q), want code %q", tt.name, err, dcon.ErrorCode(err), tt.code)
		}
	}
	if got := f.dispatch.take(); len(got) != 0 {
		t.Errorf("rejected publishes dispatched %d deliveries", len(got))
	}
	if n, _ := f.db.Depth(ctx, "c000000000000000000a"); n != 0 {
		t.Errorf("rejected publishes queued %d deliveries", n)
	}
}

func TestPublishFailsUnavailableWhenTheQueueCannotStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(db *pebble.DB) dcon.Queue { return failingQueue{db} })
	_, err := f.in.Publish(context.Background(), project, f.dev.ID, dcon.EventTouch, json.RawMessage(`{}`))
	if dcon.ErrorCode(err) != dcon.EUNAVAILABLE {
		t.Fatalf("err = %v, want code %s", err, dcon.EUNAVAILABLE)
	}
	if got := f.dispatch.take(); len(got) != 0 {
		t.Errorf("an event that was not stored was dispatched %d times", len(got))
	}
}

func TestSetDeviceLabelsPublishesLabelsChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	dev, err := f.in.SetDeviceLabels(ctx, project, f.dev.ID, map[string]string{"name": "lab", "floor": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dev.Labels[dcon.LabelEmulated]; !ok || dev.Labels["name"] != "lab" || len(dev.Labels) != 3 {
		t.Errorf("labels = %v, want name, floor and the emulator's label", dev.Labels)
	}
	stored, _ := f.db.Device(ctx, project, f.dev.ID)
	if fmt.Sprint(stored.Labels) != fmt.Sprint(dev.Labels) {
		t.Errorf("stored labels %v, returned %v", stored.Labels, dev.Labels)
	}
	got := byConnector(f.dispatch.take())
	d, ok := got["c000000000000000000a"]
	if len(got) != 1 || !ok {
		t.Fatalf("labelsChanged went to %v, want only the connector taking every event", got)
	}
	b := decode(t, d.Body)
	if b.Event.EventType != "labelsChanged" || b.Labels["name"] != "lab" {
		t.Errorf("event %s with labels %v, want labelsChanged with the new labels", b.Event.EventType, b.Labels)
	}
	var change struct {
		Added, Modified map[string]string
		Removed         []string
	}
	if err := json.Unmarshal(b.Event.Data, &change); err != nil {
		t.Fatal(err)
	}
	if change.Added["floor"] != "2" || change.Modified["name"] != "lab" || fmt.Sprint(change.Removed) != "[room]" {
		t.Errorf("change = %+v", change)
	}

	if _, err := f.in.SetDeviceLabels(ctx, project, f.dev.ID, map[string]string{"name": "lab", "floor": "2"}); err != nil {
		t.Fatal(err)
	}
	if got := f.dispatch.take(); len(got) != 0 {
		t.Errorf("setting the same labels published %d deliveries, want none", len(got))
	}
}

func TestRouterDropsQueuesOfDisabledAndDeletedConnectors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil)
	publish := func() {
		t.Helper()
		if _, err := f.in.Publish(ctx, project, f.dev.ID, dcon.EventTemperature, json.RawMessage(`{"value":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	depth := func(id string) int {
		n, err := f.db.Depth(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	publish()
	publish()
	if depth("c000000000000000000a") != 2 {
		t.Fatalf("depth = %d, want 2", depth("c000000000000000000a"))
	}
	c, _ := f.router.Connector(ctx, project, "c000000000000000000a")
	c.Status = dcon.StatusUserDisabled
	if err := f.router.UpdateConnector(ctx, c); err != nil {
		t.Fatal(err)
	}
	if depth("c000000000000000000a") != 0 {
		t.Errorf("disabling kept %d queued deliveries", depth("c000000000000000000a"))
	}
	f.dispatch.take()
	publish()
	if got := byConnector(f.dispatch.take()); len(got) != 1 {
		t.Errorf("with a disabled connector, the event went to %d connectors, want 1", len(got))
	}
	c.Status = dcon.StatusActive
	if err := f.router.UpdateConnector(ctx, c); err != nil {
		t.Fatal(err)
	}
	if depth("c000000000000000000a") != 0 {
		t.Errorf("re-enabling backfilled %d deliveries", depth("c000000000000000000a"))
	}
	if depth("c000000000000000000b") != 3 {
		t.Errorf("the other connector's queue holds %d, want 3", depth("c000000000000000000b"))
	}
	if err := f.router.DeleteConnector(ctx, project, "c000000000000000000b"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.router.Lookup("c000000000000000000b"); ok || depth("c000000000000000000b") != 0 {
		t.Errorf("a deleted connector is still routed to or queued for")
	}
}

// BenchmarkRoute measures routing and rendering one event: the event envelope
// once, then one body per connector.
func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("connectors=%d", n), func(b *testing.B) {
			ctx := context.Background()
			db, err := pebble.Open(b.TempDir(), pebble.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for i := range n {
				c := &dcon.Connector{ProjectID: project, ID: fmt.Sprintf("c%019d", i), Type: dcon.ConnectorHTTPPush,
					Status: dcon.StatusActive, Labels: []string{"name", "room"}, HTTP: dcon.HTTPConfig{URL: "https://example.com/"}}
				if err := db.CreateConnector(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			router, err := ingest.NewRouter(ctx, db, db)
			if err != nil {
				b.Fatal(err)
			}
			in, err := ingest.New(ingest.Config{Devices: db, Router: router, Queue: db, Dispatch: &recorder{}})
			if err != nil {
				b.Fatal(err)
			}
			dev := &dcon.Device{ProjectID: project, ID: "emuc17m6d7lq0bgk44smcqg", Type: dcon.DeviceTemperature,
				Labels: map[string]string{"name": "office", "room": "b12", "virtual-sensor": ""}}
			ev := &dcon.Event{ID: "c82gg9catj3vmh4248og", TargetName: dev.Name(), Type: dcon.EventTemperature, Timestamp: now,
				Data: []byte(`{"temperature":{"value":21.5,"isBackfilled":false,"samples":[{"value":21.5,"sampleTime":"2026-11-25T12:00:00.123456Z"}],"updateTime":"2026-11-25T12:00:00.123456Z"}}`)}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if ds := in.Route(ev, dev, now); len(ds) != n {
					b.Fatalf("routed to %d", len(ds))
				}
			}
		})
	}
}
