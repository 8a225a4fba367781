package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// devicesPerProject is how many sensors publish in the single-project
// scenarios.
const devicesPerProject = 16

// scenario runs one scenario on an environment of its own, whose server (if
// the bench starts it) keeps its state in b.
func (r *runner) scenario(ctx context.Context, name string, b backend) ([]Result, error) {
	e, err := r.newEnv(ctx, name, b)
	if err != nil {
		return nil, err
	}
	defer e.close()
	var res []Result
	switch name {
	case "throughput":
		res, err = e.throughput(ctx)
	case "latency":
		res, err = e.latency(ctx)
	case "fanout":
		res, err = e.spread(ctx, 1, 100, devicesPerProject)
	case "connectors":
		projects := 1000
		if r.cfg.Small {
			projects = 10
		}
		res, err = e.spread(ctx, projects, 10, 1)
	case "backlog":
		res, err = e.backlog(ctx)
	case "isolation":
		res, err = e.isolation(ctx)
	}
	if err == nil {
		err = ctx.Err()
	}
	if e.srv != nil {
		for i := range res {
			if rss, rerr := e.srv.PeakRSS(); rerr == nil && res[i].PeakRSSBytes == 0 {
				res[i].PeakRSSBytes = rss
			}
		}
	}
	if b.NATS > 0 {
		for i := range res {
			res[i].Notes = append(res[i].Notes, b.note())
		}
	}
	return res, err
}

// oneProject sets up a project whose n connectors each have a sink of their
// own receiver, and devicesPerProject sensors.
func (e *env) oneProject(ctx context.Context, n int) (project, []*Receiver, error) {
	sinks, urls, rcs, err := e.sinks(n, n)
	if err != nil {
		return project{}, nil, err
	}
	ps, err := e.setup(ctx, 1, func(int) ([]*Sink, []string) { return sinks, urls }, devicesPerProject)
	if err != nil {
		return project{}, nil, err
	}
	return ps[0], rcs, nil
}

