package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dcon"
	"dcon/internal/httpapi"
)

// Metrics tells a connector's figures over the last three hours
// (internal/stats.Tracker).
type Metrics interface {
	ConnectorMetrics(ctx context.Context, connectorID string) (dcon.ConnectorMetrics, error)
}

// Queue tells how a connector's queue stands and lists its dead letters (the
// store: dcon.QueueInspector and dcon.Queue's DeadLetters).
type Queue interface {
	QueueStats(ctx context.Context, connectorID string) (dcon.QueueStats, error)
	DeadLetters(ctx context.Context, connectorID string, limit int) ([]dcon.DeadLetter, error)
}

// DeliveryLog returns a connector's recent attempts, newest first
// (internal/deliverylog).
type DeliveryLog interface {
	Recent(connectorID string, limit int) []dcon.Outcome
}

// Replayer delivers a connector's dead letters again and says how many
// (ingest.Ingester).
type Replayer interface {
	Replay(ctx context.Context, projectID, connectorID string, r dcon.ReplayRequest) (int, error)
}

// Publisher publishes an event of a device (ingest.Ingester): the "send test
// event" button.
type Publisher interface {
	Publish(ctx context.Context, projectID, deviceID string, t dcon.EventType, data json.RawMessage) (*dcon.Event, error)
}

// Authenticator checks an Authorization header (internal/auth): the login
// page sends it the key id and secret as HTTP Basic. Errors are *dcon.Error:
// EUNAUTHORIZED or EUNAVAILABLE.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string) (*dcon.Principal, error)
}

// Keys reads keys and service accounts (the store), to check on every
// request that a session's key is still valid.
type Keys interface {
	Key(ctx context.Context, id string) (*dcon.Key, error)
	ServiceAccount(ctx context.Context, projectID, id string) (*dcon.ServiceAccount, error)
}

// Config configures a Dashboard.
type Config struct {
	// Projects, Connectors and Devices are what the pages list. Required.
	Projects   dcon.ProjectStore
	Connectors dcon.ConnectorStore
	Devices    dcon.DeviceStore
	// Metrics gives the connectors' three-hour figures. Required.
	Metrics Metrics
	// Queue gives queue depth, oldest event and dead letters. Required.
	Queue Queue
	// Live keeps the live chart's figures; it must also be one of the
	// delivery engine's observers. Required.
	Live *Live
	// Log is the delivery log. Nil: the connector page says it is not
	// available.
	Log DeliveryLog
	// Replay delivers dead letters again. Nil: no replay buttons.
	Replay Replayer
	// Publisher sends test events. Nil: no "send test event" button.
	Publisher Publisher

	// Auth checks logins. Nil means development mode: no authentication,
	// every page open, with a banner that says so.
	Auth Authenticator
	// Keys re-reads a session's key and account on every request. Required
	// with Auth.
	Keys Keys
	// SessionKey signs session cookies; at least 32 bytes, secret, and the
	// same across restarts for sessions to survive them. Required with Auth.
	SessionKey []byte
	// SessionNow is the clock of session expiry. Default time.Now.
	SessionNow func() time.Time
	// LoginLimit wraps the handler of the login form's POST, before the key
	// is checked: dcon serve passes a rate limiter that answers 429 with
	// Retry-After past --rate-limit attempts per client IP, as for the
	// token endpoint, so that secrets cannot be guessed at speed. Nil: no
	// limit.
	LoginLimit func(http.Handler) http.Handler

	// Now is dcon's clock, that of the delivery engine: where the live chart
	// ends and what queue ages count from. Default time.Now.
	Now func() time.Time
	// Logger logs failures that pages show only as "unavailable". Default:
	// discard.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	switch {
	case c.Projects == nil || c.Connectors == nil || c.Devices == nil:
		return errors.New("dashboard: Projects, Connectors and Devices are required")
	case c.Metrics == nil || c.Queue == nil || c.Live == nil:
		return errors.New("dashboard: Metrics, Queue and Live are required")
	case c.Auth != nil && c.Keys == nil:
		return errors.New("dashboard: Keys is required with Auth")
	case c.Auth != nil && len(c.SessionKey) < 32:
		return errors.New("dashboard: SessionKey of at least 32 bytes is required with Auth")
	}
	if c.SessionNow == nil {
		c.SessionNow = time.Now
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Prefix is the path under which the dashboard is served.
const Prefix = "/dashboard/"

// Dashboard serves the dashboard's pages, its live endpoints and its assets.
type Dashboard struct {
	cfg    Config
	mux    *http.ServeMux
	pages  map[string]*template.Template
	static http.Handler
}

// New returns a Dashboard.
func New(cfg Config) (*Dashboard, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	d := &Dashboard{cfg: cfg, mux: http.NewServeMux(), pages: pages,
		static: http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))}
	d.routes()
	return d, nil
}

