// Package webhook makes one attempt at delivering one event to a data
// connector's endpoint: it builds the request, signs it, sends it and classifies
// the answer. It knows nothing of queues, retries or backoff; internal/delivery
// decides what to do with a [Result].
//
// A [Client] owns its own HTTP transport: keep-alive connections pooled per
// host, HTTP/2 when the server offers it, TLS 1.2 or later with certificates
// always verified, no proxy, and redirects never followed. HTTP/1.1 is spoken
// by a lean client of the package's own, which makes an attempt in the
// caller's goroutine with one write and no per-request maps (h1.go); endpoints
// that select h2 are left to net/http's transport. Every attempt is
// bounded by one timeout covering the whole exchange, and the response body is
// read only up to a small limit, so a slow or hostile receiver cannot hold an
// attempt or its memory. With Config.Destinations, every dial resolves the
// endpoint's host itself and refuses addresses the policy does not allow
// (loopback, private, link-local, metadata…), so a connector cannot be used
// to reach dcon's own network, even through DNS changes.
//
// Every request is signed afresh on every attempt, with each scheme the
// connector uses: X-Dt-Signature (HS256) when it has a signature secret;
// DT-Asymmetric-Signature (ES256, with the active key of Config.Keys) unless
// it turned that off; and the Standard Webhooks headers when it has whsec_
// secrets.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/xid"

	"dcon"
	"dcon/internal/signature"
)

// Defaults of Config.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 4 << 10
	DefaultUserAgent        = "dcon"
)

// maxIdleConnsPerHost is how many idle keep-alive connections a client keeps to
// one endpoint: as many as a busy connector can have requests in flight (the
// delivery engine's largest window, delivery.FlowConfig.MaxWindow), so that it
// never re-dials, nor pays for new TLS handshakes. Endpoints that speak
// HTTP/2 need only a few: requests share a connection.
const maxIdleConnsPerHost = 1024

// maxRetryAfter caps what Retry-After can ask for; the delivery engine applies
// its own, shorter window (an event is dropped at 12 hours anyway).
const maxRetryAfter = 24 * time.Hour

// Config configures a Client. The zero value is usable.
type Config struct {
	// Timeout bounds one attempt, from dialling to reading the end of the
	// response body. Zero means DefaultTimeout (10s, the contract's limit).
	Timeout time.Duration
	// RootCAs are the certificate authorities endpoints' certificates are
	// verified against. Nil means the system's roots. See LoadRootCAs.
	RootCAs *x509.CertPool
	// UserAgent is sent as the User-Agent header. Empty means DefaultUserAgent;
	// cmd/dcon passes "dcon/<version>".
	UserAgent string
	// MaxResponseBytes is how much of a response body is read (and discarded)
	// before the connection is given up. Zero means DefaultMaxResponseBytes (4 KiB).
	MaxResponseBytes int64
	// Now is the clock signatures are issued with and HTTP-date Retry-After
	// values are measured against. Nil means time.Now. Result.Duration is always
	// measured on the monotonic clock.
	Now func() time.Time
	// Keys sign DT-Asymmetric-Signature with their active key. Nil means the
	// header is never sent.
	Keys *signature.KeySet
	// Issuer is the iss claim of DT-Asymmetric-Signature: the public URL under
	// which dcon serves /.well-known/openid-configuration. Required with Keys.
	Issuer string
	// Organization returns the id of the organization that owns a project,
	// the sub claim of DT-Asymmetric-Signature. It is called on every
	// attempt, so it must be quick (cmd/dcon keeps a cache). Nil, or an
	// empty answer, means dcon.DefaultOrganization.
	Organization func(projectID string) string
	// Destinations, when set, is checked at dial time on every attempt: the
	// endpoint's host is resolved with LookupIP and the attempt fails with
	// ErrForbiddenDestination unless the policy allows every address the host
	// has; only checked addresses are dialled. Nil means no check (tests of
	// other packages, and dcon serve --dev passes AllowAll); dcon serve passes
	// the strict policy with its --allow-destination ranges.
	Destinations *dcon.DestinationPolicy
	// LookupIP resolves endpoint host names for the Destinations check. Nil
	// means the system's resolver; tests inject their own.
	LookupIP dcon.LookupFunc
}

