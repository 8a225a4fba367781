package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dcon"
	"dcon/internal/auth"
	"dcon/internal/dashboard"
	"dcon/internal/httpapi"
	"dcon/internal/pebble"
	"dcon/internal/stats"
)

// queue is the store as the dashboard's Queue, with QueueStats made from
// Depth until the store has its own.
type queue struct{ *pebble.DB }

func (q queue) QueueStats(ctx context.Context, id string) (dcon.QueueStats, error) {
	n, err := q.Depth(ctx, id)
	return dcon.QueueStats{Depth: n}, err
}

// fakeLog is a delivery log that returns what it was given.
type fakeLog struct{ outcomes []dcon.Outcome }

func (l *fakeLog) Recent(string, int) []dcon.Outcome { return l.outcomes }

// fakeReplayer records replays and answers how many it was asked for.
type fakeReplayer struct {
	mu  sync.Mutex
	got []dcon.ReplayRequest
}

func (r *fakeReplayer) Replay(_ context.Context, _, _ string, req dcon.ReplayRequest) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, req)
	if req.All {
		return 7, nil
	}
	return len(req.EventIDs), nil
}

func (r *fakeReplayer) requests() []dcon.ReplayRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dcon.ReplayRequest(nil), r.got...)
}

// fakePublisher records published events.
type fakePublisher struct {
	mu  sync.Mutex
	got []string // "project/device/type"
}

func (p *fakePublisher) Publish(_ context.Context, project, device string, t dcon.EventType, _ json.RawMessage) (*dcon.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, project+"/"+device+"/"+string(t))
	return &dcon.Event{ID: "d0000000000000000ev1", Type: t}, nil
}

// fixture is a dashboard over a real store, stats tracker and
// authenticator, with one project ("p1") holding a connector with a dead
// letter, and another project ("p2").
type fixture struct {
	t         *testing.T
	db        *pebble.DB
	authn     *auth.Authenticator
	srv       *httptest.Server
	live      *dashboard.Live
	tracker   *stats.Tracker
	replay    *fakeReplayer
	publisher *fakePublisher
	log       *fakeLog
	conn      *dcon.Connector
	now       time.Time

	mu         sync.Mutex
	sessionNow time.Time
}

func newFixture(t *testing.T, withAuth bool) *fixture {
	t.Helper()
	return newFixtureWith(t, withAuth, nil)
}

