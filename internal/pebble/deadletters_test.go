package pebble

import (
	"testing"
	"time"

	"dcon"
	"dcon/internal/queuetest"
)

func TestDeadLetterConformanceCrashableMem(t *testing.T) {
	t.Parallel()
	queuetest.RunDeadLetters(t, memHarness{})
}

func TestDeadLetterConformanceDisk(t *testing.T) {
	t.Parallel()
	queuetest.RunDeadLetters(t, diskHarness{})
}

// TestPurgeKeepsOtherKeys checks that a purge's range deletions stay within
// the dead letters of each connector: queued deliveries and another
// connector whose id extends the first's are untouched.
func TestPurgeKeepsOtherKeys(t *testing.T) {
	t.Parallel()
	db := openDB(t, t.TempDir(), Options{})
	ctx := t.Context()
	now := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	mk := func(c, e string) dcon.Delivery {
		return dcon.Delivery{ConnectorID: c, ProjectID: "p", EventID: e, EventType: dcon.EventTouch,
			EventTime: now, Body: []byte("{}"), Due: now}
	}
	ds := []dcon.Delivery{mk("c1", "e1"), mk("c10", "e2"), mk("c1", "e3")}
	if err := db.Enqueue(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := db.Expire(ctx, ds[:2], now); err != nil {
		t.Fatal(err)
	}
	if err := db.PurgeDeadLetters(ctx, now.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"c1", "c10"} {
		if dls, err := db.DeadLetters(ctx, c, 10); err != nil || len(dls) != 0 {
			t.Errorf("%s: dead letters after the purge: %v, %v", c, dls, err)
		}
	}
	if n, err := db.Depth(ctx, "c1"); err != nil || n != 1 {
		t.Errorf("Depth(c1) = %d, %v; want 1", n, err)
	}
}