func (c *Config) validate() error {
	if c.Timeout < 0 {
		return dcon.Errorf(dcon.EINVALID, "webhook timeout must not be negative, got %s", c.Timeout)
	}
	if c.MaxResponseBytes < 0 {
		return dcon.Errorf(dcon.EINVALID, "webhook max response bytes must not be negative, got %d", c.MaxResponseBytes)
	}
	if c.Keys != nil && c.Issuer == "" {
		return dcon.Errorf(dcon.EINVALID, "webhook signing keys need an issuer URL")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if !validHeaderValue(c.UserAgent) {
		return dcon.Errorf(dcon.EINVALID, "webhook user agent must not contain control characters")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Client sends attempts. It is safe for concurrent use; make one per process
// and share it, so connections are reused across connectors on the same host.
//
// Plain http:// endpoints and https:// endpoints that speak HTTP/1.1 are
// served by a lean client of the package's own (h1.go): the attempt's
// goroutine writes the request on a pooled keep-alive connection in one write
// and reads the answer itself. Endpoints that select h2 in the TLS handshake
// are remembered for a while and served by transport, net/http's, which
// multiplexes their attempts on few connections.
type Client struct {
	cfg       Config
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	tls       *tls.Config // cloned per dial, with the endpoint's ServerName
	transport *http.Transport
	http      *http.Client
	bufs      sync.Pool // of *[]byte: the buffers signatures are made in
	readers   sync.Pool // of *bufio.Reader, lent to one exchange at a time
	writers   sync.Pool // of *bufio.Writer, lent to one exchange at a time
	idle      connPool  // the lean client's idle keep-alive connections
	targets   targetCache
	h2        h2Hosts
}

// New returns a Client configured by cfg. Its errors are *dcon.Error with code
// EINVALID.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if cfg.Destinations != nil {
		dial = newGuardedDialer(*cfg.Destinations, cfg.LookupIP, dialer).DialContext
	}
	c := &Client{
		cfg:  cfg,
		dial: dial,
		tls: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    cfg.RootCAs,
			NextProtos: []string{"h2", "http/1.1"},
		},
	}
	c.transport = &http.Transport{
		Proxy:       nil, // endpoints are reached directly, whatever HTTPS_PROXY says
		DialContext: dial,
		// Every TLS connection is made by dialTLS, so that the lean client's
		// first connection to an h2 endpoint can be handed over.
		DialTLSContext: c.transportDialTLS,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    cfg.RootCAs,
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	c.http = &http.Client{
		Transport: c.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is an answer, and a failure
		},
	}
	return c, nil
}

// Close closes the client's idle connections. Attempts in flight finish.
func (c *Client) Close() {
	c.idle.closeIdle()
	c.transport.CloseIdleConnections()
}

