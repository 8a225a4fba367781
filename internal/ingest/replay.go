package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"dcon"
)

// ReplayBatch is how many dead letters Replay moves back into the queue in
// one write (one sync) before it hands them to the dispatcher and goes on.
const ReplayBatch = 500

// errNoReplay is the cause of Replay's failure on a queue that cannot replay.
var errNoReplay = errors.New("ingest: the queue does not implement dcon.DeadLetterQueue")

// CheckReplayRequest returns an EINVALID error unless exactly one of r's
// fields is set, and r names at most dcon.MaxReplay event ids.
func CheckReplayRequest(r dcon.ReplayRequest) error {
	set := 0
	for _, ok := range []bool{len(r.EventIDs) > 0, !r.Since.IsZero(), r.All} {
		if ok {
			set++
		}
	}
	switch {
	case set != 1:
		return dcon.Errorf(dcon.EINVALID, `give exactly one of "eventIds", "since" and "all": {"eventIds":["c82gg9catj3vmh4248og"]}, {"since":"2022-02-10T12:00:00Z"} or {"all":true}`)
	case len(r.EventIDs) > dcon.MaxReplay:
		return dcon.Errorf(dcon.EINVALID, `"eventIds" names %d events; at most %d may be replayed at once`, len(r.EventIDs), dcon.MaxReplay)
	}
	for _, id := range r.EventIDs {
		if !dcon.ValidID(id) {
			return dcon.Errorf(dcon.EINVALID, "%q is not an event id", id)
		}
	}
	return nil
}

// Replay delivers a connector's dead letters again: those r names (see
// dcon.ReplayRequest). Each goes back into the connector's queue with its
// original eventId and body, no attempts, and a fresh 12-hour window from now
// (its EventTime is now, as Sync's copies; the body keeps the event's
// timestamp), and leaves the dead letters in the same atomic write. It is then
// dispatched at once, like a fresh publish. Replay returns how many it queued;
// event ids that are not dead letters of the connector are skipped.
//
// The connector must exist in the project (else ENOTFOUND) and be ACTIVE
// (else ECONFLICT: a disabled connector would drop them). Dead letters are
// moved ReplayBatch at a time, each batch durable before it is handed off; if
// one cannot be stored, Replay stops with EUNAVAILABLE and the count says how
// many were handed off before. If the connector leaves ACTIVE, Replay stops at
// the next batch.
func (in *Ingester) Replay(ctx context.Context, projectID, connectorID string, r dcon.ReplayRequest) (int, error) {
	if err := CheckReplayRequest(r); err != nil {
		return 0, err
	}
	q, ok := in.queue.(dcon.DeadLetterQueue)
	if !ok {
		return 0, dcon.WrapError(dcon.EINTERNAL, errNoReplay, "internal error")
	}
	sent := 0
	for {
		if err := in.replayable(projectID, connectorID); err != nil {
			return sent, err
		}
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		now := in.now()
		ds, err := q.Replay(ctx, connectorID, r, now, now.Add(in.lease), ReplayBatch)
		if err != nil {
			return sent, fmt.Errorf("replay dead letters of %s: %w", connectorID, err)
		}
		if len(ds) > 0 {
			in.dispatch.Dispatch(ds)
		}
		sent += len(ds)
		if len(ds) < ReplayBatch || len(r.EventIDs) > 0 {
			return sent, nil
		}
	}
}

// replayable returns nil if the connector exists in the project and is
// ACTIVE: ENOTFOUND or ECONFLICT otherwise.
func (in *Ingester) replayable(projectID, connectorID string) error {
	c, ok := in.router.Lookup(connectorID)
	if !ok || c.ProjectID != projectID {
		return dcon.Errorf(dcon.ENOTFOUND, "data connector projects/%s/dataconnectors/%s not found", projectID, connectorID)
	}
	if c.Status != dcon.StatusActive {
		return dcon.Errorf(dcon.ECONFLICT, "connector is not ACTIVE (it is %s): enable it before replaying its dead letters", c.Status)
	}
	return nil
}

// DefaultDeadLetterRetention is how long dead letters are kept: 7 days.
const DefaultDeadLetterRetention = 7 * 24 * time.Hour

// SweeperConfig configures a Sweeper.
type SweeperConfig struct {
	// Queue keeps the dead letters. Required.
	Queue dcon.DeadLetterQueue
	// Retention is how long a dead letter is kept after it expired. Default
	// DefaultDeadLetterRetention (7 days).
	Retention time.Duration
	// Every is how often the sweeper runs, after its first run at Start.
	// Default 1 hour.
	Every time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger logs each sweep's failure. Default: discard.
	Logger *slog.Logger
}

// Sweeper deletes dead letters older than their retention: once at Start,
// then every SweeperConfig.Every.
type Sweeper struct {
	cfg  SweeperConfig
	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// NewSweeper returns a Sweeper; Start runs it.
func NewSweeper(cfg SweeperConfig) (*Sweeper, error) {
	if cfg.Queue == nil {
		return nil, fmt.Errorf("ingest: SweeperConfig.Queue is required")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultDeadLetterRetention
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{cfg: cfg}, nil
}

// Sweep deletes, once, every dead letter that expired more than the retention
// ago.
func (s *Sweeper) Sweep(ctx context.Context) error {
	before := s.cfg.Now().Add(-s.cfg.Retention)
	if err := s.cfg.Queue.PurgeDeadLetters(ctx, before); err != nil {
		return fmt.Errorf("purge dead letters expired before %s: %w", dcon.FormatTime(before), err)
	}
	return nil
}

// Start sweeps at once, then every SweeperConfig.Every, in a goroutine, until
// Stop or ctx ends. A failed sweep is logged and tried again next time.
func (s *Sweeper) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return fmt.Errorf("ingest: sweeper started twice")
	}
	ctx, s.stop = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.run(ctx)
	return nil
}

func (s *Sweeper) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("dead-letter sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop stops the sweeper and waits, until ctx is done, for a sweep under way.
func (s *Sweeper) Stop(ctx context.Context) error {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
