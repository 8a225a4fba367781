package webhook

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dcon"
	"dcon/internal/signature"
)

const testBody = `{"event":{"eventId":"c82gg9catj3vmh4248og","eventType":"touch"},"labels":{},"metadata":{}}`

// testEventID is the event id of testBody.
const testEventID = "c82gg9catj3vmh4248og"

// testAttempt is an attempt at delivering testBody.
func testAttempt() Attempt { return Attempt{EventID: testEventID, Body: []byte(testBody)} }

// testNow is the fixed clock of the tests' clients.
func testNow() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }

// trusting returns a pool that trusts ts's certificate.
func trusting(ts *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return pool
}

// newClient returns a client that trusts ts, closed when the test ends.
func newClient(t testing.TB, ts *httptest.Server, cfg Config) *Client {
	t.Helper()
	if cfg.RootCAs == nil && ts != nil {
		cfg.RootCAs = trusting(ts)
	}
	if cfg.Now == nil {
		cfg.Now = testNow
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func connector(url string) *dcon.Connector {
	return &dcon.Connector{
		ProjectID: "c14u9p094l47cdv1o3pg",
		ID:        "c16pegipidie7lltrefg",
		Type:      dcon.ConnectorHTTPPush,
		Status:    dcon.StatusActive,
		HTTP:      dcon.HTTPConfig{URL: url},
	}
}

// answer returns a handler that answers status with body and headers.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestSendDeliversSignedRequest(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, uri, proto string
		header             http.Header
		body               string
	}
	got := make(chan seen, 1)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Proto, r.Header.Clone(), string(b)}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ts.Close()

	conn := connector(ts.URL + "/api/endpoint?key=v")
	conn.HTTP.SignatureSecret = "some-very-good-secret"
	conn.HTTP.Headers = map[string]string{"some-header": "abc123", "Authorization": "Bearer xyz"}
	c := newClient(t, ts, Config{UserAgent: "dcon/test"})

	res := c.Send(context.Background(), conn, testAttempt())
	if res.Err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("result %+v, want 202 without error", res)
	}
	if res.Duration <= 0 {
		t.Errorf("duration %v", res.Duration)
	}
	r := <-got
	if r.method != http.MethodPost || r.uri != "/api/endpoint?key=v" {
		t.Errorf("request %s %s", r.method, r.uri)
	}
	if r.body != testBody {
		t.Errorf("body %q, want %q", r.body, testBody)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"Some-Header":   "abc123",
		"Authorization": "Bearer xyz",
		"User-Agent":    "dcon/test",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	claims, err := signature.VerifyDT(r.header.Get("X-Dt-Signature"), []byte(r.body),
		[][]byte{[]byte("some-very-good-secret")}, testNow(), 0)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	if claims.Iat != testNow().Unix() || !dcon.ValidID(claims.JTI) {
		t.Errorf("claims %+v: want iat from the clock and an xid jti", claims)
	}
}

func TestSendWithoutSecretSendsNoSignature(t *testing.T) {
	t.Parallel()
	sig := make(chan []string, 1)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig <- r.Header.Values("X-Dt-Signature")
	}))
	defer ts.Close()
	res := newClient(t, ts, Config{}).Send(context.Background(), connector(ts.URL), testAttempt())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if v := <-sig; len(v) != 0 {
		t.Fatalf("X-Dt-Signature %q sent without a secret", v)
	}
}

func TestSendMintsFreshTokenPerAttempt(t *testing.T) {
	t.Parallel()
	sigs := make(chan string, 2)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sigs <- r.Header.Get("X-Dt-Signature")
	}))
	defer ts.Close()
	conn := connector(ts.URL)
	conn.HTTP.SignatureSecret = "s3cret"
	c := newClient(t, ts, Config{})
	for range 2 {
		if res := c.Send(context.Background(), conn, testAttempt()); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if a, b := <-sigs, <-sigs; a == b {
		t.Fatal("two attempts carried the same token")
	}
}

func TestSendDefaultUserAgent(t *testing.T) {
	t.Parallel()
	ua := make(chan string, 1)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua <- r.UserAgent()
	}))
	defer ts.Close()
	newClient(t, ts, Config{}).Send(context.Background(), connector(ts.URL), testAttempt())
	if v := <-ua; v != DefaultUserAgent {
		t.Fatalf("User-Agent %q, want %q", v, DefaultUserAgent)
	}
}

func TestSendSuccessIsAny2xx(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 201, 202, 204, 299} {
		ts := httptest.NewTLSServer(answer(status, ""))
		defer ts.Close()
		res := newClient(t, ts, Config{}).Send(context.Background(), connector(ts.URL), testAttempt())
		if res.Err != nil || res.StatusCode != status {
			t.Errorf("status %d: result %+v", status, res)
		}
	}
}

