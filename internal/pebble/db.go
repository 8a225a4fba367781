// Package pebble is dcon's embedded store: the delivery queue, the dead letters,
// the data connectors and the devices, all in one Pebble database
// (github.com/cockroachdb/pebble/v2) in one directory. [*DB] implements
// [dcon.Queue], [dcon.ConnectorStore] and [dcon.DeviceStore].
//
// # Key layout
//
// Every key starts with a short prefix naming what it holds. Ids never contain
// "/" (they are xids or project ids), so "/" separates the parts.
//
//	q/m/<connectorID>/<eventID>                 a queued delivery's record
//	q/d/<due>/<connectorID>/<eventID>           empty: the due index
//	q/x/<connectorID>/<expire>/<eventID>        a dead letter: record + expire time
//	p/<projectID>                               a project, as JSON
//	c/<projectID>/<connectorID>                 a connector, as JSON
//	v/<projectID>/<deviceID>                    a device, as JSON
//	l/<projectID>/<deviceID>/<eventType>        a device's latest event of a type, for :sync
//	s/<connectorID>                             a connector's :metrics buckets and failure state
//	a/o/<org>, a/s/<project>/<account>,        organizations, service accounts,
//	a/k/<account>/<key>, a/i/<key>              their keys (salted hashes), key id index
//
// <due> and <expire> are Unix nanoseconds as 8 big-endian bytes, sign bit
// flipped, so that keys sort by time. A record is a hand-written binary
// encoding: a version byte (1), then the project id, event type, event time,
// attempts, last error, due and body, as varints and length-prefixed bytes (see
// appendRecord). A dead letter's value is the record followed by the expire time
// as a varint. Times round-trip to the nanosecond and come back in UTC; the zero
// time is kept as the zero time.
//
// # The queue
//
// Enqueue writes the m and d keys of all its deliveries in one batch committed
// with pebble.Sync; concurrent Enqueues share WAL syncs through Pebble's own
// group commit (see BenchmarkEnqueueParallel). Enqueue does not read, so a
// replaced delivery leaves a stale d entry behind: a d entry is live only if its
// m record exists and records the same due. Claim walks the due index from a
// low-water mark — the lowest due that may still be live, kept in memory and 0
// (the beginning) after Open — to now, takes live entries, deletes the stale ones
// it meets, and rewrites each taken record with due=leaseUntil (NoSync). The
// mark then moves to now, or, when limit cut the claim short, to the due of the
// last entry taken and the key after it, so Claim never walks the tombstones of
// what it consumed before; any write of a due at or below the mark lowers it
// (so retries due in the past, and clocks that jump backwards, are never
// missed). Ack and Retry do not sync; Expire and Drop do. Retry of a delivery
// that is no longer queued (acked, dropped, expired) does nothing.
//
// Claim, Drop and DeleteConnector read, then write: they hold the queue lock
// exclusively, while Enqueue, Ack, Retry and Expire share it, so an Ack cannot
// be undone by a concurrent Claim rewriting the record. Retry also reads, then
// writes: it holds its delivery's striped key lock from the read to the
// commit, and Ack and Expire hold their deliveries' key locks around their
// commits, so an Ack or Expire cannot be undone by a concurrent Retry either.
//
// # Configuration
//
// Connectors and devices are stored as JSON and written with pebble.Sync. List
// pages are ordered by id; the page token is the base64url form of the last id
// of the previous page. Deleting a connector also removes its queue and its
// dead letters, in the same batch.
//
// Lock order: the config lock, then the queue lock.
//
// # When the disk fails
//
// Pebble treats a failed write or sync of its write-ahead log as fatal: the
// commit panics and Pebble's commit pipeline is left wedged. So Pebble never
// sees such an error: the DB's file system freezes the Pebble instance at the
// first (its writes block forever), and every commit runs in a goroutine of its
// own, so that no caller waits on it (a panic there is recovered too). The DB
// answers EUNAVAILABLE to the commits under way and, at once, to every later
// call, and reopens the directory in a new Pebble instance every
// Options.RecoverEvery (1s) until it can; what a synced write acknowledged is
// there after the reopen. The directory lock is the DB's, held across
// reopenings. See engine and freezeFS.
package pebble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
)

// Options configure a DB. The zero value is usable.
type Options struct {
	// FS is the file system the database lives in. Default: the operating
	// system's (vfs.Default).
	FS vfs.FS

	// Logger receives Pebble's own messages: informational ones at Debug,
	// errors (and background errors) at Error, write stalls and slow disk
	// operations at Warn. Default: they are discarded; nothing goes to stderr.
	Logger *slog.Logger

	// MemTableSize is the size of one memtable. Default: 32 MiB, eight times
	// Pebble's. Queue records live for milliseconds (enqueued, sent, acked), so
	// a large memtable lets most of them be written and deleted before a flush
	// writes them to an sstable, and means fewer flushes and L0 files under a
	// steady stream of writes; at 10,000 deliveries/s a 32 MiB memtable
	// holds more than a second of them. Memtables count in the process's
	// memory (up to MemTableStopWritesThreshold, 4, of them while flushes
	// lag), hence not more: a backlog of a million deliveries must fit in
	// 256 MiB (docs/performance.md).
	MemTableSize uint64

	// RecoverEvery is how often a store whose engine failed tries to reopen
	// it. Default: DefaultRecoverEvery (1s).
	RecoverEvery time.Duration

	// CacheSize is the size of the block cache. Default: 16 MiB, twice
	// Pebble's. The hot data of a queue is in the memtables; the cache serves
	// the config keys and the claims of a backlog that was flushed while
	// waiting (retries, or everything in flight after a crash), whose reads
	// would otherwise go to disk block by block.
	CacheSize int64

	// ConfigCacheSize is how many projects and devices are kept decoded in
	// memory, for the reads of every publish. Default (0):
	// DefaultConfigCacheSize; negative: none.
	ConfigCacheSize int

	// OnSyncedCommit, if set, is told how long each synced commit took, from
	// its hand-off to Pebble to its return (metrics). It must be quick.
	// Default: nil.
	OnSyncedCommit func(time.Duration)
}

