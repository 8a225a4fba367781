// Package deliverylog keeps, per data connector, the recent delivery attempts
// and expiries: the answer to "did my event arrive, and if not, why?". It
// feeds the API's GET …/dataconnectors/{d}/deliveries, `dcon connectors
// deliveries [--follow]` and the dashboard.
//
// [Log] implements the delivery engine's Observer. Each connector has a ring
// of at most Config.PerConnector entries (1000 by default), none older than
// Config.MaxAge (24 hours): a new entry overwrites the oldest, and entries
// that grew too old are dropped when the connector is next written or read.
// Observe copies what it needs from the outcome (the event id and error
// message strings are kept, nothing else is allocated once a ring is full) and
// takes only its connector's lock.
//
// Every entry has a sequence number, increasing across the whole log, so that
// a follower ([Log.Since]) gets each entry of a connector once, in order.
// Numbers start at the log's creation time in microseconds, so that they keep
// increasing across a restart, and a follower that asks with the number of a
// previous run gets the new entries rather than waiting for the numbers to
// catch up.
//
// The log lives in memory, on one node: a restart clears it. Dead letters,
// the events that expired undelivered, are durable in the queue; the log only
// shows that they expired.
package deliverylog

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"dcon"
)

// Defaults of Config.
const (
	DefaultPerConnector = 1000
	DefaultMaxAge       = 24 * time.Hour
)

// Config configures a Log. Every field has a default.
type Config struct {
	// PerConnector is the most entries kept per connector. Default
	// DefaultPerConnector (1000).
	PerConnector int
	// MaxAge is how long an entry is kept. Default DefaultMaxAge (24 h).
	MaxAge time.Duration
	// Now is the clock that ages entries; default time.Now.
	Now func() time.Time
}

// Outcomes of an Entry.
const (
	OutcomeDelivered = "DELIVERED"
	OutcomeFailed    = "FAILED"
	OutcomeExpired   = "EXPIRED"
)

// Entry is one attempt or expiry in the log.
type Entry struct {
	Seq        uint64
	At         time.Time // when the attempt ended, or the expiry time
	EventID    string
	EventTime  time.Time
	Attempt    int // 1 for the first attempt; for an expiry, the attempts made
	StatusCode int // 0 when no response arrived
	Latency    time.Duration
	Outcome    string // OutcomeDelivered, OutcomeFailed or OutcomeExpired
	ErrorClass string // see ErrorClass; "" when delivered
	Error      string // the attempt's error; for an expiry, the last attempt's
}

// Log is the delivery log. The zero value is not usable; call New.
type Log struct {
	cfg   Config
	seq   atomic.Uint64
	rings sync.Map // connector id → *ring
}

