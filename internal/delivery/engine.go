package delivery

import (
	"cmp"
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
	// Flow configures per-connector flow control; see FlowConfig. Windows
	// hold deliveries back only when the Queue is a dcon.BacklogQueue, which
	// can park them; otherwise every delivery is attempted at once, as far as
	// MaxInFlight allows, and the flow state is only reported.
	Flow FlowConfig
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
	if c.Flow.ProbeInterval <= 0 {
		c.Flow.ProbeInterval = cmp.Or(c.Backoff.Initial, DefaultBackoff.Initial)
	}
	if c.Flow.MaxProbeInterval <= 0 {
		c.Flow.MaxProbeInterval = min(30*time.Second, cmp.Or(c.Backoff.Max, DefaultBackoff.Max))
	}
	c.Flow.setDefaults()
	return nil
}

// Engine attempts deliveries and records their outcomes.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	backlog dcon.BacklogQueue // nil: the queue cannot park
	flows   *flows

	inFlight atomic.Int64   // attempts under way
	wg       sync.WaitGroup // attempts under way, and acks not yet committed
	acks     *acker         // commits the acks of attempts, in batches
	jobs     chan job       // attempts handed to an idle worker (unbuffered)
	quit     chan struct{}  // closed by Stop: idle workers end
	quitOnce sync.Once
	drainMu  sync.Mutex    // one drain pass at a time
	kick     chan struct{} // an attempt ended: drain backlogs

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
	backlog, _ := cfg.Queue.(dcon.BacklogQueue)
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger,
		backlog:   backlog,
		flows:     newFlows(cfg.Flow, backlog != nil, cfg.MaxInFlight),
		kick:      make(chan struct{}, 1),
		jobs:      make(chan job),
		quit:      make(chan struct{}),
		run:       run,
		cancelRun: cancel,
		stopPoll:  make(chan struct{}),
		pollDone:  make(chan struct{}),
	}
	// Acks are recorded even while stopping: an attempt that finished must
	// not be repeated for want of its ack.
	e.acks = newAcker(context.WithoutCancel(run), cfg.Queue, cfg.Logger, func(n int) { e.wg.Add(-n) })
	return e, nil
}

// Start recovers what a previous process left in flight and starts polling
// the queue for deliveries that come due. Deliveries enqueued from now on
// must carry a lease of at least Now()+Lease, as ingest gives them.
//
// With a queue that parks, the connectors' backlogs are unknown after a
// restart: when Connectors can list every connector (AllConnectors, as
// *ingest.Router can), each ACTIVE one is assumed to have a backlog until one
// ClaimConnector finds out.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.assumeBacklogs(ctx); err != nil {
		return fmt.Errorf("list connectors: %w", err)
	}
	// A previous process's leases end at most Lease from now, and it can no
	// longer be working on them: take them at once instead of when they end.
	// Nothing of this process is in the queue yet, so nothing else is taken.
	if err := e.recoverLeases(ctx); err != nil {
		return fmt.Errorf("recover deliveries: %w", err)
	}
	e.started.Store(true)
	go e.pollLoop()
	e.signal()
	return nil
}

// connectorLister lists every connector; *ingest.Router implements it.
type connectorLister interface {
	AllConnectors(ctx context.Context) ([]*dcon.Connector, error)
}

// assumeBacklogs marks every ACTIVE connector's backlog unknown.
func (e *Engine) assumeBacklogs(ctx context.Context) error {
	l, ok := e.cfg.Connectors.(connectorLister)
	if !ok || e.backlog == nil {
		return nil
	}
	cs, err := l.AllConnectors(ctx)
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	for _, c := range cs {
		if c.Status == dcon.StatusActive {
			e.flows.unknown(c.ID, now)
		}
	}
	return nil
}

// Stop stops polling and waits for attempts under way to finish, until ctx is
// done; then it cancels them. Cancelled attempts keep their lease and are
// retried by the next process that starts on the same queue. Either way, the
// acks of the attempts that succeeded are committed before it returns.
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
	defer e.quitOnce.Do(func() { close(e.quit) })
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

// Wait blocks until no attempt is under way and every ack is committed. Call
// it only when nothing launches attempts concurrently (no Dispatch, no
// poller), as tests do.
func (e *Engine) Wait() { e.wg.Wait() }

// InFlight returns the number of attempts under way.
func (e *Engine) InFlight() int { return int(e.inFlight.Load()) }

// Flow returns a connector's flow control state.
func (e *Engine) Flow(connectorID string) dcon.FlowState {
	return e.flows.state(connectorID, e.cfg.Now())
}

