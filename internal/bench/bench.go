package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Scenarios returns the names of the scenarios, in the order they run.
func Scenarios() []string {
	return []string{"throughput", "latency", "fanout", "connectors", "backlog", "isolation"}
}

// Config is what one bench run is told. The zero value of every field but
// ServerBin (when Server is empty) has a default.
type Config struct {
	// Server is the URL of a running dcon (started with --dev) to measure.
	// Empty: every scenario starts its own, the binary ServerBin, on a fresh
	// data directory, and kills it when the scenario ends.
	Server string
	// ServerBin is the dcon binary to start. Required when Server is empty;
	// cmd/dcon passes its own executable.
	ServerBin string
	// ServerFlags are added to `dcon serve` when the bench starts the server.
	ServerFlags []string
	// NATS runs every scenario three times, each time on a fresh server and
	// store: on Pebble, on a single NATS JetStream server, and on a cluster
	// of three (streams with 3 replicas). The NATS servers run in the bench's
	// own process, on 127.0.0.1. It needs ServerBin (not Server) and allows
	// the scenarios of NATSScenarios(), which are also its default.
	NATS bool
	// Scenarios are the scenarios to run. Empty: all, in the order of Scenarios().
	Scenarios []string
	// Duration is the length of the timed phases (the latency scenario's paced
	// phase; the others' load phases are half of it). Default 30s.
	Duration time.Duration
	// Events is how many events queue for the down endpoint in the backlog
	// scenario. Default 1,000,000.
	Events int
	// Small runs the connectors scenario with 100 connectors over 10 projects
	// instead of 10,000 over 1,000.
	Small bool
	// Concurrency is how many publishers (and raw-ceiling posters) run at
	// once. Default 64.
	Concurrency int
	// Rate is the latency scenario's pace, events per second. Default 1000.
	Rate int
	// HealthyRate is the pace of the healthy connector's events during the
	// backlog scenario. Default 100.
	HealthyRate int
	// Window bounds the deliveries outstanding (acknowledged, not yet
	// received) while the throughput, fanout, connectors and isolation
	// scenarios publish: publishers wait while more are. Default 50,000.
	Window int
	// DrainDeadline bounds every wait for deliveries. Default 15m.
	DrainDeadline time.Duration
	// TLS serves the receivers over HTTPS with a fresh self-signed
	// certificate, given to the server with --ca-file. Without it, receivers
	// are plain http:// and the server runs with --dev.
	TLS bool
	// Progress, when not nil, shows the phases; a bar when ProgressTTY.
	Progress    io.Writer
	ProgressTTY bool
}

// ConfigError is a Config that cannot run; its message says why.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configErrorf(format string, args ...any) error {
	return &ConfigError{fmt.Sprintf(format, args...)}
}

