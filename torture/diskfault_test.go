package torture

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDiskFaults makes the store's writes, or only its syncs, fail while
// events are published (--test-disk-fault-file, Pebble's errorfs). Publishers
// must be refused (503), never acknowledged for what is not on disk, and
// answered; dcon must keep running and, when the fault clears, recover by
// itself (internal/pebble reopens its store); and whatever was acknowledged,
// before or after, must arrive.
func TestDiskFaults(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	for _, kind := range []string{"write", "sync"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			fault := filepath.Join(t.TempDir(), "fault")
			srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t), "--test-disk-fault-file", fault,
				"--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "warn")
			srv.start()
			c := newClient(t, srv)
			c.connector(rc.tagURL("ok"))
			dev := c.device("temperature")
			l := newLedger()
			stop := publishers(c, l, 2, 20, dev, "temperature", func(i int) any { return map[string]any{"value": i} })
			waitUntil(t, "load", time.Minute, func() bool { return l.count() >= 200 })

			if err := os.WriteFile(fault, []byte(kind), 0o600); err != nil {
				t.Fatal(err)
			}
			refused, unreached, during := l.refused.Load(), l.unreached.Load(), l.count()
			time.Sleep(pick(lv, 2*time.Second, 10*time.Second)) // the fault lasts
			if err := os.Remove(fault); err != nil {
				t.Fatal(err)
			}
			faultRefused := l.refused.Load() - refused
			t.Logf("%s fault: publishes refused (503) %d, unanswered %d; acknowledged during the fault %d",
				kind, faultRefused, l.unreached.Load()-unreached, l.count()-during)
			if l.refused.Load() == refused {
				t.Errorf("%s fault: no publish was refused with 503 (%d got no answer)", kind, l.unreached.Load()-unreached)
			}
			if n := l.unreached.Load() - unreached; n > 0 {
				t.Errorf("%s fault: %d publishes got no answer, want 503", kind, n)
			}

			recovered := l.count() + 50
			deadline := time.Now().Add(pick(lv, 10*time.Second, 30*time.Second))
			for l.count() < recovered && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if exited, exitErr := srv.exited(); exited {
				t.Fatalf("%s fault: dcon exited: %v", kind, exitErr)
			}
			if l.count() < recovered {
				t.Fatalf("%s fault: dcon did not recover within %v of the fault clearing", kind, pick(lv, 10*time.Second, 30*time.Second))
			}
			stop()
			ty := rc.waitDelivered(t, "ok", l.snapshot(), 2*time.Minute)
			t.Logf("%s fault: %s", kind, ty)
			report(t, figures{
				scenario:   "disk faults (" + kind + ")",
				published:  fmt.Sprintf("%d, %d refused (503) during the fault", ty.acked, faultRefused),
				crashes:    "none: reopened in-process",
				lost:       fmt.Sprint(ty.lost),
				duplicates: fmt.Sprint(ty.duplicates),
				time:       fmt.Sprintf("%v fault", pick(lv, 2*time.Second, 10*time.Second)),
			})
		})
	}
}

// TestCorruptDataDirectory starts dcon on a data directory that was damaged
// while it was stopped: it must refuse to start with a clear error naming the
// store, not panic.
func TestCorruptDataDirectory(t *testing.T) {
	suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"truncated MANIFEST", func(t *testing.T, dir string) { truncate(t, glob(t, dir, "MANIFEST-*"), 10) }},
		{"garbage in MANIFEST", func(t *testing.T, dir string) { scribble(t, glob(t, dir, "MANIFEST-*")) }},
		{"MANIFEST missing", func(t *testing.T, dir string) {
			if err := os.Remove(glob(t, dir, "MANIFEST-*")); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage in OPTIONS", func(t *testing.T, dir string) { scribble(t, glob(t, dir, "OPTIONS-*")) }},
		{"a data directory that is a file", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			srv := newServer(t, bin, "--data", dir, "--log-level", "warn")
			srv.start()
			c := newClient(t, srv)
			c.device("touch")
			if _, err := srv.stop(30 * time.Second); err != nil {
				t.Fatalf("stop: %v", err)
			}
			tt.damage(t, dir)
			srv.stderr = &tail{}
			err := srv.tryStart()
			out := srv.stderr.String()
			if err == nil {
				t.Fatalf("dcon started on a damaged data directory")
			}
			if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
				t.Errorf("dcon panicked on a damaged data directory:\n%s", out)
			}
			if !strings.Contains(out, dir) && !strings.Contains(out, "store") {
				t.Errorf("the error does not name the store or the directory:\n%s", out)
			}
			t.Logf("%s: %s", tt.name, strings.TrimSpace(out))
		})
	}
}

func glob(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) == 0 {
		t.Fatalf("no %s in %s", pattern, dir)
	}
	return m[len(m)-1]
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// scribble overwrites the middle of a file with garbage.
func scribble(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 4; i < len(b)*3/4; i++ {
		b[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