func TestSendFailsOnNon2xx(t *testing.T) {
	t.Parallel()
	var redirectHits atomic.Int32
	target := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { redirectHits.Add(1) }))
	defer target.Close()

	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		msg     string
	}{
		{"500 with body", answer(500, "database\x00 is\n\n  down\x1b[31m"), 500, "HTTP 500 Internal Server Error: database is down [31m"},
		{"404 without body", answer(404, ""), 404, "HTTP 404 Not Found"},
		{"unknown status", answer(599, "x"), 599, "HTTP 599: x"},
		{"long body clipped", answer(400, strings.Repeat("é", 300)), 400, "HTTP 400 Bad Request: " + strings.Repeat("é", maxSnippet/2)},
		{"301 not followed", answer(301, "", "Location", target.URL), 301, "HTTP 301 Moved Permanently (redirects are not followed)"},
		{"302 not followed", answer(302, "", "Location", target.URL), 302, "HTTP 302 Found (redirects are not followed)"},
		{"307 not followed", answer(307, "", "Location", target.URL), 307, "HTTP 307 Temporary Redirect (redirects are not followed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewTLSServer(tt.handler)
			defer ts.Close()
			res := newClient(t, ts, Config{}).Send(context.Background(), connector(ts.URL), testAttempt())
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
			if res.Err == nil || res.Err.Error() != tt.msg {
				t.Errorf("err %q, want %q", res.Err, tt.msg)
			}
		})
	}
	t.Cleanup(func() {
		if n := redirectHits.Load(); n != 0 {
			t.Errorf("redirect target hit %d times", n)
		}
	})
}

