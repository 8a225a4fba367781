package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon"
	"dcon/internal/signature"
)

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Info       struct{ Title, Version string }       `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct{ Type, Scheme string } `json:"securitySchemes"`
	} `json:"components"`
}

// openAPIOperation is one operation of the document.
type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Parameters  []json.RawMessage          `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    []map[string][]string      `json:"security"`
}

func parseOpenAPI(t *testing.T) (openAPIDoc, any) {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var tree any
	if err := json.Unmarshal(openAPIDocument, &tree); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc, tree
}

// operations lists the document's operations as "METHOD /path", sorted.
func (d openAPIDoc) operations() []string {
	var ops []string
	for path, item := range d.Paths {
		for _, m := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
			if _, ok := item[m]; ok {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// resolve follows a local JSON pointer ("#/components/schemas/Error") in tree.
func resolve(tree any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	node := tree
	for tok := range strings.SplitSeq(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return node, true
}

// deref returns v, or what it refers to when it is a {"$ref": …}.
func deref(tree, v any) any {
	if m, ok := v.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			if r, ok := resolve(tree, ref); ok {
				return r
			}
		}
	}
	return v
}

// refs calls f with every $ref in v and the JSON path where it is.
func refs(v any, at string, f func(at, ref string)) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			f(at, ref)
		}
		for k, e := range v {
			refs(e, at+"/"+k, f)
		}
	case []any:
		for i, e := range v {
			refs(e, at+"/"+strconv.Itoa(i), f)
		}
	}
}

// TestOpenAPIDocument checks the document's own consistency: OpenAPI 3.1,
// every $ref resolves, every operation has a unique operationId, a 2xx and
// an error answer, every error answer is the contract's error body, every
// path parameter is declared, and the security schemes are dcon's two.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, tree := parseOpenAPI(t)
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("info lacks a title or a version: %+v", doc.Info)
	}
	refs(tree, "#", func(at, ref string) {
		if _, ok := resolve(tree, ref); !ok {
			t.Errorf("%s: $ref %q does not resolve", at, ref)
		}
	})
	for name, want := range map[string]string{"basicAuth": "basic", "bearerAuth": "bearer"} {
		if s := doc.Components.SecuritySchemes[name]; s.Type != "http" || s.Scheme != want {
			t.Errorf("security scheme %s: %+v, want http %s", name, s, want)
		}
	}
	errorSchema := map[string]any{"$ref": "#/components/schemas/Error"}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	ids := map[string]string{}
	for _, o := range doc.operations() {
		method, path, _ := strings.Cut(o, " ")
		var op openAPIOperation
		if err := json.Unmarshal(doc.Paths[path][strings.ToLower(method)], &op); err != nil {
			t.Errorf("%s: %v", o, err)
			continue
		}
		switch prev, dup := ids[op.OperationID]; {
		case op.OperationID == "":
			t.Errorf("%s has no operationId", o)
		case dup:
			t.Errorf("%s and %s have the same operationId %q", prev, o, op.OperationID)
		}
		ids[op.OperationID] = o
		var ok2xx, errs int
		for code, raw := range op.Responses {
			switch {
			case strings.HasPrefix(code, "2"):
				ok2xx++
			case strings.HasPrefix(code, "4"), strings.HasPrefix(code, "5"):
				errs++
				var v any
				json.Unmarshal(raw, &v)
				res, _ := deref(tree, v).(map[string]any)
				media, _ := res["content"].(map[string]any)
				body, _ := media["application/json"].(map[string]any)
				if !equalJSON(body["schema"], errorSchema) {
					t.Errorf("%s: the %s answer is not the contract's error body (#/components/schemas/Error)", o, code)
				}
			}
		}
		if ok2xx == 0 || errs == 0 {
			t.Errorf("%s: %d 2xx and %d error answers; want at least one of each", o, ok2xx, errs)
		}
		declared := map[string]bool{}
		for _, raw := range op.Parameters {
			var v any
			json.Unmarshal(raw, &v)
			if p, _ := deref(tree, v).(map[string]any); p["in"] == "path" {
				declared[p["name"].(string)] = true
			}
		}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} is not declared", o, m[1])
			}
		}
		for _, req := range op.Security {
			for name := range req {
				if _, ok := doc.Components.SecuritySchemes[name]; !ok {
					t.Errorf("%s: unknown security scheme %q", o, name)
				}
			}
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// verbRoutes lists the patterns that serve custom methods after their last
// path parameter ("POST …/{d}" serves "…/{d}:sync"), with the paths the
// document describes for each: "" for the plain path, ":verb" for a custom
// method. A pattern that is not listed is described as it is.
func verbRoutes() map[string][]string {
	return map[string][]string{
		"GET " + connectorsPath + "/{d}":                      {"", ":metrics"},
		"POST " + connectorsPath + "/{d}":                     {":sync"},
		"POST " + devicesPath + "/{d}":                        {":publish"},
		"POST /v2/projects/{p}/serviceaccounts/{sa}/keys/{k}": {":revoke"},
	}
}

// servedOutsideMux are the described routes that no pattern serves: the
// Guard answers them itself, before routing. TestOpenAPIRoutesAnswer calls
// them.
func servedOutsideMux() []string {
	return []string{"POST " + TokenPath}
}

// TestOpenAPIDescribesEveryRoute checks, both ways, that the document
// describes exactly the routes that the Server and the KeyServer register.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	doc, _ := parseOpenAPI(t)
	st := newOpenAPIStack(t)
	want := map[string]string{} // described route → the pattern that serves it
	for _, pattern := range st.routes {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || strings.HasPrefix(path, " ") {
			t.Errorf("pattern %q has no method: the document cannot describe it", pattern)
			continue
		}
		suffixes, isVerb := verbRoutes()[pattern]
		if !isVerb {
			suffixes = []string{""}
		}
		for _, s := range suffixes {
			want[method+" "+path+s] = pattern
		}
	}
	for pattern := range verbRoutes() {
		if !slices.Contains(st.routes, pattern) {
			t.Errorf("verbRoutes lists %q, which no server registers: update the table", pattern)
		}
	}
	for _, r := range servedOutsideMux() {
		want[r] = "(served by the Guard)"
	}
	described := doc.operations()
	for r, pattern := range want {
		if !slices.Contains(described, r) {
			t.Errorf("route %s (pattern %q) is registered but openapi.json does not describe it", r, pattern)
		}
	}
	for _, r := range described {
		if _, ok := want[r]; !ok {
			t.Errorf("openapi.json describes %s, but no server registers it: register the route, or remove it from the document", r)
		}
	}
}

