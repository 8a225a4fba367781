package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"time"

	"dcon/internal/auth"
	"dcon/internal/dashboard"
	"dcon/internal/ingest"
)

// mountDashboard serves the web dashboard under /dashboard/ on the API's
// listener, in front of the API (and of its Guard: the dashboard has its own
// login, with the same keys, limited like the token endpoint). Without authentication (--dev, NoAuth) it opens
// without login and says so.
func (n *node) mountDashboard(cfg serveConfig, in *ingest.Ingester, router *ingest.Router, now func() time.Time, log *slog.Logger) error {
	dc := dashboard.Config{
		Projects:   n.db,
		Connectors: router,
		Devices:    n.db,
		Metrics:    n.connectorMetrics(log),
		Queue:      n.db,
		Live:       n.dashboard,
		Log:        n.deliveryLog,
		Replay:     in,
		Publisher:  in,
		Now:        now,
		Logger:     log.With("component", "dashboard"),
	}
	if n.authn != nil {
		key, err := auth.LoadServerKey(cfg.Data)
		if err != nil {
			return err
		}
		dc.Auth, dc.Keys, dc.SessionKey = n.authn, n.db, dashboardSessionKey(key)
		dc.LoginLimit = func(login http.Handler) http.Handler {
			return cfg.Security.loginLimited(login, log.With("component", "ratelimit"))
		}
	}
	d, err := dashboard.New(dc)
	if err != nil {
		return err
	}
	n.api = d.Mount(n.api)
	return nil
}

// dashboardSessionKey derives the key that signs dashboard sessions from the
// server key, so that sessions survive a restart and nothing else is signed
// with it.
func dashboardSessionKey(serverKey []byte) []byte {
	m := hmac.New(sha256.New, serverKey)
	m.Write([]byte("dcon dashboard session key"))
	return m.Sum(nil)
}
