package webhook

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dcon/internal/signature"
)

// rawServer is a plain HTTP/1.1 endpoint on 127.0.0.1 whose answers are the
// bytes a test gives, so that tests can send what net/http's server never
// would. It counts its connections and the requests it read.
type rawServer struct {
	URL   string
	conns atomic.Int32
	reqs  atomic.Int32
}

// rawAnswer is how a rawServer answers its n-th request (from 1): with the
// bytes of resp, then closes the connection if hangUp.
type rawAnswer func(n int32) (resp string, hangUp bool)

func newRawServer(t *testing.T, answer rawAnswer) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{URL: "http://" + ln.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { s.serve(c, answer) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *rawServer) serve(c net.Conn, answer rawAnswer) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		resp, hangUp := answer(s.reqs.Add(1))
		if _, err := io.WriteString(c, resp); err != nil || hangUp {
			return
		}
	}
}

// always answers every request with resp.
func always(resp string) rawAnswer {
	return func(int32) (string, bool) { return resp, false }
}

// countConns makes ts count the connections it accepts.
func countConns(ts *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

// sendN makes n sequential attempts, which must all succeed.
func sendN(t *testing.T, c *Client, url string, n int) {
	t.Helper()
	for i := range n {
		if res := c.Send(context.Background(), connector(url), testAttempt()); res.Err != nil {
			t.Fatalf("attempt %d: %v", i, res.Err)
		}
	}
}

func TestLeanKeepAlive(t *testing.T) {
	t.Parallel()
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			t.Parallel()
			protos := make(chan string, 10)
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				protos <- r.Proto
				io.WriteString(w, strings.Repeat("ok", 100))
			}))
			conns := countConns(ts)
			if tls {
				ts.StartTLS()
			} else {
				ts.Start()
			}
			defer ts.Close()
			trust := ts
			if !tls {
				trust = nil
			}
			c := newClient(t, trust, Config{})
			sendN(t, c, ts.URL, 10)
			if n := conns.Load(); n != 1 {
				t.Errorf("10 sequential attempts opened %d connections, want 1", n)
			}
			if p := <-protos; p != "HTTP/1.1" {
				t.Errorf("proto %s", p)
			}
		})
	}
}

// TestLeanRequestOnTheWire checks the request the lean client writes.
func TestLeanRequestOnTheWire(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- string(b)
	}))
	defer ts.Close()
	conn := connector(strings.Replace(ts.URL, "http://", "http://user:pass@", 1) + "/a/b%20c?x=1&y=2#frag")
	conn.HTTP.SignatureSecret = "s3cret"
	conn.HTTP.StandardWebhookSecrets = []string{testWhsec1}
	conn.HTTP.Headers = map[string]string{"x-custom": "v\tw", "Host": "evil.example", "Content-Length": "1"}
	res := newClient(t, nil, Config{UserAgent: "dcon/test"}).Send(context.Background(), conn, testAttempt())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	r, body := <-got, <-bodies
	want := map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "dcon/test",
		"X-Custom":          "v\tw",
		"Webhook-Id":        testEventID,
		"Webhook-Timestamp": "1740830400",
		"Authorization":     "Basic dXNlcjpwYXNz",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r.Host != strings.TrimPrefix(ts.URL, "http://") || r.RequestURI != "/a/b%20c?x=1&y=2" || r.Proto != "HTTP/1.1" {
		t.Errorf("Host %q, request target %q, %s", r.Host, r.RequestURI, r.Proto)
	}
	if r.ContentLength != int64(len(testBody)) || body != testBody {
		t.Errorf("Content-Length %d, body %q", r.ContentLength, body)
	}
	if r.Header.Get("X-Dt-Signature") == "" || r.Header.Get("Webhook-Signature") == "" {
		t.Errorf("signatures missing: %v", r.Header)
	}
}

