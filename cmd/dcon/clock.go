package main

import (
	"os"
	"strings"
	"sync"
	"time"
)

// stableClock is dcon's running clock: it reads the wall clock once, when
// dcon starts, and from then on advances by Go's monotonic clock. The
// delivery engine, ingest and the statistics all read it, so event
// timestamps, leases, retry times and expiry deadlines are on one timeline
// that a step of the wall clock does not move: when NTP or an operator sets
// the system clock back an hour, a retry due in a second is still due in a
// second (on the wall clock it would wait an hour more), and when it is set
// forward an hour, no event expires an hour early.
//
// The trade-offs: a process keeps the offset between the two clocks that it
// started with, so after a step its event timestamps are off by the step
// until it restarts (NTP slewing, which adjusts the rate rather than
// stepping, still applies, since it also slews the monotonic clock); and a
// restart re-reads the wall clock, so a step that happened while dcon ran
// takes effect then, for the queue on disk too (retries recorded by the
// previous process are due on its timeline).
type stableClock struct {
	mono  time.Time // when it started, with its monotonic reading
	start time.Time // the wall clock then, without one
}

// newStableClock starts a stable clock at wall, a reading of the wall clock.
func newStableClock(wall time.Time) *stableClock {
	return &stableClock{mono: time.Now(), start: wall.Round(0)}
}

// Now returns the wall clock read at start plus the monotonic time since.
// The time it returns has no monotonic reading, so that it compares with
// times read back from the store on the same terms.
func (c *stableClock) Now() time.Time { return c.start.Add(time.Since(c.mono)) }

// offsetFile is a duration ("-1h", "12h") written in a file, for the FOR
// TESTS ONLY flags of serve: re-read at most every 100ms; 0 while the file is
// missing or unreadable.
type offsetFile struct {
	path   string
	mu     sync.Mutex
	offset time.Duration
	next   time.Time // when to re-read the file (monotonic)
}

// get returns the duration in the file.
func (f *offsetFile) get() time.Duration {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !now.Before(f.next) {
		f.next = now.Add(100 * time.Millisecond)
		if b, err := os.ReadFile(f.path); err == nil {
			if d, err := time.ParseDuration(strings.TrimSpace(string(b))); err == nil {
				f.offset = d
			}
		}
	}
	return f.offset
}

// newClock returns dcon's clock: a stableClock, started at the wall clock
// plus the duration in wallFile (--test-wall-offset-file: a simulated step of
// the system clock, which the stable clock reads at start and then ignores)
// and moved by the duration in travelFile (--test-clock-offset-file: time
// travel, which moves dcon's time at once, re-read every 100ms). Either path
// may be "".
func newClock(wallFile, travelFile string) func() time.Time {
	wall := time.Now()
	if wallFile != "" {
		wall = wall.Add((&offsetFile{path: wallFile}).get())
	}
	now := newStableClock(wall).Now
	if travelFile == "" {
		return now
	}
	travel := &offsetFile{path: travelFile}
	return func() time.Time { return now().Add(travel.get()) }
}