// newFixtureWith is newFixture with a last change to the dashboard's Config.
func newFixtureWith(t *testing.T, withAuth bool, change func(*dashboard.Config)) *fixture {
	t.Helper()
	db, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, live: dashboard.NewLive(), replay: &fakeReplayer{}, publisher: &fakePublisher{},
		log: &fakeLog{}, now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), sessionNow: time.Now()}
	ctx := t.Context()
	for _, p := range []string{"p1", "p2"} {
		if err := db.CreateProject(ctx, &dcon.Project{ID: p, DisplayName: "Project " + p, CreateTime: f.now}); err != nil {
			t.Fatal(err)
		}
	}
	f.conn = &dcon.Connector{ProjectID: "p1", ID: "c0000000000000000001", DisplayName: "warehouse", Type: dcon.ConnectorHTTPPush,
		Status: dcon.StatusActive, HTTP: dcon.HTTPConfig{URL: "https://user:pw@example.com/hook?token=secret"}, CreateTime: f.now}
	if err := db.CreateConnector(ctx, f.conn); err != nil {
		t.Fatal(err)
	}
	dl := dcon.Delivery{ConnectorID: f.conn.ID, ProjectID: "p1", EventID: "e0000000000000000001", EventType: dcon.EventTouch,
		EventTime: f.now.Add(-13 * time.Hour), Body: []byte(`{}`), Attempts: 9, LastError: "HTTP 503", Due: f.now}
	if err := db.Enqueue(ctx, []dcon.Delivery{dl}); err != nil {
		t.Fatal(err)
	}
	if err := db.Expire(ctx, []dcon.Delivery{dl}, f.now); err != nil {
		t.Fatal(err)
	}
	f.tracker, err = stats.New(stats.Config{Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := dashboard.Config{
		Projects: db, Connectors: db, Devices: db, Metrics: f.tracker, Queue: queue{db}, Live: f.live,
		Log: f.log, Replay: f.replay, Publisher: f.publisher, Now: func() time.Time { return f.now },
	}
	if withAuth {
		f.authn, err = auth.New(auth.Config{Store: db, ServerKey: bytes.Repeat([]byte{7}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Auth, cfg.Keys, cfg.SessionKey = f.authn, db, bytes.Repeat([]byte{9}, 32)
		cfg.SessionNow = func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.sessionNow
		}
	}
	if change != nil {
		change(&cfg)
	}
	d, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") })
	f.srv = httptest.NewServer(d.Mount(api))
	t.Cleanup(f.srv.Close)
	return f
}

// setSessionNow moves the clock of sessions.
func (f *fixture) setSessionNow(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessionNow = t
}

// key makes a service account with a role in a project and returns its key.
func (f *fixture) key(role dcon.Role, project string, owner bool) (*dcon.Key, string) {
	f.t.Helper()
	id := "a" + strings.Repeat("0", 18) + string(rune('0'+len(role)%10))
	acc := &dcon.ServiceAccount{ID: id + project, Project: project, Role: role, Owner: owner, DisplayName: string(role) + " account",
		Email: dcon.ServiceAccountEmail(project, id)}
	k, secret, err := f.authn.NewKey(acc)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.CreateServiceAccount(f.t.Context(), acc, k); err != nil {
		f.t.Fatal(err)
	}
	return k, secret
}

// browser is an HTTP client with cookies that does not follow redirects and
// sends the Origin a browser would.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (f *fixture) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &browser{t: f.t, base: f.srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request and returns the status, the Location and the body.
func (b *browser) do(method, path string, form url.Values, header map[string]string) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(raw)
}

func (b *browser) get(path string) (int, string, string) { return b.do("GET", path, nil, nil) }

// login logs in and fails the test unless it worked.
func (b *browser) login(keyID, secret string) {
	b.t.Helper()
	status, loc, body := b.do("POST", "/dashboard/login", url.Values{"keyId": {keyID}, "secret": {secret}, "next": {"/dashboard/projects/p1"}}, nil)
	if status != http.StatusSeeOther || loc != "/dashboard/projects/p1" {
		b.t.Fatalf("login: %d to %q: %s", status, loc, body)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the token in a page's forms.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf token in the page:\n%s", page)
	}
	return m[1]
}

const connectorPath = "/dashboard/projects/p1/connectors/c0000000000000000001"

// TestLoginSessionAndRevocation: pages send a visitor without a session to
// the login page; a valid key logs in with a hardened cookie; a wrong secret
// does not; revoking the key ends the session at its next request; and the
// session expires after 12 hours.
func TestLoginSessionAndRevocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	k, secret := f.key(dcon.RoleReader, "p1", false)
	b := f.browser()

	status, loc, _ := b.get("/dashboard/projects/p1")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/dashboard/login?next=") {
		t.Fatalf("without a session: %d to %q, want a redirect to the login page", status, loc)
	}
	if status, _, body := b.get(loc); status != http.StatusOK || !strings.Contains(body, `name="secret"`) {
		t.Fatalf("login page: %d\n%s", status, body)
	}
	status, _, body := b.do("POST", "/dashboard/login", url.Values{"keyId": {k.ID}, "secret": {"wrong"}}, nil)
	if status != http.StatusUnauthorized || !strings.Contains(body, "not a valid key") {
		t.Fatalf("wrong secret: %d\n%s", status, body)
	}

	req, _ := http.NewRequest("POST", f.srv.URL+"/dashboard/login", strings.NewReader(url.Values{"keyId": {k.ID}, "secret": {secret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "dcon_session" {
			cookie = c
		}
	}
	switch {
	case resp.StatusCode != http.StatusSeeOther:
		t.Fatalf("login: %d", resp.StatusCode)
	case cookie == nil:
		t.Fatal("login set no session cookie")
	case !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/dashboard/":
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/dashboard/", cookie)
	case cookie.Secure:
		t.Errorf("session cookie is Secure over plain HTTP")
	case cookie.MaxAge != 12*3600:
		t.Errorf("session cookie Max-Age %d, want 12 h", cookie.MaxAge)
	}

	if status, _, body := b.get("/dashboard/projects/p1"); status != http.StatusOK || !strings.Contains(body, "warehouse") {
		t.Fatalf("project page after login: %d\n%s", status, body)
	}

	// Expiry: 12 hours later the session is over.
	f.setSessionNow(time.Now().Add(12*time.Hour + time.Second))
	if status, loc, _ := b.get("/dashboard/projects/p1"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/dashboard/login") {
		t.Fatalf("after 12 h: %d to %q, want the login page", status, loc)
	}
	f.setSessionNow(time.Now())
	b.login(k.ID, secret)

	// Revocation ends the session at the next request.
	k.RevokeTime = time.Now()
	if err := f.db.UpdateKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	if status, loc, _ := b.get("/dashboard/projects/p1"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/dashboard/login") {
		t.Fatalf("after revocation: %d to %q, want the login page", status, loc)
	}
	if status, _, _ := b.get("/dashboard/projects/p1/live"); status != http.StatusUnauthorized {
		t.Errorf("live endpoint after revocation: %d, want 401", status)
	}
}

// countingAuth counts the logins it checks.
type countingAuth struct {
	dashboard.Authenticator
	n atomic.Int64
}

func (a *countingAuth) Authenticate(ctx context.Context, authorization string) (*dcon.Principal, error) {
	a.n.Add(1)
	return a.Authenticator.Authenticate(ctx, authorization)
}

// TestLoginRateLimited: with the limit dcon serve passes (the API's rate
// limiter, 25 per 5 seconds per client IP), the 26th login within 5 seconds
// answers 429 with Retry-After, and its secret is not checked even when it
// is right; once the window has passed, logging in works again.
func TestLoginRateLimited(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	counter := &countingAuth{}
	f := newFixtureWith(t, true, func(cfg *dashboard.Config) {
		counter.Authenticator = cfg.Auth
		cfg.Auth = counter
		limiter := &httpapi.RateLimiter{Management: httpapi.DefaultRateLimit, Now: clock,
			Key: func(*http.Request) string { return "" }} // "": per client IP
		cfg.LoginLimit = limiter.Handler
	})
	k, secret := f.key(dcon.RoleReader, "p1", false)
	b := f.browser()
	for i := range httpapi.DefaultRateLimit.Requests {
		if status, _, _ := b.do("POST", "/dashboard/login", url.Values{"keyId": {k.ID}, "secret": {"wrong"}}, nil); status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, status)
		}
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/dashboard/login", strings.NewReader(url.Values{"keyId": {k.ID}, "secret": {secret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || len(resp.Cookies()) != 0 {
		t.Errorf("attempt 26, with the right secret: %d, Retry-After %q, cookies %v; want 429 with Retry-After and no session",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Cookies())
	}
	if n := counter.n.Load(); n != 25 {
		t.Errorf("%d logins checked, want 25: the 26th must be refused before its secret is checked", n)
	}
	// The login page itself, and the other pages, are not limited.
	if status, _, _ := b.get("/dashboard/login"); status != http.StatusOK {
		t.Errorf("GET the login page while limited: %d, want 200", status)
	}
	mu.Lock()
	now = now.Add(5 * time.Second)
	mu.Unlock()
	b.login(k.ID, secret)
}

// TestForgedSession: a cookie whose signature does not hold is no session.
func TestForgedSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	k, _ := f.key(dcon.RoleAdmin, "p1", false)
	b := f.browser()
	u, _ := url.Parse(f.srv.URL + "/dashboard/")
	exp := time.Now().Add(time.Hour).Unix()
	for _, v := range []string{
		k.ID,
		k.ID + "." + strconv.FormatInt(exp, 10) + ".AAAA",
		k.ID + "." + strconv.FormatInt(exp, 10),
	} {
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "dcon_session", Value: v, Path: "/dashboard/"}})
		if status, loc, _ := b.get("/dashboard/projects/p1"); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/dashboard/login") {
			t.Errorf("cookie %q: %d to %q, want the login page", v, status, loc)
		}
	}
}