func TestSendRetryAfter(t *testing.T) {
	t.Parallel()
	date := testNow().Add(90 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name   string
		status int
		value  string
		want   time.Duration
	}{
		{"429 delta-seconds", 429, "120", 120 * time.Second},
		{"503 delta-seconds", 503, "7", 7 * time.Second},
		{"429 HTTP-date", 429, date, 90 * time.Second},
		{"503 HTTP-date", 503, date, 90 * time.Second},
		{"503 absent", 503, "", 0},
		{"429 invalid", 429, "soon", 0},
		{"500 ignores it", 500, "120", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewTLSServer(answer(tt.status, "", "Retry-After", tt.value))
			defer ts.Close()
			res := newClient(t, ts, Config{}).Send(context.Background(), connector(ts.URL), testAttempt())
			if res.StatusCode != tt.status || res.Err == nil {
				t.Fatalf("result %+v", res)
			}
			if res.RetryAfter != tt.want {
				t.Fatalf("RetryAfter %v, want %v", res.RetryAfter, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := testNow()
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{"3600", time.Hour},
		{"99999999999999999999", maxRetryAfter},
		{"86401", maxRetryAfter},
		{"-5", 0},
		{"1.5", 0},
		{" 5", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"Sunday, 02-Mar-25 12:00:00 GMT", 24 * time.Hour}, // RFC 850, also allowed
		{"Wed, 99 Foo 2025", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.value, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestSendVerifiesCertificates(t *testing.T) {
	t.Parallel()
	ts := httptest.NewTLSServer(answer(200, ""))
	defer ts.Close()

	untrusting, err := New(Config{}) // system roots only
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	res := untrusting.Send(context.Background(), connector(ts.URL), testAttempt())
	if res.StatusCode != 0 || res.Err == nil || res.Err.Error() != "tls: certificate signed by unknown authority" {
		t.Fatalf("untrusted certificate: result %+v", res)
	}

	res = newClient(t, ts, Config{RootCAs: trusting(ts)}).Send(context.Background(), connector(ts.URL), testAttempt())
	if res.Err != nil {
		t.Fatalf("trusted certificate: %v", res.Err)
	}
}

func TestSendChecksHostname(t *testing.T) {
	t.Parallel()
	ts := httptest.NewTLSServer(answer(200, ""))
	defer ts.Close()
	// The test certificate is for 127.0.0.1 and example.com, not localhost.
	url := strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)
	res := newClient(t, ts, Config{}).Send(context.Background(), connector(url), testAttempt())
	if res.Err == nil || res.Err.Error() != "tls: certificate is not valid for the endpoint's host" {
		t.Fatalf("result %+v", res)
	}
}

func TestLoadRootCAs(t *testing.T) {
	t.Parallel()
	ts := httptest.NewTLSServer(answer(200, ""))
	defer ts.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	pool, err := LoadRootCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	res := newClient(t, ts, Config{RootCAs: pool}).Send(context.Background(), connector(ts.URL), testAttempt())
	if res.Err != nil {
		t.Fatalf("send with loaded CAs: %v", res.Err)
	}

	if _, err := LoadRootCAs(""); err != nil {
		t.Errorf("system roots only: %v", err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		if _, err := LoadRootCAs(f); dcon.ErrorCode(err) != dcon.EINVALID {
			t.Errorf("LoadRootCAs(%s): err %v, want code %s", f, err, dcon.EINVALID)
		}
	}
}

func TestSendTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release) // runs before ts.Close, so the handler can end

	res := newClient(t, ts, Config{Timeout: 200 * time.Millisecond}).Send(context.Background(), connector(ts.URL), testAttempt())
	if res.StatusCode != 0 || !errors.Is(res.Err, ErrTimeout) {
		t.Fatalf("result %+v, want a timeout", res)
	}
	if res.Err.Error() != "timeout after 200ms" {
		t.Errorf("err %q", res.Err)
	}
}

func TestSendTimeoutCoversBody(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)

	res := newClient(t, ts, Config{Timeout: 200 * time.Millisecond}).Send(context.Background(), connector(ts.URL), testAttempt())
	if res.StatusCode != 500 || res.Err == nil || res.Err.Error() != "HTTP 500 Internal Server Error: partial" {
		t.Fatalf("result %+v", res)
	}
}

func TestSendHonoursCallerCancel(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	release := make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	res := newClient(t, ts, Config{Timeout: time.Minute}).Send(ctx, connector(ts.URL), testAttempt())
	if !errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, ErrTimeout) {
		t.Fatalf("result %+v, want canceled", res)
	}
}

// A receiver that never ends its body cannot hold the attempt: the client reads
// MaxResponseBytes and hangs up. The timeout is a minute, so an attempt that
// returned because of it would carry an error.
func TestSendEndlessBody(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 500} {
		ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			chunk := []byte(strings.Repeat("y", 1024))
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
		defer ts.Close()
		res := newClient(t, ts, Config{Timeout: time.Minute}).Send(context.Background(), connector(ts.URL), testAttempt())
		if res.StatusCode != status {
			t.Fatalf("status %d: result %+v", status, res)
		}
		if status == 200 && res.Err != nil {
			t.Errorf("200 with endless body: %v", res.Err)
		}
		if status == 500 && res.Err.Error() != "HTTP 500 Internal Server Error: "+strings.Repeat("y", maxSnippet) {
			t.Errorf("500 with endless body: %v", res.Err)
		}
	}
}

func TestSendReusesConnections(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		var newConns atomic.Int32
		ts := httptest.NewUnstartedServer(answer(200, strings.Repeat("ok", 100)))
		ts.EnableHTTP2 = h2
		ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				newConns.Add(1)
			}
		}
		ts.StartTLS()
		defer ts.Close()

		c := newClient(t, ts, Config{})
		for i := range 20 {
			res := c.Send(context.Background(), connector(ts.URL), testAttempt())
			if res.Err != nil {
				t.Fatalf("send %d: %v", i, res.Err)
			}
		}
		if n := newConns.Load(); n != 1 {
			t.Errorf("http2=%v: 20 sequential sends opened %d connections, want 1", h2, n)
		}
	}
}

func TestSendSpeaksHTTP2WhenOffered(t *testing.T) {
	t.Parallel()
	proto := make(chan int, 1)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto <- r.ProtoMajor
	}))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	if res := newClient(t, ts, Config{}).Send(context.Background(), connector(ts.URL), testAttempt()); res.Err != nil {
		t.Fatal(res.Err)
	}
	if p := <-proto; p != 2 {
		t.Fatalf("HTTP/%d, want HTTP/2", p)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	res := newClient(t, nil, Config{}).Send(context.Background(), connector("https://"+addr+"/x"), testAttempt())
	if res.StatusCode != 0 || res.Err == nil || res.Err.Error() != "connection refused" {
		t.Fatalf("result %+v", res)
	}
	if !errors.Is(res.Err, syscall.ECONNREFUSED) {
		t.Errorf("err %v does not wrap ECONNREFUSED", res.Err)
	}
}

func TestSendPlainHTTPToTLSServerFails(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(answer(200, ""))
	defer ts.Close()
	url := strings.Replace(ts.URL, "http://", "https://", 1)
	res := newClient(t, nil, Config{}).Send(context.Background(), connector(url), testAttempt())
	if res.StatusCode != 0 || res.Err == nil || res.Err.Error() != "http: server gave HTTP response to HTTPS client" {
		t.Fatalf("result %+v", res)
	}
}

