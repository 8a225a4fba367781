package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"dcon"
	"dcon/internal/webhook"
)

// Sender makes one attempt to deliver a body to a connector's endpoint.
// *webhook.Client implements it.
type Sender interface {
	Send(ctx context.Context, c *dcon.Connector, a webhook.Attempt) webhook.Result
}

// Connectors finds a connector as it is now; *ingest.Router implements it.
type Connectors interface {
	Lookup(id string) (*dcon.Connector, bool)
}

// Observer learns the outcome of every attempt and every expiry: internal/stats
// implements it for :metrics and auto-disable. It must be quick and must not
// block, and must not keep o.
type Observer interface {
	Observe(o *dcon.Outcome)
}

// Observers passes every outcome to each of its observers, in order.
type Observers []Observer

// Observe implements Observer.
func (os Observers) Observe(o *dcon.Outcome) {
	for _, x := range os {
		x.Observe(o)
	}
}

// Config configures an Engine. Queue, Connectors and Sender are required.
type Config struct {
	Queue      dcon.Queue
	Connectors Connectors
	Sender     Sender
	Backoff    Backoff      // default DefaultBackoff
	Observer   Observer     // default: none
	Logger     *slog.Logger // default: discard
	// Now is the clock; default time.Now. Backoff, expiry and leases read it.
	Now func() time.Time
	// Lease is how long a claimed delivery is reserved for this engine before
	// the queue hands it out again. It must exceed the longest attempt (the
	// webhook timeout) plus the time to record its outcome. Default 1 minute.
	Lease time.Duration
	// PollInterval is how often the queue is asked for deliveries that came
	// due; it bounds how late a retry can be. Default 100ms.
	PollInterval time.Duration
	// MaxInFlight bounds concurrent attempts, and so goroutines, sockets and
	// memory. A delivery handed over while the engine is full stays in the
	// queue and is claimed when its lease ends. Default 20000.
	MaxInFlight int
	// ClaimBatch is the most deliveries one claim takes. Default 1000.
	ClaimBatch int
}

func (c *Config) setDefaults() error {
	if c.Queue == nil || c.Connectors == nil || c.Sender == nil {
		return errors.New("delivery: Queue, Connectors and Sender are required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Lease <= 0 {
		c.Lease = time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 20000
	}
	if c.ClaimBatch <= 0 {
		c.ClaimBatch = 1000
	}
	return nil
}

// Engine attempts deliveries and records their outcomes.
type Engine struct {
	cfg Config
	log *slog.Logger

	inFlight atomic.Int64
	wg       sync.WaitGroup // attempts under way

	// run is the context of attempts; Stop cancels it when its deadline passes.
	run       context.Context
	cancelRun context.CancelFunc

	started  atomic.Bool
	stopPoll chan struct{}
	pollDone chan struct{}
	stopOnce sync.Once
}

// New returns an Engine; Start starts its poller.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	run, cancel := context.WithCancel(context.Background())
	return &Engine{
		cfg:       cfg,
		log:       cfg.Logger,
		run:       run,
		cancelRun: cancel,
		stopPoll:  make(chan struct{}),
		pollDone:  make(chan struct{}),
	}, nil
}

// Start recovers what a previous process left in flight and starts polling
// the queue for deliveries that come due. Deliveries enqueued from now on
// must carry a lease of at least Now()+Lease, as ingest gives them.
func (e *Engine) Start(ctx context.Context) error {
	// A previous process's leases end at most Lease from now, and it can no
	// longer be working on them: take them at once instead of when they end.
	// Nothing of this process is in the queue yet, so nothing else is taken.
	if err := e.recoverLeases(ctx); err != nil {
		return fmt.Errorf("recover deliveries: %w", err)
	}
	e.started.Store(true)
	go e.pollLoop()
	return nil
}

// Stop stops polling and waits for attempts under way to finish, until ctx is
// done; then it cancels them. Cancelled attempts keep their lease and are
// retried by the next process that starts on the same queue.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() { close(e.stopPoll) })
	if e.started.Load() {
		select {
		case <-e.pollDone:
		case <-ctx.Done():
		}
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancelRun()
		return nil
	case <-ctx.Done():
		e.cancelRun()
		<-done
		return fmt.Errorf("delivery: stopped with attempts cancelled: %w", ctx.Err())
	}
}

// Wait blocks until no attempt is under way. Call it only when nothing
// launches attempts concurrently (no Dispatch, no poller), as tests do.
func (e *Engine) Wait() { e.wg.Wait() }

// InFlight returns the number of attempts under way.
func (e *Engine) InFlight() int { return int(e.inFlight.Load()) }

// Dispatch attempts each delivery at once, in parallel. The deliveries must
// already be durable in the queue.
func (e *Engine) Dispatch(ds []dcon.Delivery) {
	for i := range ds {
		if !e.launch(ds[i]) {
			e.log.Debug("delivery engine full; delivery left to the queue",
				"connector", ds[i].ConnectorID, "event", ds[i].EventID)
		}
	}
}

func (e *Engine) pollLoop() {
	defer close(e.pollDone)
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stopPoll:
			return
		case <-t.C:
			if _, err := e.Poll(e.run); err != nil {
				e.log.Error("poll the queue", "err", err)
			}
		}
	}
}

