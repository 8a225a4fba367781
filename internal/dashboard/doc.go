// Package dashboard is dcon's web dashboard: server-rendered pages, under
// /dashboard/, that show what dcon is doing and let an operator act on it.
//
//   - /dashboard/ lists the projects the caller has a role on;
//   - a project's page lists its data connectors with their status, success
//     and error counts and p99 latency over the last three hours (what
//     :metrics answers), queue depth and the age of the oldest queued event;
//   - a connector's page adds a live chart of deliveries per second and
//     latency (dashboard.js polls the page's live endpoint every second and
//     draws on a canvas; Live keeps the figures), the recent attempts (the
//     delivery log), the dead letters with replay buttons (one, and all), and
//     a "send test event" button;
//   - a project's devices page lists its devices and their labels.
//
// The pages are html/template, the CSS, script and logo are embedded
// (embed.FS): no Node toolchain, no CDN, no script library, and no inline
// script, so the Content-Security-Policy allows only the dashboard's own
// files.
//
// # Authentication
//
// The dashboard authenticates as the API does, with a service account key.
// The login page checks the key id and secret with the same Authenticator as
// HTTP Basic, then sets a session cookie: the key id and an expiry (12 h),
// HMAC-signed with a server key; HttpOnly, SameSite=Strict, and Secure when
// served over TLS. Every request re-reads the key and its account, so a
// revoked key's session ends at its next request. Each page and action checks
// the account's role on the project in its path, as the API's Guard does: a
// reader sees; a developer also replays dead letters and sends test events;
// a project the account has no role on answers 404, as if it did not exist.
// Login attempts go through Config.LoginLimit (dcon serve: --rate-limit per
// client IP, like the token endpoint) before any secret is checked.
//
// POSTs carry a token derived from the session (a hidden form field) and
// must come from the dashboard's own origin (Origin, or Referer), beside
// SameSite=Strict.
//
// Without an Authenticator (dcon serve --dev) there is no login: every page
// is open and shows a "development mode" banner.
package dashboard
