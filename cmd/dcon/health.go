package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"dcon"
)

// probeTimeout bounds /readyz's probe of the store.
const probeTimeout = 2 * time.Second

// withHealth serves, in front of everything else (no authentication, no rate
// limit, for load balancers and orchestrators):
//
//   - GET /healthz: 200 "ok" while the process serves HTTP at all;
//   - GET /readyz: 200 "ok" when the store answers and the delivery engine
//     runs, else 503 with the reason (the store is unavailable while a disk
//     fault keeps it reopening; the node is starting or stopping).
func (n *node) withHealth(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeProbe(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := n.ready(r.Context()); err != nil {
			writeProbe(w, http.StatusServiceUnavailable, "not ready: "+dcon.ErrorMessage(err))
			return
		}
		writeProbe(w, http.StatusOK, "ok")
	})
	return mux
}

// ready returns why the node cannot serve, or nil.
func (n *node) ready(ctx context.Context) error {
	if !n.running.Load() {
		return dcon.Errorf(dcon.EUNAVAILABLE, "the delivery engine is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return n.db.Ping(ctx)
}

func writeProbe(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// withMetrics serves GET /metrics beside next, unless it is served on its
// own listener (--metrics-addr). The Guard wraps it, so that without --dev
// only owners may read it on the API listener (it names every connector).
func (n *node) withMetrics(cfg serveConfig, next http.Handler) http.Handler {
	if cfg.MetricsAddr != "" {
		return next
	}
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle("GET /metrics", n.metrics.Handler())
	return mux
}

// registerMetricsFlags adds serve's metrics flags to fs.
func registerMetricsFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve /metrics on this `host:port` instead of the API listener, WITHOUT AUTHENTICATION: use a private address")
	fs.BoolFunc("metrics-per-connector", "label delivery and queue metrics with the connector id (default true; false for very large fleets)", func(s string) error {
		on, err := strconv.ParseBool(s)
		cfg.MetricsNoPerConnector = !on
		return err
	})
}

// serveMetrics serves /metrics on --metrics-addr, if set, until the returned
// function stops it.
func (n *node) serveMetrics(cfg serveConfig, log *slog.Logger) (stop func(context.Context), err error) {
	if cfg.MetricsAddr == "" {
		return func(context.Context) {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", cfg.MetricsAddr, err)
	}
	return n.serveMetricsOn(ln, log), nil
}

// serveMetricsOn serves, on ln and without authentication, GET /metrics,
// /healthz and /readyz, and nothing else (404), until the returned function
// stops it.
func (n *node) serveMetricsOn(ln net.Listener, log *slog.Logger) (stop func(context.Context)) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metrics.Handler())
	srv := &http.Server{
		Handler:           n.withHealth(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve metrics", "addr", ln.Addr().String(), "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func(ctx context.Context) { _ = srv.Shutdown(ctx) }
}
