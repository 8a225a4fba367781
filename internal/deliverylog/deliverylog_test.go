package deliverylog

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dcon"
	"dcon/internal/webhook"
)

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is a settable clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }

func attempt(c string, n int, at time.Time, err error) *dcon.Outcome {
	return &dcon.Outcome{ConnectorID: c, EventID: fmt.Sprintf("e%d", n), Attempt: 1, StatusCode: 200,
		Latency: time.Millisecond, Err: err, At: at}
}

func ids(es []Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, e.EventID)
	}
	return fmt.Sprint(s)
}

func TestBoundedInCount(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	l := New(Config{PerConnector: 3, Now: clk.now})
	for n := 1; n <= 5; n++ {
		l.Observe(attempt("c", n, t0, nil))
	}
	l.Observe(attempt("other", 9, t0, nil))
	got, next := l.Latest("c", 10)
	if ids(got) != "[e5 e4 e3]" {
		t.Errorf("Latest: %s, want [e5 e4 e3]", ids(got))
	}
	if next != got[0].Seq {
		t.Errorf("next %d, want the newest's seq %d", next, got[0].Seq)
	}
	if got, _ := l.Latest("c", 2); ids(got) != "[e5 e4]" {
		t.Errorf("Latest(2): %s", ids(got))
	}
	if got := l.Recent("other", 10); len(got) != 1 || got[0].EventID != "e9" {
		t.Errorf("another connector: %+v", got)
	}
}

func TestBoundedInAge(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	l := New(Config{MaxAge: time.Hour, Now: clk.now})
	l.Observe(attempt("c", 1, t0, nil))
	clk.set(t0.Add(30 * time.Minute))
	l.Observe(attempt("c", 2, clk.now(), nil))
	clk.set(t0.Add(61 * time.Minute))
	if got, _ := l.Latest("c", 10); ids(got) != "[e2]" {
		t.Errorf("after an hour: %s, want [e2]", ids(got))
	}
	clk.set(t0.Add(2 * time.Hour))
	if got, _ := l.Latest("c", 10); len(got) != 0 {
		t.Errorf("after two hours: %s, want none", ids(got))
	}
	// The ring grows again after ageing empty it.
	for n := 3; n <= 6; n++ {
		l.Observe(attempt("c", n, clk.now(), nil))
	}
	if got, _ := l.Since("c", 0, 10); ids(got) != "[e3 e4 e5 e6]" {
		t.Errorf("after ageing: %s", ids(got))
	}
}

func TestRingGrowsAfterTrimWrapped(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	l := New(Config{PerConnector: 4, MaxAge: time.Hour, Now: clk.now})
	l.Observe(attempt("c", 1, t0, nil))
	l.Observe(attempt("c", 2, t0.Add(40*time.Minute), nil))
	clk.set(t0.Add(61 * time.Minute))
	for n := 3; n <= 6; n++ {
		l.Observe(attempt("c", n, clk.now(), nil))
	}
	if got, _ := l.Since("c", 0, 10); ids(got) != "[e3 e4 e5 e6]" {
		t.Errorf("got %s, want [e3 e4 e5 e6]", ids(got))
	}
}

func TestEntries(t *testing.T) {
	t.Parallel()
	l := New(Config{Now: func() time.Time { return t0 }})
	l.Observe(&dcon.Outcome{ConnectorID: "c", EventID: "e1", Attempt: 1, StatusCode: 503, Latency: 2 * time.Millisecond,
		Err: errors.New("HTTP 503 Service Unavailable"), At: t0})
	l.Observe(&dcon.Outcome{ConnectorID: "c", EventID: "e1", Attempt: 2, StatusCode: 200, Latency: time.Millisecond, At: t0})
	l.Observe(&dcon.Outcome{ConnectorID: "c", EventID: "e2", Attempt: 7, Expired: true, LastError: "connection refused", At: t0})
	got, _ := l.Since("c", 0, 10)
	want := []struct{ outcome, class, err string }{
		{OutcomeFailed, ClassHTTP5xx, "HTTP 503 Service Unavailable"},
		{OutcomeDelivered, "", ""},
		{OutcomeExpired, ClassExpired, "connection refused"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Outcome != w.outcome || got[i].ErrorClass != w.class || got[i].Error != w.err {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], w)
		}
	}
	rec := l.Recent("c", 10)
	if !rec[0].Expired || rec[0].LastError != "connection refused" || rec[1].Err != nil || rec[2].Err == nil {
		t.Errorf("Recent: %+v", rec)
	}
	if c := ErrorClass(&rec[2]); c != ClassHTTP5xx {
		t.Errorf("ErrorClass of a logged outcome: %q, want %q", c, ClassHTTP5xx)
	}
}