func TestLeanHeaderNamesAreCanonical(t *testing.T) {
	t.Parallel()
	for got, name := range map[string]string{
		hdrDT:    signature.DTHeader,
		hdrES256: signature.ES256Header,
		hdrWhID:  signature.StandardIDHeader,
		hdrWhTS:  signature.StandardTimestampHeader,
		hdrWhSig: signature.StandardSignatureHeader,
	} {
		if want := http.CanonicalHeaderKey(name); got != want {
			t.Errorf("%q written for %q, want %q", got, name, want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url                    string
		addr, host, uri, authz string
		tls, lean              bool
	}{
		{"http://127.0.0.1:8080/hook", "127.0.0.1:8080", "127.0.0.1:8080", "/hook", "", false, true},
		{"http://example.com:80", "example.com:80", "example.com", "/", "", false, true},
		{"https://example.com:443/x?q=1", "example.com:443", "example.com", "/x?q=1", "", true, true},
		{"https://example.com/x", "example.com:443", "example.com", "/x", "", true, true},
		{"https://example.com:8443/x", "example.com:8443", "example.com:8443", "/x", "", true, true},
		{"https://[::1]:443/", "[::1]:443", "[::1]", "/", "", true, true},
		{"http://[::1]:8080/", "[::1]:8080", "[::1]:8080", "/", "", false, true},
		{"HTTPS://a:b@example.com/", "example.com:443", "example.com", "/", "Basic YTpi", true, true},
		{"https://bücher.example/", "bücher.example:443", "bücher.example", "/", "", true, false},
		{"https:opaque", ":443", "", "opaque", "", true, false},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if got.addr != tt.addr || got.host != tt.host || got.uri != tt.uri || got.authz != tt.authz || got.tls != tt.tls || got.lean != tt.lean {
			t.Errorf("%s: %+v", tt.url, got)
		}
	}
}

// TestLeanHostHeaderPort checks that the Host header carries a port that is
// not the scheme's default.
func TestLeanHostHeaderPort(t *testing.T) {
	t.Parallel()
	hosts := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host }))
	defer ts.Close()
	sendN(t, newClient(t, nil, Config{}), ts.URL, 1)
	if h, want := <-hosts, strings.TrimPrefix(ts.URL, "http://"); h != want {
		t.Fatalf("Host %q, want %q", h, want)
	}
}

// TestLeanAnswers reads answers net/http's server would not send as they
// are, and checks the result and whether the connection was kept: after two
// attempts, one connection means it was.
func TestLeanAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
		status int
		err    string // "" for success
		conns  int32
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "", 1},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", 204, "", 1},
		{"LF line endings", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "", 1},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n", 200, "", 1},
		{"chunked error body", "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndisk\r\nA\r\n is full!!\r\n0\r\n\r\n", 500, "HTTP 500 Internal Server Error: disk is full!!", 1},
		{"interim answers", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 202, "", 1},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 200, "", 2},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", 2},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, "", 1},
		{"304 ignores content-length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 304, "HTTP 304 Not Modified (redirects are not followed)", 1},
		{"both framings", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, "", 2},
		{"long header skipped", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 3*readBufSize) + "\r\nContent-Length: 0\r\n\r\n", 200, "", 1},
		{"retry-after", "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nContent-Length: 0\r\n\r\n", 429, "HTTP 429 Too Many Requests", 1},
		{"malformed status line", "HTTP/1.1 2000 OK\r\n\r\n", 0, "malformed HTTP response", 2},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 0, "malformed HTTP response", 2},
		{"bad content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "malformed HTTP response", 2},
		{"unsupported transfer encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, "unsupported transfer encoding in HTTP response", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newRawServer(t, always(tt.answer))
			c := newClient(t, nil, Config{})
			for i := range 2 {
				res := c.Send(context.Background(), connector(ts.URL), testAttempt())
				if res.StatusCode != tt.status || (res.Err == nil) != (tt.err == "") || res.Err != nil && res.Err.Error() != tt.err {
					t.Fatalf("attempt %d: result %+v, want status %d, err %q", i, res, tt.status, tt.err)
				}
				if tt.status == 429 && res.RetryAfter != 7*time.Second {
					t.Errorf("RetryAfter %v", res.RetryAfter)
				}
			}
			if n := ts.conns.Load(); n != tt.conns {
				t.Errorf("%d connections, want %d", n, tt.conns)
			}
		})
	}
}