// Admit is called by ingest for fresh deliveries before it enqueues them: it
// reserves a slot in its connector's window for each one that may be
// attempted at once, and parks the others (Delivery.Park), so that they are
// enqueued parked, at no extra cost, to be drained from the connector's
// backlog later. Once they are durable, pass them all to Dispatch; if the
// Enqueue fails, to Release.
func (e *Engine) Admit(ds []dcon.Delivery) { e.flows.admit(ds, e.cfg.Now()) }

// Release gives back the reservations Admit made for ds, when they could not
// be enqueued.
func (e *Engine) Release(ds []dcon.Delivery) { e.flows.unreserve(ds) }

// Dispatch attempts each delivery at once, in parallel, as far as its
// connector's window allows; parked ones join their connector's backlog. The
// deliveries must already be durable in the queue. One that was not admitted
// and finds no room stays in the queue and is claimed when its lease ends.
func (e *Engine) Dispatch(ds []dcon.Delivery) {
	now := e.cfg.Now()
	for i := range ds {
		d := &ds[i]
		if e.backlog != nil && d.Parked() {
			e.flows.parked(d.ConnectorID, d.EventID, now)
			continue
		}
		t, ok := e.flows.take(d.ConnectorID, now)
		if !ok {
			e.log.Debug("no room for a delivery; it is left to the queue",
				"connector", d.ConnectorID, "event", d.EventID)
			continue
		}
		e.launch(*d, t)
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
		case <-e.kick:
			e.drain(e.run)
		}
	}
}

// signal asks the poller for a drain pass.
func (e *Engine) signal() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Poll claims the deliveries that have come due, as many as the engine has
// room for, and attempts or expires them; then it drains connectors'
// backlogs. It returns how many deliveries it claimed. The poller calls it
// every PollInterval; tests call it to move time on.
func (e *Engine) Poll(ctx context.Context) (int, error) {
	total := 0
	for {
		room := min(e.flows.room(), e.cfg.ClaimBatch)
		if room <= 0 {
			break
		}
		now := e.cfg.Now()
		ds, err := e.cfg.Queue.Claim(ctx, now, now.Add(e.cfg.Lease), room)
		if err != nil {
			return total, err
		}
		total += len(ds)
		e.handle(ctx, ds, now)
		if len(ds) < room {
			break
		}
	}
	e.drain(ctx)
	e.flows.sweep(e.cfg.Now())
	return total, nil
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

// handle expires or launches claimed deliveries. What finds no room in its
// connector's window is parked, to be drained from its backlog, or, when the
// queue cannot park, keeps its lease and is claimed again when it ends.
func (e *Engine) handle(ctx context.Context, ds []dcon.Delivery, now time.Time) {
	var expired []dcon.Delivery
	for i := range ds {
		if ds[i].Expired(now) {
			expired = append(expired, ds[i])
			continue
		}
		if t, ok := e.flows.acquire(ds[i].ConnectorID, now); ok {
			e.launch(ds[i], t)
		} else if e.backlog != nil {
			e.park(ctx, ds[i])
		}
	}
	if len(expired) > 0 {
		e.expire(ctx, expired, now) // one synced write for all of them
	}
}

// drain fills the room of connectors with a backlog from it, oldest first,
// round-robin, each taking at most a fair share of the engine's room.
func (e *Engine) drain(ctx context.Context) {
	if e.backlog == nil {
		return
	}
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	now := e.cfg.Now()
	for _, g := range e.flows.grants(now, e.cfg.ClaimBatch) {
		ds, next, err := e.claimBacklog(ctx, g, now.Add(e.cfg.Lease))
		if err != nil {
			e.log.Error("claim a connector's backlog", "connector", g.id, "err", err)
		}
		ts := e.flows.claimed(g, len(ds), next, err)
		var expired []dcon.Delivery
		for i := range ds {
			if ds[i].Expired(now) {
				e.flows.release(g.id, ts[i])
				expired = append(expired, ds[i])
				continue
			}
			e.launch(ds[i], ts[i])
		}
		if len(expired) > 0 {
			e.expire(ctx, expired, now)
		}
	}
}

// job is one attempt to make: a delivery in the slot t of its connector's
// window.
type job struct {
	d dcon.Delivery
	t ticket
}

// workerIdle is how long a worker whose attempt ended waits for another
// before it ends.
const workerIdle = 2 * time.Second

// backlogChunk is the most deliveries one ClaimConnector takes: a drain
// pass that may take more claims them in chunks, so that no claim's batch
// (which rewrites each record it leases, body included) grows past what
// Pebble keeps pooled for reuse, about 1 MiB, and no claim holds the queue
// lock for long.
const backlogChunk = 256

// claimBacklog claims the deliveries of grant g from its connector's
// backlog, leased until leaseUntil, in chunks of at most backlogChunk, and
// returns them with the position to resume from.
func (e *Engine) claimBacklog(ctx context.Context, g grant, leaseUntil time.Time) ([]dcon.Delivery, string, error) {
	var out []dcon.Delivery
	from := g.from
	for len(out) < g.n {
		limit := min(backlogChunk, g.n-len(out))
		ds, next, err := e.backlog.ClaimConnector(ctx, g.id, from, leaseUntil, limit)
		if out == nil {
			out = ds
		} else {
			out = append(out, ds...)
		}
		if err != nil {
			return out, from, err
		}
		from = next
		if len(ds) < limit {
			break // the end of the backlog
		}
	}
	return out, from, nil
}

// launch starts an attempt in the slot t of its connector's window: on an
// idle worker if there is one, else on a new one. Workers outlive their
// attempt by workerIdle at most, so that under load an attempt costs neither
// a goroutine's start nor the growth of its stack (signing and the HTTP
// client need a deep one), and when the load ends so do they.
func (e *Engine) launch(d dcon.Delivery, t ticket) {
	e.inFlight.Add(1)
	e.wg.Add(1)
	select {
	case e.jobs <- job{d: d, t: t}:
	default:
		go e.worker(job{d: d, t: t})
	}
}

// worker makes attempts, j first, until it has been idle for workerIdle or
// the engine stopped.
func (e *Engine) worker(j job) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		e.do(j)
		idle.Reset(workerIdle)
		select {
		case j = <-e.jobs:
		case <-idle.C:
			return
		case <-e.quit:
			return
		}
	}
}

