package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
)

func testEvent(id string, t dcon.EventType, data string, ts time.Time) *dcon.Event {
	return &dcon.Event{ID: id, Type: t, Data: []byte(data), Timestamp: ts}
}

// wantLatest checks a device's latest events: their ids, in event-type order.
func wantLatest(t *testing.T, db *DB, project, device string, ids ...string) []*dcon.Event {
	t.Helper()
	got, err := db.LatestEvents(t.Context(), project, device)
	if err != nil {
		t.Fatalf("LatestEvents(%s, %s): %v", project, device, err)
	}
	var gotIDs []string
	for _, ev := range got {
		gotIDs = append(gotIDs, ev.ID)
	}
	if fmt.Sprint(gotIDs) != fmt.Sprint(ids) {
		t.Errorf("latest events of %s/%s: %v, want %v", project, device, gotIDs, ids)
	}
	return got
}

func TestLatestEventsOnePerTypeNewestWins(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	const dev, other = "emud0000000000000000001", "emud0000000000000000002"
	put := func(project string, evs ...dcon.DeviceEvent) {
		t.Helper()
		if err := db.PutLatest(ctx, project, evs); err != nil {
			t.Fatalf("PutLatest: %v", err)
		}
	}
	wantLatest(t, db, "p1", dev) // nothing yet, and no error

	put("p1",
		dcon.DeviceEvent{DeviceID: dev, Event: testEvent("e1", dcon.EventTemperature, `{"temperature":{"value":1}}`, base)},
		dcon.DeviceEvent{DeviceID: dev, Event: testEvent("e2", dcon.EventTouch, `{"touch":{}}`, base)},
		dcon.DeviceEvent{DeviceID: dev, Event: testEvent("e3", dcon.EventTemperature, `{"temperature":{"value":3}}`, base)}, // the last of its type wins
		dcon.DeviceEvent{DeviceID: other, Event: testEvent("e4", dcon.EventTouch, `{"touch":{}}`, base)},
	)
	put("p10", dcon.DeviceEvent{DeviceID: dev, Event: testEvent("e5", dcon.EventTouch, `{"touch":{}}`, base)})
	wantLatest(t, db, "p1", dev, "e3", "e2") // temperature < touch
	wantLatest(t, db, "p1", other, "e4")
	wantLatest(t, db, "p10", dev, "e5")

	ts := base.Add(time.Second)
	put("p1", dcon.DeviceEvent{DeviceID: dev, Event: testEvent("e6", dcon.EventTouch, `{"touch":{"updateTime":"x"}}`, ts)})
	got := wantLatest(t, db, "p1", dev, "e3", "e6")
	want := &dcon.Event{ID: "e6", TargetName: "projects/p1/devices/" + dev, Type: dcon.EventTouch,
		Data: []byte(`{"touch":{"updateTime":"x"}}`), Timestamp: ts}
	if ev := got[1]; ev.ID != want.ID || ev.TargetName != want.TargetName || ev.Type != want.Type ||
		!bytes.Equal(ev.Data, want.Data) || !ev.Timestamp.Equal(want.Timestamp) || ev.Timestamp.Location() != time.UTC {
		t.Errorf("latest touch = %+v, want %+v", ev, want)
	}

	if err := db.DeleteLatest(ctx, "p1", dev); err != nil {
		t.Fatalf("DeleteLatest: %v", err)
	}
	wantLatest(t, db, "p1", dev)
	wantLatest(t, db, "p1", other, "e4")
	wantLatest(t, db, "p10", dev, "e5")
	if err := db.DeleteLatest(ctx, "p1", dev); err != nil {
		t.Errorf("DeleteLatest of a device without events: %v", err)
	}
}

func TestLatestEventsRefuseBadNames(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	ev := testEvent("e1", dcon.EventTouch, `{}`, base)
	tests := []struct {
		name            string
		project, device string
		typ             dcon.EventType
		putOnly         bool
	}{
		{name: "empty project", project: "", device: "d1", typ: dcon.EventTouch},
		{name: "slash in device", project: "p1", device: "d/1", typ: dcon.EventTouch},
		{name: "slash in type", project: "p1", device: "d1", typ: "a/b", putOnly: true},
	}
	for _, tt := range tests {
		e := *ev
		e.Type = tt.typ
		wantCode(t, tt.name+": PutLatest", db.PutLatest(ctx, tt.project, []dcon.DeviceEvent{{DeviceID: tt.device, Event: &e}}), dcon.EINVALID)
		if tt.putOnly {
			continue
		}
		_, err := db.LatestEvents(ctx, tt.project, tt.device)
		wantCode(t, tt.name+": LatestEvents", err, dcon.EINVALID)
		wantCode(t, tt.name+": DeleteLatest", db.DeleteLatest(ctx, tt.project, tt.device), dcon.EINVALID)
	}
	if n := countKeys(t, db, prefixLatest); n != 0 {
		t.Errorf("refused writes left %d keys", n)
	}
}

// TestLatestEventsDurableWithTheNextEnqueue: PutLatest does not sync, but the
// Enqueue that follows it does, and its sync covers the earlier write.
func TestLatestEventsDurableWithTheNextEnqueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const dev = "emud0000000000000000001"
	put := func(db *DB, id string) {
		t.Helper()
		if err := db.PutLatest(ctx, "p1", []dcon.DeviceEvent{{DeviceID: dev, Event: testEvent(id, dcon.EventTouch, `{}`, base)}}); err != nil {
			t.Fatal(err)
		}
	}

	db := memHarness{}.Open(t).(*DB)
	put(db, "lost")
	db = memHarness{}.Crash(t, db).(*DB)
	wantLatest(t, db, "p1", dev) // the harness drops unsynced writes

	put(db, "kept")
	if err := db.Enqueue(ctx, []dcon.Delivery{testDelivery("c1", "kept", base)}); err != nil {
		t.Fatal(err)
	}
	db = memHarness{}.Crash(t, db).(*DB)
	wantLatest(t, db, "p1", dev, "kept")
}

func TestDecodeLatestRefusesCorruptValues(t *testing.T) {
	t.Parallel()
	good := appendLatest(nil, testEvent("e1", dcon.EventTouch, `{"touch":{}}`, base))
	tests := []struct {
		name string
		val  []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{2}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"length past the end", []byte{latestVersion, 100}},
	}
	for _, tt := range tests {
		if _, err := decodeLatest(tt.val, "p1", "d1", dcon.EventTouch); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err = %v, want errCorrupt", tt.name, err)
		}
	}
	ev, err := decodeLatest(good, "p1", "d1", dcon.EventTouch)
	if err != nil || ev.ID != "e1" || string(ev.Data) != `{"touch":{}}` || !ev.Timestamp.Equal(base) {
		t.Errorf("decode of a good value = %+v, %v", ev, err)
	}
}

func TestDeleteDeviceForgetsItsLatestEvents(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	const dev = "emud0000000000000000001"
	if err := db.CreateDevice(ctx, &dcon.Device{ProjectID: "p1", ID: dev, Type: dcon.DeviceTouch}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutLatest(ctx, "p1", []dcon.DeviceEvent{{DeviceID: dev, Event: testEvent("e1", dcon.EventTouch, `{"touch":{}}`, base)}}); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, db, "p1", dev, "e1")
	if err := db.DeleteDevice(ctx, "p1", dev); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, db, "p1", dev)
}