// TestLeanBodyUntilClose reads a body without length, which ends with the
// connection.
func TestLeanBodyUntilClose(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, func(int32) (string, bool) { return "HTTP/1.1 502 Bad Gateway\r\n\r\nupstream down", true })
	res := newClient(t, nil, Config{}).Send(context.Background(), connector(ts.URL), testAttempt())
	if res.StatusCode != 502 || res.Err == nil || res.Err.Error() != "HTTP 502 Bad Gateway: upstream down" {
		t.Fatalf("result %+v", res)
	}
}

// TestLeanOversizedBody checks that a body over MaxResponseBytes is not read
// to its end, and its connection not reused; a body of exactly the limit is.
func TestLeanOversizedBody(t *testing.T) {
	t.Parallel()
	const limit = 1000
	for _, tt := range []struct {
		size  int
		conns int32
	}{{limit, 1}, {limit + 1, 2}, {100 * limit, 2}} {
		for _, chunked := range []bool{false, true} {
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", strconv.Itoa(tt.size))
				}
				io.WriteString(w, strings.Repeat("x", tt.size))
			}))
			conns := countConns(ts)
			ts.Start()
			defer ts.Close()
			sendN(t, newClient(t, nil, Config{MaxResponseBytes: limit}), ts.URL, 2)
			// A chunked body of exactly the limit may end after the limit was
			// read, with its last chunk not arrived yet: then it is not reused.
			if n := conns.Load(); n != tt.conns && !(chunked && tt.size == limit && n == 2) {
				t.Errorf("body of %d bytes (chunked %v): %d connections, want %d", tt.size, chunked, n, tt.conns)
			}
		}
	}
}

// TestLeanIdleClosedByServer: an endpoint that closes connections after each
// answer without saying so. The attempt on the idle connection it closed is
// made again, once, on a fresh one.
func TestLeanIdleClosedByServer(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, func(int32) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true })
	sendN(t, newClient(t, nil, Config{}), ts.URL, 3)
	if c, r := ts.conns.Load(), ts.reqs.Load(); c != 3 || r != 3 {
		t.Errorf("%d connections, %d requests; want 3 and 3", c, r)
	}
}

// TestLeanRetriesOnlyOnce: an endpoint that reads requests and hangs up
// without answering. On a fresh connection the attempt fails at once; on an
// idle one it is made again once, then fails.
func TestLeanRetriesOnlyOnce(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, func(n int32) (string, bool) {
		if n == 1 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false
		}
		return "", true
	})
	c := newClient(t, nil, Config{})
	sendN(t, c, ts.URL, 1)
	res := c.Send(context.Background(), connector(ts.URL), testAttempt())
	if res.Err == nil || res.Err.Error() != "connection closed by the endpoint before a response" {
		t.Fatalf("result %+v", res)
	}
	if n := ts.reqs.Load(); n != 3 {
		t.Errorf("%d requests, want 3: one, then one on the idle connection, and one retry", n)
	}
	res = c.Send(context.Background(), connector(ts.URL), testAttempt())
	if res.Err == nil {
		t.Fatal("no error")
	}
	if n := ts.reqs.Load(); n != 4 {
		t.Errorf("%d requests, want 4: no retry on a fresh connection", n)
	}
}

func TestLeanTimeout(t *testing.T) {
	t.Parallel()
	for _, partial := range []bool{false, true} {
		release := make(chan struct{})
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if partial {
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "part")
				w.(http.Flusher).Flush()
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer ts.Close()
		defer close(release)
		res := newClient(t, nil, Config{Timeout: 100 * time.Millisecond}).Send(context.Background(), connector(ts.URL), testAttempt())
		switch {
		case partial && (res.StatusCode != 502 || res.Err == nil || res.Err.Error() != "HTTP 502 Bad Gateway: part"):
			t.Errorf("partial body: result %+v", res)
		case !partial && (res.StatusCode != 0 || !errors.Is(res.Err, ErrTimeout) || res.Err.Error() != "timeout after 100ms"):
			t.Errorf("no answer: result %+v", res)
		}
	}
}

