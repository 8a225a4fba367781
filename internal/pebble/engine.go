package pebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// An engine is one opening of the Pebble database in the DB's directory.
//
// Pebble treats a failed WAL write or sync as fatal: Batch.Commit panics
// ("pebble: fatal commit error", through Logger.Fatalf, or the write error
// itself), and the commit pipeline is left wedged: the panic may leave
// Pebble's commit lock held, or a batch that will never be applied at the
// head of its pending queue, so that commits behind it wait forever, and
// DB.Close itself blocks on that lock. So an engine, once a commit has
// failed, is never used again:
//
//   - every commit runs in a goroutine other than its caller's (commit), a
//     committer, which recovers the panic and marks the engine failed; the
//     caller waits for its commit or for the failure, whichever comes first,
//     so that no caller — nor any lock it holds — is left behind in a wedged
//     pipeline. Committers are reused: one whose commit is done waits
//     committerIdle for another before it ends, so that under load the
//     hand-off costs neither a goroutine's start nor the growth of its stack
//     (BenchmarkCommit). A recover in the caller's goroutine would cost
//     nothing, but could not free a caller that Pebble holds. A committer
//     held by a wedged pipeline stays there, with the abandoned engine.
//   - the DB answers EUNAVAILABLE at once while its engine is failed, and
//     reopens the directory in a new engine every RecoverEvery (recover).
//   - Pebble never sees a failed write or sync of a live engine: its file
//     system (freezeFS) marks the engine failed at the first, and blocks that
//     write, and every later one of the engine, forever. Pebble's paths for
//     such errors are fatal, and one of them is not even a panic (see
//     freezeFS); frozen, the failed engine cannot touch the files a new
//     engine opens. It is closed if its operations drain and Close returns
//     within closeWait (usually Close waits on the frozen WAL); otherwise it
//     is abandoned, with the goroutines stuck in it: its memory (memtables,
//     cache) stays until the process ends.
//   - the directory lock (LOCK) is taken once by the DB and held across
//     engines; each engine's Lock is a no-op (lockedFS), so that a new
//     engine can open while an abandoned one still holds its handle.
type engine struct {
	pdb     *pebble.DB
	lw      lowWater
	calls   sync.Pool        // of *commitCall
	commits chan *commitCall // commits handed to an idle committer (unbuffered)

	// ops counts the operations under way on the engine, so that a failed
	// engine is closed only when none is reading from it.
	ops atomic.Int64
	// fenced, once set, makes the engine's file system block every write
	// forever (freezeFS).
	fenced atomic.Bool
	// live is set once the engine has opened: its file system freezes on a
	// failed write from then on.
	live atomic.Bool
	// muted, once set, silences the engine's Pebble messages.
	muted atomic.Bool

	failOnce sync.Once
	failed   chan struct{} // closed when a commit failed fatally
	cause    error         // why; set before failed is closed
	onFail   func(*engine) // called once, after failed is closed

	onSync func(time.Duration) // Options.OnSyncedCommit
}

// errStoreFailed is the cause of EUNAVAILABLE while the store reopens.
var errStoreFailed = errors.New("the store failed and is being reopened")

// isFailed reports whether a commit of the engine failed fatally.
func (e *engine) isFailed() bool {
	select {
	case <-e.failed:
		return true
	default:
		return false
	}
}

// fail marks the engine failed with cause, once, and returns the error its
// callers get.
func (e *engine) fail(cause error) error {
	e.failOnce.Do(func() {
		e.cause = cause
		e.fenced.Store(true)
		e.muted.Store(true)
		close(e.failed)
		if e.onFail != nil {
			e.onFail(e)
		}
	})
	return e.failure()
}

// failure is the error of a call that met the engine failed.
func (e *engine) failure() error {
	return fmt.Errorf("%w: %w", errStoreFailed, e.cause)
}

