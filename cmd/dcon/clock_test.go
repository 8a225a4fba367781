package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStableClock(t *testing.T) {
	t.Parallel()
	wall := time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
	c := newStableClock(wall)
	a := c.Now()
	b := c.Now()
	if a.Before(wall) || b.Before(a) {
		t.Errorf("the clock went back: start %v, then %v, then %v", wall, a, b)
	}
	if d := a.Sub(wall); d > time.Minute {
		t.Errorf("Now is %v after the start, want about 0", d)
	}
	if a != a.Round(0) {
		t.Errorf("Now carries a monotonic reading: %v", a)
	}
}

// TestNewClock checks the two test hooks: a wall-clock step is read at start
// only; time travel moves the clock at once.
func TestNewClock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wallFile, travelFile := filepath.Join(dir, "wall"), filepath.Join(dir, "travel")
	write := func(path, d string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(d), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	near := func(what string, got, want time.Time) {
		t.Helper()
		if d := got.Sub(want); d < -time.Minute || d > time.Minute {
			t.Errorf("%s: the clock reads %v, want about %v", what, got, want)
		}
	}

	write(wallFile, "-1h")
	now := newClock(wallFile, travelFile) // travelFile missing: no travel
	near("wall stepped back at start", now(), time.Now().Add(-time.Hour))

	write(wallFile, "1h") // a step while running is ignored
	time.Sleep(150 * time.Millisecond)
	near("wall stepped forward while running", now(), time.Now().Add(-time.Hour))

	write(travelFile, "12h") // time travel is followed within 100ms
	time.Sleep(150 * time.Millisecond)
	near("time travel", now(), time.Now().Add(11*time.Hour))

	near("no hooks", newClock("", "")(), time.Now())
}