// TestLeanCallerDeadline: the caller's deadline, shorter than the timeout,
// is the caller's cancellation, not a timeout of the attempt.
func TestLeanCallerDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := newRawServer(t, func(int32) (string, bool) { <-release; return "", true })
	t.Cleanup(func() { close(release) }) // before the server's cleanup
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := newClient(t, nil, Config{Timeout: time.Minute}).Send(ctx, connector(ts.URL), testAttempt())
	if !errors.Is(res.Err, context.DeadlineExceeded) || errors.Is(res.Err, ErrTimeout) {
		t.Fatalf("result %+v", res)
	}
}

func TestLeanCallerCancel(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ts := newRawServer(t, func(int32) (string, bool) {
		once.Do(func() { close(arrived) })
		<-release
		return "", true
	})
	t.Cleanup(func() { close(release) }) // before the server's cleanup
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	res := newClient(t, nil, Config{Timeout: time.Minute}).Send(ctx, connector(ts.URL), testAttempt())
	if !errors.Is(res.Err, context.Canceled) || res.Err.Error() != "canceled: context canceled" {
		t.Fatalf("result %+v", res)
	}

	res = newClient(t, nil, Config{}).Send(ctx, connector(ts.URL), testAttempt())
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("canceled before the attempt: result %+v", res)
	}
}

func TestLeanRefusesControlCharactersInHeaders(t *testing.T) {
	t.Parallel()
	ts := newRawServer(t, always("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	tests := []struct {
		headers map[string]string
		msg     string
	}{
		{map[string]string{"X-Token": "secret-value\r\nX-Injected: 1"}, "invalid header X-Token: its value contains a control character (CR, LF…)"},
		{map[string]string{"X-Token": "secret-value\n"}, "invalid header X-Token: its value contains a control character (CR, LF…)"},
		{map[string]string{"X-Token": "nul\x00"}, "invalid header X-Token: its value contains a control character (CR, LF…)"},
		{map[string]string{"X-Bad\r\nName": "v"}, "invalid header: a name in the connector's headers is not an HTTP token"},
		{map[string]string{"": "v"}, "invalid header: a name in the connector's headers is not an HTTP token"},
	}
	for _, h2 := range []bool{false, true} {
		c := newClient(t, nil, Config{})
		url := ts.URL
		if h2 { // the same check before net/http's transport
			url = "https://bücher.invalid/"
		}
		for _, tt := range tests {
			conn := connector(url)
			conn.HTTP.Headers = tt.headers
			res := c.Send(context.Background(), conn, testAttempt())
			if res.Err == nil || res.Err.Error() != tt.msg || !errors.Is(res.Err, errInvalidHeader) {
				t.Errorf("headers %q: err %v, want %q", tt.headers, res.Err, tt.msg)
			}
		}
	}
	if n := ts.reqs.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	if _, err := New(Config{UserAgent: "dcon\r\nX: 1"}); err == nil {
		t.Error("a user agent with CR LF accepted")
	}
}

// TestLeanTLS checks certificate verification on the lean client's dials:
// an unknown authority, a wrong host name, and no TLS at all are refused.
func TestLeanTLS(t *testing.T) {
	t.Parallel()
	ts := httptest.NewTLSServer(answer(200, ""))
	t.Cleanup(ts.Close)
	plain := httptest.NewServer(answer(200, ""))
	t.Cleanup(plain.Close)
	tests := []struct {
		name string
		cfg  Config
		url  string
		msg  string
	}{
		{"unknown authority", Config{RootCAs: x509.NewCertPool()}, ts.URL, "tls: certificate signed by unknown authority"},
		{"wrong host name", Config{}, strings.Replace(ts.URL, "127.0.0.1", "localhost", 1), "tls: certificate is not valid for the endpoint's host"},
		{"not TLS", Config{}, strings.Replace(plain.URL, "http://", "https://", 1), "http: server gave HTTP response to HTTPS client"},
		{"trusted", Config{}, ts.URL, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := newClient(t, ts, tt.cfg).Send(context.Background(), connector(tt.url), testAttempt())
			if tt.msg == "" {
				if res.Err != nil {
					t.Fatal(res.Err)
				}
				return
			}
			if res.StatusCode != 0 || res.Err == nil || res.Err.Error() != tt.msg {
				t.Fatalf("result %+v, want %q", res, tt.msg)
			}
		})
	}
}