// do makes the attempt of a launched job.
func (e *Engine) do(j job) {
	defer e.wg.Done()
	defer e.signal()
	defer e.inFlight.Add(-1)
	e.attempt(j.d, j.t)
}

// attempt makes one attempt and records its outcome.
func (e *Engine) attempt(d dcon.Delivery, t ticket) {
	// Outcomes are recorded even while stopping: an attempt that finished
	// must not be repeated for want of its ack.
	store := context.WithoutCancel(e.run)
	c, ok := e.cfg.Connectors.Lookup(d.ConnectorID)
	if !ok || c.Status != dcon.StatusActive {
		// Deleted or disabled: its queue was dropped; this copy goes too.
		e.flows.release(d.ConnectorID, t)
		e.ack(d)
		return
	}
	if now := e.cfg.Now(); d.Expired(now) {
		e.flows.release(d.ConnectorID, t)
		e.expire(store, []dcon.Delivery{d}, now)
		return
	}
	res := e.cfg.Sender.Send(e.run, c, webhook.Attempt{EventID: d.EventID, Body: d.Body})
	if e.run.Err() != nil {
		e.flows.release(d.ConnectorID, t)
		return // cancelled by Stop: the lease brings it back after a restart
	}
	now := e.cfg.Now()
	park := e.flows.finish(d.ConnectorID, t, res, now)
	d.Attempts++
	if e.cfg.Observer != nil {
		e.cfg.Observer.Observe(&dcon.Outcome{
			ConnectorID: d.ConnectorID, ProjectID: d.ProjectID, EventID: d.EventID,
			EventTime: d.EventTime, Attempt: d.Attempts, StatusCode: res.StatusCode,
			Latency: res.Duration, Err: res.Err, At: now,
		})
	}
	if res.Err == nil {
		e.ack(d)
		return
	}
	d.LastError = res.Err.Error()
	if park {
		// The connector probes: its probe interval, not a backoff of its own,
		// says when this delivery is tried again.
		e.park(store, d)
		return
	}
	at := now.Add(e.cfg.Backoff.Delay(d.Attempts, res.RetryAfter))
	if deadline := d.Deadline(); at.After(deadline) {
		at = deadline // expire on time rather than wait for a retry that cannot happen
	}
	e.log.Debug("delivery failed", "connector", d.ConnectorID, "event", d.EventID,
		"attempt", d.Attempts, "status", res.StatusCode, "err", d.LastError, "retry_at", at)
	if err := e.cfg.Queue.Retry(store, d, at); err != nil {
		e.log.Error("record a retry; the delivery will be retried when its lease ends",
			"connector", d.ConnectorID, "event", d.EventID, "err", err)
		return
	}
	if at.Equal(d.Deadline()) && e.backlog != nil {
		e.flows.parked(d.ConnectorID, d.EventID, now) // a retry at the deadline is parked
	}
}