// TestRoles: a reader sees a project's pages but no action; a developer
// replays and sends test events; a project without a role is not found; an
// owner sees every project.
func TestRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	reader, readerSecret := f.key(dcon.RoleReader, "p1", false)
	dev, devSecret := f.key(dcon.RoleDeveloper, "p1", false)
	owner, ownerSecret := f.key(dcon.RoleAdmin, "p2", true)

	r := f.browser()
	r.login(reader.ID, readerSecret)
	status, _, page := r.get(connectorPath)
	if status != http.StatusOK {
		t.Fatalf("reader, connector page: %d\n%s", status, page)
	}
	for _, want := range []string{"e0000000000000000001", "HTTP 503", "warehouse", "https://example.com/hook"} {
		if !strings.Contains(page, want) {
			t.Errorf("reader's connector page lacks %q", want)
		}
	}
	for _, hidden := range []string{`name="eventId"`, "Replay all", "Send test event", "secret", "user:pw"} {
		if strings.Contains(page, hidden) {
			t.Errorf("reader's connector page shows %q", hidden)
		}
	}
	status, _, body := r.do("POST", connectorPath+"/replay", url.Values{"all": {"1"}, "csrf": {csrf(t, page)}}, nil)
	if status != http.StatusForbidden {
		t.Errorf("reader replays: %d, want 403\n%s", status, body)
	}
	for _, path := range []string{"/dashboard/projects/p2", "/dashboard/projects/p2/devices", "/dashboard/projects/p2/live",
		"/dashboard/projects/p2/connectors/c0000000000000000001", "/dashboard/projects/p1/connectors/c0000000000000000009"} {
		if status, _, _ := r.get(path); status != http.StatusNotFound {
			t.Errorf("reader GET %s: %d, want 404", path, status)
		}
	}
	if _, _, body := r.get("/dashboard/"); !strings.Contains(body, "Project p1") || strings.Contains(body, "Project p2") {
		t.Errorf("reader's project list: want p1 only\n%s", body)
	}

	d := f.browser()
	d.login(dev.ID, devSecret)
	_, _, page = d.get(connectorPath)
	token := csrf(t, page)
	status, loc, _ := d.do("POST", connectorPath+"/replay", url.Values{"eventId": {"e0000000000000000001"}, "csrf": {token}}, nil)
	if status != http.StatusSeeOther || loc != connectorPath+"?replayed=1" {
		t.Fatalf("developer replays one: %d to %q", status, loc)
	}
	if _, _, body := d.get(loc); !strings.Contains(body, "Replayed 1 dead letter") {
		t.Errorf("the page after a replay does not say so:\n%s", body)
	}
	if status, loc, _ := d.do("POST", connectorPath+"/replay", url.Values{"all": {"1"}, "csrf": {token}}, nil); status != http.StatusSeeOther || loc != connectorPath+"?replayed=7" {
		t.Fatalf("developer replays all: %d to %q", status, loc)
	}
	got := f.replay.requests()
	if len(got) != 2 || len(got[0].EventIDs) != 1 || got[0].EventIDs[0] != "e0000000000000000001" || !got[1].All {
		t.Errorf("replays: %+v", got)
	}
	status, loc, _ = d.do("POST", connectorPath+"/test-event", url.Values{"csrf": {token}}, nil)
	if status != http.StatusSeeOther || loc != connectorPath+"?sent=d0000000000000000ev1" {
		t.Fatalf("test event: %d to %q", status, loc)
	}
	if len(f.publisher.got) != 1 || !strings.HasPrefix(f.publisher.got[0], "p1/emu") || !strings.HasSuffix(f.publisher.got[0], "/touch") {
		t.Fatalf("published %v, want a touch event of an emulated device of p1", f.publisher.got)
	}
	devID := strings.Split(f.publisher.got[0], "/")[1]
	testDev, err := f.db.Device(t.Context(), "p1", devID)
	if err != nil || !dcon.ValidDeviceID(devID) || testDev.Labels["name"] != "dcon dashboard test" {
		t.Fatalf("the test device %s: %+v, %v", devID, testDev, err)
	}
	// A second test event reuses the device.
	d.do("POST", connectorPath+"/test-event", url.Values{"csrf": {token}}, nil)
	if len(f.publisher.got) != 2 || f.publisher.got[1] != f.publisher.got[0] {
		t.Errorf("second test event: %v, want the same device", f.publisher.got)
	}
	if _, _, body := d.get("/dashboard/projects/p1/devices"); !strings.Contains(body, devID) || !strings.Contains(body, "dcon dashboard test") {
		t.Errorf("the devices page does not list the test device and its label:\n%s", body)
	}

	o := f.browser()
	o.login(owner.ID, ownerSecret)
	if _, _, body := o.get("/dashboard/"); !strings.Contains(body, "Project p1") || !strings.Contains(body, "Project p2") {
		t.Errorf("owner's project list: want p1 and p2\n%s", body)
	}
}