// LoadRootCAs returns the system's certificate authorities plus those of the
// PEM file caFile, for endpoints behind a private CA. An empty caFile returns
// the system's roots alone.
func LoadRootCAs(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, dcon.WrapError(dcon.EINVALID, err, "load system certificate authorities")
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, dcon.WrapError(dcon.EINVALID, err, "read CA file %s", caFile)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, dcon.Errorf(dcon.EINVALID, "CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// Attempt is what one attempt delivers.
type Attempt struct {
	// EventID is the event's id, the same on every attempt: the webhook-id of
	// Standard Webhooks.
	EventID string
	// Body is the exact bytes POSTed, the same on every attempt.
	Body []byte
}

// Result is the outcome of one attempt.
type Result struct {
	StatusCode int           // 0 when no response arrived
	Err        error         // nil exactly when the answer was 2xx; its message is safe to log and store
	RetryAfter time.Duration // from Retry-After on 429 and 503; 0 if absent or invalid
	Duration   time.Duration // round trip of this attempt, body read included
}

// Send makes one attempt at delivering a.Body to conn's endpoint: POST
// conn.HTTP.URL with Content-Type: application/json, every header of
// conn.HTTP.Headers, User-Agent, and fresh signatures: X-Dt-Signature when the
// connector has a signature secret, DT-Asymmetric-Signature when the client
// has Keys and the connector did not turn it off, and webhook-id (a.EventID),
// webhook-timestamp and webhook-signature when the connector has Standard
// Webhooks secrets (these headers replace a connector header of the same
// name). It returns once the response has been read up to
// Config.MaxResponseBytes, the timeout passed, or ctx was done.
//
// A failure's Err never contains the URL's query or userinfo, the secrets or
// the configured header values. Err wraps context.Canceled when ctx ended the
// attempt, and ErrTimeout when the attempt's own timeout did.
func (c *Client) Send(ctx context.Context, conn *dcon.Connector, a Attempt) Result {
	start := time.Now()
	t, err := c.targets.get(conn.HTTP.URL)
	if err == nil {
		err = checkHeaders(conn.HTTP.Headers)
	}
	if err != nil {
		return Result{Err: err, Duration: time.Since(start)}
	}
	var s signed
	defer c.release(&s)
	if err := c.sign(&s, conn, a, c.cfg.Now()); err != nil {
		return Result{Err: err, Duration: time.Since(start)}
	}
	if t.lean && !(t.tls && c.h2.speaks(t.key, start)) {
		return c.sendH1(ctx, conn, t, a, &s, start)
	}
	return c.sendHTTP(ctx, conn, a, &s, start, nil)
}

// sendHTTP makes the attempt with net/http's transport: for endpoints that
// speak HTTP/2, and URLs the lean client leaves to it. A non-nil probe is a
// connection the lean client dialled and found speaking h2; the transport
// gets it if it dials for this request, and it is closed otherwise.
func (c *Client) sendHTTP(ctx context.Context, conn *dcon.Connector, a Attempt, s *signed, start time.Time, probe net.Conn) Result {
	ctx, cancel := context.WithDeadlineCause(ctx, start.Add(c.cfg.Timeout), ErrTimeout)
	defer cancel()
	if probe != nil {
		h := &handoff{conn: probe}
		ctx = context.WithValue(ctx, handoffKey{}, h)
		defer h.discard()
	}
	req, err := c.newRequest(ctx, conn, a, s)
	if err != nil {
		return Result{Err: err, Duration: time.Since(start)}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Result{Err: c.transportError(ctx, conn, err), Duration: time.Since(start)}
	}
	res := Result{StatusCode: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())
	}
	// A 2xx is a success even if its body then fails to arrive in time: the
	// receiver has the event, and a retry would only make a duplicate.
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	snippet := c.drain(resp.Body, !ok)
	res.Duration = time.Since(start)
	if !ok {
		res.Err = statusError(conn, resp.StatusCode, snippet)
	}
	return res
}

// newRequest builds the signed request of one attempt for net/http.
func (c *Client) newRequest(ctx context.Context, conn *dcon.Connector, a Attempt, s *signed) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, conn.HTTP.URL, bytes.NewReader(a.Body))
	if err != nil {
		// The error quotes the URL; say only what is wrong with it.
		return nil, &Error{msg: "invalid endpoint URL", err: ErrInvalidURL}
	}
	h := req.Header
	for k, v := range conn.HTTP.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", c.cfg.UserAgent)
	if s.dt != nil {
		h.Set(signature.DTHeader, string(s.dt))
	}
	if s.es != nil {
		h.Set(signature.ES256Header, string(s.es))
	}
	if s.whSig != "" {
		h.Set(signature.StandardIDHeader, s.whID)
		h.Set(signature.StandardTimestampHeader, string(s.whTS))
		h.Set(signature.StandardSignatureHeader, s.whSig)
	}
	return req, nil
}

// signBufSize is the size of the pooled buffers tokens are made in: enough
// for an X-Dt-Signature or a DT-Asymmetric-Signature.
const signBufSize = 1 << 10

