package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"dcon"
	"dcon/internal/ingest"
	"dcon/internal/pebble"
)

func TestPublishBatchValidatesEachEventOnItsOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLatestFixture(t, nil)
	const unknown = "emuc17m6d7lq0bgk44smcqx"
	tests := []struct {
		name   string
		req    dcon.PublishRequest
		code   string // "" for a published event
		routed int    // deliveries of a published event
	}{
		{"temperature", dcon.PublishRequest{DeviceID: f.dev.ID, Type: dcon.EventTemperature, Data: json.RawMessage(`{"value":21.5}`)}, "", 2},
		{"unknown device", dcon.PublishRequest{DeviceID: unknown, Type: dcon.EventTouch, Data: json.RawMessage(`{}`)}, dcon.ENOTFOUND, 0},
		{"type the device does not send", dcon.PublishRequest{DeviceID: f.dev.ID, Type: dcon.EventMotion, Data: json.RawMessage(`{"state":"MOTION_DETECTED"}`)}, dcon.EINVALID, 0},
		{"bad data", dcon.PublishRequest{DeviceID: f.dev.ID, Type: dcon.EventBatteryStatus, Data: json.RawMessage(`{"percentage":101}`)}, dcon.EINVALID, 0},
		{"unknown event type", dcon.PublishRequest{DeviceID: f.dev.ID, Type: "smell", Data: json.RawMessage(`{}`)}, dcon.EINVALID, 0},
		{"labelsChanged", dcon.PublishRequest{DeviceID: f.dev.ID, Type: dcon.EventLabelsChanged, Data: json.RawMessage(`{}`)}, dcon.EINVALID, 0},
		{"unknown device again", dcon.PublishRequest{DeviceID: unknown, Type: dcon.EventTouch, Data: json.RawMessage(`{}`)}, dcon.ENOTFOUND, 0},
		{"touch", dcon.PublishRequest{DeviceID: f.dev.ID, Type: dcon.EventTouch, Data: json.RawMessage(`{}`)}, "", 1},
		{"a second touch", dcon.PublishRequest{DeviceID: f.dev.ID, Type: dcon.EventTouch, Data: json.RawMessage(`{}`)}, "", 1},
	}
	reqs := make([]dcon.PublishRequest, len(tests))
	for i, tt := range tests {
		reqs[i] = tt.req
	}
	results := f.in.PublishBatch(ctx, project, reqs)
	if len(results) != len(tests) {
		t.Fatalf("%d results for %d requests", len(results), len(tests))
	}
	routed := map[string]int{} // event id → deliveries
	for _, d := range f.dispatch.take() {
		routed[d.EventID]++
	}
	wantRouted := 0
	for i, tt := range tests {
		r := results[i]
		if dcon.ErrorCode(r.Err) != tt.code {
			t.Errorf("%d %s: err %v (code %q), want code %q", i, tt.name, r.Err, dcon.ErrorCode(r.Err), tt.code)
		}
		if tt.code != "" {
			if r.Event != nil {
				t.Errorf("%d %s: refused, yet has an event", i, tt.name)
			}
			continue
		}
		if r.Event == nil || r.Event.Type != tt.req.Type || r.Event.TargetName != f.dev.Name() {
			t.Errorf("%d %s: event %+v", i, tt.name, r.Event)
			continue
		}
		if routed[r.Event.ID] != tt.routed {
			t.Errorf("%d %s: %d deliveries, want %d", i, tt.name, routed[r.Event.ID], tt.routed)
		}
		wantRouted += tt.routed
	}
	if sizes := f.queue.sizes(); fmt.Sprint(sizes) != fmt.Sprint([]int{wantRouted}) {
		t.Errorf("Enqueue sizes %v, want one Enqueue of %d", sizes, wantRouted)
	}
	if f.devices.lookups[f.dev.ID] != 1 || f.devices.lookups[unknown] != 1 {
		t.Errorf("device lookups %v, want one per device", f.devices.lookups)
	}
	want := map[dcon.EventType]string{"temperature": results[0].Event.ID, "touch": results[8].Event.ID}
	if got := f.latestIDs(t, project, f.dev.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("latest = %v, want %v: the valid events, the last of each type", got, want)
	}
}

func TestPublishBatchFailsEveryValidEventWhenTheQueueCannotStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLatestFixture(t, func(db *pebble.DB) dcon.Queue { return failingQueue{db} })
	results := f.in.PublishBatch(ctx, project, []dcon.PublishRequest{
		{DeviceID: f.dev.ID, Type: dcon.EventTouch, Data: json.RawMessage(`{}`)},
		{DeviceID: f.dev.ID, Type: dcon.EventTemperature, Data: json.RawMessage(`{"value":"hot"}`)},
		{DeviceID: f.dev.ID, Type: dcon.EventTemperature, Data: json.RawMessage(`{"value":1}`)},
	})
	for i, code := range []string{dcon.EUNAVAILABLE, dcon.EINVALID, dcon.EUNAVAILABLE} {
		if r := results[i]; dcon.ErrorCode(r.Err) != code || r.Event != nil {
			t.Errorf("result %d: %+v (code %q), want code %q and no event", i, r, dcon.ErrorCode(r.Err), code)
		}
	}
	if got := f.dispatch.take(); len(got) != 0 {
		t.Errorf("events that were not stored were dispatched %d times", len(got))
	}
	if n, _ := f.db.Depth(ctx, "c000000000000000000a"); n != 0 {
		t.Errorf("depth %d, want 0", n)
	}
}

func TestPublishBatchOfNothing(t *testing.T) {
	t.Parallel()
	f := newLatestFixture(t, nil)
	if got := f.in.PublishBatch(context.Background(), project, nil); len(got) != 0 {
		t.Errorf("results %v, want none", got)
	}
	if sizes := f.queue.sizes(); len(sizes) != 0 {
		t.Errorf("an empty batch enqueued %v", sizes)
	}
}

// acker is a Dispatcher that acknowledges at once, as a fast endpoint would,
// so that a benchmark's queue does not grow.
type acker struct{ queue dcon.Queue }

func (a acker) Dispatch(ds []dcon.Delivery) {
	if err := a.queue.Ack(context.Background(), ds); err != nil {
		panic(err)
	}
}

// BenchmarkPublishBatch measures a bulk publish of 100 events, of 10 devices,
// to 2 connectors: validation, one latest-events write, routing, one synced
// Enqueue.
func BenchmarkPublishBatch(b *testing.B) {
	ctx := context.Background()
	db, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for i := range 2 {
		c := &dcon.Connector{ProjectID: project, ID: fmt.Sprintf("c%019d", i), Type: dcon.ConnectorHTTPPush,
			Status: dcon.StatusActive, Labels: []string{"name"}, HTTP: dcon.HTTPConfig{URL: "https://example.com/"}}
		if err := db.CreateConnector(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	router, err := ingest.NewRouter(ctx, db, db)
	if err != nil {
		b.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{Devices: db, Router: router, Queue: db, Dispatch: acker{db}, Latest: db})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]dcon.PublishRequest, 100)
	for i := range reqs {
		dev := fmt.Sprintf("emu%020d", i%10)
		if i < 10 {
			if err := db.CreateDevice(ctx, &dcon.Device{ProjectID: project, ID: dev, Type: dcon.DeviceTemperature,
				Labels: map[string]string{"name": dev}}); err != nil {
				b.Fatal(err)
			}
		}
		reqs[i] = dcon.PublishRequest{DeviceID: dev, Type: dcon.EventTemperature, Data: json.RawMessage(`{"value":21.5}`)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range in.PublishBatch(ctx, project, reqs) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
}