func (c *Config) validate() error {
	if c.Server == "" && c.ServerBin == "" {
		return configErrorf("no server URL and no binary to start one")
	}
	if c.Server != "" && c.TLS {
		return configErrorf("--tls needs a server the bench starts, one that trusts its certificate")
	}
	if c.Server != "" && c.NATS {
		return configErrorf("--nats needs servers the bench starts, on stores it makes: it does not go with --server")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios(), s) {
			return configErrorf("unknown scenario %q; known: %s", s, strings.Join(Scenarios(), ", "))
		}
	}
	if c.NATS {
		for _, s := range c.Scenarios {
			if !slices.Contains(NATSScenarios(), s) {
				return configErrorf("--nats runs %s, not %q", strings.Join(NATSScenarios(), ", "), s)
			}
		}
		if len(c.Scenarios) == 0 {
			c.Scenarios = NATSScenarios()
		}
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = Scenarios()
	}
	defaults := []struct {
		v   *int
		def int
	}{{&c.Events, 1_000_000}, {&c.Concurrency, 64}, {&c.Rate, 1000}, {&c.HealthyRate, 100}, {&c.Window, 50_000}}
	for _, d := range defaults {
		if *d.v < 0 {
			return configErrorf("a count must not be negative, got %d", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.DrainDeadline <= 0 {
		c.DrainDeadline = 15 * time.Minute
	}
	return nil
}

// Report is the outcome of a run: the machine and one result per scenario
// (two for throughput: single-event and bulk ingest).
type Report struct {
	Machine   Machine  `json:"machine"`
	Config    Settings `json:"config"`
	Scenarios []Result `json:"scenarios"`
}

// Settings records the settings a run used.
type Settings struct {
	Server      string   `json:"server"`
	ServerFlags []string `json:"server_flags,omitempty"`
	DurationS   float64  `json:"duration_s"`
	Events      int      `json:"events"`
	Concurrency int      `json:"concurrency"`
	Rate        int      `json:"rate"`
	Window      int      `json:"window"`
	TLS         bool     `json:"tls"`
	Connectors  string   `json:"connectors_scale"`
	Backends    []string `json:"backends,omitempty"` // the stores of the servers the bench started
}

// Result is one scenario's figures. Rates are per second; fields that do not
// apply to a scenario are left out.
type Result struct {
	Name           string   `json:"name"`
	Backend        string   `json:"backend,omitempty"` // the server's store, when the bench started it: pebble, nats, nats×3
	RawCeilingPerS *float64 `json:"raw_ceiling_per_s,omitempty"`
	DeliveredPerS  *float64 `json:"delivered_per_s,omitempty"`
	Ratio          *float64 `json:"ratio,omitempty"`
	Latency        *Latency `json:"latency_ms,omitempty"`
	Lost           int      `json:"lost"`
	Duplicates     int      `json:"duplicates"`
	PeakRSSBytes   int64    `json:"peak_rss_bytes,omitempty"`

	Published     int      `json:"published,omitempty"`      // events acknowledged
	Deliveries    int      `json:"deliveries,omitempty"`     // distinct deliveries received
	PublishPerS   *float64 `json:"publish_per_s,omitempty"`  // events acknowledged per second
	PublishErrors int64    `json:"publish_errors,omitempty"` // events refused or failed
	RawLatency    *Latency `json:"raw_latency_ms,omitempty"`
	Connectors    int      `json:"connectors,omitempty"`
	Projects      int      `json:"projects,omitempty"`
	SetupS        *float64 `json:"setup_s,omitempty"`
	DiskBytes     int64    `json:"disk_bytes,omitempty"` // peak of the data directory
	QueuePerS     *float64 `json:"queue_per_s,omitempty"`
	DrainPerS     *float64 `json:"drain_per_s,omitempty"`
	DrainS        *float64 `json:"drain_s,omitempty"`
	// FirstAfterUpS: from the endpoint's return to the first delivery (the
	// connector's next probe), within DrainS.
	FirstAfterUpS *float64 `json:"first_delivery_after_up_s,omitempty"`
	HealthyLat    *Latency `json:"healthy_latency_ms,omitempty"`
	HealthyBase   *Latency `json:"healthy_latency_baseline_ms,omitempty"`
	HealthyQueue  *Latency `json:"healthy_latency_queueing_ms,omitempty"`
	HealthyDrain  *Latency `json:"healthy_latency_draining_ms,omitempty"`
	// HealthyFloor: the healthy connector's latency while the load client
	// posts straight to a receiver at the drain's rate, no dcon in between.
	HealthyFloor *Latency `json:"healthy_latency_raw_load_ms,omitempty"`
	BaselinePerS *float64 `json:"baseline_delivered_per_s,omitempty"`
	BaselineLat  *Latency `json:"baseline_latency_ms,omitempty"`
	VsBaseline   *float64 `json:"vs_baseline_ratio,omitempty"`
	Unsigned     int64    `json:"unsigned,omitempty"` // deliveries without X-Dt-Signature
	Notes        []string `json:"notes,omitempty"`
}

// Machine describes where the bench ran.
type Machine struct {
	CPUs        int    `json:"cpus"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Kernel      string `json:"kernel,omitempty"`
	CPUModel    string `json:"cpu_model,omitempty"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
}

// ThisMachine describes the machine the bench runs on.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemoryBytes = kb << 10
			}
		}
	}
	return m
}

// runner is one run: its settings, clock, load client and receivers' TLS.
type runner struct {
	cfg    Config
	clock  Clock
	load   *http.Client // the one client: API calls and raw-ceiling posts
	tls    *tls.Config  // the receivers' TLS, nil for plain HTTP
	caFile string
	tmp    string
	prog   *progress
}

