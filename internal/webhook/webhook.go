// Package webhook makes one attempt at delivering one event to a data
// connector's endpoint: it builds the request, signs it, sends it and classifies
// the answer. It knows nothing of queues, retries or backoff; internal/delivery
// decides what to do with a [Result].
//
// A [Client] owns its own HTTP transport: keep-alive connections pooled per
// host, HTTP/2 when the server offers it, TLS 1.2 or later with certificates
// always verified, no proxy, and redirects never followed. Every attempt is
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
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Client sends attempts. It is safe for concurrent use; make one per process
// and share it, so connections are reused across connectors on the same host.
type Client struct {
	cfg       Config
	transport *http.Transport
	http      *http.Client
	bufs      sync.Pool // of *[]byte: the buffers signatures are made in
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
	t := &http.Transport{
		Proxy:       nil, // endpoints are reached directly, whatever HTTPS_PROXY says
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    cfg.RootCAs,
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	c := &Client{
		cfg:       cfg,
		transport: t,
		http: &http.Client{
			Transport: t,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is an answer, and a failure
			},
		},
	}
	return c, nil
}

// Close closes the client's idle connections. Attempts in flight finish.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

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
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, ErrTimeout)
	defer cancel()

	req, err := c.newRequest(ctx, conn, a)
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
		res.Err = statusError(conn, resp, snippet)
	}
	return res
}

// newRequest builds the signed request for one attempt.
func (c *Client) newRequest(ctx context.Context, conn *dcon.Connector, a Attempt) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, conn.HTTP.URL, bytes.NewReader(a.Body))
	if err != nil {
		// The error quotes the URL; say only what is wrong with it.
		return nil, &Error{msg: "invalid endpoint URL", err: ErrInvalidURL}
	}
	if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
		return nil, &Error{msg: "invalid endpoint URL: scheme must be https", err: ErrInvalidURL}
	}
	h := req.Header
	for k, v := range conn.HTTP.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", c.cfg.UserAgent)
	if err := c.sign(h, conn, a, c.cfg.Now()); err != nil {
		return nil, err
	}
	return req, nil
}

// signBufSize is the size of the pooled buffers tokens are made in: enough
// for an X-Dt-Signature or a DT-Asymmetric-Signature.
const signBufSize = 1 << 10

// sign sets the signature headers of one attempt, all issued at now. The
// tokens are made in a pooled buffer (a buffer of its own would escape to
// the heap on every attempt) and copied into the headers.
func (c *Client) sign(h http.Header, conn *dcon.Connector, a Attempt, now time.Time) error {
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, signBufSize)
		bp = &b
	}
	defer c.bufs.Put(bp)
	buf := (*bp)[:0]
	if secret := conn.HTTP.SignatureSecret; secret != "" {
		tok := signature.AppendDT(buf, []byte(secret), a.Body, now, xid.New().String())
		h.Set(signature.DTHeader, string(tok))
	}
	if c.cfg.Keys != nil && !conn.HTTP.AsymmetricSignatureOff {
		tok, err := c.cfg.Keys.Sign(buf, a.Body, now, c.cfg.Issuer, c.organization(conn.ProjectID))
		if err != nil {
			return &Error{msg: "sign " + signature.ES256Header, err: err}
		}
		h.Set(signature.ES256Header, string(tok))
	}
	if secrets := conn.HTTP.StandardWebhookSecrets; len(secrets) > 0 {
		keys := make([][]byte, len(secrets))
		for i, s := range secrets {
			key, err := signature.ParseWhsec(s)
			if err != nil {
				// Validation keeps such secrets out; never send unsigned.
				return &Error{msg: "invalid Standard Webhooks secret " + strconv.Itoa(i), err: err}
			}
			keys[i] = key
		}
		h.Set(signature.StandardIDHeader, a.EventID)
		h.Set(signature.StandardTimestampHeader, strconv.FormatInt(now.Unix(), 10))
		h.Set(signature.StandardSignatureHeader, signature.StandardSignAll(keys, a.EventID, now, a.Body))
	}
	return nil
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
