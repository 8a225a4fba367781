package delivery

import (
	"math/rand/v2"
	"sync"
	"time"

	"dcon"
	"dcon/internal/webhook"
)

// FlowConfig configures per-connector flow control. The zero value takes
// every default.
//
// Each connector has a window: how many attempts it may have in flight. The
// window starts at InitialWindow, grows by one with each success (so it
// doubles every round trip while the endpoint keeps up, as TCP's slow start)
// up to MaxWindow, and halves on a failure that says the endpoint is
// overloaded or unreachable (a timeout, no answer, 429, 502, 503, 504), at
// most once per round trip: failures of attempts that started before the last
// decrease do not decrease it again. Other answers (500, 4xx, a redirect) are
// the endpoint's verdict on one request, not on the load: they count as
// failures but leave the window alone, so a flaky but fast endpoint keeps its
// parallelism. Deliveries that find the window full are parked in the queue, at
// their deadline, and drained oldest first when there is room.
//
// Draining a backlog is paced by round trips too: of the window, at most
// the drain window's worth of attempts may be backlog deliveries. It starts
// at InitialWindow and grows by one with each success while the endpoint
// answers about as fast as it does unloaded; a smoothed round trip above
// twice the least seen lately (plus QueueingDelay) says that requests now
// wait in a queue — the endpoint's, or dcon's own run queue when its CPU is
// the bottleneck — and it holds; above four times (plus twice
// QueueingDelay) it shrinks by one per success, down to InitialWindow (a
// busy endpoint always keeps that much: an endpoint whose answers are slow
// by nature, or that hangs on some requests, must not be drained a few at a
// time). A
// backlog is drained as fast as the endpoint answers without queueing, and
// never by a thousand attempts in dcon's run queue ahead of every other
// connector's fresh events. Fresh events are not held by round trips: each
// goes out at once while the window has room.
//
// A connector whose last ProbeAfter attempts all failed for want of an answer
// or with overload (the failures that halve the window) goes PROBING: its
// endpoint is down, hanging or overwhelmed. Everything it gets is parked,
// and one probe at a time is sent, ProbeInterval after the last failure at
// first, doubling (with jitter) up to MaxProbeInterval. A probe that gets an
// answer reopens it with ReopenWindow.
//
// A connector whose last ProbeAfterErrors attempts all failed, whatever the
// failure (a 500, a 4xx, a redirect), goes PROBING too: its endpoint answers,
// but with nothing but errors, and attempting every fresh event and each
// one's retries spent on it several times the CPU and sockets a healthy
// connector spends. Only a success reopens it. A probe it answers with an
// error is retried on its own backoff rather than parked, so the next probe
// is another delivery: one event that the endpoint always refuses (a poison
// event) cannot hold the backlog behind it once the endpoint takes the others.
// Failures mixed with successes, however many, never lead there: each
// success starts the count again.
type FlowConfig struct {
	InitialWindow int // default 64
	MaxWindow     int // default 1024
	// QueueingDelay is the round-trip time above twice the least one that
	// still counts as unloaded, so that the jitter of a fast endpoint (a
	// round trip of a fraction of a millisecond) does not stop the drain
	// window's growth. Default 1ms: with 2ms, a backlog drain on a
	// two-core machine held the other connectors' p99 at 16–17 ms against
	// 12 ms with 1ms, which drained as fast (performance.md, session 6).
	QueueingDelay    time.Duration
	ReopenWindow     int           // window after a successful probe; default 4
	ProbeAfter       int           // consecutive overload failures before PROBING; default 20
	ProbeAfterErrors int           // consecutive failures of any kind before PROBING; default 64
	ProbeInterval    time.Duration // first interval between probes; default Backoff.Initial (1s)
	MaxProbeInterval time.Duration // default Backoff.Max, at most 30s
	// IdleAfter is how long a connector's state is kept once it has nothing
	// in flight, nothing parked and nothing wrong. Default 10 minutes.
	IdleAfter time.Duration
	// FreshWithin: a connector that received a fresh event this recently
	// drains its backlog with at most half its window, so that fresh events
	// keep going out at once. Default 1s.
	FreshWithin time.Duration
	// Rand returns a number in [0, 1) for the probe jitter; default
	// math/rand/v2's Float64.
	Rand func() float64
}