// Run runs the configured scenarios one after the other and reports their
// figures. It stops everything it started before it returns. A scenario that
// fails ends the run with the results so far and the error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "dcon-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	r := &runner{cfg: cfg, clock: NewClock(), tmp: tmp, prog: &progress{w: cfg.Progress, tty: cfg.ProgressTTY}}
	transport := &http.Transport{
		MaxIdleConns:        4 * cfg.Concurrency,
		MaxIdleConnsPerHost: 2 * cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	if cfg.TLS {
		conf, certPEM, err := selfSigned()
		if err != nil {
			return nil, fmt.Errorf("bench: receiver certificate: %w", err)
		}
		r.tls, r.caFile = conf, filepath.Join(tmp, "ca.pem")
		if err := os.WriteFile(r.caFile, certPEM, 0o600); err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	defer transport.CloseIdleConnections()
	r.load = &http.Client{Transport: transport, Timeout: 2 * time.Minute}

	scale := "full"
	if cfg.Small {
		scale = "small"
	}
	rep := &Report{Machine: ThisMachine(), Config: Settings{
		Server: cfg.Server, ServerFlags: cfg.ServerFlags, DurationS: cfg.Duration.Seconds(), Events: cfg.Events,
		Concurrency: cfg.Concurrency, Rate: cfg.Rate, Window: cfg.Window, TLS: cfg.TLS, Connectors: scale,
	}}
	backends := []backend{{}} // a running server: its store is not ours to know
	if rep.Config.Server == "" {
		rep.Config.Server = "started: " + cfg.ServerBin
		backends = []backend{backendPebble}
		if cfg.NATS {
			backends = append(backends, backendNATS, backendCluster)
		}
		for _, b := range backends {
			rep.Config.Backends = append(rep.Config.Backends, b.Name)
		}
	}
	for _, name := range Scenarios() {
		if !slices.Contains(cfg.Scenarios, name) {
			continue
		}
		for _, b := range backends {
			res, err := r.scenario(ctx, name, b)
			for i := range res {
				res[i].Backend = b.Name
			}
			rep.Scenarios = append(rep.Scenarios, res...)
			if err != nil {
				if b.Name != "" {
					name += " [" + b.Name + "]"
				}
				return rep, fmt.Errorf("scenario %s: %w", name, err)
			}
		}
	}
	return rep, nil
}

// WriteTable writes the report as a table.
func (rep *Report) WriteTable(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), GOMAXPROCS %d, %s, %s, kernel %s, %.1f GiB\n\n",
		m.CPUs, m.CPUModel, m.GOMAXPROCS, m.GoVersion, m.OS, m.Kernel, float64(m.MemoryBytes)/(1<<30))
	rows, several := rep.rows()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	backendCol := func(string) string { return "" }
	if several {
		backendCol = func(b string) string { return b + "\t" }
	}
	fmt.Fprintln(tw, "scenario\t"+backendCol("backend")+"raw/s\tdelivered/s\tratio\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tlost\tdup\t")
	for _, s := range rows {
		l := s.Latency
		if l == nil {
			l = &Latency{}
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t\n", s.Name, backendCol(s.Backend),
			num(s.RawCeilingPerS), num(s.DeliveredPerS), num(s.Ratio), l.P50, l.P90, l.P99, l.P999, l.Max, s.Lost, s.Duplicates)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range rows {
		name := s.Name
		if several {
			name += " [" + s.Backend + "]"
		}
		if extra := s.extras(); extra != "" {
			fmt.Fprintf(w, "  %s: %s\n", name, extra)
		}
	}
	return nil
}

// rows returns the results in the table's order: those of one name
// together, one per backend in the order they ran, names in the order they
// first came. several reports whether the results come from more than one
// backend.
func (rep *Report) rows() (rows []Result, several bool) {
	var names []string
	byName := map[string][]Result{}
	backends := map[string]bool{}
	for _, s := range rep.Scenarios {
		if byName[s.Name] == nil {
			names = append(names, s.Name)
		}
		byName[s.Name] = append(byName[s.Name], s)
		backends[s.Backend] = true
	}
	for _, n := range names {
		rows = append(rows, byName[n]...)
	}
	return rows, len(backends) > 1
}

// extras summarises a result's scenario-specific figures in one line.
func (s Result) extras() string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if s.Published > 0 {
		add("published %d", s.Published)
	}
	if s.PublishPerS != nil {
		add("accepted %s/s", num(s.PublishPerS))
	}
	if s.PublishErrors > 0 {
		add("publish errors %d", s.PublishErrors)
	}
	if s.RawLatency != nil {
		add("raw p50/p99/max %.1f/%.1f/%.1f ms", s.RawLatency.P50, s.RawLatency.P99, s.RawLatency.Max)
	}
	if s.Connectors > 0 {
		add("%d connectors over %d projects", s.Connectors, s.Projects)
	}
	if s.SetupS != nil {
		add("setup %.1fs", *s.SetupS)
	}
	if s.PeakRSSBytes > 0 {
		add("peak RSS %.0f MiB", float64(s.PeakRSSBytes)/(1<<20))
	}
	if s.DiskBytes > 0 {
		add("disk %.0f MiB", float64(s.DiskBytes)/(1<<20))
	}
	if s.QueuePerS != nil {
		add("queued at %s/s", num(s.QueuePerS))
	}
	if s.DrainPerS != nil {
		add("drain %s/s in %.1fs", num(s.DrainPerS), *s.DrainS)
	}
	if s.FirstAfterUpS != nil {
		add("first delivery %.1fs after the endpoint came back", *s.FirstAfterUpS)
	}
	if s.HealthyLat != nil {
		add("healthy p99 %.1f ms (baseline %.1f, queueing %.1f, draining %.1f)", s.HealthyLat.P99, lat99(s.HealthyBase), lat99(s.HealthyQueue), lat99(s.HealthyDrain))
	}
	if s.HealthyFloor != nil {
		add("healthy p99 %.1f ms with no dcon work, the drain's rate posted straight to a receiver", s.HealthyFloor.P99)
	}
	if s.BaselinePerS != nil {
		add("all healthy: %s/s, p99 %.1f ms; vs all healthy %s", num(s.BaselinePerS), lat99(s.BaselineLat), num(s.VsBaseline))
	}
	if s.Unsigned > 0 {
		add("UNSIGNED deliveries %d", s.Unsigned)
	}
	parts = append(parts, s.Notes...)
	return strings.Join(parts, "; ")
}

func lat99(l *Latency) float64 {
	if l == nil {
		return 0
	}
	return l.P99
}

func num(v *float64) string {
	if v == nil {
		return "-"
	}
	if *v >= 100 {
		return strconv.FormatFloat(*v, 'f', 0, 64)
	}
	return strconv.FormatFloat(*v, 'f', 3, 64)
}