// TestPostsNeedOriginAndToken: a POST from another origin, without an
// origin, or without the session's token is refused.
func TestPostsNeedOriginAndToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	k, secret := f.key(dcon.RoleAdmin, "p1", false)
	b := f.browser()
	b.login(k.ID, secret)
	_, _, page := b.get(connectorPath)
	token := csrf(t, page)
	tests := []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"another origin", url.Values{"all": {"1"}, "csrf": {token}}, map[string]string{"Origin": "http://evil.example"}},
		{"no origin or referer", url.Values{"all": {"1"}, "csrf": {token}}, map[string]string{"Origin": ""}},
		{"another referer", url.Values{"all": {"1"}, "csrf": {token}}, map[string]string{"Origin": "", "Referer": "http://evil.example/x"}},
		{"no token", url.Values{"all": {"1"}}, nil},
		{"a wrong token", url.Values{"all": {"1"}, "csrf": {token + "x"}}, nil},
	}
	for _, tt := range tests {
		if status, _, _ := b.do("POST", connectorPath+"/replay", tt.form, tt.header); status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tt.name, status)
		}
	}
	if n := len(f.replay.requests()); n != 0 {
		t.Errorf("%d replays made by refused requests", n)
	}
	// The same origin's referer, without Origin, is accepted.
	status, _, _ := b.do("POST", connectorPath+"/replay", url.Values{"all": {"1"}, "csrf": {token}},
		map[string]string{"Origin": "", "Referer": f.srv.URL + connectorPath})
	if status != http.StatusSeeOther {
		t.Errorf("same-origin referer: %d, want 303", status)
	}
	// Login from another origin is refused too.
	if status, _, _ := b.do("POST", "/dashboard/login", url.Values{"keyId": {k.ID}, "secret": {secret}},
		map[string]string{"Origin": "http://evil.example"}); status != http.StatusForbidden {
		t.Errorf("cross-origin login: %d, want 403", status)
	}
}

