package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon"
)

// TestSecretsAreWriteOnly checks that no answer and no log line holds a
// connector's secrets, and that a client sending back what it read keeps them.
func TestSecretsAreWriteOnly(t *testing.T) {
	t.Parallel()
	const secret = "very-secret-signing-key"
	e := newEnv(t)
	base := "/v2/projects/" + project + "/dataconnectors"
	res := e.do(t, "POST", base, `{"type":"HTTP_PUSH","httpConfig":{"url":"https://example.com/in","signatureSecret":"`+secret+
		`","standardWebhookSecrets":["`+testWhsec1+`","`+testWhsec2+`"]}}`)
	res.want(t, http.StatusOK, "")
	var created connectorResource
	res.decode(t, &created)
	id := idOf(created.Name)
	if created.HTTPConfig.SignatureSecret != "" || !created.HTTPConfig.SignatureSecretSet {
		t.Errorf("created: signatureSecret %q, set %v; want \"\" and true", created.HTTPConfig.SignatureSecret, created.HTTPConfig.SignatureSecretSet)
	}
	masks := created.HTTPConfig.StandardWebhookSecrets
	if len(masks) != 2 || masks[0] != maskWhsec(testWhsec1) || masks[1] != maskWhsec(testWhsec2) {
		t.Errorf("standardWebhookSecrets %q, want the masks of both", masks)
	}

	// A client sends back the connector it read, changing its display name.
	read := e.do(t, "GET", base+"/"+id, "")
	echo := strings.Replace(read.body, `"displayName":""`, `"displayName":"renamed"`, 1)
	e.do(t, "PATCH", base+"/"+id, echo).want(t, http.StatusOK, "")
	if c := e.conns.get(project, id); c.HTTP.SignatureSecret != secret || len(c.HTTP.StandardWebhookSecrets) != 2 ||
		c.HTTP.StandardWebhookSecrets[0] != testWhsec1 || c.DisplayName != "renamed" {
		t.Fatalf("after sending back a read: %+v", c.HTTP)
	}

	// Rotation: drop the first Standard Webhooks secret by its mask, keep the second.
	e.do(t, "PATCH", base+"/"+id, `{"httpConfig":{"standardWebhookSecrets":["`+maskWhsec(testWhsec2)+`"]}}`).want(t, http.StatusOK, "")
	if c := e.conns.get(project, id); len(c.HTTP.StandardWebhookSecrets) != 1 || c.HTTP.StandardWebhookSecrets[0] != testWhsec2 {
		t.Fatalf("after rotation: %q", c.HTTP.StandardWebhookSecrets)
	}
	e.do(t, "PATCH", base+"/"+id, `{"httpConfig":{"standardWebhookSecrets":["whsec_****00000000"]}}`).
		wantError(t, http.StatusBadRequest, "httpConfig.standardWebhookSecrets[0]: a masked secret this data connector does not have; send the secret itself")

	// "" with the mask clears the secret; null without it keeps it.
	e.do(t, "PATCH", base+"/"+id, `{"httpConfig":{"signatureSecret":null}}`).want(t, http.StatusOK, "")
	if c := e.conns.get(project, id); c.HTTP.SignatureSecret != secret {
		t.Fatal("null without update_mask cleared the secret")
	}
	res = e.do(t, "PATCH", base+"/"+id+"?update_mask=httpConfig.signatureSecret", `{"httpConfig":{"signatureSecret":""}}`)
	res.want(t, http.StatusOK, "")
	if c := e.conns.get(project, id); c.HTTP.SignatureSecret != "" || strings.Contains(res.body, `"signatureSecretSet":true`) {
		t.Fatalf("update_mask with \"\" kept the secret: %s", res.body)
	}

	// A refused change does not repeat the secret in its message.
	res = e.do(t, "PATCH", base+"/"+id, `{"httpConfig":{"signatureSecret":"`+strings.Repeat("k", 1025)+`"}}`)
	res.wantError(t, http.StatusBadRequest, "httpConfig.signatureSecret: over 1024 bytes")

	list := e.do(t, "GET", base, "")
	for _, s := range []string{secret, testWhsec1, testWhsec2, strings.TrimPrefix(testWhsec1, "whsec_")} {
		for what, text := range map[string]string{"read": read.body, "list": list.body, "create": created.Name, "logs": e.logs.String()} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q", what, s)
			}
		}
	}
}

