package pebble

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
)

// TestEnqueueEventsOneDurableCommit: the latest events and the deliveries of
// a publish are one synced commit; both survive a crash, the deliveries are
// counted and claimable.
func TestEnqueueEventsOneDurableCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const dev = "emud0000000000000000001"
	db := memHarness{}.Open(t).(*DB)
	evs := []dcon.DeviceEvent{{DeviceID: dev, Event: testEvent("e1", dcon.EventTouch, `{"touch":{}}`, base)}}
	ds := []dcon.Delivery{testDelivery("c1", "e1", base), testDelivery("c2", "e1", base)}
	if err := db.EnqueueEvents(ctx, "p1", evs, ds); err != nil {
		t.Fatal(err)
	}
	if st, err := db.QueueStats(ctx, "c1"); err != nil || st.Depth != 1 {
		t.Errorf("QueueStats(c1) = %+v, %v; want depth 1", st, err)
	}
	db = memHarness{}.Crash(t, db).(*DB)
	wantLatest(t, db, "p1", dev, "e1")
	for _, c := range []string{"c1", "c2"} {
		if n, err := db.Depth(ctx, c); err != nil || n != 1 {
			t.Errorf("Depth(%s) after a crash = %d, %v; want 1", c, n, err)
		}
	}
	got, err := db.Claim(ctx, base.Add(time.Hour), base.Add(2*time.Hour), 10)
	if err != nil || len(got) != 2 {
		t.Errorf("Claim after a crash = %d deliveries, %v; want 2", len(got), err)
	}
}

// TestEnqueueEventsWithoutDeliveries: events that no connector takes are
// recorded as latest events without a sync of their own, as PutLatest.
func TestEnqueueEventsWithoutDeliveries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const dev = "emud0000000000000000001"
	db := memHarness{}.Open(t).(*DB)
	evs := []dcon.DeviceEvent{{DeviceID: dev, Event: testEvent("e1", dcon.EventTouch, `{}`, base)}}
	if err := db.EnqueueEvents(ctx, "p1", evs, nil); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, db, "p1", dev, "e1")
	if err := db.EnqueueEvents(ctx, "p1", nil, nil); err != nil {
		t.Errorf("EnqueueEvents of nothing: %v", err)
	}
}

// TestEnqueueEventsRefusesBadNames: nothing is written when an id cannot be
// part of a key.
func TestEnqueueEventsRefusesBadNames(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	good := []dcon.DeviceEvent{{DeviceID: "d1", Event: testEvent("e1", dcon.EventTouch, `{}`, base)}}
	for name, tc := range map[string]struct {
		evs []dcon.DeviceEvent
		ds  []dcon.Delivery
	}{
		"device": {evs: []dcon.DeviceEvent{{DeviceID: "a/b", Event: testEvent("e1", dcon.EventTouch, `{}`, base)}}},
		"event":  {evs: good, ds: []dcon.Delivery{testDelivery("c1", "e/1", base)}},
	} {
		if err := db.EnqueueEvents(ctx, "p1", tc.evs, tc.ds); dcon.ErrorCode(err) != dcon.EINVALID {
			t.Errorf("%s: err %v, want EINVALID", name, err)
		}
	}
	wantLatest(t, db, "p1", "d1")
	if n, _ := db.Depth(ctx, "c1"); n != 0 {
		t.Errorf("Depth = %d, want 0", n)
	}
}

// TestLatestLen: the value length that EnqueueEvents reserves is the length
// appendLatest writes.
func TestLatestLen(t *testing.T) {
	t.Parallel()
	for _, ev := range []*dcon.Event{
		testEvent("", dcon.EventTouch, ``, time.Time{}),
		testEvent("c0ffee0000000000beef", dcon.EventTemperature, `{"temperature":{"value":21.5}}`, base),
		testEvent(string(make([]byte, 300)), dcon.EventTouch, string(make([]byte, 20000)), base.Add(-100*365*24*time.Hour)),
	} {
		if got, want := latestLen(ev), len(appendLatest(nil, ev)); got != want {
			t.Errorf("latestLen(%q…) = %d, want %d", ev.ID[:min(len(ev.ID), 8)], got, want)
		}
	}
}