// Errors go into logs and dead-letter records: they must not leak credentials
// found in the URL, the secret or header values, even when the receiver echoes
// them back.
func TestSendErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	echo := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, r.URL.RawQuery+" "+r.Header.Get("X-Api-Key")+" "+r.Header.Get("X-Dt-Signature")+" "+r.URL.Query().Get("whsec"))
	}))
	defer echo.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	secrets := []string{"supersecretquery", "hunter2pass", "alice-user", "api-key-value", "signing-secret", testWhsec1}
	for _, base := range []string{echo.URL, "https://" + refused, "https://no-such-host.invalid"} {
		u := strings.Replace(base, "https://", "https://alice-user:hunter2pass@", 1) + "/hook?token=supersecretquery&whsec=" + testWhsec1
		conn := connector(u)
		conn.HTTP.SignatureSecret = "signing-secret"
		conn.HTTP.StandardWebhookSecrets = []string{testWhsec1}
		conn.HTTP.Headers = map[string]string{"X-Api-Key": "api-key-value"}
		res := newClient(t, echo, Config{Timeout: 5 * time.Second}).Send(context.Background(), conn, testAttempt())
		if res.Err == nil {
			t.Fatalf("%s: no error", base)
		}
		for _, s := range secrets {
			if strings.Contains(res.Err.Error(), s) {
				t.Errorf("error %q leaks %q", res.Err, s)
			}
		}
	}
}

// TestSendErrorsHideSecretsAtTheCut: a secret that the error's body snippet
// would cut in two, and a header's credential echoed without its scheme, are
// hidden too.
func TestSendErrorsHideSecretsAtTheCut(t *testing.T) {
	t.Parallel()
	const secret, token = "signing-secret-0123456789", "conn-token-9d3e0c"
	tests := []struct{ name, body, leak string }{
		{"secret across the cut", strings.Repeat("x", maxSnippet-10) + secret, secret[:10]},
		{"credential without its scheme", "you sent " + token, token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewTLSServer(answer(http.StatusBadRequest, tt.body))
			defer ts.Close()
			conn := connector(ts.URL)
			conn.HTTP.SignatureSecret = secret
			conn.HTTP.Headers = map[string]string{"Authorization": "Bearer " + token}
			res := newClient(t, ts, Config{}).Send(context.Background(), conn, testAttempt())
			if res.Err == nil {
				t.Fatal("no error")
			}
			if msg := res.Err.Error(); strings.Contains(msg, tt.leak) || !strings.Contains(msg, "HTTP 400") {
				t.Errorf("error %q: want HTTP 400 without %q", msg, tt.leak)
			}
		})
	}
}

func TestSendInvalidURL(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil, Config{})
	for _, u := range []string{"://no-scheme?secret=1", "ftp://example.com/x", ""} {
		res := c.Send(context.Background(), connector(u), testAttempt())
		if !errors.Is(res.Err, ErrInvalidURL) || strings.Contains(res.Err.Error(), "secret") {
			t.Errorf("URL %q: err %v", u, res.Err)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{Timeout: -time.Second}, {MaxResponseBytes: -1}} {
		if _, err := New(cfg); dcon.ErrorCode(err) != dcon.EINVALID {
			t.Errorf("New(%+v): err %v, want code %s", cfg, err, dcon.EINVALID)
		}
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"  line1\r\nline2\t\tend  ", "line1 line2 end"},
		{"nul\x00bell\x07", "nul bell"},
		{"bad \xff\xfe utf8", "bad utf8"},
		{"cut rune \xc3", "cut rune"},
		{"émoji ✓", "émoji ✓"},
		{"\u202ertl override", "rtl override"},
	}
	for _, tt := range tests {
		if got := printable([]byte(tt.in)); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkSend(b *testing.B) {
	for _, h2 := range []bool{false, true} {
		name := "http1"
		if h2 {
			name = "http2"
		}
		b.Run(name, func(b *testing.B) {
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			ts.EnableHTTP2 = h2
			ts.StartTLS()
			defer ts.Close()
			c := newClient(b, ts, Config{})
			conn := connector(ts.URL + "/hook")
			conn.HTTP.SignatureSecret = "some-very-good-secret"
			conn.HTTP.Headers = map[string]string{"some-header": "abc123"}
			body := []byte(testBody)

			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if res := c.Send(context.Background(), conn, Attempt{EventID: testEventID, Body: body}); res.Err != nil {
						b.Fatal(res.Err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				var once sync.Once
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if res := c.Send(context.Background(), conn, Attempt{EventID: testEventID, Body: body}); res.Err != nil {
							once.Do(func() { b.Error(res.Err) })
						}
					}
				})
			})
		})
	}
}
