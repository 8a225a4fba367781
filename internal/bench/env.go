package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stallTimeout is how long a wait for deliveries goes on with no delivery
// arriving: longer than dcon's lease (50 s), after which copies the engine
// had no room for are claimed again.
const stallTimeout = 90 * time.Second

// env is what one scenario runs against: a server, its API, receivers.
type env struct {
	r         *runner
	name      string
	backend   backend      // where the server keeps its state
	nats      *natsServers // nil unless the backend is NATS
	srv       *Server      // nil when the server is not ours
	api       *client
	receivers []*Receiver
}

// newEnv starts a server on a fresh data directory (unless the run measures
// a running one), and for a NATS backend fresh NATS servers first. On error,
// what it started is stopped.
func (r *runner) newEnv(ctx context.Context, name string, b backend) (*env, error) {
	e := &env{r: r, name: name, backend: b}
	base := r.cfg.Server
	if base == "" {
		dir, err := os.MkdirTemp(r.tmp, name+"-")
		if err != nil {
			return nil, err
		}
		flags := []string{"--dev"}
		if r.tls != nil {
			flags = []string{"--ca-file", r.caFile}
		}
		if b.NATS > 0 {
			done := r.prog.phase(e.label("start "+b.describe()), 0, func() (float64, string) { return 0, "" })
			e.nats, err = startNATS(ctx, filepath.Join(dir, "nats"), b.NATS)
			done()
			if err != nil {
				return nil, err
			}
			flags = append(flags, b.serveFlags(e.nats.URLs())...)
		}
		done := r.prog.phase(e.label("start the server"), 0, func() (float64, string) { return 0, "" })
		e.srv, err = StartServer(ctx, r.cfg.ServerBin, dir, append(flags, r.cfg.ServerFlags...))
		done()
		if err != nil {
			e.nats.Stop()
			return nil, err
		}
		base = e.srv.URL
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	e.api = &client{base: strings.TrimRight(base, "/"), http: r.load}
	return e, nil
}

// close stops the receivers, the server and the NATS servers.
func (e *env) close() {
	for _, rc := range e.receivers {
		rc.Close()
	}
	e.srv.Stop()
	e.nats.Stop()
}

// sinks makes n sinks spread over listeners new receivers (sink i on receiver
// i % listeners) and returns them with their URLs and receivers.
func (e *env) sinks(n, listeners int) ([]*Sink, []string, []*Receiver, error) {
	sinks := make([]*Sink, n)
	byRecv := make([]map[int]*Sink, listeners)
	for i := range byRecv {
		byRecv[i] = make(map[int]*Sink)
	}
	for i := range sinks {
		sinks[i] = newSink()
		byRecv[i%listeners][i] = sinks[i]
	}
	rcs := make([]*Receiver, listeners)
	for i := range rcs {
		rc, err := NewReceiver(e.r.clock, byRecv[i], e.r.tls)
		if err != nil {
			return nil, nil, nil, err
		}
		rcs[i] = rc
		e.receivers = append(e.receivers, rc)
	}
	urls := make([]string, n)
	for i := range urls {
		urls[i] = rcs[i%listeners].URL(i)
	}
	return sinks, urls, rcs, nil
}

// project is a project the bench made: its id, devices and the sinks of its
// connectors.
type project struct {
	id      string
	devices []string
	sinks   []*Sink
}

func (p project) targets() []target {
	ts := make([]target, len(p.devices))
	for i, d := range p.devices {
		ts[i] = target{p.id, d}
	}
	return ts
}

// setup creates n projects, each with the connectors of connectors(i) and
// devices emulated sensors, making the API calls in parallel.
func (e *env) setup(ctx context.Context, n int, connectors func(i int) ([]*Sink, []string), devices int) ([]project, error) {
	ps := make([]project, n)
	var made atomic.Int64
	total := 0
	for i := range ps {
		sinks, _ := connectors(i)
		total += 1 + len(sinks) + devices
	}
	done := e.r.prog.phase(e.label("set up"), float64(total), func() (float64, string) {
		return float64(made.Load()), fmt.Sprintf("%d/%d API calls", made.Load(), total)
	})
	defer done()
	err := parallel(ctx, n, 32, func(i int) error {
		id, err := e.api.createProject(ctx)
		if err != nil {
			return err
		}
		made.Add(1)
		ps[i].id = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	type job struct{ p, c, d int }
	var jobs []job
	for i := range ps {
		sinks, _ := connectors(i)
		ps[i].sinks = sinks
		ps[i].devices = make([]string, devices)
		for c := range sinks {
			jobs = append(jobs, job{i, c, -1})
		}
		for d := range devices {
			jobs = append(jobs, job{i, -1, d})
		}
	}
	err = parallel(ctx, len(jobs), 32, func(k int) error {
		j := jobs[k]
		defer made.Add(1)
		if j.c >= 0 {
			_, urls := connectors(j.p)
			return e.api.createConnector(ctx, ps[j.p].id, urls[j.c], fmt.Sprintf("bench-secret-%d-%d", j.p, j.c))
		}
		id, err := e.api.createDevice(ctx, ps[j.p].id)
		ps[j.p].devices[j.d] = id
		return err
	})
	return ps, err
}

// parallel calls fn(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// raw measures the raw ceiling: the load client posting delivery bodies
// straight to a receiver of its own, with conc posters for d (or at rate a
// second when rate > 0). It returns the completed posts per second and their
// latencies as the receiver saw them.
func (e *env) raw(ctx context.Context, conc int, d time.Duration, pace int) (*float64, *Latency, error) {
	return e.rawPhase(ctx, "raw ceiling", conc, d, pace, false)
}

// rawPhase is raw with its progress line named label; pooled, a paced load
// comes from conc workers (pacedPool) rather than a goroutine a post.
func (e *env) rawPhase(ctx context.Context, label string, conc int, d time.Duration, pace int, pooled bool) (*float64, *Latency, error) {
	sinks, urls, _, err := e.sinks(1, 1)
	if err != nil {
		return nil, nil, err
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	post := func(ctx context.Context) {
		if err := postRaw(ctx, e.r.load, urls[0], rawBody(e.r.clock.Now())); err != nil {
			if !isCancel(ctx, err) {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			return
		}
		ok.Add(1)
	}
	total, cur := timed(d, func() string { return fmt.Sprintf("%d posted", ok.Load()) })
	done := e.r.prog.phase(e.label(label), total, cur)
	from := e.r.clock.Now()
	var elapsed time.Duration
	switch {
	case pace > 0 && pooled:
		elapsed = pacedPool(ctx, pace, conc, d, post)
	case pace > 0:
		elapsed, _ = pacedLoop(ctx, pace, d, 4096, post)
	default:
		elapsed = closedLoop(ctx, conc, d, func(_ context.Context, _ int) bool { post(ctx); return true })
	}
	done()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if ok.Load() == 0 {
		return nil, nil, fmt.Errorf("%s: no post got through: %v", label, firstErr.Load())
	}
	as, _ := window(sinks, from, math.MaxInt64)
	return ptr(rate(int(ok.Load()), elapsed.Microseconds())), latencyOf(as), nil
}

// pubSpec says how to publish.
type pubSpec struct {
	conc    int           // closed-loop publishers
	pace    int           // > 0: publish this many single events a second instead
	d       time.Duration // how long to publish
	batch   int           // events per devices:batchPublish; 0: one :publish each
	targets []target      // devices, round robin; one project when batch > 0
	window  int64         // deliveries outstanding at most (0: no bound)
}

// publish publishes as spec says, recording acknowledged ids in l; fanout
// and watch are the deliveries each event makes and the sinks that receive
// them, for the window. It returns how long it published.
func (e *env) publish(ctx context.Context, label string, spec pubSpec, l *ledger, fanout int, watch []*Sink) time.Duration {
	gctx, stopGate := context.WithCancel(ctx)
	defer stopGate()
	g := newGate(gctx, spec.window, l, fanout, watch)
	devices := make([]string, len(spec.targets))
	for i, t := range spec.targets {
		devices[i] = t.device
	}
	var next atomic.Int64
	one := func(phase context.Context) {
		g.wait(phase)
		if phase.Err() != nil {
			return
		}
		t := spec.targets[int(next.Add(1)-1)%len(spec.targets)]
		if spec.batch > 0 {
			ids, refused, err := e.api.publishBatch(ctx, t.project, devices, spec.batch, e.r.clock.Now())
			l.add(t.project, ids...)
			if err != nil && !isCancel(ctx, err) || refused > 0 && err == nil {
				l.fail(refused, fmt.Errorf("batchPublish: %d events refused: %v", refused, err))
			}
			return
		}
		id, err := e.api.publishOne(ctx, t, e.r.clock.Now())
		if err != nil {
			if !isCancel(ctx, err) {
				l.fail(1, err)
			}
			return
		}
		l.add(t.project, id)
	}
	total, cur := timed(spec.d, func() string {
		return fmt.Sprintf("%d published, %d outstanding", l.n.Load(), g.outstanding.Load())
	})
	done := e.r.prog.phase(e.label(label), total, cur)
	defer done()
	if spec.pace > 0 {
		phase, cancel := context.WithTimeout(ctx, spec.d+time.Second)
		defer cancel()
		elapsed, _ := pacedLoop(ctx, spec.pace, spec.d, 4096, func(context.Context) { one(phase) })
		return elapsed
	}
	return closedLoop(ctx, spec.conc, spec.d, func(phase context.Context, _ int) bool { one(phase); return true })
}

// group is a set of sinks that must each receive a project's events.
type group struct {
	project string
	sinks   []*Sink
}

// await waits until every sink of every group has received every event its
// project acknowledged in l, no delivery has arrived for stall (0: no such
// limit), or the drain deadline passes.
func (e *env) await(ctx context.Context, label string, groups []group, l *ledger, base int64, stall time.Duration) (lost, dups int) {
	var all []*Sink
	var want int64
	for _, g := range groups {
		all = append(all, g.sinks...)
		want += int64(len(l.of(g.project)) * len(g.sinks))
	}
	check := func() (int, int) {
		lost, dups := 0, 0
		for _, g := range groups {
			ids := l.of(g.project)
			for _, s := range g.sinks {
				a, b := s.Check(ids)
				lost, dups = lost+a, dups+b
			}
		}
		return lost, dups
	}
	done := e.r.prog.phase(e.label(label), float64(want), func() (float64, string) {
		got := sumUnique(all) - base
		return float64(got), fmt.Sprintf("%d/%d delivered", got, want)
	})
	defer done()
	last, lastN := time.Now(), int64(-1)
	var lastCheck time.Time
	waitFor(ctx, e.r.cfg.DrainDeadline, func() bool {
		n := sumUnique(all) - base
		if n != lastN {
			last, lastN = time.Now(), n
		}
		if stall > 0 && time.Since(last) > stall {
			return true
		}
		if n < want || time.Since(lastCheck) < time.Second {
			return false
		}
		lastCheck = time.Now()
		lost, _ := check()
		return lost == 0
	})
	return check()
}

// loadResult measures one load phase: publish as spec says, wait for the
// deliveries of groups, and report what arrived at them.
func (e *env) loadResult(ctx context.Context, name string, spec pubSpec, groups []group) Result {
	var sinks []*Sink
	for _, g := range groups {
		sinks = append(sinks, g.sinks...)
	}
	fanout := len(sinks) / len(groups)
	l := newLedger()
	base := sumUnique(sinks)
	from := e.r.clock.Now()
	elapsed := e.publish(ctx, name+": publish", spec, l, fanout, sinks)
	lost, dups := e.await(ctx, name+": deliver", groups, l, base, stallTimeout)
	as, last := window(sinks, from, math.MaxInt64)
	res := Result{
		Name: name, Lost: lost, Duplicates: dups, Published: int(l.n.Load()), Deliveries: len(as),
		DeliveredPerS: ptr(rate(len(as), last-from)), Latency: latencyOf(as),
		PublishPerS: ptr(rate(int(l.n.Load()), elapsed.Microseconds())), PublishErrors: l.failed.Load(),
	}
	for _, s := range sinks {
		res.Unsigned += s.unsigned.Load()
	}
	if l.first != nil {
		res.Notes = append(res.Notes, "first publish error: "+l.first.Error())
	}
	return res
}

// withRaw sets a result's raw ceiling and ratio.
func withRaw(res Result, raw *float64) Result {
	res.RawCeilingPerS = raw
	if res.DeliveredPerS != nil && raw != nil {
		res.Ratio = ratio(*res.DeliveredPerS, *raw)
	}
	return res
}

// label names a phase of the scenario for the progress display, with the
// backend when it is not the default.
func (e *env) label(phase string) string {
	if !strings.HasPrefix(phase, e.name) {
		phase = e.name + ": " + phase
	}
	if e.backend.NATS > 0 {
		phase += " [" + e.backend.Name + "]"
	}
	return phase
}