func (d *Dashboard) routes() {
	const p, c = Prefix + "projects/{p}", Prefix + "projects/{p}/connectors/{c}"
	d.mux.HandleFunc("GET "+Prefix+"static/", d.serveStatic)
	d.mux.HandleFunc("GET "+Prefix+"login", d.loginPage)
	login := http.Handler(http.HandlerFunc(d.login))
	if d.cfg.LoginLimit != nil {
		login = d.cfg.LoginLimit(login)
	}
	d.mux.Handle("POST "+Prefix+"login", login)
	d.mux.HandleFunc("POST "+Prefix+"logout", d.logout)
	d.mux.Handle("GET "+Prefix+"{$}", d.page(0, d.projectsPage))
	d.mux.Handle("GET "+p, d.page(dcon.PermRead, d.projectPage))
	d.mux.Handle("GET "+p+"/live", d.page(dcon.PermRead, d.projectLive))
	d.mux.Handle("GET "+p+"/devices", d.page(dcon.PermRead, d.devicesPage))
	d.mux.Handle("GET "+c, d.page(dcon.PermRead, d.connectorPage))
	d.mux.Handle("GET "+c+"/live", d.page(dcon.PermRead, d.connectorLive))
	d.mux.Handle("POST "+c+"/replay", d.page(dcon.PermWrite, d.replay))
	d.mux.Handle("POST "+c+"/test-event", d.page(dcon.PermWrite, d.testEvent))
	d.mux.Handle(Prefix, d.page(0, func(http.ResponseWriter, *http.Request, *request) error {
		return dcon.Errorf(dcon.ENOTFOUND, "there is no such page")
	}))
}

// contentSecurityPolicy allows the dashboard's own files and nothing else:
// no inline script or style, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP serves the dashboard, under Prefix, with its security headers.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix) {
		http.Redirect(w, r, Prefix, http.StatusFound)
		return
	}
	d.mux.ServeHTTP(w, r)
}

// Mount returns a handler that serves the dashboard under Prefix, redirects
// "/" (and "/dashboard") to it, and passes every other request to next.
func (d *Dashboard) Mount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, Prefix):
			d.ServeHTTP(w, r)
		case p == "/" || p == strings.TrimSuffix(Prefix, "/"):
			http.Redirect(w, r, Prefix, http.StatusFound)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	d.static.ServeHTTP(w, r)
}

// request is what a page handler knows of its request once page has checked
// it: the caller and, for a page under a project, the project and role.
type request struct {
	principal *dcon.Principal // nil in development mode
	session   string          // the session cookie's value; "" in development mode
	project   *dcon.Project   // nil outside a project
	role      dcon.Role       // the caller's role on project; admin in development mode
}

// canWrite reports whether the caller may replay and send test events.
func (rq *request) canWrite() bool { return rq.role.Allows(dcon.PermWrite) }

type pageFunc func(w http.ResponseWriter, r *http.Request, rq *request) error

// page returns the handler of a page or action that needs perm on the
// project in its path ({p}; 0 for pages outside projects): it finds the
// caller (or sends them to the login page), checks the role and, for a POST,
// that it comes from the dashboard, then runs fn and shows its error if any.
func (d *Dashboard) page(perm dcon.Permission, fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		rq, err := d.authorize(w, r, perm)
		if err == nil {
			err = fn(w, r, rq)
		}
		if err == nil {
			return
		}
		if dcon.ErrorCode(err) == dcon.EUNAUTHORIZED && r.Method == http.MethodGet && !isJSON(r) {
			d.clearSession(w, r)
			http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		d.fail(w, r, rq, err)
	})
}

// authorize finds the caller and checks that they may do what needs perm on
// the project in the path.
func (d *Dashboard) authorize(w http.ResponseWriter, r *http.Request, perm dcon.Permission) (*request, error) {
	rq := &request{role: dcon.RoleAdmin}
	if d.cfg.Auth != nil {
		p, session, err := d.sessionPrincipal(r)
		if err != nil {
			return nil, err
		}
		rq.principal, rq.session, rq.role = p, session, ""
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := d.checkPost(r, rq.session); err != nil {
			return rq, err
		}
	}
	id := r.PathValue("p")
	if id == "" {
		return rq, nil
	}
	if rq.principal != nil {
		rq.role = rq.principal.Account.RoleOn(id)
		if rq.role == "" {
			return rq, dcon.Errorf(dcon.ENOTFOUND, "project %s not found", id)
		}
	}
	proj, err := d.cfg.Projects.Project(r.Context(), id)
	if err != nil {
		return rq, err
	}
	rq.project = proj
	if !rq.role.Allows(perm) {
		return rq, dcon.Errorf(dcon.EFORBIDDEN, "your role on this project, %s, does not allow this: a developer or an admin may", rq.role)
	}
	return rq, nil
}

// maxFormBytes bounds the forms of the dashboard's actions.
const maxFormBytes = 16 << 10

// isJSON reports whether a request is for one of the live endpoints.
func isJSON(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/live") }

// statusOf maps an error's code to the status of the page that shows it: the
// API's table.
func statusOf(err error) int { return httpapi.HTTPStatus(err) }

// fail shows an error: a page, or JSON for the live endpoints. Internal
// errors are logged, and shown without their cause.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	status := statusOf(err)
	if status >= 500 {
		d.cfg.Logger.Error("dashboard", "path", r.URL.Path, "err", err)
	}
	msg := dcon.ErrorMessage(err)
	if isJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": msg, "code": status})
		return
	}
	v := d.newView(r, rq, http.StatusText(status))
	v.Page = errorPage{Status: status, Message: msg}
	d.render(w, r, status, "error", v)
}

// errorPage is what the error page shows.
type errorPage struct {
	Status  int
	Message string
}