// signed holds the signature headers of one attempt. The tokens are made in a
// pooled buffer (a buffer of its own would escape to the heap on every
// attempt), which release gives back once the request is written.
type signed struct {
	buf   *[]byte
	dt    []byte // X-Dt-Signature, nil when not sent
	es    []byte // DT-Asymmetric-Signature, nil when not sent
	whTS  []byte // webhook-timestamp, with whID and whSig when whSig != ""
	whID  string
	whSig string
}

// sign makes the signature headers of one attempt into s, all issued at now.
func (c *Client) sign(s *signed, conn *dcon.Connector, a Attempt, now time.Time) error {
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, signBufSize)
		bp = &b
	}
	s.buf = bp
	buf := (*bp)[:0]
	var dt, es, ts [2]int // offsets in buf, which may move as it grows
	if secret := conn.HTTP.SignatureSecret; secret != "" {
		dt[0] = len(buf)
		buf = signature.AppendDT(buf, []byte(secret), a.Body, now, xid.New().String())
		dt[1] = len(buf)
	}
	if c.cfg.Keys != nil && !conn.HTTP.AsymmetricSignatureOff {
		es[0] = len(buf)
		var err error
		if buf, err = c.cfg.Keys.Sign(buf, a.Body, now, c.cfg.Issuer, c.organization(conn.ProjectID)); err != nil {
			*bp = buf[:0]
			return &Error{msg: "sign " + signature.ES256Header, err: err}
		}
		es[1] = len(buf)
	}
	if secrets := conn.HTTP.StandardWebhookSecrets; len(secrets) > 0 {
		keys := make([][]byte, len(secrets))
		for i, sec := range secrets {
			key, err := signature.ParseWhsec(sec)
			if err != nil {
				// Validation keeps such secrets out; never send unsigned.
				*bp = buf[:0]
				return &Error{msg: "invalid Standard Webhooks secret " + strconv.Itoa(i), err: err}
			}
			keys[i] = key
		}
		ts[0] = len(buf)
		buf = strconv.AppendInt(buf, now.Unix(), 10)
		ts[1] = len(buf)
		s.whID = a.EventID
		s.whSig = signature.StandardSignAll(keys, a.EventID, now, a.Body)
	}
	*bp = buf[:0]
	if dt[1] > 0 {
		s.dt = buf[dt[0]:dt[1]]
	}
	if es[1] > 0 {
		s.es = buf[es[0]:es[1]]
	}
	if ts[1] > 0 {
		s.whTS = buf[ts[0]:ts[1]]
	}
	return nil
}

// release gives s's buffer back to the pool; s must not be used after.
func (c *Client) release(s *signed) {
	if s.buf != nil {
		c.bufs.Put(s.buf)
		*s = signed{}
	}
}

// organization is the sub claim for a project's events.
func (c *Client) organization(projectID string) string {
	if c.cfg.Organization != nil {
		if org := c.cfg.Organization(projectID); org != "" {
			return org
		}
	}
	return dcon.DefaultOrganization
}

// drain reads the response body up to the configured limit and closes it; with
// keep, it returns the first bytes for an error message. Read errors end the
// reading and are otherwise ignored: the status line is the answer.
func (c *Client) drain(body io.ReadCloser, keep bool) []byte {
	defer body.Close()
	r := io.LimitReader(body, c.cfg.MaxResponseBytes)
	if !keep {
		_, _ = io.Copy(io.Discard, r)
		return nil
	}
	head := make([]byte, maxSnippet+maxSecret) // see statusError
	n, err := io.ReadFull(r, head)
	if err == nil {
		_, _ = io.Copy(io.Discard, r)
	}
	return head[:n]
}

// parseRetryAfter reads a Retry-After value, delta-seconds or an HTTP-date, as
// a duration from now. It returns 0 for an absent, invalid or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	secs, err := strconv.ParseUint(v, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || err == nil && secs > uint64(maxRetryAfter/time.Second):
		return maxRetryAfter
	case err == nil:
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	// HTTP-dates have whole seconds; round up so the receiver's time has come.
	return (d + time.Second - 1).Truncate(time.Second)
}