// TestOpenAPIRoutesAnswer calls every described operation through the whole
// stack (Guard, KeyServer, Server) and checks that the route exists: no 405,
// and no 404 that says the path or its custom method is unknown (a 404 for a
// connector that does not exist is fine).
func TestOpenAPIRoutesAnswer(t *testing.T) {
	t.Parallel()
	doc, _ := parseOpenAPI(t)
	st := newOpenAPIStack(t)
	values := strings.NewReplacer("{p}", project, "{sa}", "c16pegipidie7lltreg0", "{k}", "c16pegipidie7lltreh0")
	for _, o := range doc.operations() {
		method, path, _ := strings.Cut(o, " ")
		target := values.Replace(path)
		if strings.Contains(path, "/devices/") {
			target = strings.ReplaceAll(target, "{d}", "emuc17m6d7lq0bgk44smcqg")
		}
		target = strings.ReplaceAll(target, "{d}", "c16pegipidie7lltrefg")
		status, body := st.call(t, method, target)
		var e errorBody
		json.Unmarshal([]byte(body), &e)
		switch {
		case status == http.StatusMethodNotAllowed,
			status == http.StatusUnauthorized,
			status == http.StatusNotFound && (strings.HasPrefix(e.Error, "no resource at") || strings.HasPrefix(e.Error, "unknown custom method")):
			t.Errorf("openapi.json describes %s, but %s %s answers %d %s", o, method, target, status, body)
		}
	}
	if status, body := st.call(t, http.MethodGet, "/v2/projects/"+project); status != http.StatusOK {
		t.Errorf("the project went away during the calls (%d %s): their 404s prove nothing", status, body)
	}
}

