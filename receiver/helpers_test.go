package receiver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dcon/internal/signature"
)

// The test vector of the contract, section 3.
const (
	vectorSecret = "test-secret"
	vectorBody   = `{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}`
	vectorIat    = 1644496933
	vectorToken  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGVja3N1bSI6ImYyYjVkYzA0OTY0MzcyMDFkM2NlZTE1NmMyMzNhMTMzNTYwM2Q0NjUiLCJjaGVja3N1bV9zaGEyNTYiOiJhZmQ4MWExNmJiOWMwNzZlNTdmOTI3MjhmMjg0ZmY1NTgzMWJmZGYxZDNjMmMxMGI4MzM1NjdmNTIxZDc4MmRlIiwiZXhwIjoxNjQ0NTAwNTMzLCJpYXQiOjE2NDQ0OTY5MzMsImp0aSI6ImM4MmdnOTloZ2EzNWpjMmFma2VnIn0.gm8m_HrhlOnAyS08CfR_RNYdZQIpGV6E8bk3UiAR3uo"
)

// The symmetric test vector of Standard Webhooks.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swBody      = `{"test": 2432232314}`
	swSig       = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

const (
	testIssuer  = "https://dcon.example.com"
	testSubject = "organizations/acme"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer publishes the JWKS of a KeySet as at the clock's time, with
// OIDC discovery, and counts the JWKS fetches.
type jwksServer struct {
	*httptest.Server
	keys         *signature.KeySet
	clock        *clock
	fetches      atomic.Int32
	failing      atomic.Bool
	cacheControl atomic.Value // string
}

func newJWKSServer(t testing.TB, c *clock) *jwksServer {
	t.Helper()
	ks, err := signature.Generate(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &jwksServer{keys: ks, clock: c}
	s.cacheControl.Store("")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issuer":"` + s.URL + `","jwks_uri":"` + s.URL + `/.well-known/jwks.json"}`))
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		data, err := s.keys.JWKS(s.clock.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if cc := s.cacheControl.Load().(string); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) jwksURL() string { return s.URL + "/.well-known/jwks.json" }

// sign returns a DT-Asymmetric-Signature for body made now by the active key.
func (s *jwksServer) sign(t testing.TB, body string, iss, sub string) string {
	t.Helper()
	tok, err := s.keys.Sign(nil, []byte(body), s.clock.Now(), iss, sub)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// request returns a POST of body with the given headers.
func request(body string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/dcon", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}
