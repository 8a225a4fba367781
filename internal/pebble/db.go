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
package pebble

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

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

	// MemTableSize is the size of one memtable. Default: 64 MiB, sixteen times
	// Pebble's. Queue records live for milliseconds (enqueued, sent, acked), so
	// a large memtable lets most of them be written and deleted before a flush
	// writes them to an sstable, and means fewer flushes and L0 files under a
	// steady stream of writes.
	MemTableSize uint64

	// CacheSize is the size of the block cache. Default: 64 MiB, eight times
	// Pebble's. The hot data of a queue is in the memtables; the cache serves
	// the config keys and the claims of a backlog that was flushed while
	// waiting (retries, or everything in flight after a crash), whose reads
	// would otherwise go to disk block by block.
	CacheSize int64
}

// Defaults of Options.
const (
	DefaultMemTableSize = 64 << 20
	DefaultCacheSize    = 64 << 20
)

// DB is dcon's store on Pebble. Its methods are safe for concurrent use; none
// may be called after Close.
type DB struct {
	db  *pebble.DB
	fs  vfs.FS
	dir string

	// qmu is the queue lock: Claim and Drop hold it exclusively, other queue
	// writes share it.
	qmu sync.RWMutex
	// lw is where Claim starts walking the due index. Writers lower it while
	// holding qmu shared; Claim sets it while holding qmu exclusively.
	lw lowWater
	// kl makes Retry's read and write atomic with Ack and Expire of the same
	// delivery; taken after qmu.
	kl keyLocks

	// cmu serializes configuration writes, whose existence checks read first.
	cmu sync.Mutex

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
	po := &pebble.Options{
		FS:     fs,
		Logger: pebbleLogger{logger},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				logger.Error("pebble background error", "component", "pebble", "err", err)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				logger.Warn("pebble write stall", "component", "pebble", "reason", info.Reason)
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				logger.Warn("pebble disk slow", "component", "pebble", "info", info.String())
			},
		},
		FormatMajorVersion:          pebble.FormatNewest,
		MemTableSize:                DefaultMemTableSize,
		MemTableStopWritesThreshold: 4,
		CacheSize:                   DefaultCacheSize,
	}
	if opts.MemTableSize > 0 {
		po.MemTableSize = opts.MemTableSize
	}
	if opts.CacheSize > 0 {
		po.CacheSize = opts.CacheSize
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open pebble store in %s: %w", dir, err)
	}
	db := &DB{db: pdb, fs: fs, dir: dir}
	db.lw.due = zeroNanos
	return db, nil
}

// Close closes the database, syncing what was not synced. Calls after the
// first return its result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if err := db.db.Close(); err != nil {
			db.closeErr = fmt.Errorf("close pebble store: %w", err)
		}
	})
	return db.closeErr
}

// unavailable wraps a failure of the engine for dcon's boundary: the store
// cannot serve the request now.
func unavailable(err error, format string, args ...any) error {
	return dcon.WrapError(dcon.EUNAVAILABLE, fmt.Errorf(format+": %w", append(args, err)...), "the store is unavailable")
}

// pebbleLogger sends Pebble's messages to a slog.Logger.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf logs and panics: Pebble calls it when it cannot go on.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: " + msg)
}