// TestOpenAPIServed checks that GET /v2/openapi.json answers the document
// without credentials.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	st := newOpenAPIStack(t)
	res, err := st.client.Get(st.url + OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || string(body) != string(openAPIDocument) {
		t.Errorf("GET %s: %d %s, %d bytes; want 200 application/json and the embedded document",
			OpenAPIPath, res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	// Everything else still needs credentials.
	res, err = st.client.Get(st.url + "/v2/projects")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/projects without credentials: %d, want 401", res.StatusCode)
	}
}

// openAPIStack is what dcon serve puts together — Guard, KeyServer, Server —
// over fakes, and the patterns its Server and KeyServer registered.
type openAPIStack struct {
	url    string
	client *http.Client
	routes []string
}

func newOpenAPIStack(t *testing.T) *openAPIStack {
	t.Helper()
	set, err := signature.Generate(testNow)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return testNow }
	rec := &routeRecorder{}
	conns, devs := newFakeConnectors(), newFakeDevices()
	projects := &fakeProjects{conns: conns, devs: devs, m: map[string]*dcon.Project{
		project: {ID: project, Organization: dcon.DefaultOrganization, CreateTime: testNow, UpdateTime: testNow},
	}}
	// A connector that no call names keeps the project from being deleted, so
	// that every call finds it.
	keep := &dcon.Connector{ProjectID: project, ID: "c16pegipidie7lltrei0", Type: dcon.ConnectorHTTPPush,
		Status: dcon.StatusActive, HTTP: dcon.HTTPConfig{URL: "https://example.com/in"}}
	if err := conns.CreateConnector(t.Context(), keep); err != nil {
		t.Fatal(err)
	}
	api := (&Server{
		Connectors:  conns,
		Devices:     devs,
		Ingest:      &fakeIngester{devices: devs, now: testNow},
		Projects:    projects,
		DeadLetters: &deadLetterDevices{fakeDevices: devs, limit: make(chan int, 100)},
		Deliveries:  noDeliveries{},
		Replayer:    noDeliveries{},
		Logger:      slog.New(rec),
		Now:         now,
	}).Handler()
	keys := (&KeyServer{Keys: &memKeys{set: set}, Issuer: testIssuer, Logger: slog.New(rec), Now: now}).Handler(api)
	guarded := (&Guard{Auth: ownerAuth{}, Projects: projects, Now: now}).Handler(keys)
	srv := httptest.NewServer(guarded)
	t.Cleanup(srv.Close)
	return &openAPIStack{url: srv.URL, client: srv.Client(), routes: rec.patterns()}
}

// call sends a request as the owner, with a body where the method takes one.
func (st *openAPIStack) call(t *testing.T, method, path string) (int, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPatch {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, st.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer owner")
	res, err := st.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// routeRecorder is a slog.Handler that keeps the patterns of the
// routeRegistered records.
type routeRecorder struct {
	mu   sync.Mutex
	list []string
}

func (r *routeRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *routeRecorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != routeRegistered {
		return nil
	}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "pattern" {
			r.mu.Lock()
			r.list = append(r.list, a.Value.String())
			r.mu.Unlock()
		}
		return true
	})
	return nil
}

func (r *routeRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *routeRecorder) WithGroup(string) slog.Handler      { return r }

func (r *routeRecorder) patterns() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// noDeliveries is an empty delivery log with no dead letters to replay.
type noDeliveries struct{}

func (noDeliveries) Latest(string, int) ([]DeliveryRecord, uint64)        { return nil, 0 }
func (noDeliveries) Since(string, uint64, int) ([]DeliveryRecord, uint64) { return nil, 0 }
func (noDeliveries) Replay(context.Context, string, string, dcon.ReplayRequest) (int, error) {
	return 0, nil
}

// ownerAuth authenticates every request as an owner account.
type ownerAuth struct{}

func (ownerAuth) Authenticate(_ context.Context, h string) (*dcon.Principal, error) {
	if h == "" {
		return nil, dcon.Errorf(dcon.EUNAUTHORIZED, "missing credentials")
	}
	return &dcon.Principal{Account: &dcon.ServiceAccount{ID: "owner", Project: project, Role: dcon.RoleAdmin, Owner: true}}, nil
}

func (ownerAuth) Exchange(context.Context, string, []string) (string, time.Duration, error) {
	return "token", time.Hour, nil
}