func (c *FlowConfig) setDefaults() {
	if c.InitialWindow <= 0 {
		c.InitialWindow = 64
	}
	if c.MaxWindow <= 0 {
		c.MaxWindow = 1024
	}
	c.MaxWindow = max(c.MaxWindow, c.InitialWindow)
	if c.QueueingDelay <= 0 {
		c.QueueingDelay = time.Millisecond
	}
	if c.ReopenWindow <= 0 {
		c.ReopenWindow = 4
	}
	if c.ProbeAfter <= 0 {
		c.ProbeAfter = 20
	}
	if c.ProbeAfterErrors <= 0 {
		c.ProbeAfterErrors = 64
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = time.Second
	}
	if c.MaxProbeInterval <= 0 {
		c.MaxProbeInterval = 30 * time.Second
	}
	c.MaxProbeInterval = max(c.MaxProbeInterval, c.ProbeInterval)
	if c.IdleAfter <= 0 {
		c.IdleAfter = 10 * time.Minute
	}
	if c.FreshWithin <= 0 {
		c.FreshWithin = time.Second
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// flow is one connector's flow control state. Its fields are guarded by
// flows.mu.
type flow struct {
	id       string
	window   int
	inFlight int // attempts under way plus reservations
	reserved int // of inFlight: admitted (Admit) but not yet dispatched
	// reservedProbe: one of the reservations is the probe.
	reservedProbe bool
	drainers      int // of inFlight: attempts of backlog deliveries

	probing bool
	// failing: PROBING because every answer was an error, not for want of
	// answers; only a success reopens it.
	failing    bool
	probeOut   bool // a probe is in flight
	probeAt    time.Time
	probeDelay time.Duration
	paused     time.Time // nothing is sent before
	failures   int       // consecutive
	overloads  int       // consecutive overload failures; any answer but those resets it
	lastErr    error     // the last failure's; its text is made when asked for

	seq         uint64 // attempts started
	decreaseSeq uint64 // failures of attempts numbered below do not decrease the window
	// okSeq is seq when the last success came back: an attempt numbered at
	// or below it started before that success.
	okSeq uint64

	backlog dcon.FlowBacklog
	cursor  string // ClaimConnector resumes here
	gen     uint64 // counts parkings, so a claim knows if one happened meanwhile
	listed  bool   // in flows.backlogged

	lastFresh  time.Time
	lastActive time.Time

	rtt         rtt       // of successful attempts
	lastClaim   time.Time // of its backlog
	drainWindow int       // backlog attempts it may have in flight, within window
}

// rttPeriod is how long a least round trip is remembered: the least of this
// period and the last one is the endpoint's unloaded round trip, so that a
// route or an endpoint that got slower for good is learnt within two periods.
const rttPeriod = 10 * time.Second

// rtt tracks a connector's round trips: the least of the last two periods,
// and a smoothed one (TCP's: each sample moves it by an eighth).
type rtt struct {
	least, leastBefore time.Duration
	periodEnd          time.Time
	smooth             time.Duration
}

// base is the least round trip of this period and the last one.
func (r *rtt) base() time.Duration {
	if r.leastBefore > 0 && (r.least == 0 || r.leastBefore < r.least) {
		return r.leastBefore
	}
	return r.least
}

// load is what the round trips say of the endpoint's load, for the drain
// window.
type load int

const (
	unloaded  load = iota // the drain window may grow
	queueing              // hold it
	congested             // shrink it
)

// sample records a successful attempt's round trip d at now and returns the
// load it shows. Without a measured round trip, the endpoint counts as
// unloaded.
func (r *rtt) sample(d time.Duration, now time.Time, slack time.Duration) load {
	if d <= 0 {
		return unloaded
	}
	if now.After(r.periodEnd) {
		r.leastBefore, r.least, r.periodEnd = r.least, 0, now.Add(rttPeriod)
	}
	if r.least == 0 || d < r.least {
		r.least = d
	}
	if r.smooth == 0 {
		r.smooth = d
	} else {
		r.smooth += (d - r.smooth) / 8
	}
	base := r.base()
	switch {
	case r.smooth > 4*base+2*slack:
		return congested
	case r.smooth > 2*base+slack:
		return queueing
	}
	return unloaded
}

// borrowable is how many of f's backlog attempts a fresh delivery may count
// as free: those beyond half the window.
func (f *flow) borrowable(fresh bool) int {
	if !fresh {
		return 0
	}
	return max(0, f.drainers-max(1, f.window/2))
}

// ticket is one attempt's slot in its connector's window.
type ticket struct {
	seq     uint64
	backlog bool // a backlog delivery
	probe   bool
}

// flows holds every connector's flow state, and the engine-wide count of
// attempts. The lock is taken after no other.
type flows struct {
	cfg   FlowConfig
	gated bool // the queue can park: windows hold deliveries back
	max   int  // MaxInFlight

	mu         sync.Mutex
	m          map[string]*flow
	backlogged []*flow // connectors with a backlog, in drain order
	rr         int     // where the next drain pass starts in backlogged
	total      int     // attempts under way plus reservations, every connector
	lastSweep  time.Time
}

func newFlows(cfg FlowConfig, gated bool, maxInFlight int) *flows {
	return &flows{cfg: cfg, gated: gated, max: maxInFlight, m: make(map[string]*flow)}
}

// getLocked returns the state of a connector, making it if needed.
func (fs *flows) getLocked(id string, now time.Time) *flow {
	f := fs.m[id]
	if f == nil {
		f = &flow{id: id, window: fs.cfg.InitialWindow, drainWindow: fs.cfg.InitialWindow, backlog: dcon.BacklogNone}
		fs.m[id] = f
	}
	f.lastActive = now
	return f
}

// acquireLocked takes a slot of f's window for one attempt, if flow control
// lets it start now. A fresh delivery may always use half the window, even
// when backlog deliveries fill it: the window may then run over by up to a
// half, so that fresh events never wait for the backlog to drain.
func (fs *flows) acquireLocked(f *flow, now time.Time, fresh bool) (ticket, bool) {
	if fs.total >= fs.max {
		return ticket{}, false
	}
	var t ticket
	if fs.gated {
		switch {
		case now.Before(f.paused):
			return ticket{}, false
		case f.probing:
			if f.probeOut || !fs.probeDue(f, now) {
				return ticket{}, false
			}
			f.probeOut, t.probe = true, true
		case f.inFlight-f.borrowable(fresh) >= f.window:
			return ticket{}, false
		}
	}
	f.inFlight++
	fs.total++
	f.seq++
	t.seq = f.seq
	return t, true
}

// releaseLocked gives back a slot whose attempt was not made.
func (fs *flows) releaseLocked(f *flow, t ticket) {
	f.inFlight--
	fs.total--
	if t.backlog {
		f.drainers--
	}
	if t.probe {
		f.probeOut = false
	}
}

// room returns how many more attempts the engine may start.
func (fs *flows) room() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.max - fs.total
}

// admit reserves a slot for each delivery that may be attempted at once and
// parks the others (ds[i].Park()).
func (fs *flows) admit(ds []dcon.Delivery, now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range ds {
		f := fs.getLocked(ds[i].ConnectorID, now)
		f.lastFresh = now
		if t, ok := fs.acquireLocked(f, now, true); ok {
			f.reserved++
			f.reservedProbe = f.reservedProbe || t.probe
			continue
		}
		if fs.gated {
			ds[i].Park()
		}
	}
}

// unreserve gives back the reservations admit made for ds.
func (fs *flows) unreserve(ds []dcon.Delivery) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range ds {
		if ds[i].Parked() {
			continue
		}
		if f := fs.m[ds[i].ConnectorID]; f != nil && f.reserved > 0 {
			f.reserved--
			fs.releaseLocked(f, ticket{probe: f.reservedProbe})
			f.reservedProbe = false
		}
	}
}

