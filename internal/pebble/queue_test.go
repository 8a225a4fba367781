package pebble

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
	"dcon/internal/queuetest"
)

// openDB opens a DB in dir that is closed when t ends.
func openDB(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// memHarness keeps each queue in Pebble's crashable in-memory file system: a
// crash keeps exactly what was synced.
type memHarness struct{}

func (memHarness) Open(t *testing.T) dcon.Queue {
	return openDB(t, "/db", Options{FS: vfs.NewCrashableMem()})
}

func (memHarness) Crash(t *testing.T, q dcon.Queue) dcon.Queue {
	db := q.(*DB)
	crashed := db.fs.(*vfs.MemFS).CrashClone(vfs.CrashCloneCfg{})
	// What the old DB writes while closing does not reach the clone.
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openDB(t, db.dir, Options{FS: crashed})
}

// diskHarness keeps each queue on disk; a crash is a close and a reopen.
type diskHarness struct{}

func (diskHarness) Open(t *testing.T) dcon.Queue { return openDB(t, t.TempDir(), Options{}) }

func (diskHarness) Crash(t *testing.T, q dcon.Queue) dcon.Queue {
	db := q.(*DB)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openDB(t, db.dir, Options{})
}

func TestConformanceCrashableMem(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, memHarness{})
}

func TestConformanceDisk(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, diskHarness{})
}

var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.UTC)

func testDelivery(c, e string, due time.Time) dcon.Delivery {
	return dcon.Delivery{
		ConnectorID: c, ProjectID: "p1", EventID: e, EventType: dcon.EventTouch,
		EventTime: base, Body: []byte(`{"event":{}}`), Due: due,
	}
}

// countKeys counts the keys that start with prefix.
func countKeys(t *testing.T, db *DB, prefix string) int {
	t.Helper()
	n, err := db.count(t.Context(), []byte(prefix))
	if err != nil {
		t.Fatalf("count %s: %v", prefix, err)
	}
	return n
}

func TestClaimDeletesStaleDueEntries(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	d := testDelivery("c1", "e1", base)
	if err := db.Enqueue(ctx, []dcon.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	d.Due = base.Add(time.Second)
	if err := db.Enqueue(ctx, []dcon.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, db, prefixDue); n != 2 {
		t.Fatalf("due entries after a replacing Enqueue: %d, want 2 (one stale)", n)
	}
	got, err := db.Claim(ctx, base.Add(time.Second), base.Add(time.Minute), 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim: %d deliveries, %v; want 1", len(got), err)
	}
	if n := countKeys(t, db, prefixDue); n != 1 {
		t.Errorf("due entries after Claim: %d, want 1 (the lease)", n)
	}
	if err := db.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, db, "q/"); n != 0 {
		t.Errorf("queue keys after Ack: %d, want 0", n)
	}
}