// park parks a claimed delivery in its connector's backlog: due at its
// deadline, keeping its Attempts and LastError.
func (e *Engine) park(ctx context.Context, d dcon.Delivery) {
	if err := e.cfg.Queue.Retry(ctx, d, d.Deadline()); err != nil {
		e.log.Error("park a delivery; it will be claimed again when its lease ends",
			"connector", d.ConnectorID, "event", d.EventID, "err", err)
		return
	}
	e.flows.parked(d.ConnectorID, d.EventID, e.cfg.Now())
}

// ack hands d over to the acker, which removes it from the queue with the
// acks of other attempts, and returns at once: d's lease keeps it from being
// claimed again until then. Wait and Stop wait for the commit.
func (e *Engine) ack(d dcon.Delivery) {
	e.wg.Add(1) // while the attempt holds it: never from zero
	e.acks.add(d)
}

// ackBatch is the most acks one Queue.Ack commits.
const ackBatch = 1024

// ackBacklog bounds the acks waiting for a commit: an attempt that would
// hand over more commits its own ack, as if there were no acker, so that a
// store slower than the endpoints slows the attempts down rather than grows
// the memory — without the attempt holding a worker while it waits for room.
const ackBacklog = 16 * ackBatch

// ackCommitters is how many batches may commit at once: one is enough for
// Pebble (its commit pipeline groups them anyway); a store whose Ack is a
// round trip per delivery (JetStream) needs several batches under way to
// keep up with the attempts.
const ackCommitters = 4

// acker commits acks in batches, group-commit style: the first ack starts a
// commit at once, on a goroutine of its own, and the acks handed over while
// it runs make the next one, until none is left; then the goroutine ends.
// While a full batch waits, up to ackCommitters goroutines commit at once. A
// failed batch is logged and not retried — its deliveries are delivered
// again when their leases end —, and the next batch is committed as usual.
type acker struct {
	ctx   context.Context
	queue dcon.Queue
	log   *slog.Logger
	done  func(n int) // n acks are committed, or failed

	mu      sync.Mutex
	pending []dcon.Delivery
	spare   []dcon.Delivery // a committed batch's array, for reuse
	running int             // goroutines committing pending
}

func newAcker(ctx context.Context, q dcon.Queue, log *slog.Logger, done func(n int)) *acker {
	return &acker{ctx: ctx, queue: q, log: log, done: done}
}

// add hands d over to be acked. When ackBacklog acks wait already, it
// commits d itself before it returns.
func (a *acker) add(d dcon.Delivery) {
	d.Body = nil // Ack needs the ids and the Due; the body can go now
	a.mu.Lock()
	if len(a.pending) >= ackBacklog {
		a.mu.Unlock()
		a.commit([]dcon.Delivery{d})
		return
	}
	a.pending = append(a.pending, d)
	start := a.running == 0 || len(a.pending) > ackBatch && a.running < ackCommitters
	if start {
		a.running++
	}
	a.mu.Unlock()
	if start {
		go a.run()
	}
}

// run commits batches until nothing is pending.
func (a *acker) run() {
	var batch []dcon.Delivery
	for {
		a.mu.Lock()
		if batch != nil && a.spare == nil {
			clear(batch)
			a.spare = batch[:0]
		}
		batch = a.take()
		if len(batch) == 0 {
			a.running--
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		a.commit(batch)
	}
}

// take removes up to ackBatch acks from pending and returns them.
func (a *acker) take() []dcon.Delivery {
	spare := a.spare // no other committer holds it
	a.spare = nil
	if len(a.pending) <= ackBatch {
		batch := a.pending
		a.pending = spare
		return batch
	}
	batch := append(spare, a.pending[:ackBatch]...)
	n := copy(a.pending, a.pending[ackBatch:])
	clear(a.pending[n:])
	a.pending = a.pending[:n]
	return batch
}

// commit acks one batch.
func (a *acker) commit(batch []dcon.Delivery) {
	defer a.done(len(batch))
	err := a.queue.Ack(a.ctx, batch)
	switch {
	case err == nil:
	case len(batch) == 1:
		a.log.Error("ack a delivery; it may be delivered again",
			"connector", batch[0].ConnectorID, "event", batch[0].EventID, "err", err)
	default:
		a.log.Error("ack deliveries; they may be delivered again", "count", len(batch),
			"connector", batch[0].ConnectorID, "event", batch[0].EventID, "err", err)
	}
}

func (e *Engine) expire(ctx context.Context, ds []dcon.Delivery, now time.Time) {
	for i := range ds {
		if ds[i].LastError == "" {
			// Parked while its connector was PROBING, most likely: say why.
			ds[i].LastError = "expired before any attempt"
			if last := e.flows.lastError(ds[i].ConnectorID); last != "" {
				ds[i].LastError += "; its connector's last error: " + last
			}
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