// TestSecurityHeaders: every answer of the dashboard carries a strict
// Content-Security-Policy, nosniff and no framing; the login page has no
// inline script.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	for _, path := range []string{"/dashboard/login", "/dashboard/projects/p1", "/dashboard/static/dashboard.js", "/dashboard/nope"} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: Content-Security-Policy allows inline code: %q", path, csp)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, got)
		}
		if strings.Contains(string(body), "<script>") || strings.Contains(string(body), " style=") {
			t.Errorf("%s: inline script or style", path)
		}
	}
}

// TestDevelopmentMode: without an authenticator there is no login, every
// page is open, says so, and actions work.
func TestDevelopmentMode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	b := f.browser()
	status, _, page := b.get(connectorPath)
	if status != http.StatusOK || !strings.Contains(page, "Development mode") || !strings.Contains(page, "Replay all") {
		t.Fatalf("connector page in development mode: %d\n%s", status, page)
	}
	if status, loc, _ := b.get("/dashboard/login"); status != http.StatusSeeOther || loc != "/dashboard/" {
		t.Errorf("login page in development mode: %d to %q", status, loc)
	}
	if status, _, _ := b.do("POST", connectorPath+"/replay", url.Values{"all": {"1"}}, nil); status != http.StatusSeeOther {
		t.Errorf("replay in development mode: %d", status)
	}
	if status, _, _ := b.do("POST", connectorPath+"/replay", url.Values{"all": {"1"}}, map[string]string{"Origin": "http://evil.example"}); status != http.StatusForbidden {
		t.Errorf("cross-origin replay in development mode: %d, want 403", status)
	}
}

