package stats

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"dcon"
)

// Store keeps the tracker's state across restarts: one opaque value per
// connector. *pebble.DB implements it.
type Store interface {
	// SaveStats writes the states of several connectors, replacing what they had.
	SaveStats(ctx context.Context, states map[string][]byte) error
	// LoadStats returns every stored state, by connector id.
	LoadStats(ctx context.Context) (map[string][]byte, error)
	// DeleteStats removes a connector's state; removing none is not an error.
	DeleteStats(ctx context.Context, connectorID string) error
}

// DefaultFlushInterval is how often a started Tracker writes what changed.
const DefaultFlushInterval = 10 * time.Second

// Config configures a Tracker. The zero value is usable: statistics kept in
// memory only, on the system clock.
type Config struct {
	// Store keeps the statistics across restarts. Default: none (memory only;
	// Load, Flush, Start and Stop do nothing with it).
	Store Store
	// FlushInterval is how often Start's loop writes the connectors observed
	// since the last write. Default: DefaultFlushInterval (10 s).
	FlushInterval time.Duration
	// Now is the clock that says where the metrics window ends. Observe uses
	// the time it is given. Default: time.Now.
	Now func() time.Time
	// Logger logs failed flushes and undecodable stored states. Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.FlushInterval < 0 {
		return fmt.Errorf("stats: FlushInterval %v is negative", c.FlushInterval)
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// numShards is the number of shards of the connector map; a power of two.
const numShards = 64

// Tracker keeps per-connector delivery statistics; see the package doc. It
// implements the delivery engine's Observer and the API's MetricsReader. Its
// methods are safe for concurrent use.
type Tracker struct {
	cfg    Config
	bounds *bounds
	seed   maphash.Seed
	shards [numShards]shard

	// flushMu serialises flushes, so that a Forget's deletion is written after
	// any save of the state it dropped.
	flushMu sync.Mutex
	// forgotMu guards forgot, the connectors forgotten since the last flush.
	forgotMu sync.Mutex
	forgot   map[string]struct{}

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// shard is one part of the connector map.
type shard struct {
	mu sync.RWMutex
	m  map[string]*conn
	_  [32]byte // pads a shard to 64 bytes, a cache line of its own
}

// conn is one connector's statistics.
type conn struct {
	mu           sync.Mutex
	dirty        bool  // observed since the last flush
	failingSince int64 // Unix ns of the first failure after the last success; 0: none
	lastSuccess  int64 // Unix ns of the last success; 0: none
	buckets      [Buckets]bucket
}

func newConn() *conn {
	c := new(conn)
	for i := range c.buckets {
		c.buckets[i].epoch = noEpoch
	}
	return c
}

// New returns a Tracker. Call Load before the first Observe to start from the
// stored state, and Start to keep it stored.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	t := &Tracker{
		cfg:    cfg,
		bounds: newBounds(),
		seed:   maphash.MakeSeed(),
		forgot: make(map[string]struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*conn)
	}
	return t, nil
}

func (t *Tracker) shard(id string) *shard {
	return &t.shards[maphash.String(t.seed, id)&(numShards-1)]
}

// lookup returns a connector's statistics, or nil.
func (t *Tracker) lookup(id string) *conn {
	s := t.shard(id)
	s.mu.RLock()
	c := s.m[id]
	s.mu.RUnlock()
	return c
}

// conn returns a connector's statistics, created if need be.
func (t *Tracker) conn(id string) *conn {
	if c := t.lookup(id); c != nil {
		return c
	}
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[id]
	if c == nil {
		c = newConn()
		s.m[strings.Clone(id)] = c // the caller's id may share memory with more
	}
	return c
}

// Observe records one attempt to deliver to a connector: whether it
// succeeded, its round trip and when it ended. Expiries are not attempts and
// are not counted. It implements delivery.Observer.
func (t *Tracker) Observe(o *dcon.Outcome) {
	if o.Expired {
		return
	}
	t.observe(o.ConnectorID, o.Err == nil, o.Latency, o.At)
}

// observe records one attempt.
func (t *Tracker) observe(connectorID string, ok bool, latency time.Duration, at time.Time) {
	bin := t.bounds.bin(latency)
	epoch := epochOf(at)
	ns := at.UnixNano()
	c := t.conn(connectorID)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	if ok {
		c.lastSuccess = max(c.lastSuccess, ns)
		if c.failingSince != 0 && ns >= c.failingSince {
			c.failingSince = 0
		}
	} else if ns > c.lastSuccess && (c.failingSince == 0 || ns < c.failingSince) {
		c.failingSince = ns
	}
	b := &c.buckets[slot(epoch)]
	switch {
	case b.epoch == epoch:
	case b.epoch < epoch:
		*b = bucket{epoch: epoch}
	default:
		return // the ring moved past this attempt's bucket: too old to count
	}
	if ok {
		b.ok++
	} else {
		b.failed++
	}
	b.bins[bin]++
}

// ConnectorMetrics returns a connector's figures over the window that ends at
// Now: zeros for a connector without attempts. It implements the API's
// MetricsReader and never fails.
func (t *Tracker) ConnectorMetrics(ctx context.Context, connectorID string) (dcon.ConnectorMetrics, error) {
	return t.metrics(connectorID, t.cfg.Now()), nil
}

func (t *Tracker) metrics(id string, now time.Time) dcon.ConnectorMetrics {
	var w window
	if c := t.lookup(id); c != nil {
		c.mu.Lock()
		w.add(c, epochOf(now))
		c.mu.Unlock()
	}
	return w.metrics(t.bounds)
}