// take returns the slot of a fresh delivery: its reservation, or a new one.
func (fs *flows) take(id string, now time.Time) (ticket, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.getLocked(id, now)
	if f.reserved > 0 {
		f.reserved--
		f.seq++
		t := ticket{seq: f.seq, probe: f.reservedProbe}
		f.reservedProbe = false
		return t, true
	}
	return fs.acquireLocked(f, now, true)
}

// acquire takes a slot for a delivery claimed from the queue.
func (fs *flows) acquire(id string, now time.Time) (ticket, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.acquireLocked(fs.getLocked(id, now), now, false)
}

// release gives back a slot whose attempt was not made.
func (fs *flows) release(id string, t ticket) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[id]; f != nil {
		fs.releaseLocked(f, t)
	}
}

// parked records that a delivery of the connector was parked, so that the
// backlog is drained from it.
func (fs *flows) parked(id, eventID string, now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.getLocked(id, now)
	f.gen++
	f.cursor = min(f.cursor, eventID)
	if f.backlog != dcon.BacklogUnknown {
		f.backlog = dcon.BacklogParked
	}
	fs.listLocked(f)
}

// unknown records that the connector may have parked deliveries nobody knows
// of: after a restart.
func (fs *flows) unknown(id string, now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.getLocked(id, now)
	f.backlog, f.cursor = dcon.BacklogUnknown, ""
	f.gen++
	fs.listLocked(f)
}