// TestMount: "/" goes to the dashboard, everything else to the API.
func TestMount(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	b := f.browser()
	for path, want := range map[string]string{"/": "/dashboard/", "/dashboard": "/dashboard/"} {
		if status, loc, _ := b.get(path); status != http.StatusFound || loc != want {
			t.Errorf("GET %s: %d to %q, want %q", path, status, loc, want)
		}
	}
	if status, _, body := b.get("/v2/projects"); status != http.StatusOK || body != "api" {
		t.Errorf("GET /v2/projects: %d %q, want the API", status, body)
	}
}

// TestLiveEndpoints: the connector's live endpoint sends its figures (from
// the real stats tracker) and the chart's seconds (from Live); the
// project's, the figures of each connector; and the pages show the
// delivery log.
func TestLiveEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false)
	for i := range 3 {
		o := &dcon.Outcome{ConnectorID: f.conn.ID, ProjectID: "p1", EventID: "e1", Attempt: 1, StatusCode: 200,
			Latency: 40 * time.Millisecond, At: f.now.Add(-time.Duration(i+1) * time.Second)}
		f.tracker.Observe(o)
		f.live.Observe(o)
	}
	failed := dcon.Outcome{ConnectorID: f.conn.ID, EventID: "e0000000000000000002", Attempt: 2, StatusCode: 503,
		Err: errors.New("HTTP 503 Service Unavailable"), Latency: 5 * time.Millisecond, At: f.now.Add(-time.Second)}
	f.tracker.Observe(&failed)
	f.live.Observe(&failed)
	f.log.outcomes = []dcon.Outcome{failed}

	b := f.browser()
	_, _, body := b.get(connectorPath + "/live")
	var live struct {
		Figures map[string]string `json:"figures"`
		Points  []dashboard.Point `json:"points"`
	}
	if err := json.Unmarshal([]byte(body), &live); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if live.Figures["success"] != "3" || live.Figures["errors"] != "1" || live.Figures["depth"] != "0" {
		t.Errorf("figures %v", live.Figures)
	}
	if n := len(live.Points); n != 120 {
		t.Fatalf("%d points, want 120", n)
	}
	if last := live.Points[len(live.Points)-1]; last.Delivered != 1 || last.Failed != 1 || last.T != f.now.Unix()-1 {
		t.Errorf("last point %+v", last)
	}

	_, _, body = b.get("/dashboard/projects/p1/live")
	var proj struct {
		Connectors map[string]map[string]string `json:"connectors"`
	}
	if err := json.Unmarshal([]byte(body), &proj); err != nil || proj.Connectors[f.conn.ID]["success"] != "3" {
		t.Errorf("project live: %v %s", err, body)
	}

	_, _, page := b.get(connectorPath)
	for _, want := range []string{"e0000000000000000002", "HTTP 503 Service Unavailable", "Failed", "5.0 ms"} {
		if !strings.Contains(page, want) {
			t.Errorf("connector page lacks %q in the delivery log", want)
		}
	}
}
