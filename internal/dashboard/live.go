package dashboard

import (
	"sync"
	"time"

	"dcon"
)

// LiveWindow is how far back the live chart reaches: Live keeps one bucket
// per second for this long, per connector.
const LiveWindow = 3 * time.Minute

// liveSeconds is LiveWindow in buckets.
const liveSeconds = int64(LiveWindow / time.Second)

// Live is a delivery observer that keeps, per connector, how many attempts
// succeeded and failed, how many deliveries expired, and the attempts'
// latency, second by second over the last LiveWindow: what the live chart
// draws. Observe is quick and allocates only for a connector's first outcome
// (its series) and when a second begins that the series had no room for;
// memory is about 40 bytes per second with outcomes, per connector that had an
// outcome in the last LiveWindow (at most 7 KB each), the others being
// forgotten as new ones come.
//
// The zero value is not usable; use NewLive.
type Live struct {
	mu     sync.RWMutex
	series map[string]*series
	// pruneAt is the number of series at which adding one first drops the
	// series that have been idle for a whole window.
	pruneAt int
}

// series is one connector's per-second buckets: only the seconds that had an
// outcome, in order, none older than LiveWindow before the latest — a
// connector with an event a minute costs a few buckets, not a whole window.
type series struct {
	mu   sync.Mutex
	last int64    // the latest second observed
	b    []bucket // by sec, ascending
}

// bucket returns the bucket of sec, made if needed, or nil if sec is older
// than the window before the latest second.
func (s *series) bucket(sec int64) *bucket {
	if sec <= s.last-liveSeconds {
		return nil
	}
	// Outcomes come in time order but for a few: look from the end.
	i := len(s.b)
	for i > 0 && s.b[i-1].sec > sec {
		i--
	}
	if i > 0 && s.b[i-1].sec == sec {
		return &s.b[i-1]
	}
	if sec > s.last {
		s.last = sec
		// Drop the seconds that left the window.
		old := 0
		for old < len(s.b) && s.b[old].sec <= sec-liveSeconds {
			old++
		}
		if old > 0 {
			n := copy(s.b, s.b[old:])
			s.b = s.b[:n]
			i -= old
		}
	}
	s.b = append(s.b, bucket{})
	copy(s.b[i+1:], s.b[i:])
	s.b[i] = bucket{sec: sec}
	return &s.b[i]
}

// bucket holds one second of one connector.
type bucket struct {
	sec        int64 // the Unix second it holds; another value means empty
	ok, failed uint32
	expired    uint32
	latencySum int64 // of attempts, microseconds
	latencyMax int64 // microseconds
}

// minPrune is the number of series below which Live never prunes.
const minPrune = 64

// NewLive returns an empty Live.
func NewLive() *Live {
	return &Live{series: make(map[string]*series), pruneAt: minPrune}
}

// Observe records an attempt or an expiry. It implements delivery.Observer.
func (l *Live) Observe(o *dcon.Outcome) {
	s := l.get(o.ConnectorID, o.At.Unix())
	sec := o.At.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(sec)
	if b == nil {
		return // older than the window
	}
	switch {
	case o.Expired:
		b.expired++
	case o.Err == nil:
		b.ok++
	default:
		b.failed++
	}
	if !o.Expired {
		us := o.Latency.Microseconds()
		b.latencySum += us
		b.latencyMax = max(b.latencyMax, us)
	}
}

// get returns the series of a connector, made if needed.
func (l *Live) get(id string, sec int64) *series {
	l.mu.RLock()
	s := l.series[id]
	l.mu.RUnlock()
	if s != nil {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s = l.series[id]; s != nil {
		return s
	}
	if len(l.series) >= l.pruneAt {
		l.prune(sec)
		l.pruneAt = max(minPrune, 2*len(l.series))
	}
	s = &series{last: sec}
	l.series[id] = s
	return s
}

// prune forgets the series with no outcome in the window before sec. l.mu
// is held.
func (l *Live) prune(sec int64) {
	for id, s := range l.series {
		s.mu.Lock()
		idle := s.last <= sec-liveSeconds
		s.mu.Unlock()
		if idle {
			delete(l.series, id)
		}
	}
}

// Point is one second of a connector's live chart.
type Point struct {
	T         int64   `json:"t"`         // the Unix second
	Delivered int     `json:"delivered"` // attempts answered 2xx
	Failed    int     `json:"failed"`    // attempts that failed
	Expired   int     `json:"expired"`   // deliveries that expired
	AvgMs     float64 `json:"avgMs"`     // mean attempt latency, milliseconds; 0 without attempts
	MaxMs     float64 `json:"maxMs"`     // slowest attempt, milliseconds
}

// Points returns a connector's last n complete seconds before now, oldest
// first, zeros included. n is at most LiveWindow in seconds.
func (l *Live) Points(connectorID string, now time.Time, n int) []Point {
	n = min(max(n, 0), int(liveSeconds)-1)
	end := now.Unix() // the current, incomplete second is left out
	out := make([]Point, n)
	for i := range out {
		out[i].T = end - int64(n-i)
	}
	l.mu.RLock()
	s := l.series[connectorID]
	l.mu.RUnlock()
	if s == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := end - int64(n)
	for j := range s.b {
		b := &s.b[j]
		if b.sec < first || b.sec >= end {
			continue
		}
		p := &out[b.sec-first]
		p.Delivered, p.Failed, p.Expired = int(b.ok), int(b.failed), int(b.expired)
		if attempts := b.ok + b.failed; attempts > 0 {
			p.AvgMs = float64(b.latencySum) / float64(attempts) / 1000
			p.MaxMs = float64(b.latencyMax) / 1000
		}
	}
	return out
}
