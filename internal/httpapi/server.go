package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"dcon"
)

// Ingester is what the API needs from ingest; internal/ingest implements it.
type Ingester interface {
	// Publish validates and publishes one event of type t for a device; data is the value
	// inside {"<eventType>": ...}. Errors are *dcon.Error (ENOTFOUND device, EINVALID data or
	// type mismatch, EUNAVAILABLE store). It returns after the event is durable for every connector.
	Publish(ctx context.Context, projectID, deviceID string, t dcon.EventType, data json.RawMessage) (*dcon.Event, error)
	// SetDeviceLabels replaces a device's labels and publishes a labelsChanged event.
	SetDeviceLabels(ctx context.Context, projectID, deviceID string, labels map[string]string) (*dcon.Device, error)
	// PublishBatch publishes many events of a project, each validated on its
	// own; the result of each is in the same position. A result's event is
	// durable for every connector.
	PublishBatch(ctx context.Context, projectID string, reqs []dcon.PublishRequest) []dcon.PublishResult
	// Sync re-sends, through one connector only, the latest event of each type
	// of every device of the project, with their original event ids, and
	// returns how many it enqueued.
	Sync(ctx context.Context, projectID, connectorID string) (int, error)
}

// MetricsReader tells a connector's delivery figures over the last three
// hours; internal/stats implements it.
type MetricsReader interface {
	ConnectorMetrics(ctx context.Context, connectorID string) (dcon.ConnectorMetrics, error)
}

// DefaultMaxBodyBytes is the default limit of a request body: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Server serves the /v2 API. Connectors, Devices and Ingest are required; the
// other fields have defaults. A Server must not be changed after Handler is
// called.
type Server struct {
	// Connectors keeps data connectors. It must be the routing-aware store: it
	// drops a connector's queue itself when the connector is deleted or disabled.
	Connectors dcon.ConnectorStore
	// Devices keeps devices.
	Devices dcon.DeviceStore
	// Ingest publishes events and device label changes.
	Ingest Ingester
	// Projects keeps projects. When set, every path under /v2/projects/{p}
	// answers 404 unless the project exists. Default: nil (any valid id).
	Projects dcon.ProjectStore
	// Metrics answers :metrics. Default: nil (:metrics answers zeros).
	Metrics MetricsReader
	// DeadLetters reads connectors' dead letters. Default: nil (the
	// deadletters path is not found).
	DeadLetters DeadLetterReader
	// Deliveries is the delivery log, for GET …/{d}/deliveries. Default: nil
	// (that path is not found).
	Deliveries DeliveryLog
	// Replayer replays dead letters, for POST …/{d}/deadletters:replay.
	// Default: nil (that path is not found).
	Replayer Replayer
	// Flow tells each connector's flow control state, shown as the additive
	// flowControl member of a connector. Default: nil (not shown).
	Flow FlowReader
	// Rules are the server-wide rules every connector is validated against.
	// Default: the zero value (https:// URLs only).
	Rules dcon.ConnectorRules
	// Logger logs each request at debug level and internal errors at error
	// level. Default: discard.
	Logger *slog.Logger
	// Now tells the time of creations and updates. Default: time.Now.
	Now func() time.Time
	// MaxBodyBytes limits request bodies; larger ones answer 413. Default:
	// DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// Access keeps service accounts and KeyMaker makes their keys, for the
	// /v2/projects/{p}/serviceaccounts API. Default: nil (that API answers
	// 404: development mode, no authentication).
	Access   dcon.AccessStore
	KeyMaker KeyMaker
}

// api is a Server with its defaults filled in, and its routes.
type api struct {
	connectors       dcon.ConnectorStore
	devices          dcon.DeviceStore
	ingest           Ingester
	projects         dcon.ProjectStore
	metrics          MetricsReader
	deadLetterReader DeadLetterReader
	deliveryLog      DeliveryLog
	replayer         Replayer
	flow             FlowReader
	rules            dcon.ConnectorRules
	log              *slog.Logger
	now              func() time.Time
	maxBody          int64
	access           dcon.AccessStore
	keyMaker         KeyMaker
	mux              *http.ServeMux

	// Header values every answer shares (see setShared).
	nosniff, jsonType []string
	// answers holds *[]byte buffers to render published events' envelopes in.
	answers sync.Pool
}

// Handler returns the http.Handler that serves the API under /v2.
func (s *Server) Handler() http.Handler {
	a := &api{
		connectors:       s.Connectors,
		devices:          s.Devices,
		ingest:           s.Ingest,
		projects:         s.Projects,
		metrics:          s.Metrics,
		deadLetterReader: s.DeadLetters,
		deliveryLog:      s.Deliveries,
		replayer:         s.Replayer,
		flow:             s.Flow,
		rules:            s.Rules,
		log:              s.Logger,
		now:              s.Now,
		maxBody:          s.MaxBodyBytes,
		access:           s.Access,
		keyMaker:         s.KeyMaker,
		mux:              http.NewServeMux(),
		nosniff:          []string{"nosniff"},
		jsonType:         []string{"application/json"},
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBodyBytes
	}
	a.routes()
	return a
}