// TestConfigCache: reads of projects and devices are served from memory
// and see every write: update, delete, re-create; a read never hands out
// the cached value itself.
func TestConfigCache(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	p := &dcon.Project{ID: "p1", DisplayName: "one"}
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	d := &dcon.Device{ProjectID: "p1", ID: "d1", Type: dcon.DeviceTouch, Labels: map[string]string{"k": "v1"}}
	if err := db.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	read := func(want string) {
		t.Helper()
		for range 2 { // the second read comes from the cache
			got, err := db.Device(ctx, "p1", "d1")
			if want == "" {
				if dcon.ErrorCode(err) != dcon.ENOTFOUND {
					t.Errorf("Device: %v, %v; want ENOTFOUND", got, err)
				}
				continue
			}
			if err != nil || got.Labels["k"] != want {
				t.Fatalf("Device: %+v, %v; want label %q", got, err, want)
			}
			got.Labels["k"] = "scribbled" // the caller's copy
		}
	}
	read("v1")
	d.Labels = map[string]string{"k": "v2"}
	if err := db.UpdateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	read("v2")
	if err := db.DeleteDevice(ctx, "p1", "d1"); err != nil {
		t.Fatal(err)
	}
	read("")
	d.Labels = map[string]string{"k": "v3"}
	if err := db.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	read("v3")

	for range 2 {
		if got, err := db.Project(ctx, "p1"); err != nil || got.DisplayName != "one" {
			t.Fatalf("Project: %+v, %v", got, err)
		}
	}
	p.DisplayName = "two"
	if err := db.UpdateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Project(ctx, "p1"); err != nil || got.DisplayName != "two" {
		t.Errorf("Project after update: %+v, %v", got, err)
	}
	if err := db.DeleteDevice(ctx, "p1", "d1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteProject(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Project(ctx, "p1"); dcon.ErrorCode(err) != dcon.ENOTFOUND {
		t.Errorf("Project after delete: %+v, %v; want ENOTFOUND", got, err)
	}
}

// TestConfigCacheBoundedAndStaleFill: the cache holds at most its size, and
// a read that began before a write does not fill it with what it read.
func TestConfigCacheBoundedAndStaleFill(t *testing.T) {
	t.Parallel()
	c := newConfigCache(2)
	for _, k := range []string{"a", "b", "c"} {
		_, gen, _ := c.lookup([]byte(k))
		c.fill([]byte(k), k, gen)
	}
	if len(c.m) != 2 {
		t.Errorf("%d entries, want 2", len(c.m))
	}
	_, gen, _ := c.lookup([]byte("d"))
	c.drop([]byte("d")) // a write of d commits while the read is under way
	c.fill([]byte("d"), "old", gen)
	if v, _, ok := c.lookup([]byte("d")); ok {
		t.Errorf("a stale read filled the cache with %v", v)
	}
}

// TestBatchSizeCoversTheBatch: the size EnqueueEvents allocates holds the
// whole batch, so that it never grows.
func TestBatchSizeCoversTheBatch(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	e := db.db.cur.Load()
	evs := []dcon.DeviceEvent{
		{DeviceID: "d1", Event: testEvent("e1", dcon.EventTemperature, `{"temperature":{"value":21.5}}`, base)},
		{DeviceID: "d2", Event: testEvent("e2", dcon.EventTouch, `{"touch":{}}`, base)},
	}
	ds := []dcon.Delivery{testDelivery("c1", "e1", base), testDelivery("c2", "e1", base), testDelivery("c1", "e2", base)}
	ds[0].Body = make([]byte, 20000)
	b := e.pdb.NewBatch()
	defer b.Close()
	if err := addLatest(b, "p1", evs); err != nil {
		t.Fatal(err)
	}
	if err := addDeliveries(b, ds); err != nil {
		t.Fatal(err)
	}
	if got, est := len(b.Repr()), batchSize("p1", evs, ds); got > est {
		t.Errorf("batch of %d bytes, batchSize %d", got, est)
	}
}