// TestJSONLimits checks the shape limits of request bodies.
func TestJSONLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       string // "" when within the limits
	}{
		{"flat", `{"a":[1,2,3],"b":{"c":"d"}}`, ""},
		{"brackets in strings", `{"a":"[[[[{{{{,,,,\"]]]]"}`, ""},
		{"depth 32", strings.Repeat("[", 32) + strings.Repeat("]", 32), ""},
		{"depth 33", strings.Repeat("[", 33) + strings.Repeat("]", 33), "request body is nested deeper than 32 levels"},
		{"10,000 members", "[" + strings.Repeat("0,", 9999) + "0]", ""},
		{"10,001 members", "[" + strings.Repeat("0,", 10000) + "0]", "request body has an object or array of more than 10000 members"},
		{"200,000 values", "[" + strings.Repeat("["+strings.Repeat("0,", 999)+"0],", 200) + "0]", "request body has more than 200000 JSON values"},
	}
	for _, tt := range tests {
		err := checkJSONLimits([]byte(tt.body))
		if got := dcon.ErrorMessage(err); err == nil && tt.want != "" || err != nil && got != tt.want {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && dcon.ErrorCode(err) != dcon.EINVALID {
			t.Errorf("%s: code %s", tt.name, dcon.ErrorCode(err))
		}
	}

	e := newEnv(t)
	deep := `{"type":"HTTP_PUSH","labels":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`
	e.do(t, "POST", "/v2/projects/"+project+"/dataconnectors", deep).
		wantError(t, http.StatusBadRequest, "request body is nested deeper than 32 levels")
	if n := e.conns.writeCount(); n != 0 {
		t.Errorf("%d writes", n)
	}
}