// Poll claims the deliveries that have come due, as many as the engine has
// room for, and attempts or expires them. It returns how many it claimed. The
// poller calls it every PollInterval; tests call it to move time on.
func (e *Engine) Poll(ctx context.Context) (int, error) {
	total := 0
	for {
		room := min(e.cfg.MaxInFlight-e.InFlight(), e.cfg.ClaimBatch)
		if room <= 0 {
			return total, nil
		}
		now := e.cfg.Now()
		ds, err := e.cfg.Queue.Claim(ctx, now, now.Add(e.cfg.Lease), room)
		if err != nil {
			return total, err
		}
		total += len(ds)
		e.handle(ctx, ds, now)
		if len(ds) < room {
			return total, nil
		}
	}
}

// recoverLeases claims, up to MaxInFlight, the deliveries a previous process
// had leased — due within Lease from now — and only then attempts them, so
// that a quick failure's retry is not claimed again in the same pass.
func (e *Engine) recoverLeases(ctx context.Context) error {
	now := e.cfg.Now()
	dueBy := now.Add(e.cfg.Lease)
	var ds []dcon.Delivery
	for len(ds) < e.cfg.MaxInFlight {
		limit := min(e.cfg.ClaimBatch, e.cfg.MaxInFlight-len(ds))
		batch, err := e.cfg.Queue.Claim(ctx, dueBy, dueBy.Add(e.cfg.Lease), limit)
		if err != nil {
			return err
		}
		ds = append(ds, batch...)
		if len(batch) < limit {
			break
		}
	}
	if len(ds) > 0 {
		e.log.Info("recovered deliveries left in flight by the previous process", "count", len(ds))
	}
	e.handle(ctx, ds, now)
	return nil
}

// handle expires or launches claimed deliveries. What finds no room keeps its
// lease and is claimed again when the lease ends.
func (e *Engine) handle(ctx context.Context, ds []dcon.Delivery, now time.Time) {
	full := false
	var expired []dcon.Delivery
	for i := range ds {
		switch {
		case ds[i].Expired(now):
			expired = append(expired, ds[i])
		case !full:
			full = !e.launch(ds[i])
		}
	}
	if len(expired) > 0 {
		e.expire(ctx, expired, now) // one synced write for all of them
	}
}

// launch starts an attempt if the engine has room for it.
func (e *Engine) launch(d dcon.Delivery) bool {
	if e.inFlight.Add(1) > int64(e.cfg.MaxInFlight) {
		e.inFlight.Add(-1)
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.inFlight.Add(-1)
		e.attempt(d)
	}()
	return true
}

// attempt makes one attempt and records its outcome.
func (e *Engine) attempt(d dcon.Delivery) {
	// Outcomes are recorded even while stopping: an attempt that finished
	// must not be repeated for want of its ack.
	store := context.WithoutCancel(e.run)
	c, ok := e.cfg.Connectors.Lookup(d.ConnectorID)
	if !ok || c.Status != dcon.StatusActive {
		// Deleted or disabled: its queue was dropped; this copy goes too.
		e.ack(store, d)
		return
	}
	if now := e.cfg.Now(); d.Expired(now) {
		e.expire(store, []dcon.Delivery{d}, now)
		return
	}
	res := e.cfg.Sender.Send(e.run, c, webhook.Attempt{EventID: d.EventID, Body: d.Body})
	if e.run.Err() != nil {
		return // cancelled by Stop: the lease brings it back after a restart
	}
	d.Attempts++
	if e.cfg.Observer != nil {
		e.cfg.Observer.Observe(&dcon.Outcome{
			ConnectorID: d.ConnectorID, ProjectID: d.ProjectID, EventID: d.EventID,
			EventTime: d.EventTime, Attempt: d.Attempts, StatusCode: res.StatusCode,
			Latency: res.Duration, Err: res.Err, At: e.cfg.Now(),
		})
	}
	if res.Err == nil {
		e.ack(store, d)
		return
	}
	d.LastError = res.Err.Error()
	now := e.cfg.Now()
	at := now.Add(e.cfg.Backoff.Delay(d.Attempts, res.RetryAfter))
	if deadline := d.Deadline(); at.After(deadline) {
		at = deadline // expire on time rather than wait for a retry that cannot happen
	}
	e.log.Debug("delivery failed", "connector", d.ConnectorID, "event", d.EventID,
		"attempt", d.Attempts, "status", res.StatusCode, "err", d.LastError, "retry_at", at)
	if err := e.cfg.Queue.Retry(store, d, at); err != nil {
		e.log.Error("record a retry; the delivery will be retried when its lease ends",
			"connector", d.ConnectorID, "event", d.EventID, "err", err)
	}
}

func (e *Engine) ack(ctx context.Context, d dcon.Delivery) {
	if err := e.cfg.Queue.Ack(ctx, []dcon.Delivery{d}); err != nil {
		e.log.Error("ack a delivery; it may be delivered again",
			"connector", d.ConnectorID, "event", d.EventID, "err", err)
	}
}

func (e *Engine) expire(ctx context.Context, ds []dcon.Delivery, now time.Time) {
	for i := range ds {
		if ds[i].LastError == "" {
			ds[i].LastError = "expired before any attempt"
		}
	}
	if err := e.cfg.Queue.Expire(ctx, ds, now); err != nil {
		e.log.Error("expire deliveries; they will be expired when claimed again", "count", len(ds), "err", err)
		return
	}
	for _, d := range ds {
		e.log.Info("delivery expired", "connector", d.ConnectorID, "event", d.EventID,
			"attempts", d.Attempts, "last_error", d.LastError)
		if e.cfg.Observer != nil {
			e.cfg.Observer.Observe(&dcon.Outcome{
				ConnectorID: d.ConnectorID, ProjectID: d.ProjectID, EventID: d.EventID,
				EventTime: d.EventTime, Attempt: d.Attempts, Expired: true,
				LastError: d.LastError, At: now,
			})
		}
	}
}