// TestLeanTLSVersion checks that TLS 1.1 endpoints are refused.
func TestLeanTLSVersion(t *testing.T) {
	t.Parallel()
	ts := httptest.NewUnstartedServer(answer(200, ""))
	ts.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	ts.StartTLS()
	defer ts.Close()
	if res := newClient(t, ts, Config{}).Send(context.Background(), connector(ts.URL), testAttempt()); res.Err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
}

// TestSendHTTP2Memory: an endpoint that selects h2 is sent to over HTTP/2,
// on the connection the first attempt dialled, and the client remembers it.
func TestSendHTTP2Memory(t *testing.T) {
	t.Parallel()
	protos := make(chan int, 5)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.ProtoMajor
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Header().Set("Retry-After", "3")
	}))
	ts.EnableHTTP2 = true
	conns := countConns(ts)
	ts.StartTLS()
	defer ts.Close()
	c := newClient(t, ts, Config{})
	key := "https://" + strings.TrimPrefix(ts.URL, "https://")
	for i := range 5 {
		res := c.Send(context.Background(), connector(ts.URL), testAttempt())
		if res.StatusCode != 503 || res.Err == nil || res.Err.Error() != "HTTP 503 Service Unavailable" {
			t.Fatalf("attempt %d: %+v", i, res)
		}
		if p := <-protos; p != 2 {
			t.Fatalf("attempt %d: HTTP/%d, want HTTP/2", i, p)
		}
		if !c.h2.speaks(key, time.Now()) {
			t.Fatalf("attempt %d: %s not remembered as h2", i, key)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if c.h2.speaks(key, time.Now().Add(h2Memory)) {
		t.Error("h2 remembered forever")
	}
}

// TestConnPool checks the idle pool's limits without a network.
func TestConnPool(t *testing.T) {
	t.Parallel()
	var p connPool
	t.Cleanup(p.closeIdle)
	now := time.Now()
	a, b := net.Pipe()
	defer b.Close()
	p.put("k", a, now.Add(-idleConnTimeout))
	if got := p.get("k", now); got != nil {
		t.Error("a connection idle for the idle timeout was reused")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("the stale connection was not closed")
	}
	c, d := net.Pipe()
	defer d.Close()
	p.put("k", c, now)
	if got := p.get("other", now); got != nil {
		t.Error("a connection reused for another endpoint")
	}
	if got := p.get("k", now.Add(time.Second)); got != c {
		t.Error("idle connection not reused")
	}
	p.put("k", c, now)
	p.closeIdle()
	if got := p.get("k", now); got != nil {
		t.Error("connection reused after closeIdle")
	}
}

func BenchmarkSendPlain(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ts.Close()
	c := newClient(b, nil, Config{})
	conn := connector(ts.URL + "/hook")
	conn.HTTP.SignatureSecret = "some-very-good-secret"
	conn.HTTP.Headers = map[string]string{"some-header": "abc123"}
	a := testAttempt()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res := c.Send(context.Background(), conn, a); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var once sync.Once
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := c.Send(context.Background(), conn, a); res.Err != nil {
					once.Do(func() { b.Error(res.Err) })
				}
			}
		})
	})
}
