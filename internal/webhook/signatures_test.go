package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"dcon"
	"dcon/internal/signature"
	"dcon/receiver"
)

// Standard Webhooks secrets of the tests ("whsec_" and the base64 of 32
// bytes), and the issuer of their ES256 tokens.
const (
	testWhsec1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="
	testWhsec2 = "whsec_c2Vjb25kIHNlY3JldCBvZiAzMiBieXRlcyEhISEhISE="
	testIssuer = "https://dcon.example.com"
)

// capture is a TLS endpoint that hands every request it gets to the test.
type capture struct {
	*httptest.Server
	got chan *http.Request // with the body read into body
}

func newCapture(t testing.TB) *capture {
	t.Helper()
	c := &capture{got: make(chan *http.Request, 16)}
	c.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := httptest.NewRequest(r.Method, r.URL.String(), strings.NewReader(string(body)))
		req.Header = r.Header.Clone()
		c.got <- req
	}))
	t.Cleanup(c.Close)
	return c
}

// next returns the next request and its body.
func (c *capture) next(t testing.TB) (*http.Request, []byte) {
	t.Helper()
	r := <-c.got
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, body
}

// newKeys returns a fresh key set and a plain HTTP server publishing its JWKS.
func newKeys(t testing.TB) (*signature.KeySet, *httptest.Server) {
	t.Helper()
	ks, err := signature.Generate(testNow())
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := ks.JWKS(testNow())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(jwks.Close)
	return ks, jwks
}