func (a *api) routes() {
	a.handle("GET /v2/projects", a.listProjects)
	a.handle("POST /v2/projects", a.createProject)
	a.handle("GET /v2/projects/{p}", a.getProject)
	a.handle("PATCH /v2/projects/{p}", a.patchProject)
	a.handle("DELETE /v2/projects/{p}", a.deleteProject)

	const connectors = "/v2/projects/{p}/dataconnectors"
	a.handle("GET "+connectors, a.listConnectors)
	a.handle("POST "+connectors, a.createConnector)
	a.handle("GET "+connectors+"/{d}", a.getConnector)
	a.handle("PATCH "+connectors+"/{d}", a.patchConnector)
	a.handle("DELETE "+connectors+"/{d}", a.deleteConnector)
	a.handle("POST "+connectors+"/{d}", a.postConnector) // {d}:sync
	a.handle("GET "+connectors+"/{d}/deadletters", a.deadLetters)
	a.handle("POST "+connectors+"/{d}/deadletters:replay", a.replayDeadLetters)
	a.handle("GET "+connectors+"/{d}/deliveries", a.deliveries)

	const devices = "/v2/projects/{p}/devices"
	a.handle("GET "+devices, a.listDevices)
	a.handle("POST "+devices, a.createDevice)
	a.handle("GET "+devices+"/{d}", a.getDevice)
	a.handle("PATCH "+devices+"/{d}", a.patchDevice)
	a.handle("DELETE "+devices+"/{d}", a.deleteDevice)
	a.handle("POST "+devices+"/{d}", a.postDevice) // {d}:publish
	a.handle("POST "+devices+":batchPublish", a.batchPublish)

	a.serviceAccountRoutes()
	a.handle("GET "+OpenAPIPath, a.openAPI)
}

// handle registers a handler that answers its error, if any, with writeError,
// and logs the pattern at debug level (routeRegistered).
func (a *api) handle(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	a.log.LogAttrs(context.Background(), slog.LevelDebug, routeRegistered, slog.String("pattern", pattern))
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// ServeHTTP routes the request, answers unknown paths and wrong methods with the
// contract's error body instead of ServeMux's plain text, and logs the request.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := a.now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	a.setShared(sw.Header(), "X-Content-Type-Options", a.nosniff, "nosniff")
	if p, d, ok := publishRoute(r); ok {
		// What the ServeMux would do, without matching twice.
		r.Pattern = publishPattern
		if err := a.postDeviceAt(sw, r, p, d); err != nil {
			a.writeError(sw, r, err)
		}
	} else if h, pattern := a.mux.Handler(r); pattern == "" {
		a.unrouted(sw, r, h)
	} else {
		a.mux.ServeHTTP(sw, r)
	}
	if a.log.Enabled(r.Context(), slog.LevelDebug) {
		a.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", a.now().Sub(start)))
	}
}

// publishPattern is the route of POST …/devices/{d}:publish.
const publishPattern = "POST /v2/projects/{p}/devices/{d}"

// publishRoute is the fast path of routing, for the call that dominates:
// POST …/devices/{d}:publish. When r certainly matches publishPattern — POST,
// a path of the pattern's shape that the ServeMux would neither clean nor
// unescape, its segments made only of letters, digits and "-_:" — it returns
// the values of {p} and {d}; otherwise ok is false and the ServeMux routes r.
// TestPublishRouteAgreesWithServeMux checks that the two agree.
func publishRoute(r *http.Request) (p, d string, ok bool) {
	if r.Method != http.MethodPost || r.URL.RawPath != "" {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/projects/")
	if !ok {
		return "", "", false
	}
	p, d, ok = strings.Cut(rest, "/devices/")
	if !ok || !plainSegment(p) || !plainSegment(d) {
		return "", "", false
	}
	return p, d, true
}

// plainSegment reports whether s is a non-empty path segment that needs no
// cleaning or unescaping: letters, digits and "-_:" only.
func plainSegment(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// setShared sets header key, in canonical form, to value. shared holds value
// and is shared by every answer instead of allocated for each (nothing
// changes a header value in place); it is nil in the small apis that the
// Guard, the KeyServer and the rate limiter make, which allocate.
func (a *api) setShared(h http.Header, key string, shared []string, value string) {
	if shared == nil {
		shared = []string{value}
	}
	h[key] = shared
}

// unrouted runs ServeMux's handler for a request that matched no pattern and
// turns its 404 or 405 into the contract's error body; anything else (a
// redirect to a cleaned path) is passed on as it is.
func (a *api) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	c := &captureWriter{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(c, r)
	switch c.status {
	case http.StatusNotFound:
		a.writeError(w, r, dcon.Errorf(dcon.ENOTFOUND, "no resource at %s", r.URL.Path))
	case http.StatusMethodNotAllowed:
		a.methodNotAllowed(w, r, c.header.Get("Allow"))
	default:
		for k, v := range c.header {
			w.Header()[k] = v
		}
		w.WriteHeader(c.status)
		w.Write(c.body.Bytes())
	}
}

// methodNotAllowed answers 405 with the Allow header.
func (a *api) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	a.writeError(w, r, dcon.Errorf(eMethodNotAllowed, "method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
}

// respond writes v as compact JSON with the given status. It returns an error,
// before writing anything, when v cannot be encoded.
func (a *api) respond(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dcon.WrapError(dcon.EINTERNAL, err, "internal error")
	}
	a.write(w, status, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return nil
}

// write writes body, which is JSON, with the given status.
func (a *api) write(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	a.setShared(h, "Content-Type", a.jsonType, "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// splitVerb splits the last path segment of a resource into its id and the
// custom method after ":", if any ("emu…:publish" → "emu…", "publish").
func splitVerb(segment string) (id, verb string) {
	id, verb, _ = strings.Cut(segment, ":")
	return id, verb
}

// statusWriter remembers the status a handler answered, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter keeps what ServeMux's own handlers write, to be rewritten.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header         { return c.header }
func (c *captureWriter) WriteHeader(status int)      { c.status = status }
func (c *captureWriter) Write(p []byte) (int, error) { return c.body.Write(p) }