// Defaults of Options.
const (
	DefaultMemTableSize = 32 << 20
	DefaultCacheSize    = 16 << 20
)

// DB is dcon's store on Pebble. Its methods are safe for concurrent use; none
// may be called after Close.
//
// When Pebble fails a commit fatally (a WAL write or sync error), the DB
// answers EUNAVAILABLE at once, and reopens the directory every RecoverEvery
// until it can: see engine.
type DB struct {
	// db is the current engine. Operations take it with DB.engine.
	db     handle
	fs     vfs.FS
	dir    string
	opts   Options
	logger *slog.Logger
	lock   *pebble.Lock // the directory's, held from Open to Close across engines

	// qmu is the queue lock: Claim and Drop hold it exclusively, other queue
	// writes share it.
	qmu sync.RWMutex
	// kl makes Retry's read and write atomic with Ack and Expire of the same
	// delivery; taken after qmu.
	kl keyLocks
	// qc counts each connector's queued records, for QueueStats.
	qc queueCounts
	// cache keeps decoded projects and devices.
	cache *configCache

	// cmu serializes configuration writes, whose existence checks read first.
	cmu sync.Mutex

	recoverEvery time.Duration
	wg           sync.WaitGroup // the recovery under way
	closing      chan struct{}  // closed by Close
	mu           sync.Mutex     // guards closed and the swap of engines against Close
	closed       bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ dcon.Queue          = (*DB)(nil)
	_ dcon.ConnectorStore = (*DB)(nil)
	_ dcon.DeviceStore    = (*DB)(nil)
)

// Open opens the database in dir, creating it if it does not exist.
func Open(dir string, opts Options) (*DB, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{fs: fs, dir: dir, opts: opts, logger: logger, recoverEvery: opts.RecoverEvery, closing: make(chan struct{})}
	switch {
	case opts.ConfigCacheSize == 0:
		db.cache = newConfigCache(DefaultConfigCacheSize)
	default:
		db.cache = newConfigCache(opts.ConfigCacheSize) // negative: none
	}
	if db.recoverEvery <= 0 {
		db.recoverEvery = DefaultRecoverEvery
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open pebble store in %s: %w", dir, err)
	}
	lock, err := pebble.LockDirectory(dir, fs)
	if err != nil {
		return nil, fmt.Errorf("open pebble store in %s: lock: %w", dir, err)
	}
	db.lock = lock
	e, err := db.openEngine()
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("open pebble store in %s: %w", dir, err)
	}
	db.db.cur.Store(e)
	return db, nil
}

// Close closes the database, syncing what was not synced, and stops a
// recovery under way. Calls after the first return its result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		db.closed = true
		db.mu.Unlock()
		close(db.closing)
		db.wg.Wait()
		e := db.db.cur.Load()
		if e.isFailed() {
			db.closeErr = fmt.Errorf("close pebble store: %w", e.failure())
		} else if err := e.pdb.Close(); err != nil {
			db.closeErr = fmt.Errorf("close pebble store: %w", err)
		}
		if err := db.lock.Close(); err != nil && db.closeErr == nil {
			db.closeErr = fmt.Errorf("close pebble store: unlock: %w", err)
		}
	})
	return db.closeErr
}

// Ping reports whether the store answers: EUNAVAILABLE while it is failed
// and reopening, or when a read of one key fails. It is cheap enough for a
// readiness probe.
func (db *DB) Ping(ctx context.Context) error {
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	_, closer, err := e.pdb.Get([]byte("ping"))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return nil
	case err != nil:
		return unavailable(err, "ping")
	}
	return closer.Close()
}

// unavailable wraps a failure of the engine for dcon's boundary: the store
// cannot serve the request now.
func unavailable(err error, format string, args ...any) error {
	return dcon.WrapError(dcon.EUNAVAILABLE, fmt.Errorf(format+": %w", append(args, err)...), "the store is unavailable")
}

// pebbleLogger sends one engine's Pebble messages to a slog.Logger, until the
// engine is muted (fenced off after a failure).
type pebbleLogger struct {
	l     *slog.Logger
	muted *atomic.Bool
}

// log logs msg at level, unless the engine is muted.
func (p *pebbleLogger) log(level slog.Level, msg string, args ...any) {
	if p.muted.Load() || !p.l.Enabled(context.Background(), level) {
		return
	}
	p.l.Log(context.Background(), level, msg, append(args, "component", "pebble")...)
}

func (p *pebbleLogger) Infof(format string, args ...any) {
	if !p.muted.Load() && p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p *pebbleLogger) Errorf(format string, args ...any) {
	p.log(slog.LevelError, fmt.Sprintf(format, args...))
}

// Fatalf logs and panics: Pebble calls it when it cannot go on. A panic in a
// commit is recovered by engine.commit; anywhere else it ends the process.
func (p *pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !p.muted.Load() {
		p.l.Error(msg, "component", "pebble", "fatal", true)
	}
	panic("pebble: " + msg)
}