// throughput publishes as fast as dcon accepts, single events then bulk, to
// one connector.
func (e *env) throughput(ctx context.Context) ([]Result, error) {
	cfg := e.r.cfg
	p, _, err := e.oneProject(ctx, 1)
	if err != nil {
		return nil, err
	}
	raw, rawLat, err := e.raw(ctx, cfg.Concurrency, cfg.Duration/2, 0)
	if err != nil {
		return nil, err
	}
	modes := []struct {
		name        string
		conc, batch int
		es256       bool
	}{
		{"throughput/single", cfg.Concurrency, 0, false},
		{"throughput/bulk", max(1, cfg.Concurrency/8), 100, false},
		{"throughput/bulk+es256", max(1, cfg.Concurrency/8), 100, true},
	}
	var out []Result
	for _, m := range modes {
		if m.es256 {
			if err := e.api.setAsymmetric(ctx, p.id, true); err != nil {
				return out, fmt.Errorf("turn ES256 on: %w", err)
			}
		}
		res := e.loadResult(ctx, m.name, pubSpec{conc: m.conc, d: cfg.Duration / 2, batch: m.batch,
			targets: p.targets(), window: int64(cfg.Window)}, []group{{p.id, p.sinks}})
		res.RawLatency = rawLat
		out = append(out, withRaw(res, raw))
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// latency publishes at a steady pace to one connector and reports the
// latency from the publisher's send to the receiver holding the body.
func (e *env) latency(ctx context.Context) ([]Result, error) {
	cfg := e.r.cfg
	p, _, err := e.oneProject(ctx, 1)
	if err != nil {
		return nil, err
	}
	raw, rawLat, err := e.raw(ctx, cfg.Concurrency, cfg.Duration, cfg.Rate)
	if err != nil {
		return nil, err
	}
	res := e.loadResult(ctx, "latency", pubSpec{pace: cfg.Rate, d: cfg.Duration, targets: p.targets()},
		[]group{{p.id, p.sinks}})
	res.RawLatency = rawLat
	res.Notes = append(res.Notes, fmt.Sprintf("paced %d events/s for %s", cfg.Rate, cfg.Duration))
	return []Result{withRaw(res, raw)}, nil
}

// spread publishes events as fast as dcon delivers them (within the window)
// to projects projects of perProject connectors each: fanout is one project
// of 100, connectors 1,000 projects of 10. Connectors share at most 100
// receivers.
func (e *env) spread(ctx context.Context, projects, perProject, devices int) ([]Result, error) {
	cfg := e.r.cfg
	n := projects * perProject
	sinks, urls, _, err := e.sinks(n, min(n, 100))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ps, err := e.setup(ctx, projects, func(i int) ([]*Sink, []string) {
		return sinks[i*perProject : (i+1)*perProject], urls[i*perProject : (i+1)*perProject]
	}, devices)
	if err != nil {
		return nil, err
	}
	setup := time.Since(start)
	raw, rawLat, err := e.raw(ctx, cfg.Concurrency, cfg.Duration/2, 0)
	if err != nil {
		return nil, err
	}
	var targets []target
	groups := make([]group, len(ps))
	for i, p := range ps {
		targets = append(targets, p.targets()...)
		groups[i] = group{p.id, p.sinks}
	}
	res := e.loadResult(ctx, e.name, pubSpec{conc: cfg.Concurrency, d: cfg.Duration / 2, targets: targets,
		window: int64(cfg.Window)}, groups)
	res.RawLatency = rawLat
	res.Connectors, res.Projects = n, projects
	res.SetupS = ptr(round(setup.Seconds()))
	return []Result{withRaw(res, raw)}, nil
}

// isolation runs the same load twice on ten connectors: all healthy, then with
// one endpoint hanging and another answering 500; it reports the eight healthy
// connectors' figures of both runs.
func (e *env) isolation(ctx context.Context) ([]Result, error) {
	cfg := e.r.cfg
	p, _, err := e.oneProject(ctx, 10)
	if err != nil {
		return nil, err
	}
	raw, rawLat, err := e.raw(ctx, cfg.Concurrency, cfg.Duration/2, 0)
	if err != nil {
		return nil, err
	}
	spec := pubSpec{conc: cfg.Concurrency, d: cfg.Duration / 2, targets: p.targets(), window: int64(cfg.Window)}
	healthy := []group{{p.id, p.sinks[2:]}}
	base := e.loadResult(ctx, "isolation: all healthy", spec, healthy)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.sinks[0].SetMode(modeHang)
	p.sinks[1].SetMode(modeFail)
	res := e.loadResult(ctx, "isolation", spec, healthy)
	res.Lost += base.Lost
	res.Duplicates += base.Duplicates
	res.RawLatency = rawLat
	res.BaselinePerS, res.BaselineLat = base.DeliveredPerS, base.Latency
	if res.DeliveredPerS != nil && base.DeliveredPerS != nil {
		res.VsBaseline = ratio(*res.DeliveredPerS, *base.DeliveredPerS)
	}
	res.Notes = append(res.Notes, "figures of the 8 healthy connectors; 1 endpoint hangs, 1 answers 500")
	return []Result{withRaw(res, raw)}, nil
}

// backlog queues cfg.Events events for a connector whose endpoint is down,
// brings it back and measures the drain, while a second connector, in
// another project, receives a steady stream.
func (e *env) backlog(ctx context.Context) ([]Result, error) {
	cfg := e.r.cfg
	down, rcs, err := e.oneProject(ctx, 1)
	if err != nil {
		return nil, err
	}
	downRecv := rcs[0]
	healthy, _, err := e.oneProject(ctx, 1)
	if err != nil {
		return nil, err
	}
	raw, _, err := e.raw(ctx, cfg.Concurrency, cfg.Duration/2, 0)
	if err != nil {
		return nil, err
	}

	var peakDisk atomic.Int64
	monCtx, stopMon := context.WithCancel(ctx)
	defer stopMon()
	if e.srv != nil {
		go e.monitorDisk(monCtx, &peakDisk)
	}

	// The healthy connector's steady stream, for the whole scenario.
	hl := newLedger()
	hctx, stopHealthy := context.WithCancel(ctx)
	defer stopHealthy()
	var hwg sync.WaitGroup
	hFrom := e.r.clock.Now()
	hwg.Go(func() {
		e.publishQuiet(hctx, pubSpec{pace: cfg.HealthyRate, d: 24 * time.Hour, targets: healthy.targets()}, hl)
	})

	// Its baseline: the stream alone, before anything queues.
	baseFor := max(time.Second, cfg.Duration/4)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(baseFor):
	}
	baseEnd := e.r.clock.Now()

	downRecv.Down()
	l := newLedger()
	var claimed atomic.Int64
	const batch = 500
	queueFrom := time.Now()
	total, cur := float64(cfg.Events), func() (float64, string) {
		return float64(l.n.Load()), fmt.Sprintf("%d queued, disk %d MiB", l.n.Load(), peakDisk.Load()>>20)
	}
	done := e.r.prog.phase(e.label("queue for the down endpoint"), total, cur)
	closedLoop(ctx, 4, cfg.DrainDeadline, func(_ context.Context, _ int) bool {
		n := min(batch, cfg.Events-int(claimed.Add(batch))+batch)
		if n <= 0 {
			return false
		}
		ids, refused, err := e.api.publishBatch(ctx, down.id, down.devices, n, e.r.clock.Now())
		l.add(down.id, ids...)
		if err != nil || refused > 0 {
			l.fail(refused, fmt.Errorf("batchPublish: %d refused: %v", refused, err))
		}
		return true
	})
	done()
	queueS := time.Since(queueFrom)
	queueEnd := e.r.clock.Now()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if err := downRecv.Up(); err != nil {
		return nil, err
	}
	upAt := e.r.clock.Now()
	lost, dups := e.await(ctx, "drain after the endpoint is back", []group{{down.id, down.sinks}}, l, 0, 0)
	back, lastAt := window(down.sinks, upAt, math.MaxInt64)
	drained := int(down.sinks[0].Unique())
	drainEnd := e.r.clock.Now()
	var drainPerS float64
	if lastAt > upAt {
		drainPerS = rate(drained, lastAt-upAt)
	}

	// The floor: the drain's load without dcon — the load client posting
	// straight to a receiver of its own at the drain's rate — while the
	// healthy stream goes on. The healthy p99 of this window is what that
	// much traffic on this machine costs it whatever dcon does.
	var floor []arrival
	if drainPerS >= 1 {
		floorFrom := e.r.clock.Now()
		if _, _, err := e.rawPhase(ctx, "the drain's rate without dcon", cfg.Concurrency, max(time.Second, cfg.Duration/2), int(drainPerS), true); err != nil {
			return nil, err
		}
		floor, _ = window(healthy.sinks, floorFrom, e.r.clock.Now())
	}

	stopHealthy()
	hwg.Wait()
	hLost, hDups := e.await(ctx, "healthy connector: last deliveries", []group{{healthy.id, healthy.sinks}}, hl, 0, stallTimeout)
	stopMon()

	res := Result{
		Name: "backlog", RawCeilingPerS: raw, Lost: lost + hLost, Duplicates: dups + hDups,
		Published: int(l.n.Load()), Deliveries: drained, PublishErrors: l.failed.Load() + hl.failed.Load(),
		QueuePerS: ptr(rate(int(l.n.Load()), queueS.Microseconds())), DiskBytes: peakDisk.Load(),
	}
	if lastAt > upAt {
		res.DrainPerS = ptr(drainPerS)
		res.DrainS = ptr(round(float64(lastAt-upAt) / 1e6))
		res.DeliveredPerS = res.DrainPerS
		res.Ratio = ratio(*res.DrainPerS, *raw)
	}
	all, _ := window(healthy.sinks, hFrom, drainEnd)
	base, _ := window(healthy.sinks, hFrom, baseEnd)
	queueing, _ := window(healthy.sinks, baseEnd, queueEnd)
	draining, _ := window(healthy.sinks, upAt, drainEnd)
	res.Latency, res.HealthyLat = latencyOf(all), latencyOf(all)
	res.HealthyBase, res.HealthyQueue, res.HealthyDrain = latencyOf(base), latencyOf(queueing), latencyOf(draining)
	res.HealthyFloor = latencyOf(floor)
	res.Unsigned = down.sinks[0].unsigned.Load() + healthy.sinks[0].unsigned.Load()
	res.Notes = append(res.Notes, fmt.Sprintf("%d events queued for the down endpoint; latency_ms is the healthy connector's (%d events/s throughout)", cfg.Events, cfg.HealthyRate))
	if len(back) > 0 {
		// The drain rate counts from the endpoint's return; the connector's
		// next probe, up to the longest probe interval later, starts it.
		firstAt := slices.MinFunc(back, func(a, b arrival) int { return cmp.Compare(a.at, b.at) }).at
		res.FirstAfterUpS = ptr(round(float64(firstAt-upAt) / 1e6))
	}
	if l.first != nil {
		res.Notes = append(res.Notes, "first publish error: "+l.first.Error())
	}
	return []Result{res}, nil
}

// publishQuiet publishes as spec says without a progress line of its own.
func (e *env) publishQuiet(ctx context.Context, spec pubSpec, l *ledger) {
	var next atomic.Int64
	pacedLoop(ctx, spec.pace, spec.d, 1024, func(ctx context.Context) {
		t := spec.targets[int(next.Add(1)-1)%len(spec.targets)]
		// The request outlives the stream's end, so that an event stored is
		// also acknowledged.
		id, err := e.api.publishOne(context.WithoutCancel(ctx), t, e.r.clock.Now())
		if err != nil {
			l.fail(1, err)
			return
		}
		l.add(t.project, id)
	})
}

// monitorDisk records the peak size of the server's data directory, every
// half second until ctx ends.
func (e *env) monitorDisk(ctx context.Context, peak *atomic.Int64) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if n, err := e.srv.DiskUsage(); err == nil && n > peak.Load() {
			peak.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