// New returns an empty log.
func New(cfg Config) *Log {
	if cfg.PerConnector <= 0 {
		cfg.PerConnector = DefaultPerConnector
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Log{cfg: cfg}
	if start := cfg.Now().UnixMicro(); start > 0 {
		l.seq.Store(uint64(start))
	}
	return l
}

// ring is one connector's entries: a circular buffer, oldest at head.
type ring struct {
	mu      sync.Mutex
	entries []Entry // grows to the log's PerConnector, then wraps
	head    int     // index of the oldest entry
	n       int     // entries held
}

// at returns the i-th oldest entry.
func (r *ring) at(i int) *Entry { return &r.entries[(r.head+i)%len(r.entries)] }

// push adds e, overwriting the oldest entry when the ring holds size.
func (r *ring) push(e Entry, size int) {
	if r.n == len(r.entries) && r.n < size && r.head != 0 {
		// Full below size after a trim moved the head: unwrap it, to grow.
		r.entries = slices.Concat(r.entries[r.head:], r.entries[:r.head])
		r.head = 0
	}
	switch {
	case r.n == len(r.entries) && r.n < size:
		r.entries = append(r.entries, e)
		r.n++
	case r.n < len(r.entries):
		*r.at(r.n) = e
		r.n++
	default:
		r.entries[r.head] = e
		r.head = (r.head + 1) % len(r.entries)
	}
}

// trim drops the entries from before cutoff at the old end.
func (r *ring) trim(cutoff time.Time) {
	for r.n > 0 && r.at(0).At.Before(cutoff) {
		*r.at(0) = Entry{} // let its strings go
		r.head = (r.head + 1) % len(r.entries)
		r.n--
	}
	if r.n == 0 {
		r.head = 0
	}
}

// Observe records an attempt or expiry. It implements delivery.Observer: it
// is quick, does not block on anything but its connector's lock, and keeps
// nothing of o but copies.
func (l *Log) Observe(o *dcon.Outcome) {
	e := Entry{
		At: o.At, EventID: o.EventID, EventTime: o.EventTime, Attempt: o.Attempt,
		StatusCode: o.StatusCode, Latency: o.Latency, ErrorClass: ErrorClass(o),
	}
	switch {
	case o.Expired:
		e.Outcome, e.Error = OutcomeExpired, o.LastError
	case o.Err != nil:
		e.Outcome, e.Error = OutcomeFailed, o.Err.Error()
	default:
		e.Outcome = OutcomeDelivered
	}
	r := l.ring(o.ConnectorID)
	cutoff := l.cfg.Now().Add(-l.cfg.MaxAge)
	r.mu.Lock()
	e.Seq = l.seq.Add(1) // under the ring's lock: the ring stays in Seq order
	r.push(e, l.cfg.PerConnector)
	r.trim(cutoff)
	r.mu.Unlock()
}

// ring returns the connector's ring, creating it.
func (l *Log) ring(connectorID string) *ring {
	if r, ok := l.rings.Load(connectorID); ok {
		return r.(*ring)
	}
	r, _ := l.rings.LoadOrStore(connectorID, &ring{})
	return r.(*ring)
}

// read calls fn with the connector's ring, trimmed, locked; not at all when
// the connector has no entries.
func (l *Log) read(connectorID string, fn func(r *ring)) {
	v, ok := l.rings.Load(connectorID)
	if !ok {
		return
	}
	r := v.(*ring)
	cutoff := l.cfg.Now().Add(-l.cfg.MaxAge)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trim(cutoff)
	fn(r)
}

// Latest returns up to limit of the connector's entries, newest first, and
// the sequence number to follow from with Since: the newest entry's, or, with
// no entries, the log's current number.
func (l *Log) Latest(connectorID string, limit int) (entries []Entry, next uint64) {
	next = l.seq.Load()
	l.read(connectorID, func(r *ring) {
		if r.n > 0 {
			next = r.at(r.n - 1).Seq
		}
		entries = make([]Entry, 0, min(max(limit, 0), r.n))
		for i := r.n - 1; i >= 0 && len(entries) < limit; i-- {
			entries = append(entries, *r.at(i))
		}
	})
	return entries, next
}

// Recent returns up to limit of the connector's attempts and expiries,
// newest first, as outcomes. Err is an error with the logged message, for
// which ErrorClass gives the logged class.
func (l *Log) Recent(connectorID string, limit int) []dcon.Outcome {
	entries, _ := l.Latest(connectorID, limit)
	out := make([]dcon.Outcome, len(entries))
	for i, e := range entries {
		out[i] = dcon.Outcome{
			ConnectorID: connectorID, EventID: e.EventID, EventTime: e.EventTime,
			Attempt: e.Attempt, Expired: e.Outcome == OutcomeExpired,
			StatusCode: e.StatusCode, Latency: e.Latency, At: e.At,
		}
		switch e.Outcome {
		case OutcomeExpired:
			out[i].LastError = e.Error
		case OutcomeFailed:
			out[i].Err = &loggedError{msg: e.Error, class: e.ErrorClass}
		}
	}
	return out
}

// Since returns up to limit of the connector's entries whose sequence number
// is above after, oldest first, and the number to ask with next time: the
// last entry's, or after when there is none. A follower that calls it in a
// loop gets every entry once, as long as it keeps up with the ring (entries
// overwritten or aged out before it asked are skipped).
func (l *Log) Since(connectorID string, after uint64, limit int) (entries []Entry, next uint64) {
	next = after
	l.read(connectorID, func(r *ring) {
		// The first entry after "after": entries are in Seq order.
		lo, hi := 0, r.n
		for lo < hi {
			mid := (lo + hi) / 2
			if r.at(mid).Seq <= after {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		n := min(r.n-lo, max(limit, 0))
		entries = make([]Entry, n)
		for i := range n {
			entries[i] = *r.at(lo + i)
		}
		if n > 0 {
			next = entries[n-1].Seq
		}
	})
	return entries, next
}

// Forget drops a connector's entries, when it is deleted.
func (l *Log) Forget(connectorID string) { l.rings.Delete(connectorID) }

// loggedError is the error of a logged failed attempt: its message and class.
type loggedError struct{ msg, class string }

func (e *loggedError) Error() string { return e.msg }

// isLogged returns the class of a loggedError in err's chain.
func isLogged(err error) (string, bool) {
	var le *loggedError
	if errors.As(err, &le) {
		return le.class, true
	}
	return "", false
}