func (fs *flows) listLocked(f *flow) {
	if !f.listed {
		f.listed = true
		fs.backlogged = append(fs.backlogged, f)
	}
}

// finish records the result of an attempt made with t and reports whether the
// failed delivery is to be parked rather than retried on its own.
func (fs *flows) finish(id string, t ticket, res webhook.Result, now time.Time) (park bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.getLocked(id, now)
	fs.releaseLocked(f, t)
	if res.Err == nil {
		f.failures, f.overloads = 0, 0
		f.okSeq = f.seq
		switch {
		case f.probing:
			f.probing, f.failing, f.window = false, false, fs.cfg.ReopenWindow
		case f.window < fs.cfg.MaxWindow:
			f.window++
		}
		switch f.rtt.sample(res.Duration, now, fs.cfg.QueueingDelay) {
		case unloaded:
			f.drainWindow = min(f.drainWindow+1, fs.cfg.MaxWindow)
		case congested:
			f.drainWindow = max(f.drainWindow-1, fs.cfg.InitialWindow)
		}
		return false
	}
	f.failures++
	f.lastErr = res.Err
	// Retry-After pauses the whole connector, unless the endpoint answered
	// another request with success since this one was sent: then it speaks
	// of this request (whose retry waits for it, see Backoff) rather than of
	// the endpoint, and the window's halving slows the rest down.
	if res.RetryAfter > 0 && (res.StatusCode == 429 || res.StatusCode == 503) && t.seq > f.okSeq {
		f.paused = maxTime(f.paused, now.Add(res.RetryAfter))
	}
	switch {
	case !overloaded(res):
		f.overloads = 0
	case res.StatusCode == 0 && t.seq <= f.okSeq:
		// No answer to this request, but the endpoint answered another one
		// since it was sent: a request that hangs or a connection that broke,
		// not an endpoint that is down or overloaded. It keeps its window
		// (a tenth of requests hanging must not collapse it).
	default:
		f.overloads++
		if t.seq >= f.decreaseSeq {
			// While the endpoint answers some requests with success, it is
			// busy rather than down: the window keeps its initial size. Only
			// overload with no success in between takes it lower, down to 1
			// and PROBING.
			floor := 1
			if t.seq <= f.okSeq {
				floor = min(f.window, fs.cfg.InitialWindow)
			}
			f.window = max(floor, f.window/2)
			f.decreaseSeq = f.seq + 1
		}
	}
	switch {
	case f.probing && !f.failing && f.overloads == 0:
		// An answer, if not a good one: the endpoint is back; its errors are
		// the deliveries' business.
		f.probing, f.window = false, fs.cfg.ReopenWindow
	case f.probing:
		f.probeDelay = min(2*f.probeDelay, fs.cfg.MaxProbeInterval)
		fs.scheduleProbeLocked(f, now)
	case f.overloads >= fs.cfg.ProbeAfter:
		f.probing, f.probeDelay = true, fs.cfg.ProbeInterval
		fs.scheduleProbeLocked(f, now)
	case f.failures >= fs.cfg.ProbeAfterErrors:
		f.probing, f.failing, f.probeDelay = true, true, fs.cfg.ProbeInterval
		fs.scheduleProbeLocked(f, now)
	}
	// A failing connector's probe that got an error answer keeps its own
	// backoff: parked, it would be the oldest again and the next probe too.
	if t.probe && f.failing && !overloaded(res) {
		return false
	}
	return fs.gated && f.probing
}