func TestSince(t *testing.T) {
	t.Parallel()
	l := New(Config{Now: func() time.Time { return t0 }})
	entries, next := l.Since("c", 0, 10)
	if len(entries) != 0 || next != 0 {
		t.Errorf("no entries: %v, %d", entries, next)
	}
	_, start := l.Latest("c", 10)
	for n := 1; n <= 5; n++ {
		l.Observe(attempt("c", n, t0, nil))
	}
	got, next := l.Since("c", start, 2)
	if ids(got) != "[e1 e2]" {
		t.Errorf("first page: %s", ids(got))
	}
	got, next = l.Since("c", next, 10)
	if ids(got) != "[e3 e4 e5]" {
		t.Errorf("second page: %s", ids(got))
	}
	got, next2 := l.Since("c", next, 10)
	if len(got) != 0 || next2 != next {
		t.Errorf("nothing new: %s, next %d, want %d", ids(got), next2, next)
	}
}

func TestSeqSurvivesRestart(t *testing.T) {
	t.Parallel()
	first := New(Config{Now: func() time.Time { return t0 }})
	first.Observe(attempt("c", 1, t0, nil))
	_, old := first.Latest("c", 1)
	second := New(Config{Now: func() time.Time { return t0.Add(time.Second) }})
	second.Observe(attempt("c", 2, t0, nil))
	if got, _ := second.Since("c", old, 10); ids(got) != "[e2]" {
		t.Errorf("a follower of the previous run: %s, want [e2]", ids(got))
	}
}

// TestFollowUnderConcurrentWrites follows a connector while writers add to
// it: the follower sees every entry once, in order.
func TestFollowUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	l := New(Config{PerConnector: 100000, Now: func() time.Time { return t0 }})
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				l.Observe(attempt("c", w*each+i, t0, nil))
				l.Observe(attempt("noise", i, t0, nil))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var after, lastSeq uint64
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		entries, next := l.Since("c", after, 64)
		for _, e := range entries {
			if e.Seq <= lastSeq {
				t.Fatalf("seq %d after %d", e.Seq, lastSeq)
			}
			lastSeq = e.Seq
			if seen[e.EventID] {
				t.Fatalf("%s seen twice", e.EventID)
			}
			seen[e.EventID] = true
		}
		after = next
		if finished && len(entries) == 0 {
			break
		}
	}
	if len(seen) != writers*each {
		t.Errorf("followed %d entries, want %d", len(seen), writers*each)
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	l := New(Config{})
	l.Observe(attempt("c", 1, time.Now(), nil))
	l.Forget("c")
	if got := l.Recent("c", 10); len(got) != 0 {
		t.Errorf("after Forget: %v", got)
	}
}

func TestErrorClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    dcon.Outcome
		want string
	}{
		{"delivered", dcon.Outcome{StatusCode: 204}, ""},
		{"expired", dcon.Outcome{Expired: true, LastError: "x"}, ClassExpired},
		{"404", dcon.Outcome{StatusCode: 404, Err: errors.New("HTTP 404")}, ClassHTTP4xx},
		{"429", dcon.Outcome{StatusCode: 429, Err: errors.New("HTTP 429")}, ClassHTTP429},
		{"503", dcon.Outcome{StatusCode: 503, Err: errors.New("HTTP 503")}, ClassHTTP5xx},
		{"redirect", dcon.Outcome{StatusCode: 302, Err: errors.New("HTTP 302")}, ClassHTTP3xx},
		{"timeout", dcon.Outcome{Err: fmt.Errorf("attempt: %w", webhook.ErrTimeout)}, ClassTimeout},
		{"refused destination", dcon.Outcome{Err: fmt.Errorf("dial: %w", webhook.ErrForbiddenDestination)}, ClassRefusedDestination},
		{"connection refused", dcon.Outcome{Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, ClassConnection},
		{"dns", dcon.Outcome{Err: &net.DNSError{Name: "x.invalid", IsNotFound: true}}, ClassConnection},
		{"closed early", dcon.Outcome{Err: fmt.Errorf("read: %w", io.ErrUnexpectedEOF)}, ClassConnection},
		{"unknown CA", dcon.Outcome{Err: fmt.Errorf("tls: %w", x509.UnknownAuthorityError{})}, ClassTLS},
		{"other", dcon.Outcome{Err: errors.New("something else")}, ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ErrorClass(&tt.o); got != tt.want {
				t.Errorf("ErrorClass = %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkObserve(b *testing.B) {
	l := New(Config{})
	o := attempt("c", 1, time.Now(), nil)
	b.ReportAllocs()
	for b.Loop() {
		l.Observe(o)
	}
}