// window adds up the buckets of one or more connector states (one node's,
// or every node's of a fleet) that fall in the metrics window.
type window struct {
	ok, failed int64
	bins       [Bins]uint64
}

// add adds c's buckets within the window that ends in bucket last. c.mu must
// be held, or c be private to the caller.
func (w *window) add(c *conn, last int64) {
	for i := range c.buckets {
		b := &c.buckets[i]
		if b.epoch > last || b.epoch <= last-Buckets {
			continue
		}
		w.ok += int64(b.ok)
		w.failed += int64(b.failed)
		for j, n := range b.bins {
			w.bins[j] += uint64(n)
		}
	}
}

// metrics returns the window's figures: the counts and the 99th percentile
// of the union of the histograms.
func (w *window) metrics(b *bounds) dcon.ConnectorMetrics {
	return dcon.ConnectorMetrics{SuccessCount: w.ok, ErrorCount: w.failed, Latency99p: b.percentile(&w.bins, 0.99)}
}

// FailingSince returns when a connector's current failure streak began: the
// time of the first failed attempt after its last success, or the zero time
// if its last attempt succeeded or it has none.
func (t *Tracker) FailingSince(connectorID string) time.Time {
	c := t.lookup(connectorID)
	if c == nil {
		return time.Time{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return unixTime(c.failingSince)
}

// Forget drops a connector's statistics, in memory at once and in the store
// at the next flush.
func (t *Tracker) Forget(connectorID string) {
	s := t.shard(connectorID)
	s.mu.Lock()
	_, ok := s.m[connectorID]
	delete(s.m, connectorID)
	s.mu.Unlock()
	if ok {
		t.deleteLater(connectorID)
	}
}

// deleteLater has the next flush delete a connector's stored state.
func (t *Tracker) deleteLater(connectorID string) {
	if t.cfg.Store == nil {
		return
	}
	t.forgotMu.Lock()
	t.forgot[connectorID] = struct{}{}
	t.forgotMu.Unlock()
}

// tracked is what the Watchdog reads of one connector.
type tracked struct {
	id           string
	failingSince time.Time
}

// snapshot returns every tracked connector and its failingSince.
func (t *Tracker) snapshot() []tracked {
	var out []tracked
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for id, c := range s.m {
			c.mu.Lock()
			out = append(out, tracked{id: id, failingSince: unixTime(c.failingSince)})
			c.mu.Unlock()
		}
		s.mu.RUnlock()
	}
	return out
}

// Load replaces the statistics of every stored connector with the stored
// state. Call it before the first Observe. A state that cannot be decoded is
// logged and skipped, and deleted at the next flush.
func (t *Tracker) Load(ctx context.Context) error {
	if t.cfg.Store == nil {
		return nil
	}
	states, err := t.cfg.Store.LoadStats(ctx)
	if err != nil {
		return fmt.Errorf("load connector stats: %w", err)
	}
	for id, v := range states {
		c, err := decode(v)
		if err != nil {
			t.cfg.Logger.Warn("dropping undecodable connector stats", "connector", id, "err", err)
			t.deleteLater(id)
			continue
		}
		s := t.shard(id)
		s.mu.Lock()
		s.m[id] = c
		s.mu.Unlock()
	}
	return nil
}

// Flush writes the connectors observed since the last flush, and deletes
// those forgotten since.
func (t *Tracker) Flush(ctx context.Context) error {
	if t.cfg.Store == nil {
		return nil
	}
	t.flushMu.Lock()
	defer t.flushMu.Unlock()

	t.forgotMu.Lock()
	forgot := t.forgot
	t.forgot = make(map[string]struct{})
	t.forgotMu.Unlock()

	dirty := make(map[string]*conn)
	states := make(map[string][]byte)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for id, c := range s.m {
			c.mu.Lock()
			if c.dirty {
				c.dirty = false
				dirty[id] = c
				states[id] = c.appendState(nil)
			}
			c.mu.Unlock()
		}
		s.mu.RUnlock()
	}

	var errs []error
	for id := range forgot {
		if _, saved := states[id]; saved {
			continue // observed again since: the save replaces it
		}
		if err := t.cfg.Store.DeleteStats(ctx, id); err != nil {
			errs = append(errs, err)
			t.deleteLater(id) // try again next time
		}
	}
	if len(states) > 0 {
		if err := t.cfg.Store.SaveStats(ctx, states); err != nil {
			errs = append(errs, err)
			for _, c := range dirty {
				c.mu.Lock()
				c.dirty = true // try again next time
				c.mu.Unlock()
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush connector stats: %w", err)
	}
	return nil
}

// Start writes what changed every FlushInterval until Stop.
func (t *Tracker) Start(ctx context.Context) error {
	t.startOnce.Do(func() { go t.loop() })
	return nil
}

func (t *Tracker) loop() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			if err := t.Flush(context.Background()); err != nil {
				t.cfg.Logger.Warn("flush connector stats", "err", err)
			}
		}
	}
}

// Stop ends Start's loop, waiting for it until ctx is done, and writes what
// changed one last time, even if ctx is done: the store's writes are local
// and quick, and a flush under way in the loop finishes first.
func (t *Tracker) Stop(ctx context.Context) error {
	t.stopOnce.Do(func() { close(t.stop) })
	t.startOnce.Do(func() { close(t.done) }) // never started: no loop to wait for
	return errors.Join(wait(ctx, t.done, "stop the tracker"), t.Flush(context.WithoutCancel(ctx)))
}

// unixTime is the time of Unix nanoseconds ns, in UTC; 0 is the zero time.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
