package httpapi

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"dcon"
)

// RateLimit allows a caller Requests requests per Window: a token bucket that
// holds Requests tokens and refills at Requests per Window, so a caller may
// burst up to Requests and then keeps the average. The zero value is no limit.
type RateLimit struct {
	Requests int
	Window   time.Duration
}

// DefaultRateLimit is the limit of management calls per caller, as in the
// original product: 25 requests per 5 seconds.
var DefaultRateLimit = RateLimit{Requests: 25, Window: 5 * time.Second}

// Off reports whether r limits nothing.
func (r RateLimit) Off() bool { return r.Requests <= 0 || r.Window <= 0 }

// String writes r as ParseRateLimit reads it: "25/5s", or "off".
func (r RateLimit) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.Requests) + "/" + r.Window.String()
}

// ParseRateLimit reads "<requests>/<window>", for example "25/5s" or
// "1000/1m", or "off" (also "0") for no limit. Errors are *dcon.Error with
// code EINVALID.
func ParseRateLimit(s string) (RateLimit, error) {
	if s == "off" || s == "0" {
		return RateLimit{}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	requests, err := strconv.Atoi(n)
	if !ok || err != nil || requests <= 0 {
		return RateLimit{}, dcon.Errorf(dcon.EINVALID, "rate limit %q: want <requests>/<window> such as 25/5s, or off", s)
	}
	window, err := time.ParseDuration(w)
	if err != nil || window <= 0 {
		return RateLimit{}, dcon.Errorf(dcon.EINVALID, "rate limit %q: want <requests>/<window> such as 25/5s, or off", s)
	}
	return RateLimit{Requests: requests, Window: window}, nil
}

// Set and the String above make *RateLimit a flag.Value.
func (r *RateLimit) Set(s string) error {
	v, err := ParseRateLimit(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// maxCallers bounds how many callers a limiter remembers; past it, callers
// whose buckets are full again are forgotten, and if that is not enough the
// limiter starts afresh (the memory of a limiter must not be an attack).
const maxCallers = 100_000

// RateLimiter answers 429 Too Many Requests, with Retry-After, to a caller
// that goes over its limit, before the request reaches the API. Publishing
// (POST …:publish and …:batchPublish) has its own limit; every other call is
// a management call. The public key documents (/.well-known/) are not
// limited: receivers fetch them, and they are cacheable.
//
// A caller is the service account the Guard authenticated, so a limiter of
// management and publish calls goes behind the Guard: each account has its
// budget wherever it calls from, and accounts behind one address (a NAT, a
// proxy) do not share one. Without authentication (--dev) a caller is the
// client's IP address. The token endpoint, which the Guard serves before
// anyone is authenticated, is limited per client IP (Token) by a limiter in
// front of the Guard.
type RateLimiter struct {
	// Management limits management calls per caller. Zero: no limit;
	// dcon serve passes DefaultRateLimit unless told otherwise.
	Management RateLimit
	// Publish limits publish calls per caller. Zero (the default): no limit.
	Publish RateLimit
	// Token limits POST /oauth2/token (TokenPath) per client IP, whatever
	// Key says: its callers are not authenticated yet. Zero: no limit.
	Token RateLimit
	// Key names the caller of a request. Nil means CallerKey: the
	// authenticated service account, else the client's IP address. An
	// answer of "" also means the client's IP address (the connection's:
	// X-Forwarded-For is not trusted).
	Key func(r *http.Request) string
	// Logger logs refused requests at debug level (a flood of them must not
	// flood the log). Default: discard.
	Logger *slog.Logger
	// Now is the clock of the buckets. Default: time.Now.
	Now func() time.Time
}

// CallerKey names the caller of a request for rate limits: "sa/<account id>"
// for the service account the Guard authenticated (PrincipalFrom), "" when
// there is none (no Guard: the client's IP address is used).
func CallerKey(r *http.Request) string {
	if p := PrincipalFrom(r.Context()); p != nil && p.Account != nil {
		return "sa/" + p.Account.ID
	}
	return ""
}

// Handler returns a handler that applies the limits and passes the requests
// within them to next.
func (l *RateLimiter) Handler(next http.Handler) http.Handler {
	h := &limitHandler{
		next:       next,
		api:        &api{log: l.Logger, now: l.Now},
		management: newBuckets(l.Management),
		publish:    newBuckets(l.Publish),
		token:      newBuckets(l.Token),
		key:        l.Key,
	}
	if h.key == nil {
		h.key = CallerKey
	}
	if h.api.log == nil {
		h.api.log = slog.New(slog.DiscardHandler)
	}
	if h.api.now == nil {
		h.api.now = time.Now
	}
	return h
}

type limitHandler struct {
	next       http.Handler
	api        *api
	management *buckets
	publish    *buckets
	token      *buckets
	key        func(*http.Request) string
}

func (h *limitHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/.well-known/") {
		h.next.ServeHTTP(w, r)
		return
	}
	b, caller := h.management, ""
	switch {
	case r.URL.Path == TokenPath:
		b = h.token
	case r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, ":publish") || strings.HasSuffix(r.URL.Path, ":batchPublish")):
		b = h.publish
	}
	if b == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	if b != h.token {
		caller = h.key(r)
	}
	if caller == "" {
		caller = "ip/" + clientIP(r)
	}
	wait := b.take(caller, h.api.now())
	if wait <= 0 {
		h.next.ServeHTTP(w, r)
		return
	}
	secs := int(math.Ceil(wait.Seconds()))
	if h.api.log.Enabled(r.Context(), slog.LevelDebug) {
		h.api.log.LogAttrs(r.Context(), slog.LevelDebug, "rate limited",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("retryAfter", secs))
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	status := statusFor(dcon.ERATELIMITED)
	msg := fmt.Sprintf("too many requests: at most %d per %s; retry after %d s", b.limit.Requests, b.limit.Window, secs)
	_ = h.api.respond(w, status, errorBody{Error: msg, Code: status, Help: helpLink})
}

// clientIP is the IP address of the request's connection.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// buckets are the token buckets of one limit, one per caller.
type buckets struct {
	limit RateLimit
	rate  float64 // tokens per second
	mu    sync.Mutex
	m     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newBuckets(l RateLimit) *buckets {
	if l.Off() {
		return nil
	}
	return &buckets{limit: l, rate: float64(l.Requests) / l.Window.Seconds(), m: map[string]*bucket{}}
}

// take takes a token of caller's bucket and returns 0, or, when the bucket is
// empty, how long until it holds a token again.
func (b *buckets) take(caller string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.m[caller]
	if !ok {
		if len(b.m) >= maxCallers {
			b.forget(now)
		}
		k = &bucket{tokens: float64(b.limit.Requests), last: now}
		b.m[caller] = k
	}
	if elapsed := now.Sub(k.last).Seconds(); elapsed > 0 {
		k.tokens = math.Min(float64(b.limit.Requests), k.tokens+elapsed*b.rate)
		k.last = now
	}
	if k.tokens >= 1 {
		k.tokens--
		return 0
	}
	return time.Duration((1 - k.tokens) / b.rate * float64(time.Second))
}

// forget drops the callers whose buckets are full again; if that frees
// nothing, every caller.
func (b *buckets) forget(now time.Time) {
	for c, k := range b.m {
		if now.Sub(k.last) >= b.limit.Window {
			delete(b.m, c)
		}
	}
	if len(b.m) >= maxCallers {
		clear(b.m)
	}
}
