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
// (its ring of buckets); memory is about 7 KB per connector that had an
// outcome in the last LiveWindow, the others being forgotten as new ones come.
//
// The zero value is not usable; use NewLive.
type Live struct {
	mu     sync.RWMutex
	series map[string]*series
	// pruneAt is the number of series at which adding one first drops the
	// series that have been idle for a whole window.
	pruneAt int
}

// series is one connector's ring of per-second buckets, indexed by the Unix
// second modulo liveSeconds.
type series struct {
	mu   sync.Mutex
	last int64 // the latest second observed
	b    [liveSeconds]bucket
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
	b := &s.b[slot(sec)]
	if b.sec != sec {
		*b = bucket{sec: sec}
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
	s.last = max(s.last, sec)
	s.mu.Unlock()
}

func slot(sec int64) int64 { return ((sec % liveSeconds) + liveSeconds) % liveSeconds }

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
	for i := range out {
		b := &s.b[slot(out[i].T)]
		if b.sec != out[i].T {
			continue
		}
		p := &out[i]
		p.Delivered, p.Failed, p.Expired = int(b.ok), int(b.failed), int(b.expired)
		if attempts := b.ok + b.failed; attempts > 0 {
			p.AvgMs = float64(b.latencySum) / float64(attempts) / 1000
			p.MaxMs = float64(b.latencyMax) / 1000
		}
	}
	return out
}
