package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"dcon"
)

// emulateConfig is what `dcon emulate` is told.
type emulateConfig struct {
	devices     int               // how many devices to create (or, with useExisting, to use at most)
	types       []dcon.DeviceType // the device types, used in turn
	rate        float64           // events per second, all devices together
	duration    time.Duration     // 0: until interrupted
	useExisting bool              // publish for the project's devices instead of creating some
	progress    time.Duration     // how often the count is written when stderr is not a terminal
}

func runEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("emulate",
		"Emulate sensors: create emulated devices (or use the project's own with --use-existing) and publish\n"+
			"realistic events for them at a steady total rate until Ctrl-C or --duration, with a live count.\n"+
			"Temperatures drift around 21 °C, CO2 around 600 ppm, proximity sensors flip, counters count.",
		`  dcon emulate --project office
  dcon emulate --project office --devices 20 --types temperature,co2,proximity --rate 100/s --duration 1m
  dcon emulate --project office --use-existing --rate 600/m
`, stderr)
	o := addClientFlags(fs, true)
	cfg := emulateConfig{progress: 5 * time.Second}
	fs.IntVar(&cfg.devices, "devices", 5, "how many devices to create (with --use-existing: to use at most)")
	types := listFlag{"temperature", "humidity", "co2", "touch", "proximity"}
	fs.Func("types", "device `types` to emulate, comma-separated (default temperature,humidity,co2,touch,proximity)", func(v string) error {
		types = nil
		return types.Set(v)
	})
	rate := fs.String("rate", "10/s", "events per `rate` in all: 10/s, 600/m, 50 (per second) or 1/500ms")
	fs.DurationVar(&cfg.duration, "duration", 0, "stop after this `duration` (default: until Ctrl-C)")
	fs.BoolVar(&cfg.useExisting, "use-existing", false, "publish for the project's existing devices (of --types, when given) instead of creating new ones")
	c, err := parseClient(fs, o, args, true)
	if err != nil {
		return err
	}
	if cfg.rate, err = parseRate(*rate); err != nil {
		return usagef("--rate %q: %v", *rate, err)
	}
	if cfg.devices < 1 || cfg.devices > 1000 {
		return usagef("--devices %d: use 1 to 1000", cfg.devices)
	}
	if cfg.duration < 0 {
		return usagef("--duration %s: must not be negative", cfg.duration)
	}
	for _, t := range types {
		if !dcon.DeviceType(t).Valid() {
			return usagef("--types: unknown device type %q", t)
		}
		cfg.types = append(cfg.types, dcon.DeviceType(t))
	}
	if len(cfg.types) == 0 {
		return usagef("--types: give at least one device type")
	}
	if cfg.useExisting && !flagGiven(fs, "types") {
		cfg.types = nil // any type
	}
	if cfg.useExisting && !flagGiven(fs, "devices") {
		cfg.devices = 1000
	}

	devices, err := emulatedDevices(ctx, c, o.project, cfg, stderr)
	if err != nil {
		return err
	}
	e := &emulator{client: c, project: o.project, devices: devices, rate: cfg.rate, out: newProgress(stderr, cfg.progress)}
	sum := e.run(ctx, cfg.duration)
	if o.output == "json" {
		ids := make([]string, len(devices))
		for i, d := range devices {
			ids[i] = d.id
		}
		b, err := json.MarshalIndent(map[string]any{
			"project": o.project, "devices": ids, "published": sum.published, "failed": sum.failed,
			"seconds": math.Round(sum.elapsed.Seconds()*1000) / 1000, "rate": math.Round(sum.rate()*10) / 10,
		}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	_, err = fmt.Fprintf(stdout, "published %d events for %d devices in %s (%.1f/s), %d failed\n",
		sum.published, len(devices), sum.elapsed.Round(time.Millisecond), sum.rate(), sum.failed)
	return err
}

// parseRate reads a rate: "10/s", "600/m", "36000/h", "1/500ms" or "50" (per
// second), and returns events per second.
func parseRate(s string) (float64, error) {
	num, per, found := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) {
		return 0, errors.New("want a positive number of events, for example 10/s")
	}
	d := time.Second
	if found {
		switch per {
		case "s", "sec", "second":
		case "m", "min", "minute":
			d = time.Minute
		case "h", "hour":
			d = time.Hour
		default:
			if d, err = time.ParseDuration(per); err != nil || d <= 0 {
				return 0, fmt.Errorf("unknown unit %q: use s, m, h or a duration such as 500ms", per)
			}
		}
	}
	r := n / d.Seconds()
	if r > 100_000 {
		return 0, errors.New("at most 100000/s")
	}
	return r, nil
}