// commit commits b, which must come from e.pdb, with opts. It returns as soon
// as the commit is done or the engine has failed, whichever comes first; on a
// failure the batch may still be held by Pebble, so callers release batches
// with closeBatch, never with Close.
func (e *engine) commit(b *pebble.Batch, opts *pebble.WriteOptions) error {
	if e.isFailed() {
		return e.failure()
	}
	c, _ := e.calls.Get().(*commitCall)
	if c == nil {
		c = &commitCall{done: make(chan error, 1)}
	}
	c.e, c.b, c.opts = e, b, opts
	var start time.Time
	if e.onSync != nil && opts.Sync {
		start = time.Now()
	}
	select {
	case e.commits <- c:
	default:
		go e.committer(c)
	}
	select {
	case err := <-c.done:
		c.e, c.b, c.opts = nil, nil, nil
		e.calls.Put(c)
		if !start.IsZero() && err == nil {
			e.onSync(time.Since(start))
		}
		return err
	case <-e.failed:
		return e.failure() // c stays with its goroutine, which may never end
	}
}

// commitCall is one commit handed to a goroutine of its own; pooled.
type commitCall struct {
	e    *engine
	b    *pebble.Batch
	opts *pebble.WriteOptions
	done chan error
}

func (c *commitCall) run() { c.done <- c.e.apply(c.b, c.opts) }

// committerIdle is how long a committer waits for another commit before it
// ends.
const committerIdle = 2 * time.Second

// committer runs c, then the commits handed to it while it waits, until it
// has waited committerIdle for one.
func (e *engine) committer(c *commitCall) {
	idle := time.NewTimer(committerIdle)
	defer idle.Stop()
	for {
		c.run()
		idle.Reset(committerIdle)
		select {
		case c = <-e.commits:
		case <-idle.C:
			return
		}
	}
}

// apply commits b, turning Pebble's fatal panic into the engine's failure.
func (e *engine) apply(b *pebble.Batch, opts *pebble.WriteOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = e.fail(fmt.Errorf("commit: %v", r))
		}
	}()
	return b.Commit(opts)
}

// closeBatch releases b, unless the engine failed: then Pebble may still hold
// b in its wedged pipeline, and b is left to the garbage collector.
func (e *engine) closeBatch(b *pebble.Batch) {
	if !e.isFailed() {
		_ = b.Close()
	}
}

// done ends an operation begun by DB.engine.
func (e *engine) done() { e.ops.Add(-1) }

// engine returns the current engine for one operation, which must call its
// done when it has finished with it, or EUNAVAILABLE while the store is
// failed.
func (db *DB) engine() (*engine, error) {
	e := db.db.cur.Load()
	e.ops.Add(1)
	if e.isFailed() {
		e.ops.Add(-1)
		return nil, unavailable(e.failure(), "the store")
	}
	return e, nil
}

// handle holds the current engine. Its methods serve code that reads or
// writes through db.db without taking an engine of its own; new code should
// use DB.engine and commit through engine.commit, since a Batch.Commit of its
// own panics when Pebble fails a commit, and may wait forever behind it.
type handle struct {
	cur atomic.Pointer[engine]
}

// NewBatch returns a batch of the current engine.
func (h *handle) NewBatch() *pebble.Batch { return h.cur.Load().pdb.NewBatch() }

// Get reads key from the current engine.
func (h *handle) Get(key []byte) ([]byte, io.Closer, error) { return h.cur.Load().pdb.Get(key) }

// NewIterWithContext returns an iterator over the current engine.
func (h *handle) NewIterWithContext(ctx context.Context, o *pebble.IterOptions) (*pebble.Iterator, error) {
	return h.cur.Load().pdb.NewIterWithContext(ctx, o)
}

// openEngine opens the database in db.dir in a new engine. A panic of Pebble
// while opening is returned as an error.
func (db *DB) openEngine() (e *engine, err error) {
	e = &engine{failed: make(chan struct{}), commits: make(chan *commitCall), onFail: db.startRecovery, onSync: db.opts.OnSyncedCommit}
	e.lw.due = zeroNanos
	log := &pebbleLogger{l: db.logger, muted: &e.muted}
	po := db.pebbleOptions(freezeFS{lockedFS{db.fs}, e}, log)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble: %v", r)
		}
	}()
	e.pdb, err = pebble.Open(db.dir, po)
	if err != nil {
		return nil, err
	}
	if err := db.countQueues(e); err != nil {
		_ = e.pdb.Close()
		return nil, err
	}
	e.live.Store(true)
	return e, nil
}

