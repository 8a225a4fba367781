package dashboard

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"dcon"
)

func TestLivePoints(t *testing.T) {
	t.Parallel()
	base := time.Unix(1_700_000_000, 0)
	at := func(s int, ms int) time.Time {
		return base.Add(time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond)
	}
	fail := errors.New("503")
	tests := []struct {
		name     string
		outcomes []dcon.Outcome
		now      time.Time
		n        int
		want     map[int64]Point // by second; the others are zero
	}{
		{
			name: "attempts and an expiry in one second",
			outcomes: []dcon.Outcome{
				{ConnectorID: "c", At: at(1, 100), Latency: 10 * time.Millisecond},
				{ConnectorID: "c", At: at(1, 900), Latency: 30 * time.Millisecond},
				{ConnectorID: "c", At: at(1, 500), Latency: 50 * time.Millisecond, Err: fail, StatusCode: 503},
				{ConnectorID: "c", At: at(1, 600), Expired: true},
				{ConnectorID: "other", At: at(1, 100), Latency: time.Second},
			},
			now: at(3, 0), n: 3,
			want: map[int64]Point{base.Unix() + 1: {Delivered: 2, Failed: 1, Expired: 1, AvgMs: 30, MaxMs: 50}},
		},
		{
			name:     "the current second is left out",
			outcomes: []dcon.Outcome{{ConnectorID: "c", At: at(3, 10), Latency: time.Millisecond}},
			now:      at(3, 500), n: 2,
			want: map[int64]Point{},
		},
		{
			name: "a second older than the window is overwritten",
			outcomes: []dcon.Outcome{
				{ConnectorID: "c", At: at(0, 0), Latency: time.Millisecond},
				{ConnectorID: "c", At: at(int(liveSeconds), 0), Latency: 2 * time.Millisecond},
			},
			now: at(int(liveSeconds)+1, 0), n: 2,
			want: map[int64]Point{base.Unix() + liveSeconds: {Delivered: 1, AvgMs: 2, MaxMs: 2}},
		},
		{
			name:     "an unknown connector is all zeros",
			outcomes: nil,
			now:      at(10, 0), n: 5,
			want: map[int64]Point{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := NewLive()
			for i := range tt.outcomes {
				l.Observe(&tt.outcomes[i])
			}
			got := l.Points("c", tt.now, tt.n)
			if len(got) != tt.n {
				t.Fatalf("%d points, want %d", len(got), tt.n)
			}
			for i, p := range got {
				want := tt.want[p.T]
				want.T = tt.now.Unix() - int64(tt.n-i)
				if p != want {
					t.Errorf("point %d: got %+v, want %+v", i, p, want)
				}
			}
		})
	}
}

// TestLiveObserveDoesNotAllocate: after a connector's first outcome,
// recording one costs no allocation.
func TestLiveObserveDoesNotAllocate(t *testing.T) {
	l := NewLive()
	o := &dcon.Outcome{ConnectorID: "c", At: time.Unix(1_700_000_000, 0), Latency: time.Millisecond}
	l.Observe(o)
	if n := testing.AllocsPerRun(1000, func() {
		o.At = o.At.Add(time.Millisecond)
		l.Observe(o)
	}); n != 0 {
		t.Errorf("Observe allocates %v times per call", n)
	}
}

// TestLiveForgetsIdleConnectors: connectors with no outcome for a whole
// window are dropped as new ones come, so memory follows the active ones.
func TestLiveForgetsIdleConnectors(t *testing.T) {
	t.Parallel()
	l := NewLive()
	base := time.Unix(1_700_000_000, 0)
	for i := range 3 * minPrune {
		at := base.Add(time.Duration(i) * LiveWindow) // each one idle by the time the next comes
		l.Observe(&dcon.Outcome{ConnectorID: fmt.Sprint("c", i), At: at})
	}
	l.mu.RLock()
	n := len(l.series)
	l.mu.RUnlock()
	if n > 2*minPrune {
		t.Errorf("%d series kept, want at most %d", n, 2*minPrune)
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0 s"},
		{420 * time.Microsecond, "420 µs"},
		{2500 * time.Microsecond, "2.5 ms"},
		{412 * time.Millisecond, "412 ms"},
		{1400 * time.Millisecond, "1.4 s"},
		{200 * time.Second, "3 min 20 s"},
		{5*time.Hour + 2*time.Minute, "5 h 2 min"},
		{52 * time.Hour, "2 d 4 h"},
	} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestLiveKeepsOnlySecondsWithOutcomes: a quiet connector costs a bucket per
// second that had an outcome, not a whole window; outcomes out of order land
// in their own second, and seconds that left the window are dropped.
func TestLiveKeepsOnlySecondsWithOutcomes(t *testing.T) {
	t.Parallel()
	l := NewLive()
	base := time.Unix(1_700_000_000, 0)
	for _, s := range []int{10, 12, 11, 12, 10} { // out of order, repeated
		l.Observe(&dcon.Outcome{ConnectorID: "c", At: base.Add(time.Duration(s) * time.Second), Latency: time.Millisecond})
	}
	got := l.Points("c", base.Add(13*time.Second), 4)
	for i, want := range []int{0, 2, 1, 2} { // seconds 9..12
		if got[i].Delivered != want {
			t.Errorf("second %d: %d delivered, want %d", 9+i, got[i].Delivered, want)
		}
	}
	buckets := func() int {
		l.mu.RLock()
		s := l.series["c"]
		l.mu.RUnlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.b)
	}
	if n := buckets(); n != 3 {
		t.Errorf("%d buckets for 3 seconds with outcomes", n)
	}
	// One outcome a minute for an hour: the window holds at most 3 of them.
	for m := 1; m <= 60; m++ {
		l.Observe(&dcon.Outcome{ConnectorID: "c", At: base.Add(time.Duration(m) * time.Minute)})
	}
	if n := buckets(); n > int(LiveWindow/time.Minute) {
		t.Errorf("%d buckets kept for one outcome a minute, want at most %d", n, int(LiveWindow/time.Minute))
	}
	// An outcome older than the window is not recorded.
	l.Observe(&dcon.Outcome{ConnectorID: "c", At: base})
	if n := buckets(); n > int(LiveWindow/time.Minute) {
		t.Errorf("an outcome older than the window was kept: %d buckets", n)
	}
}
