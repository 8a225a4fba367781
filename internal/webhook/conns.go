package webhook

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// idleConnTimeout is how long an idle keep-alive connection is kept.
const idleConnTimeout = 90 * time.Second

// idleCheckInterval is how often idle connections are looked at (peerGone):
// one that the endpoint closed is closed here too, within this interval, not
// kept half-closed (CLOSE_WAIT) until its idleConnTimeout. net/http notices
// at once, with a goroutine reading every idle connection; a look every few
// seconds costs one system call per idle connection instead.
const idleCheckInterval = 5 * time.Second

// h2Memory is how long an endpoint that selected h2 is sent to through
// net/http's transport before the lean client dials it again to find out.
const h2Memory = 10 * time.Minute

// maxTargets bounds the cache of parsed endpoint URLs; it is emptied when full.
const maxTargets = 4096

// target is what an attempt needs of an endpoint URL, parsed once per URL.
type target struct {
	tls      bool   // https
	lean     bool   // the lean client can send to it; net/http's otherwise
	addr     string // host:port dialled
	key      string // the idle pool's and h2Hosts' key: scheme://addr
	host     string // the Host header: the URL's, with its port only if not the default
	uri      string // the request target: path and query
	authz    string // "Basic …" from the URL's userinfo, as net/http sends it; or ""
	hostname string
}

// parseTarget parses an endpoint URL. Its errors never repeat the URL.
func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &Error{msg: "invalid endpoint URL", err: ErrInvalidURL}
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, &Error{msg: "invalid endpoint URL: scheme must be https", err: ErrInvalidURL}
	}
	t := &target{tls: u.Scheme == "https", hostname: u.Hostname(), uri: u.RequestURI()}
	// Hosts that need IDNA or carry an IPv6 zone, and opaque URLs, are left
	// to net/http, which knows what to do with them (or says what is wrong).
	t.lean = u.Host != "" && u.Opaque == "" && t.hostname != "" && ascii(u.Host) && !strings.Contains(u.Host, "%")
	port, def := u.Port(), "80"
	if t.tls {
		def = "443"
	}
	t.host = u.Host
	if port == "" || port == def {
		port = def
		t.host = t.hostname
		if strings.Contains(t.hostname, ":") {
			t.host = "[" + t.hostname + "]"
		}
	}
	t.addr = net.JoinHostPort(t.hostname, port)
	t.key = u.Scheme + "://" + t.addr
	if u.User != nil {
		pass, _ := u.User.Password()
		t.authz = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
	}
	return t, nil
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// targetCache keeps parsed endpoint URLs, so that an attempt parses nothing.
type targetCache struct {
	mu sync.RWMutex
	m  map[string]*target
}

func (tc *targetCache) get(raw string) (*target, error) {
	tc.mu.RLock()
	t, ok := tc.m[raw]
	tc.mu.RUnlock()
	if ok {
		return t, nil
	}
	t, err := parseTarget(raw)
	if err != nil {
		return nil, err
	}
	tc.mu.Lock()
	if tc.m == nil || len(tc.m) >= maxTargets {
		tc.m = make(map[string]*target)
	}
	tc.m[raw] = t
	tc.mu.Unlock()
	return t, nil
}

// h2Hosts remembers the endpoints (scheme://host:port) that selected h2.
type h2Hosts struct {
	mu    sync.RWMutex
	until map[string]time.Time
}

// speaks reports whether key selected h2 less than h2Memory before now.
func (h *h2Hosts) speaks(key string, now time.Time) bool {
	h.mu.RLock()
	until, ok := h.until[key]
	h.mu.RUnlock()
	if !ok {
		return false
	}
	if now.Before(until) {
		return true
	}
	h.mu.Lock()
	if u, ok := h.until[key]; ok && !now.Before(u) {
		delete(h.until, key)
	}
	h.mu.Unlock()
	return false
}

func (h *h2Hosts) remember(key string, now time.Time) {
	h.mu.Lock()
	if h.until == nil {
		h.until = make(map[string]time.Time)
	}
	h.until[key] = now.Add(h2Memory)
	h.mu.Unlock()
}