// emulatedDevices creates the devices to emulate, or picks the project's own.
func emulatedDevices(ctx context.Context, c *cliClient, project string, cfg emulateConfig, stderr io.Writer) ([]*emuDevice, error) {
	if cfg.useExisting {
		items, err := c.listAll(ctx, projectPath(project, "devices"), "devices")
		if err != nil {
			return nil, fmt.Errorf("list the devices: %w", err)
		}
		var out []*emuDevice
		for _, raw := range items {
			var d cliDevice
			if err := json.Unmarshal(raw, &d); err != nil {
				return nil, fmt.Errorf("read the devices: %w", err)
			}
			t := dcon.DeviceType(d.Type)
			if t.Valid() && (cfg.types == nil || slices.Contains(cfg.types, t)) && len(out) < cfg.devices {
				out = append(out, newEmuDevice(resourceID(d.Name), t))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("project %s has no devices to use; drop --use-existing to create some", project)
		}
		fmt.Fprintf(stderr, "emulating %d existing devices of project %s\n", len(out), project)
		return out, nil
	}
	out := make([]*emuDevice, 0, cfg.devices)
	for i := range cfg.devices {
		t := cfg.types[i%len(cfg.types)]
		raw, err := c.post(ctx, projectPath(project, "devices"), map[string]any{
			"type":   t,
			"labels": map[string]string{"name": fmt.Sprintf("emulated %s %d", t, i+1)},
		})
		if err != nil {
			return nil, fmt.Errorf("create an emulated %s device: %w", t, err)
		}
		var d cliDevice
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("read the created device: %w", err)
		}
		out = append(out, newEmuDevice(resourceID(d.Name), t))
	}
	fmt.Fprintf(stderr, "created %d emulated devices in project %s ('dcon devices list --project %s' shows them)\n", len(out), project, project)
	return out, nil
}

// emulator publishes events for its devices at a steady total rate.
type emulator struct {
	client  *cliClient
	project string
	devices []*emuDevice
	rate    float64   // events per second
	out     *progress // the count, and the first distinct failures

	published, failed atomic.Int64
	mu                sync.Mutex
	seen              map[string]bool // failures already told
}

// emuSummary is what an emulator did.
type emuSummary struct {
	published, failed int64
	elapsed           time.Duration
}

func (s emuSummary) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.published) / s.elapsed.Seconds()
}

// emuJob is one event to publish.
type emuJob struct {
	device string
	body   map[string]any
}

// maxToldFailures bounds how many distinct failures are printed.
const maxToldFailures = 5

