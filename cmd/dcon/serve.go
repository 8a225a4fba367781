package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/client_golang/prometheus"

	"dcon"
	"dcon/internal/auth"
	"dcon/internal/dashboard"
	"dcon/internal/delivery"
	"dcon/internal/deliverylog"
	"dcon/internal/httpapi"
	"dcon/internal/ingest"
	"dcon/internal/metrics"
	"dcon/internal/stats"
	"dcon/internal/webhook"
)

// serveConfig is everything `dcon serve` can be told.
type serveConfig struct {
	Addr         string        // where the API listens; loopback only with --dev
	Data         string        // the data directory
	Dev          bool          // development mode: no authentication, loopback only, http:// endpoints allowed
	CAFile       string        // extra CA certificates trusted for endpoints
	RetryInitial time.Duration // average first retry delay
	RetryMax     time.Duration // retry delay ceiling
	Timeout      time.Duration // one attempt, whole exchange
	DrainTimeout time.Duration // how long shutdown waits for attempts under way
	AutoDisable  time.Duration // a connector failing this long with no success is disabled
	LogLevel     slog.Level
	Issuer       string        // iss of DT-Asymmetric-Signature, where /.well-known/ is served; "" means http://<Addr>
	KeyOverlap   time.Duration // how long a signing key replaced by a rotation stays published; 0 means 24h

	// DeadLetterRetention is how long dead letters are kept; 0 means 7 days.
	DeadLetterRetention time.Duration

	Security securityConfig // destinations, rate limits, TLS on the API listener

	// For tests only (torture/): flags marked FOR TESTS ONLY in --help.
	TestClockFile string // time travel: dcon's clock is moved by the duration in this file, re-read every 100ms
	TestWallFile  string // a simulated step of the wall clock: the duration in this file, which dcon's stable clock reads only at start
	TestFaultFile string // while this file exists, the store's file writes (or, if it says "sync", syncs) fail
	TestDebug     bool   // GET /debug/goroutines: the goroutine count, and every stack with ?stacks=1
	FS            vfs.FS // the store's file system; default the operating system's
	NoAuth        bool   // no authentication, without --dev's other allowances (startNode)

	MetricsAddr           string // serve /metrics on this address (no authentication) instead of the API listener
	MetricsNoPerConnector bool   // --metrics-per-connector=false: no connector label on metrics

	NATS natsConfig // --nats and its options: state in NATS JetStream instead of Pebble (nats.go)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := serveConfig{}
	fs := newFlagSet("serve", "Run the Data Connector service on its embedded store.", stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "`host:port` the API listens on (a loopback address with --dev)")
	fs.StringVar(&cfg.Data, "data", "./dcon-data", "data `directory`: queue, connectors, devices")
	fs.BoolVar(&cfg.Dev, "dev", false, "development mode: NO AUTHENTICATION, loopback --addr only, http:// connector URLs allowed")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "PEM `file` of extra CA certificates trusted for endpoints, beside the system roots")
	fs.DurationVar(&cfg.RetryInitial, "retry-initial", delivery.DefaultBackoff.Initial, "average delay before the first retry")
	fs.DurationVar(&cfg.RetryMax, "retry-max", delivery.DefaultBackoff.Max, "largest delay between retries")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "time limit of one delivery attempt, whole exchange")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 15*time.Second, "on shutdown, how long to wait for attempts under way")
	fs.DurationVar(&cfg.AutoDisable, "auto-disable-after", dcon.AutoDisableAfter, "disable a connector that has failed, with no success, for this long")
	fs.DurationVar(&cfg.DeadLetterRetention, "dead-letter-retention", ingest.DefaultDeadLetterRetention, "how long an expired event is kept as a dead letter, to be read and replayed")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	fs.StringVar(&cfg.Issuer, "issuer", "", "public `URL` of this server: the iss of DT-Asymmetric-Signature, under which receivers find /.well-known/openid-configuration (default http://<addr>; in production, the public https:// URL)")
	fs.DurationVar(&cfg.KeyOverlap, "key-overlap", defaultKeyOverlap, "how long a signing key replaced by 'dcon keys rotate' stays published")
	registerSecurityFlags(fs, &cfg.Security)
	registerMetricsFlags(fs, &cfg)
	registerNATSFlags(fs, &cfg.NATS)
	var cpuProfile, memProfile string
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this `file` (for go tool pprof), finished at shutdown")
	fs.StringVar(&memProfile, "memprofile", "", "write a heap profile to this `file` (for go tool pprof) every 5s while serving, and at shutdown")
	fs.StringVar(&cfg.TestClockFile, "test-clock-offset-file", "", "FOR TESTS ONLY: time travel: dcon's clock is moved by the duration (\"12h\") in this `file`, re-read every 100ms")
	fs.StringVar(&cfg.TestWallFile, "test-wall-offset-file", "", "FOR TESTS ONLY: the wall clock is stepped by the duration (\"-1h\") in this `file`; dcon's clock reads it only at start")
	fs.StringVar(&cfg.TestFaultFile, "test-disk-fault-file", "", "FOR TESTS ONLY: while this `file` exists, the store's writes fail (only its syncs if the file says \"sync\")")
	fs.BoolVar(&cfg.TestDebug, "test-debug", false, "FOR TESTS ONLY: serve GET /debug/goroutines (the goroutine count; every stack with ?stacks=1), unauthenticated")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Security.devDefaults(fs, cfg.Dev)
	if cfg.Dev {
		if err := checkLoopback(cfg.Addr); err != nil {
			return err
		}
	}
	log := newLogger(stderr, cfg.LogLevel)
	certFile, keyFile, err := cfg.Security.tlsFiles(cfg.Data, cfg.Addr, time.Now(), stdout)
	if err != nil {
		return err
	}
	scheme := "http"
	if certFile != "" {
		scheme = "https"
		if cfg.Issuer == "" {
			cfg.Issuer = "https://" + cfg.Addr
		}
	}
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if memProfile != "" {
		defer startMemProfile(memProfile, log)()
	}

	n, err := openNode(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = n.Close(context.Background())
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	stopMetrics, err := n.serveMetrics(cfg, log)
	if err != nil {
		_ = ln.Close()
		_ = n.Close(context.Background())
		return err
	}
	srv := &http.Server{
		Handler:           withDebug(cfg.TestDebug, n.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.Dev {
		log.Warn("DEVELOPMENT MODE: NO AUTHENTICATION, and http:// connector URLs are allowed; do not use in production")
	}
	if n.credentials != nil {
		printCredentials(stdout, n.credentials, filepath.Join(cfg.Data, auth.CredentialsFile))
	}
	fmt.Fprintf(stdout, "dcon %s listening on %s://%s (data in %s)\n", version, scheme, ln.Addr(), cfg.Data)

	served := make(chan error, 1)
	go func() { served <- serveAPI(srv, ln, certFile, keyFile) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("shutting down: finishing requests and attempts under way", "deadline", cfg.DrainTimeout.String())
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if shutErr := srv.Shutdown(stopCtx); shutErr != nil {
		log.Warn("stop the API", "err", shutErr)
	}
	stopMetrics(stopCtx)
	if closeErr := n.Close(stopCtx); closeErr != nil {
		log.Warn("stop", "err", closeErr)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// checkLoopback refuses to listen beyond this machine while the API has no
// authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--addr %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usagef("--addr %q: --dev has no authentication, so it listens on a loopback address only (for example 127.0.0.1:8080)", addr)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// node is one running dcon: its store, routing, ingest, delivery engine and API.
type node struct {
	db       nodeStore // *pebble.DB, or with --nats the JetStream queue and buckets
	keys     *signingKeys
	sender   *webhook.Client
	stats    *stats.Tracker
	watchdog *stats.Watchdog
	engine   *delivery.Engine
	api      http.Handler
	metrics  *metrics.Metrics
	running  atomic.Bool // the engine runs: from the end of openNode to Close (/readyz)
	// dashboard keeps the dashboard's live chart: it observes every outcome.
	dashboard *dashboard.Live

	// deliveryLog keeps each connector's recent attempts and expiries (in
	// memory); sweeper deletes dead letters past their retention.
	deliveryLog *deliverylog.Log
	sweeper     *ingest.Sweeper

	// authn authenticates callers; nil with --dev (no authentication).
	authn *auth.Authenticator
	// credentials are those of the owner account made by this start, the
	// first without --dev; nil otherwise.
	credentials *auth.Credentials
}

// openNode opens the store, recovers deliveries left in flight and starts the
// delivery engine. The API handler is ready when it returns.
func openNode(ctx context.Context, cfg serveConfig, log *slog.Logger) (*node, error) {
	roots, err := webhook.LoadRootCAs(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	checkDataDir(cfg.Data, log)
	if cfg.TestFaultFile != "" {
		cfg.FS = faultFS(cfg.FS, cfg.TestFaultFile)
	}
	m, err := metrics.New(metrics.Config{Registry: prometheus.NewRegistry(), PerConnector: !cfg.MetricsNoPerConnector,
		Logger: log.With("component", "metrics")})
	if err != nil {
		return nil, err
	}
	db, err := openStore(ctx, cfg, m, log) // Pebble, or with --nats JetStream (nats.go)
	if err != nil {
		return nil, err
	}
	keys, err := loadKeySet(cfg.Data, cfg.KeyOverlap, time.Now(), log)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	n := &node{db: db, keys: keys, metrics: m}
	if err := n.wire(ctx, cfg, roots, log); err != nil {
		_ = db.Close()
		return nil, err
	}
	n.api = n.withHealth(n.api)
	n.running.Store(true)
	return n, nil
}

func (n *node) wire(ctx context.Context, cfg serveConfig, roots *x509.CertPool, log *slog.Logger) error {
	var err error
	issuer, err := resolveIssuer(cfg.Issuer, cfg.Addr)
	if err != nil {
		return err
	}
	n.sender, err = webhook.New(webhook.Config{
		Timeout:      cfg.Timeout,
		RootCAs:      roots,
		UserAgent:    "dcon/" + version,
		Keys:         n.keys.set,
		Issuer:       issuer,
		Organization: newOrganizations(n.db, log.With("component", "signing")).Of,
		Destinations: cfg.Security.destinations(cfg.Dev),
		LookupIP:     cfg.Security.LookupIP,
	})
	if err != nil {
		return err
	}
	router, err := ingest.NewRouter(ctx, n.db, n.db)
	if err != nil {
		return err
	}
	n.watchConnectors(ctx, router, log) // changes made through other nodes (--nats)
	router.WithLogger(log.With("component", "router")).WithDropHook(func(id string, dropped int) {
		n.metrics.Dropped(id, dropped)
		if _, ok := router.Lookup(id); !ok { // deleted, not disabled
			n.deliveryLog.Forget(id)
		}
	})
	now := newClock(cfg.TestWallFile, cfg.TestClockFile) // see stableClock
	n.stats, err = stats.New(stats.Config{Store: n.db, Logger: log.With("component", "stats"), Now: now})
	if err != nil {
		return err
	}
	if err := n.stats.Load(ctx); err != nil {
		return err
	}
	lease := cfg.Timeout*2 + 30*time.Second
	n.deliveryLog = deliverylog.New(deliverylog.Config{Now: now})
	n.dashboard = dashboard.NewLive()
	n.engine, err = delivery.New(delivery.Config{
		Queue:      n.db,
		Connectors: router,
		Sender:     n.sender,
		Observer:   delivery.Observers{n.stats, n.dashboard, n.metrics, n.deliveryLog},
		Backoff:    delivery.Backoff{Initial: cfg.RetryInitial, Max: cfg.RetryMax},
		Logger:     log.With("component", "delivery"),
		Lease:      lease,
		Now:        now,
	})
	if err != nil {
		return err
	}
	in, err := ingest.New(ingest.Config{
		Devices:  n.db,
		Latest:   n.db,
		Router:   router,
		Queue:    n.db,
		Dispatch: n.engine,
		Lease:    lease,
		Now:      now,
	})
	if err != nil {
		return err
	}
	if err := n.engine.Start(ctx); err != nil {
		return err
	}
	if err := n.stats.Start(ctx); err != nil {
		return err
	}
	n.watchdog, err = stats.NewWatchdog(stats.WatchdogConfig{Tracker: n.stats, Connectors: router, Now: now,
		After: cfg.AutoDisable, Logger: log.With("component", "watchdog")})
	if err != nil {
		return err
	}
	if err := n.watchdog.Start(ctx); err != nil {
		return err
	}
	n.sweeper, err = ingest.NewSweeper(ingest.SweeperConfig{Queue: n.db, Retention: cfg.DeadLetterRetention, Now: now,
		Logger: log.With("component", "dead-letters")})
	if err != nil {
		return err
	}
	if err := n.sweeper.Start(ctx); err != nil {
		return err
	}
	// Data written before projects were resources gets a project for each id.
	created, err := n.db.CreateMissingProjects(ctx, time.Now())
	if err != nil {
		return err
	}
	if len(created) > 0 {
		log.Info("created projects for existing data connectors and devices", "projects", created)
	}
	access, keyMaker, err := n.openAuth(cfg)
	if err != nil {
		return err
	}
	n.api = (&httpapi.Server{
		Connectors:  router,
		Devices:     n.db,
		Projects:    n.db,
		Metrics:     n.connectorMetrics(log),
		DeadLetters: n.db,
		Deliveries:  deliveryLogAPI{n.deliveryLog},
		Replayer:    in,
		Flow:        n.engine,
		Ingest:      n.metrics.Ingest(in),
		Rules:       cfg.Security.connectorRules(cfg.Dev),
		Logger:      log.With("component", "api"),
		Access:      access,
		KeyMaker:    keyMaker,
	}).Handler()
	n.api = (&httpapi.KeyServer{Keys: n.keys, Issuer: issuer, Logger: log.With("component", "keys")}).Handler(n.api)
	// Behind the Guard, the management and publish limits know the service
	// account; in front of it, the token endpoint is limited per client IP.
	n.api = cfg.Security.rateLimited(n.api, log.With("component", "ratelimit"))
	if err := n.metrics.WatchQueues(n.db, router, n.engine); err != nil {
		return err
	}
	n.api = n.withMetrics(cfg, n.api)
	if !cfg.Dev && !cfg.NoAuth {
		if err := n.guard(ctx, cfg, issuer, log); err != nil {
			return err
		}
		n.api = cfg.Security.tokenLimited(n.api, log.With("component", "ratelimit"))
	}
	return n.mountDashboard(cfg, in, router, now, log)
}

// Handler serves the /v2 API.
func (n *node) Handler() http.Handler { return n.api }

// Close stops the delivery engine, waiting for attempts under way until ctx
// is done, and closes the store.
func (n *node) Close(ctx context.Context) error {
	n.running.Store(false)
	var errs []error
	if n.sweeper != nil {
		errs = append(errs, n.sweeper.Stop(ctx))
	}
	if n.watchdog != nil {
		errs = append(errs, n.watchdog.Stop(ctx))
	}
	if n.engine != nil {
		errs = append(errs, n.engine.Stop(ctx))
	}
	if n.stats != nil {
		errs = append(errs, n.stats.Stop(ctx)) // the final flush, after the last attempts
	}
	if n.sender != nil {
		n.sender.Close()
	}
	errs = append(errs, n.db.Close())
	return errors.Join(errs...)
}

// faultFS is the --test-disk-fault-file file system, for tests only: while the
// file exists, every write operation fails, or only syncs if the file says "sync".
func faultFS(fs vfs.FS, path string) vfs.FS {
	if fs == nil {
		fs = vfs.Default
	}
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		sync := op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
		if strings.TrimSpace(string(b)) == "sync" && !sync {
			return nil
		}
		return errorfs.ErrInjected
	}))
}

// withDebug serves, for --test-debug only, GET /debug/goroutines beside h:
// the number of goroutines, then with ?stacks=1 every goroutine's stack, so
// that the torture suite can check for leaks and see a stall without
// stopping the process.
func withDebug(on bool, h http.Handler) http.Handler {
	if !on {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /debug/goroutines", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "goroutines %d\n", runtime.NumGoroutine())
		if r.URL.Query().Get("stacks") == "1" {
			buf := make([]byte, 1<<20)
			for {
				n := runtime.Stack(buf, true)
				if n < len(buf) {
					buf = buf[:n]
					break
				}
				buf = make([]byte, 2*len(buf))
			}
			_, _ = w.Write(buf)
		}
	})
	return mux
}

// startCPUProfile profiles the process into path until the returned func is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// startMemProfile writes a heap profile to path every 5s, each replacing the
// last, until the returned func is called, which writes a last one.
func startMemProfile(path string, log *slog.Logger) (stop func()) {
	write := func() {
		tmp := path + ".tmp"
		f, err := os.Create(tmp)
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			log.Warn("--memprofile", "err", err)
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				write()
				return
			case <-t.C:
				write()
			}
		}
	}()
	return func() { close(done); <-finished }
}