// handoffKey is the context key of a request's *handoff.
type handoffKey struct{}

// handoff carries the lean client's first connection to an h2 endpoint to
// net/http's transport, through the request's context, which the transport's
// dial gets (without its cancellation). Whoever takes it owns it.
type handoff struct {
	mu   sync.Mutex
	conn net.Conn
}

func (h *handoff) take() net.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.conn
	h.conn = nil
	return c
}

// discard closes the connection if the transport did not need it.
func (h *handoff) discard() {
	if c := h.take(); c != nil {
		c.Close()
	}
}

// transportDialTLS is net/http's DialTLSContext: the handed-over connection
// if the request carries one, a fresh one otherwise.
func (c *Client) transportDialTLS(ctx context.Context, _, addr string) (net.Conn, error) {
	if h, _ := ctx.Value(handoffKey{}).(*handoff); h != nil {
		if conn := h.take(); conn != nil {
			return conn, nil
		}
	}
	// The transport detaches dials from the request's deadline.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	tc, err := c.dialTLS(ctx, addr, host)
	if err != nil {
		return nil, err
	}
	return tc, nil
}

// dialTLS dials addr (through the destination guard, when there is one) and
// makes the TLS handshake, offering h2 and http/1.1, the certificate verified
// for hostname against Config.RootCAs.
func (c *Client) dialTLS(ctx context.Context, addr, hostname string) (*tls.Conn, error) {
	raw, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg := c.tls.Clone()
	cfg.ServerName = hostname
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && string(rh.RecordHeader[:]) == "HTTP/" {
			return nil, http.ErrSchemeMismatch
		}
		return nil, err
	}
	return tc, nil
}

// connPool holds the lean client's idle keep-alive connections, at most
// maxIdleConnsPerHost per endpoint, each for at most idleConnTimeout. The
// most recently used is reused first, so that the others age out when an
// endpoint's load falls.
type connPool struct {
	mu    sync.Mutex
	idle  map[string][]idleConn // per target.key, oldest first
	sweep *time.Timer           // armed while a connection is idle
}

type idleConn struct {
	conn  net.Conn
	since time.Time
}

// get returns the most recently idle connection to key, or nil.
func (p *connPool) get(key string, now time.Time) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := p.idle[key]
	if len(conns) == 0 {
		return nil
	}
	ic := conns[len(conns)-1]
	conns[len(conns)-1] = idleConn{}
	p.idle[key] = conns[:len(conns)-1]
	if now.Sub(ic.since) >= idleConnTimeout {
		ic.conn.Close() // the others are older still: the sweep is due
		return nil
	}
	return ic.conn
}

// put makes conn idle, or closes it when key has enough idle connections.
func (p *connPool) put(key string, conn net.Conn, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := p.idle[key]
	if len(conns) >= maxIdleConnsPerHost {
		conn.Close()
		return
	}
	if p.idle == nil {
		p.idle = make(map[string][]idleConn)
	}
	p.idle[key] = append(conns, idleConn{conn: conn, since: now})
	if p.sweep == nil {
		p.sweep = time.AfterFunc(idleCheckInterval, p.closeStale)
	}
}

// closeStale closes the connections idle for idleConnTimeout and those the
// endpoint closed (peerGone), and arms the sweep again while any is left.
func (p *connPool) closeStale() {
	now := time.Now()
	var stale []net.Conn
	p.mu.Lock()
	for key, conns := range p.idle {
		kept := conns[:0]
		for _, ic := range conns {
			if now.Sub(ic.since) >= idleConnTimeout || peerGone(ic.conn) {
				stale = append(stale, ic.conn)
				continue
			}
			kept = append(kept, ic)
		}
		clear(conns[len(kept):])
		if len(kept) == 0 {
			delete(p.idle, key)
			continue
		}
		p.idle[key] = kept
	}
	p.sweep = nil
	if len(p.idle) > 0 {
		p.sweep = time.AfterFunc(idleCheckInterval, p.closeStale)
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, conns := range idle {
		for _, ic := range conns {
			ic.conn.Close()
		}
	}
}