// probeDue reports whether f's next probe may go at now: its time has come,
// or it lies further ahead than any interval puts it, so the clock went
// back (a Retry-After pause is checked on its own).
func (fs *flows) probeDue(f *flow, now time.Time) bool {
	return !now.Before(f.probeAt) || f.probeAt.Sub(now) > fs.cfg.MaxProbeInterval && !now.Before(f.paused)
}

// scheduleProbeLocked sets the next probe a jittered probeDelay from now,
// and not before a Retry-After pause ends.
func (fs *flows) scheduleProbeLocked(f *flow, now time.Time) {
	d := f.probeDelay/2 + time.Duration(fs.cfg.Rand()*float64(f.probeDelay/2))
	f.probeAt = maxTime(now.Add(d), f.paused)
}

// grant is a drain pass's claim for one connector: n slots taken, to be
// filled from its backlog from the cursor.
type grant struct {
	f     *flow
	id    string
	from  string
	gen   uint64
	n     int
	probe bool
	seq   uint64 // the first of the n attempts' numbers
}

// grants takes, for every connector with a backlog and room, the slots a
// drain pass may fill from its backlog: round-robin, each at most a fair
// share of the engine's room and at most batch.
func (fs *flows) grants(now time.Time, batch int) []grant {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.pruneLocked()
	n := len(fs.backlogged)
	if n == 0 {
		return nil
	}
	share := max(1, (fs.max-fs.total)/n)
	var out []grant
	start := fs.rr % n
	fs.rr++
	for i := range n {
		f := fs.backlogged[(start+i)%n]
		g, ok := fs.grantLocked(f, now, min(share, batch))
		if ok {
			out = append(out, g)
		}
	}
	return out
}

// pruneLocked removes the connectors without a backlog from backlogged.
func (fs *flows) pruneLocked() {
	keep := fs.backlogged[:0]
	for _, f := range fs.backlogged {
		if f.backlog == dcon.BacklogNone || fs.m[f.id] != f {
			f.listed = false
			continue
		}
		keep = append(keep, f)
	}
	clear(fs.backlogged[len(keep):])
	fs.backlogged = keep
}

// claimMin is the most free drain-window slots a connector with backlog
// attempts in flight waits for before it claims more; see grantLocked.
const claimMin = 32

