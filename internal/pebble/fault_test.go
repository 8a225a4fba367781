package pebble

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"dcon"
)

// diskFault is a file system on the real disk whose writes, or only its
// syncs, fail while the fault is on.
type diskFault struct {
	on       atomic.Bool
	syncOnly bool
}

func (f *diskFault) MaybeError(op errorfs.Op) error {
	if !f.on.Load() || op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	sync := op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
	if f.syncOnly && !sync {
		return nil
	}
	return errorfs.ErrInjected
}

func (f *diskFault) String() string { return fmt.Sprintf("diskFault(syncOnly=%v)", f.syncOnly) }

// within runs f in a goroutine and fails the test if it has not returned
// after limit: a call stuck behind a failed commit.
func within(t *testing.T, what string, limit time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s: still running after %v", what, limit)
	}
}

// TestDiskFault makes the WAL's writes, or only its syncs, fail under
// concurrent enqueues, acks and claims: Pebble then panics in Batch.Commit.
// Every call must return (EUNAVAILABLE for what could not be written), later
// calls must answer EUNAVAILABLE at once, and when the fault clears the store
// must reopen by itself with everything that was acknowledged claimable —
// also after a crash and a reopen.
func TestDiskFault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		syncOnly bool
	}{
		{"write", false},
		{"sync", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			fault := &diskFault{syncOnly: tt.syncOnly}
			fs := errorfs.Wrap(vfs.Default, fault)
			log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			db, err := Open(dir, Options{FS: fs, Logger: log, RecoverEvery: 20 * time.Millisecond})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { _ = db.Close() })

			var mu sync.Mutex
			acked := map[string]bool{} // event ids whose Enqueue returned nil
			enqueue := func(id string) error {
				err := db.Enqueue(ctx, []dcon.Delivery{testDelivery("c1", id, base)})
				if err == nil {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
				return err
			}
			for i := range 50 {
				if err := enqueue(fmt.Sprintf("before%03d", i)); err != nil {
					t.Fatalf("Enqueue before the fault: %v", err)
				}
			}

			// The fault starts while 8 publishers enqueue, and the engine
			// claims and acks.
			var refused atomic.Int64
			var wg sync.WaitGroup
			for p := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 40 {
						err := enqueue(fmt.Sprintf("during%d-%03d", p, i))
						switch code := dcon.ErrorCode(err); code {
						case "":
						case dcon.EUNAVAILABLE:
							refused.Add(1)
						default:
							t.Errorf("Enqueue during the fault: %v (code %q), want EUNAVAILABLE", err, code)
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 40 {
					ds, err := db.Claim(ctx, base.Add(-time.Hour), base.Add(-time.Minute), 10) // claims nothing
					if err == nil && len(ds) > 0 {
						t.Errorf("Claim took %d deliveries not yet due", len(ds))
					}
					_ = db.Ack(ctx, []dcon.Delivery{testDelivery("c2", "nothing", base)})
				}
			}()
			time.Sleep(time.Millisecond)
			fault.on.Store(true)
			within(t, "publishers and engine during the fault", 30*time.Second, wg.Wait)

			// Until the fault clears, every write is refused, at once.
			within(t, "an enqueue after the failure", 30*time.Second, func() {
				for enqueue("probe") == nil {
					time.Sleep(time.Millisecond)
				}
			})
			for _, call := range []struct {
				name string
				f    func() error
			}{
				{"Enqueue", func() error { return enqueue("refused") }},
				{"Ack", func() error { return db.Ack(ctx, []dcon.Delivery{testDelivery("c1", "before000", base)}) }},
				{"Retry", func() error { return db.Retry(ctx, testDelivery("c1", "before000", base), base) }},
				{"Claim", func() error { _, err := db.Claim(ctx, base, base.Add(time.Minute), 10); return err }},
			} {
				start := time.Now()
				err := call.f()
				if code := dcon.ErrorCode(err); code != dcon.EUNAVAILABLE {
					t.Errorf("%s while failed: %v (code %q), want EUNAVAILABLE", call.name, err, code)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("%s while failed took %v, want an answer at once", call.name, d)
				}
			}
			t.Logf("refused during the fault: %d", refused.Load())

			// The fault clears: the store reopens by itself.
			fault.on.Store(false)
			within(t, "recovery", 30*time.Second, func() {
				for enqueue("after000") != nil {
					time.Sleep(5 * time.Millisecond)
				}
			})
			for i := 1; i < 20; i++ {
				if err := enqueue(fmt.Sprintf("after%03d", i)); err != nil {
					t.Fatalf("Enqueue after recovery: %v", err)
				}
			}
			mu.Lock()
			want := len(acked)
			mu.Unlock()

			checkClaimable := func(db *DB, now time.Time) {
				t.Helper()
				got := map[string]bool{}
				for {
					ds, err := db.Claim(ctx, now, now.Add(time.Hour), 100)
					if err != nil {
						t.Fatalf("Claim: %v", err)
					}
					if len(ds) == 0 {
						break
					}
					for _, d := range ds {
						got[d.EventID] = true
					}
				}
				for id := range acked {
					if !got[id] {
						t.Errorf("acknowledged delivery %s is not claimable", id)
					}
				}
			}
			checkClaimable(db, base)

			// A crash (close) and a reopen keep them all.
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			db2 := openDB(t, dir, Options{})
			checkClaimable(db2, base.Add(2*time.Hour))
			t.Logf("%d acknowledged deliveries claimable after recovery and after a reopen", want)
		})
	}
}