// pebbleOptions are the options of one engine, on fs, logging to log.
func (db *DB) pebbleOptions(fs vfs.FS, log *pebbleLogger) *pebble.Options {
	po := &pebble.Options{
		FS:     fs,
		Logger: log,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				log.log(slog.LevelError, "pebble background error", "err", err)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				log.log(slog.LevelWarn, "pebble write stall", "reason", info.Reason)
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				log.log(slog.LevelWarn, "pebble disk slow", "info", info.String())
			},
		},
		FormatMajorVersion:          pebble.FormatNewest,
		MemTableSize:                DefaultMemTableSize,
		MemTableStopWritesThreshold: 4,
		CacheSize:                   DefaultCacheSize,
	}
	if db.opts.MemTableSize > 0 {
		po.MemTableSize = db.opts.MemTableSize
	}
	if db.opts.CacheSize > 0 {
		po.CacheSize = db.opts.CacheSize
	}
	return po
}

// How a failed engine is replaced. Variables of the DB so that tests can
// shorten them.
const (
	// DefaultRecoverEvery is how often a failed store tries to reopen.
	DefaultRecoverEvery = time.Second
	// closeWait is how long a failed engine's operations and Close may take
	// before it is abandoned.
	closeWait = 2 * time.Second
)

// startRecovery starts replacing the failed engine e; it is e's onFail.
func (db *DB) startRecovery(e *engine) {
	db.wg.Add(1)
	go func() {
		defer db.wg.Done()
		db.recover(e)
	}()
}

// recover fences and closes the failed engine old, then tries every
// RecoverEvery to open a new one, until it succeeds or the DB is closed.
func (db *DB) recover(old *engine) {
	db.logger.Error("the store failed: writes are refused (unavailable) until it is reopened",
		"component", "pebble", "err", old.cause)
	db.closeFailed(old)
	t := time.NewTicker(db.recoverEvery)
	defer t.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		e, err := db.openEngine()
		if err != nil {
			if attempt == 1 || attempt%60 == 0 {
				db.logger.Warn("the store cannot be reopened yet; retrying", "component", "pebble",
					"attempt", attempt, "every", db.recoverEvery.String(), "err", err)
			}
			continue
		}
		db.mu.Lock()
		closed := db.closed
		if !closed {
			db.db.cur.Store(e)
		}
		db.mu.Unlock()
		if closed {
			_ = e.pdb.Close()
			return
		}
		db.logger.Info("the store recovered: reopened", "component", "pebble", "attempts", attempt)
		return
	}
}

// closeFailed closes the fenced engine old once no operation uses it, unless
// that or its Close takes longer than closeWait: then it is abandoned.
func (db *DB) closeFailed(old *engine) {
	deadline := time.Now().Add(closeWait)
	for old.ops.Load() > 0 {
		select {
		case <-db.closing:
			return
		default:
		}
		if time.Now().After(deadline) {
			db.logger.Warn("abandoning the failed store engine: operations still use it", "component", "pebble",
				"operations", old.ops.Load())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				closed <- fmt.Errorf("pebble: %v", r)
			}
		}()
		closed <- old.pdb.Close()
	}()
	select {
	case err := <-closed:
		db.logger.Debug("closed the failed store engine", "component", "pebble", "err", err)
	case <-time.After(closeWait):
		// Pebble's commit lock is held by the commit that failed: Close will
		// never return. The fence keeps the engine off the directory.
		db.logger.Warn("abandoning the failed store engine: it cannot be closed", "component", "pebble",
			"goroutines", runtime.NumGoroutine())
	case <-db.closing:
	}
}

// lockedFS is the DB's file system as its engines see it: the directory lock
// is the DB's, held across engines, so an engine's Lock is a no-op.
type lockedFS struct{ vfs.FS }

func (lockedFS) Lock(string) (io.Closer, error) { return nopCloser{}, nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