// run publishes until ctx is done or duration has passed (0: no limit),
// showing the count now and then and once at the end.
func (e *emulator) run(ctx context.Context, duration time.Duration) emuSummary {
	start := time.Now()
	stop := ctx
	if duration > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	// Requests under way finish after the stop, within drainTimeout.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	jobs := make(chan emuJob, 256)
	var wg sync.WaitGroup
	for range min(64, 4+int(e.rate/20)) {
		wg.Go(func() {
			for j := range jobs {
				e.publish(work, j)
			}
		})
	}

	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 0x9e3779b97f4a7c15))
	tick := time.NewTicker(min(max(time.Duration(float64(time.Second)/e.rate), 10*time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	report := time.NewTicker(250 * time.Millisecond)
	defer report.Stop()
	summary := func() emuSummary {
		return emuSummary{published: e.published.Load(), failed: e.failed.Load(), elapsed: time.Since(start)}
	}
	var queued int64
	send := func(now time.Time) bool {
		// The events due by now: the first at once, then one every 1/rate.
		for due := int64(now.Sub(start).Seconds()*e.rate) + 1; queued < due; queued++ {
			d := e.devices[queued%int64(len(e.devices))]
			eventType, data := d.next(rng)
			select {
			case jobs <- emuJob{device: d.id, body: map[string]any{eventType: data}}:
			case <-stop.Done():
				return false
			}
		}
		return true
	}
	for running := send(start); running; {
		select {
		case <-stop.Done():
			running = false
		case now := <-tick.C:
			running = send(now)
		case <-report.C:
			e.out.show(summary(), false)
		}
	}
	close(jobs)
	drain := time.AfterFunc(drainTimeout, cancelWork)
	wg.Wait()
	drain.Stop()
	s := summary()
	e.out.show(s, true)
	return s
}

// drainTimeout is how long an emulator waits, once stopped, for the
// requests under way.
const drainTimeout = 5 * time.Second

func (e *emulator) publish(ctx context.Context, j emuJob) {
	_, err := e.client.post(ctx, devicePath(e.project, j.device)+":publish", j.body)
	if err == nil {
		e.published.Add(1)
		return
	}
	e.failed.Add(1)
	key := err.Error()
	var ae *apiError
	if errors.As(err, &ae) {
		key = strconv.Itoa(ae.Status)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	if !e.seen[key] && len(e.seen) < maxToldFailures {
		e.seen[key] = true
		e.out.note("publish for device %s: %v", j.device, err)
	}
}

// progress shows an emulator's count: one line rewritten in place on a
// terminal, else a line every interval.
type progress struct {
	w        io.Writer
	live     bool
	interval time.Duration
	mu       sync.Mutex
	last     time.Duration // when the last line was written, not live
}

func newProgress(w io.Writer, interval time.Duration) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, live: ok && isTerminal(f), interval: interval}
}

// show writes the count; final is the last call.
func (p *progress) show(s emuSummary, final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("published %d  failed %d  rate %.1f/s", s.published, s.failed, s.rate())
	switch {
	case p.live && final:
		fmt.Fprintf(p.w, "\r%s\033[K\n", line)
	case p.live:
		fmt.Fprintf(p.w, "\r%s\033[K", line)
	case !final && s.elapsed-p.last >= p.interval:
		p.last = s.elapsed
		fmt.Fprintln(p.w, line)
	}
}

// note writes a line of its own, above the live count.
func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// emuDevice is the state of one emulated device, so its readings drift
// rather than jump.
type emuDevice struct {
	id  string
	typ dcon.DeviceType

	temperature, humidity, ppm, pascal float64
	on                                 bool  // objectPresent, motion, occupancy, contact…
	count                              int64 // touchCount, objectPresentCount
	battery                            float64
}

func newEmuDevice(id string, t dcon.DeviceType) *emuDevice {
	return &emuDevice{id: id, typ: t, temperature: 21, humidity: 45, ppm: 600, pascal: 101325, battery: 100}
}

// drift moves v a random step towards mean.
func drift(rng *rand.Rand, v, mean, step, lo, hi float64) float64 {
	v += rng.NormFloat64()*step + (mean-v)*0.05
	return math.Round(min(max(v, lo), hi)*100) / 100
}

// next returns the device's next event: mostly its own kind, now and then a
// touch, battery or network status.
func (d *emuDevice) next(rng *rand.Rand) (string, map[string]any) {
	if d.typ == dcon.DeviceCloudConnector {
		return d.cconEvent(rng)
	}
	switch p := rng.Float64(); {
	case p < 0.03 && d.typ != dcon.DeviceTouch:
		return "touch", map[string]any{}
	case p < 0.05:
		d.battery = max(d.battery-rng.Float64(), 0)
		return "batteryStatus", map[string]any{"percentage": int(d.battery)}
	case p < 0.07:
		return "networkStatus", map[string]any{
			"signalStrength": 40 + rng.IntN(50), "rssi": -95 + rng.IntN(45),
			"transmissionMode": "LOW_POWER_STANDARD_MODE",
		}
	}
	d.on = !d.on
	switch d.typ {
	case dcon.DeviceTemperature:
		d.temperature = drift(rng, d.temperature, 21, 0.2, -40, 85)
		return "temperature", map[string]any{"value": d.temperature}
	case dcon.DeviceHumidity:
		d.temperature = drift(rng, d.temperature, 21, 0.2, -40, 85)
		d.humidity = drift(rng, d.humidity, 45, 1, 0, 100)
		return "humidity", map[string]any{"temperature": d.temperature, "relativeHumidity": d.humidity}
	case dcon.DeviceCO2:
		switch rng.IntN(4) {
		case 0:
			d.humidity = drift(rng, d.humidity, 45, 1, 0, 100)
			d.temperature = drift(rng, d.temperature, 21, 0.2, -40, 85)
			return "humidity", map[string]any{"temperature": d.temperature, "relativeHumidity": d.humidity}
		case 1:
			d.pascal = drift(rng, d.pascal, 101325, 20, 90000, 110000)
			return "pressure", map[string]any{"pascal": d.pascal}
		}
		d.ppm = drift(rng, d.ppm, 600, 15, 400, 5000)
		return "co2", map[string]any{"ppm": math.Round(d.ppm)}
	case dcon.DeviceProximity:
		return "objectPresent", map[string]any{"state": pick(d.on, "PRESENT", "NOT_PRESENT")}
	case dcon.DeviceProximityCounter:
		d.count += int64(rng.IntN(3))
		return "objectPresentCount", map[string]any{"total": d.count}
	case dcon.DeviceTouchCounter:
		d.count += 1 + int64(rng.IntN(2))
		return "touchCount", map[string]any{"total": d.count}
	case dcon.DeviceWaterDetector:
		d.on = rng.Float64() < 0.05 // mostly dry
		return "waterPresent", map[string]any{"state": pick(d.on, "PRESENT", "NOT_PRESENT")}
	case dcon.DeviceMotion:
		return "motion", map[string]any{"state": pick(d.on, "MOTION_DETECTED", "NO_MOTION_DETECTED")}
	case dcon.DeviceDeskOccupancy:
		return "deskOccupancy", map[string]any{"state": pick(d.on, "OCCUPIED", "NOT_OCCUPIED")}
	case dcon.DeviceContact:
		return "contact", map[string]any{"state": pick(d.on, "OPEN", "CLOSED")}
	default: // touch
		return "touch", map[string]any{}
	}
}

func (d *emuDevice) cconEvent(rng *rand.Rand) (string, map[string]any) {
	switch p := rng.Float64(); {
	case p < 0.2:
		return "cellularStatus", map[string]any{"signalStrength": 40 + rng.IntN(50)}
	case p < 0.4:
		return "ethernetStatus", map[string]any{"macAddress": "f0:b5:b7:00:0a:08", "ipAddress": "192.0.2.10"}
	}
	d.on = rng.Float64() < 0.9 // mostly on ethernet
	return "connectionStatus", map[string]any{
		"connection": pick(d.on, "ETHERNET", "CELLULAR"), "available": []string{"ETHERNET", "CELLULAR"},
	}
}

func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