func TestClaimLowWaterMark(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	var ds []dcon.Delivery
	for i, e := range []string{"e1", "e2", "e3"} {
		ds = append(ds, testDelivery("c1", e, base.Add(time.Duration(i)*time.Second)))
	}
	if err := db.Enqueue(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if lw := db.db.cur.Load().lw.due; lw != zeroNanos {
		t.Fatalf("low-water after Open: %d, want the beginning", lw)
	}
	lease := base.Add(time.Hour)
	if _, err := db.Claim(ctx, base.Add(time.Minute), lease, 2); err != nil {
		t.Fatal(err)
	}
	if lw := db.db.cur.Load().lw.due; lw != nanos(ds[1].Due) {
		t.Errorf("low-water after a claim cut short: %v, want the last due taken %v", fromNanos(lw), ds[1].Due)
	}
	if _, err := db.Claim(ctx, base.Add(time.Minute), lease, 10); err != nil {
		t.Fatal(err)
	}
	if lw := db.db.cur.Load().lw.due; lw != nanos(base.Add(time.Minute)) {
		t.Errorf("low-water after a full claim: %v, want now", fromNanos(lw))
	}
	d := testDelivery("c1", "e4", base)
	if err := db.Enqueue(ctx, []dcon.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	if lw := db.db.cur.Load().lw.due; lw != nanos(base) {
		t.Errorf("low-water after an Enqueue behind it: %v, want %v", fromNanos(lw), base)
	}
}

func TestRetryDoesNotResurrect(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	d := testDelivery("c1", "e1", base)
	if err := db.Enqueue(ctx, []dcon.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Drop(ctx, "c1"); err != nil || n != 1 {
		t.Fatalf("Drop: %d, %v; want 1", n, err)
	}
	d.Attempts = 1
	if err := db.Retry(ctx, d, base); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if n := countKeys(t, db, prefixQueue); n != 0 {
		t.Errorf("records after a Retry of a dropped delivery: %d, want 0", n)
	}
}

func TestEnqueueInvalidIDs(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	for _, d := range []dcon.Delivery{
		testDelivery("", "e1", base),
		testDelivery("c1", "", base),
		testDelivery("c/1", "e1", base),
		testDelivery("c1", "e/1", base),
	} {
		err := db.Enqueue(t.Context(), []dcon.Delivery{testDelivery("c1", "ok", base), d})
		if code := dcon.ErrorCode(err); code != dcon.EINVALID {
			t.Errorf("Enqueue(%q, %q): code %q, want %q", d.ConnectorID, d.EventID, code, dcon.EINVALID)
		}
	}
	if n := countKeys(t, db, "q/"); n != 0 {
		t.Errorf("keys after failed Enqueues: %d, want 0", n)
	}
}

func TestDeleteConnectorDropsQueue(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	c := &dcon.Connector{ProjectID: "p1", ID: "c1", Type: dcon.ConnectorHTTPPush}
	other := &dcon.Connector{ProjectID: "p1", ID: "c2", Type: dcon.ConnectorHTTPPush}
	for _, c := range []*dcon.Connector{c, other} {
		if err := db.CreateConnector(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ds := []dcon.Delivery{testDelivery("c1", "e1", base), testDelivery("c1", "e2", base), testDelivery("c2", "e3", base)}
	if err := db.Enqueue(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := db.Expire(ctx, ds[:1], base); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteConnector(ctx, "p1", "c1"); err != nil {
		t.Fatalf("DeleteConnector: %v", err)
	}
	if n, _ := db.Depth(ctx, "c1"); n != 0 {
		t.Errorf("Depth of the deleted connector: %d, want 0", n)
	}
	if dls, _ := db.DeadLetters(ctx, "c1", 10); len(dls) != 0 {
		t.Errorf("dead letters of the deleted connector: %d, want 0", len(dls))
	}
	if n, _ := db.Depth(ctx, "c2"); n != 1 {
		t.Errorf("Depth of the other connector: %d, want 1", n)
	}
	got, err := db.Claim(ctx, base, base.Add(time.Minute), 10)
	if err != nil || len(got) != 1 || got[0].EventID != "e3" {
		t.Errorf("Claim after DeleteConnector: %+v, %v; want e3 only", got, err)
	}
}

// TestUnsyncedLostInCrash shows the crash harness really drops unsynced
// writes: an Ack (NoSync) is lost, an Expire (Sync) is not.
func TestUnsyncedLostInCrash(t *testing.T) {
	t.Parallel()
	db := memHarness{}.Open(t).(*DB)
	ctx := t.Context()
	ds := []dcon.Delivery{testDelivery("c1", "e1", base), testDelivery("c1", "e2", base)}
	if err := db.Enqueue(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := db.Ack(ctx, ds[:1]); err != nil {
		t.Fatal(err)
	}
	db = memHarness{}.Crash(t, db).(*DB)
	if n, _ := db.Depth(ctx, "c1"); n != 2 {
		t.Errorf("Depth after a crash: %d, want 2 (the unsynced Ack lost)", n)
	}
}