// grantLocked takes up to limit slots of f for its backlog — none, while
// f has backlog attempts in flight, if fewer than a quarter of its drain
// window (at most claimMin) are free and its last claim is less than a
// round trip old.
func (fs *flows) grantLocked(f *flow, now time.Time, limit int) (grant, bool) {
	room := min(limit, fs.max-fs.total)
	g := grant{f: f, id: f.id, from: f.cursor, gen: f.gen}
	switch {
	case now.Before(f.paused):
		return g, false
	case f.probing:
		if f.probeOut || !fs.probeDue(f, now) {
			return g, false
		}
		f.probeOut, g.probe, room = true, true, 1
	default:
		avail := min(f.window-f.inFlight, f.drainWindow-f.drainers)
		if now.Sub(f.lastFresh) < fs.cfg.FreshWithin {
			avail = min(avail, max(1, f.window/2)-f.drainers)
		}
		room = min(room, avail)
		// A claim costs an iterator and a seek whatever it takes: while
		// backlog attempts are in flight, wait until a quarter of the drain
		// window (at most claimMin) is free rather than claim a delivery or
		// two per attempt that ends — but no longer than a round trip since
		// the last claim, so that attempts that hang do not hold the rest.
		if f.drainers > 0 && room < min(claimMin, f.drainWindow/4) && now.Sub(f.lastClaim) < f.rtt.smooth {
			return g, false
		}
	}
	if room <= 0 {
		if g.probe {
			f.probeOut = false
		}
		return g, false
	}
	g.n, g.seq = room, f.seq+1
	f.lastClaim = now
	f.seq += uint64(room)
	f.inFlight += room
	f.drainers += room
	fs.total += room
	return g, true
}

// claimed records what a grant's claim returned: it gives back the slots
// left unused and moves the cursor. It returns the tickets of the claimed
// deliveries.
func (fs *flows) claimed(g grant, got int, next string, err error) []ticket {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := g.f
	for range g.n - got {
		fs.releaseLocked(f, ticket{backlog: true, probe: g.probe && got == 0})
	}
	if err == nil {
		if f.gen == g.gen {
			f.cursor = next
			if got < g.n {
				f.backlog = dcon.BacklogNone
			} else if f.backlog == dcon.BacklogUnknown {
				f.backlog = dcon.BacklogParked
			}
		} else {
			f.cursor = min(f.cursor, next)
		}
	}
	ts := make([]ticket, got)
	for i := range ts {
		ts[i] = ticket{seq: g.seq + uint64(i), backlog: true, probe: g.probe}
	}
	return ts
}

// sweep forgets the state of connectors idle for IdleAfter: nothing in
// flight, nothing parked, not probing nor paused. It runs at most once per
// IdleAfter/2.
func (fs *flows) sweep(now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if now.Sub(fs.lastSweep) < fs.cfg.IdleAfter/2 {
		return
	}
	fs.lastSweep = now
	for id, f := range fs.m {
		if f.inFlight == 0 && f.backlog == dcon.BacklogNone && !f.probing &&
			!now.Before(f.paused) && now.Sub(f.lastActive) >= fs.cfg.IdleAfter {
			delete(fs.m, id)
		}
	}
}

// state returns a connector's flow state.
func (fs *flows) state(id string, now time.Time) dcon.FlowState {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[id]
	if f == nil {
		return dcon.FlowState{Mode: dcon.FlowOpen, Window: fs.cfg.InitialWindow, DrainWindow: fs.cfg.InitialWindow, Backlog: dcon.BacklogNone}
	}
	s := dcon.FlowState{Mode: dcon.FlowOpen, Window: f.window, DrainWindow: min(f.drainWindow, f.window),
		InFlight: f.inFlight, Backlog: f.backlog, ConsecutiveFailures: f.failures,
		RoundTrip: f.rtt.smooth, LeastRoundTrip: f.rtt.base()}
	switch {
	case now.Before(f.paused):
		s.Mode, s.PausedUntil = dcon.FlowPaused, f.paused
	case f.probing:
		s.Mode = dcon.FlowProbing
	case f.failures > 0 || f.window < fs.cfg.InitialWindow:
		s.Mode = dcon.FlowThrottled
	}
	return s
}

// lastError returns the error of the connector's last failed attempt, if
// it has state and the last attempt failed.
func (fs *flows) lastError(id string) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[id]; f != nil && f.failures > 0 {
		return f.lastErr.Error()
	}
	return ""
}

// overloaded reports whether a failed attempt says the endpoint is
// overloaded or unreachable: no answer (a timeout, a refused or reset
// connection), or 429, 502, 503, 504.
func overloaded(res webhook.Result) bool {
	switch res.StatusCode {
	case 0, 429, 502, 503, 504:
		return true
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