func newVerifier(t testing.TB, cfg receiver.Config) *receiver.Verifier {
	t.Helper()
	cfg.Now = testNow
	v, err := receiver.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSendSignsWithEveryScheme: one request carries X-Dt-Signature,
// DT-Asymmetric-Signature and the Standard Webhooks headers, and each
// verifies with the receiver package; the ES256 token also with golang-jwt.
func TestSendSignsWithEveryScheme(t *testing.T) {
	t.Parallel()
	ks, jwks := newKeys(t)
	ep := newCapture(t)
	conn := connector(ep.URL + "/hook")
	conn.HTTP.SignatureSecret = "some-very-good-secret"
	conn.HTTP.StandardWebhookSecrets = []string{testWhsec1}
	orgs := map[string]string{conn.ProjectID: "c0md3pm0p7bet3vico8g"}
	c := newClient(t, ep.Server, Config{Keys: ks, Issuer: testIssuer, Organization: func(p string) string { return orgs[p] }})

	if res := c.Send(context.Background(), conn, testAttempt()); res.Err != nil {
		t.Fatal(res.Err)
	}
	r, body := ep.next(t)
	if string(body) != testBody {
		t.Fatalf("body %s", body)
	}
	v := newVerifier(t, receiver.Config{
		Secrets:         []string{"some-very-good-secret"},
		JWKSURL:         jwks.URL,
		Issuer:          testIssuer,
		Subject:         "c0md3pm0p7bet3vico8g",
		StandardSecrets: []string{testWhsec1},
	})
	if err := v.Verify(r, body); err != nil {
		t.Fatalf("the receiver package rejects the request: %v", err)
	}
	if got := r.Header.Get("webhook-id"); got != testEventID {
		t.Errorf("webhook-id %q, want the event id %q", got, testEventID)
	}
	if got := r.Header.Get("webhook-timestamp"); got != strconv.FormatInt(testNow().Unix(), 10) {
		t.Errorf("webhook-timestamp %q, want the clock's Unix seconds", got)
	}

	// Any JWT library verifies the ES256 token with the published key.
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(r.Header.Get("DT-Asymmetric-Signature"), claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return ks.PublicKey(kid, testNow())
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(testNow), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithIssuer(testIssuer), jwt.WithSubject("c0md3pm0p7bet3vico8g"))
	if err != nil {
		t.Fatalf("golang-jwt rejects DT-Asymmetric-Signature: %v", err)
	}
	if kid, _ := ks.Active(); tok.Header["kid"] != kid || tok.Header["typ"] != "JWT" {
		t.Errorf("header %v, want the active kid %s", tok.Header, kid)
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if iat.Unix() != testNow().Unix() || exp.Unix()-iat.Unix() != 300 {
		t.Errorf("iat %v exp %v, want iat from the clock and exp = iat + 300", iat, exp)
	}
	if _, ok := tok.Method.(*jwt.SigningMethodECDSA); !ok {
		t.Errorf("method %v", tok.Method)
	}
}

// TestSendAsymmetricSignatureHeader: DT-Asymmetric-Signature is on by default
// when the client has keys, and a connector can turn it off.
func TestSendAsymmetricSignatureHeader(t *testing.T) {
	t.Parallel()
	ks, _ := newKeys(t)
	tests := []struct {
		name string
		keys *signature.KeySet
		off  bool
		want bool
	}{
		{"default", ks, false, true},
		{"turned off by the connector", ks, true, false},
		{"client without keys", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := newCapture(t)
			conn := connector(ep.URL)
			conn.HTTP.AsymmetricSignatureOff = tt.off
			cfg := Config{Keys: tt.keys}
			if tt.keys != nil {
				cfg.Issuer = testIssuer
			}
			if res := newClient(t, ep.Server, cfg).Send(context.Background(), conn, testAttempt()); res.Err != nil {
				t.Fatal(res.Err)
			}
			r, _ := ep.next(t)
			if got := r.Header.Get("DT-Asymmetric-Signature") != ""; got != tt.want {
				t.Errorf("DT-Asymmetric-Signature sent: %v, want %v", got, tt.want)
			}
			for _, h := range []string{"X-Dt-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"} {
				if v := r.Header.Get(h); v != "" {
					t.Errorf("%s %q sent to a connector without its secret", h, v)
				}
			}
		})
	}
}

// TestSendDefaultOrganization: without an organization lookup, or when it
// knows nothing, sub is the default organization.
func TestSendDefaultOrganization(t *testing.T) {
	t.Parallel()
	ks, jwks := newKeys(t)
	for _, org := range []func(string) string{nil, func(string) string { return "" }} {
		ep := newCapture(t)
		c := newClient(t, ep.Server, Config{Keys: ks, Issuer: testIssuer, Organization: org})
		if res := c.Send(context.Background(), connector(ep.URL), testAttempt()); res.Err != nil {
			t.Fatal(res.Err)
		}
		r, body := ep.next(t)
		v := newVerifier(t, receiver.Config{JWKSURL: jwks.URL, Issuer: testIssuer, Subject: dcon.DefaultOrganization})
		if err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSendStandardWebhooksRotation: two secrets give two signatures, each
// valid alone, so a receiver holding either accepts; webhook-id stays the
// event id on every attempt.
func TestSendStandardWebhooksRotation(t *testing.T) {
	t.Parallel()
	ep := newCapture(t)
	conn := connector(ep.URL)
	conn.HTTP.StandardWebhookSecrets = []string{testWhsec1, testWhsec2}
	c := newClient(t, ep.Server, Config{})
	for range 2 {
		if res := c.Send(context.Background(), conn, testAttempt()); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	for range 2 {
		r, body := ep.next(t)
		sigs := strings.Fields(r.Header.Get("webhook-signature"))
		if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
			t.Fatalf("webhook-signature %q, want two v1 signatures", r.Header.Get("webhook-signature"))
		}
		if r.Header.Get("webhook-id") != testEventID {
			t.Errorf("webhook-id %q, want %q", r.Header.Get("webhook-id"), testEventID)
		}
		for _, secret := range []string{testWhsec1, testWhsec2} {
			if err := newVerifier(t, receiver.Config{StandardSecrets: []string{secret}}).Verify(r, body); err != nil {
				t.Errorf("secret %s…: %v", secret[:10], err)
			}
		}
		other := signature.NewWhsec()
		if err := newVerifier(t, receiver.Config{StandardSecrets: []string{other}}).Verify(r, body); err == nil {
			t.Error("a request verifies under a secret the connector does not have")
		}
	}
}

func TestSendRefusesInvalidStandardSecret(t *testing.T) {
	t.Parallel()
	ep := newCapture(t)
	conn := connector(ep.URL)
	conn.HTTP.StandardWebhookSecrets = []string{"whsec_tooshort"}
	res := newClient(t, ep.Server, Config{}).Send(context.Background(), conn, testAttempt())
	if res.Err == nil || strings.Contains(res.Err.Error(), "tooshort") {
		t.Fatalf("err %v: want a failure that does not show the secret", res.Err)
	}
	select {
	case <-ep.got:
		t.Fatal("an unsigned request was sent")
	default:
	}
}

func TestNewNeedsIssuerWithKeys(t *testing.T) {
	t.Parallel()
	ks, _ := newKeys(t)
	_, err := New(Config{Keys: ks})
	if dcon.ErrorCode(err) != dcon.EINVALID {
		t.Fatalf("err %v, want EINVALID", err)
	}
}

// BenchmarkSendSignatures measures a whole attempt (HTTP/1.1, keep-alive,
// serial) with each signature scheme added to X-Dt-Signature.
func BenchmarkSendSignatures(b *testing.B) {
	ks, _ := newKeys(b)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ts.Close()
	c := newClient(b, ts, Config{Keys: ks, Issuer: testIssuer})
	for _, bc := range []struct {
		name     string
		es256Off bool
		whsec    []string
	}{
		{"hs256", true, nil},
		{"hs256+es256", false, nil},
		{"hs256+standard", true, []string{testWhsec1}},
		{"hs256+es256+standard", false, []string{testWhsec1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			conn := connector(ts.URL + "/hook")
			conn.HTTP.SignatureSecret = "some-very-good-secret"
			conn.HTTP.AsymmetricSignatureOff = bc.es256Off
			conn.HTTP.StandardWebhookSecrets = bc.whsec
			a := testAttempt()
			b.ReportAllocs()
			for b.Loop() {
				if res := c.Send(context.Background(), conn, a); res.Err != nil {
					b.Fatal(res.Err)
				}
			}
		})
	}
}