// TestCreateConnectorResolvesHost checks that, with a lookup in the rules, a
// URL whose name resolves to a private address is refused at creation.
func TestCreateConnectorResolvesHost(t *testing.T) {
	t.Parallel()
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "internal.example" {
			return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	}
	e := newEnv(t, func(s *Server) { s.Rules.LookupIP = lookup })
	base := "/v2/projects/" + project + "/dataconnectors"
	e.do(t, "POST", base, `{"type":"HTTP_PUSH","httpConfig":{"url":"https://internal.example/hook"}}`).
		wantError(t, http.StatusBadRequest, "httpConfig.url: host resolves to a loopback, private, link-local or otherwise non-public address")
	e.do(t, "POST", base, `{"type":"HTTP_PUSH","httpConfig":{"url":"https://public.example/hook"}}`).want(t, http.StatusOK, "")
	c := e.seedConnector(t, "c16pegipidie7lltrefg")
	e.do(t, "PATCH", base+"/"+c.ID, `{"httpConfig":{"url":"https://internal.example/x"}}`).want(t, http.StatusBadRequest, "")
	if got := e.conns.get(project, c.ID).HTTP.URL; got != c.HTTP.URL {
		t.Errorf("URL changed to %s", got)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestRateLimiter checks 429 with Retry-After per caller, the refill, and
// the separate publish limit.
func TestRateLimiter(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: testNow}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	h := (&RateLimiter{
		Management: DefaultRateLimit,
		Publish:    RateLimit{Requests: 2, Window: time.Second},
		Key:        func(r *http.Request) string { return r.Header.Get("X-Caller") },
		Now:        clock.Now,
	}).Handler(ok)
	call := func(method, path, caller string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = "127.0.0.1:5555"
		if caller != "" {
			req.Header.Set("X-Caller", caller)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for i := range 25 {
		if w := call("GET", "/v2/projects", "alice"); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, w.Code)
		}
	}
	w := call("GET", "/v2/projects", "alice")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("26th request: %d, Retry-After %q; want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	want := errorJSON(429, "too many requests: at most 25 per 5s; retry after 1 s")
	if got := w.Body.String(); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if w := call("GET", "/v2/projects", "bob"); w.Code != http.StatusOK {
		t.Errorf("another caller: %d", w.Code)
	}
	if w := call("GET", "/v2/projects", ""); w.Code != http.StatusOK {
		t.Errorf("by IP: %d", w.Code)
	}
	if w := call("GET", "/.well-known/jwks.json", "alice"); w.Code != http.StatusOK {
		t.Errorf("key documents: %d", w.Code)
	}
	// Publishing has its own bucket: alice may still publish, twice.
	pub := "/v2/projects/" + project + "/devices/emuc17m6d7lq0bgk44smcqg:publish"
	for i, wantCode := range []int{200, 200, 429} {
		if w := call("POST", pub, "alice"); w.Code != wantCode {
			t.Errorf("publish %d: %d, want %d", i+1, w.Code, wantCode)
		}
	}
	clock.advance(200 * time.Millisecond) // one token back: 25 per 5 s is 5 per second
	if w := call("GET", "/v2/projects", "alice"); w.Code != http.StatusOK {
		t.Errorf("after the refill: %d", w.Code)
	}
	if w := call("GET", "/v2/projects", "alice"); w.Code != http.StatusTooManyRequests {
		t.Errorf("the refill gave more than one token: %d", w.Code)
	}
}

// callerAuth authenticates "Bearer <account id>" as that account of
// project, and answers a token request with a token: enough to put a real
// Guard in front of the limiter.
type callerAuth struct{}

func (callerAuth) Authenticate(_ context.Context, h string) (*dcon.Principal, error) {
	id, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || id == "" {
		return nil, dcon.Errorf(dcon.EUNAUTHORIZED, "invalid credentials")
	}
	return &dcon.Principal{Account: &dcon.ServiceAccount{ID: id, Project: project, Role: dcon.RoleReader}, KeyID: "k-" + id}, nil
}

func (callerAuth) Exchange(context.Context, string, []string) (string, time.Duration, error) {
	return "token", time.Hour, nil
}

// TestRateLimitPerServiceAccount wires the limits as dcon serve does — the
// token endpoint's limiter in front of the Guard, the management limiter
// behind it — and checks that the management budget is the service
// account's: two accounts behind one address each have their own, one
// account calling from two addresses has one; the token endpoint is
// limited per client address.
func TestRateLimitPerServiceAccount(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: testNow}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	behind := (&RateLimiter{Management: DefaultRateLimit, Now: clock.Now}).Handler(ok)
	guarded := (&Guard{Auth: callerAuth{}, Projects: &fakeProjects{m: map[string]*dcon.Project{}}, Now: clock.Now}).Handler(behind)
	h := (&RateLimiter{Token: RateLimit{Requests: 3, Window: time.Minute}, Now: clock.Now}).Handler(guarded)
	call := func(method, path, account, ip string) *httptest.ResponseRecorder {
		var body *strings.Reader
		if method == "POST" {
			body = strings.NewReader("grant_type=" + url.QueryEscape(jwtBearerGrant) + "&assertion=x")
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(method, path, body)
		req.RemoteAddr = ip + ":5555"
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if account != "" {
			req.Header.Set("Authorization", "Bearer "+account)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	get := "/v2/projects/" + project
	const ip1, ip2 = "192.0.2.1", "192.0.2.2"

	// Two accounts behind one address: 25 each.
	for _, acc := range []string{"alice", "bob"} {
		for i := range 25 {
			if w := call("GET", get, acc, ip1); w.Code != http.StatusOK {
				t.Fatalf("%s, request %d: %d %s", acc, i+1, w.Code, w.Body)
			}
		}
	}
	for _, acc := range []string{"alice", "bob"} {
		w := call("GET", get, acc, ip1)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Errorf("%s, 26th request: %d, Retry-After %q; want 429 and 1", acc, w.Code, w.Header().Get("Retry-After"))
		}
	}
	// One account from two addresses: one budget.
	for i := range 25 {
		ip := ip1
		if i%2 == 1 {
			ip = ip2
		}
		if w := call("GET", get, "carol", ip); w.Code != http.StatusOK {
			t.Fatalf("carol, request %d from %s: %d", i+1, ip, w.Code)
		}
	}
	for _, ip := range []string{ip1, ip2} {
		if w := call("GET", get, "carol", ip); w.Code != http.StatusTooManyRequests {
			t.Errorf("carol's 26th request, from %s: %d, want 429", ip, w.Code)
		}
	}
	// Without credentials: 401 from the Guard, not a spent token of anyone.
	if w := call("GET", get, "", ip1); w.Code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", w.Code)
	}
	// The token endpoint: per client address, whoever claims to call.
	for i, want := range []int{200, 200, 200, 429} {
		if w := call("POST", TokenPath, "", ip1); w.Code != want {
			t.Errorf("token request %d from %s: %d %s; want %d", i+1, ip1, w.Code, w.Body, want)
		} else if want == 429 && w.Header().Get("Retry-After") != "20" {
			t.Errorf("token request 429 Retry-After %q, want 20", w.Header().Get("Retry-After"))
		}
	}
	if w := call("POST", TokenPath, "dave", ip2); w.Code != http.StatusOK {
		t.Errorf("token request from another address: %d", w.Code)
	}
	// The refill: 25 per 5 s is one per 200 ms, for alice and bob alike.
	clock.advance(200 * time.Millisecond)
	for _, acc := range []string{"alice", "bob"} {
		if w := call("GET", get, acc, ip2); w.Code != http.StatusOK {
			t.Errorf("%s after the refill: %d", acc, w.Code)
		}
		if w := call("GET", get, acc, ip2); w.Code != http.StatusTooManyRequests {
			t.Errorf("%s: the refill gave more than one token: %d", acc, w.Code)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"25/5s": "25/5s", "1000/1m": "1000/1m0s", "off": "off", "0": "off"} {
		got, err := ParseRateLimit(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseRateLimit(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "25", "25/", "/5s", "-1/5s", "25/-5s", "x/5s", "25/5"} {
		if _, err := ParseRateLimit(in); dcon.ErrorCode(err) != dcon.EINVALID {
			t.Errorf("ParseRateLimit(%q): err %v, want EINVALID", in, err)
		}
	}
}
