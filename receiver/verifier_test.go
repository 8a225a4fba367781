package receiver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"dcon/internal/signature"
	"dcon/receiver"

	"github.com/golang-jwt/jwt/v5"
)

func mustVerifier(t testing.TB, c receiver.Config) *receiver.Verifier {
	t.Helper()
	v, err := receiver.NewVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewVerifierRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    receiver.Config
	}{
		{"nothing configured", receiver.Config{}},
		{"an empty secret", receiver.Config{Secrets: []string{"a", ""}}},
		{"a bad whsec", receiver.Config{StandardSecrets: []string{"whsec_short"}}},
	}
	for _, tt := range tests {
		if _, err := receiver.NewVerifier(tt.c); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyHS256(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorIat+10, 0)
	parts := strings.Split(vectorToken, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	hs256 := func(header, claims, secret string) string {
		s := b64(header) + "." + b64(claims)
		sig, err := jwt.SigningMethodHS256.Sign(s, []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	tests := []struct {
		name    string
		header  string // "" leaves X-Dt-Signature out
		body    string
		secrets []string
		now     time.Time
		want    error // nil: accepted
	}{
		{name: "test vector", header: vectorToken},
		{name: "rotated secrets", header: vectorToken, secrets: []string{"new-secret", vectorSecret}},
		{name: "signed by golang-jwt", header: hs256(`{"alg":"HS256","typ":"JWT"}`, string(claims), vectorSecret)},
		{name: "at exp plus leeway", header: vectorToken, now: time.Unix(vectorIat+3600+60, 0)},
		{name: "missing", want: receiver.ErrMissingSignature},
		{name: "tampered body", header: vectorToken, body: strings.Replace(vectorBody, "touch", "tooch", 1), want: receiver.ErrChecksum},
		{name: "wrong secret", header: vectorToken, secrets: []string{"other"}, want: receiver.ErrSignature},
		{name: "expired", header: vectorToken, now: time.Unix(vectorIat+3600+61, 0), want: receiver.ErrExpired},
		{name: "issued in the future", header: vectorToken, now: time.Unix(vectorIat-61, 0), want: receiver.ErrNotYetValid},
		{name: "alg none", header: b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + ".", want: receiver.ErrAlgorithm},
		{name: "alg ES256 in the HS256 header", header: b64(`{"alg":"ES256","kid":"x"}`) + "." + parts[1] + "." + parts[2], want: receiver.ErrAlgorithm},
		{name: "sha1 checksum wrong", header: hs256(`{"alg":"HS256"}`, strings.Replace(string(claims), `"checksum":"f`, `"checksum":"0`, 1), vectorSecret), want: receiver.ErrChecksum},
		{name: "no checksum_sha256", header: hs256(`{"alg":"HS256"}`, `{"exp":1644500533,"iat":1644496933}`, vectorSecret), want: receiver.ErrMalformed},
		{name: "garbage", header: "not a token", want: receiver.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := receiver.Config{Secrets: []string{vectorSecret}, Now: func() time.Time { return now }}
			if tt.secrets != nil {
				c.Secrets = tt.secrets
			}
			if !tt.now.IsZero() {
				c.Now = func() time.Time { return tt.now }
			}
			body := vectorBody
			if tt.body != "" {
				body = tt.body
			}
			h := map[string]string{}
			if tt.header != "" {
				h["x-dt-signature"] = tt.header // any case
			}
			err := mustVerifier(t, c).Verify(request(body, h), []byte(body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyES256(t *testing.T) {
	t.Parallel()
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(t, c)
	kid, key := srv.keys.Active()
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body := vectorBody
	valid := srv.sign(t, body, testIssuer, testSubject)
	parts := strings.Split(valid, ".")
	claims := `{"checksum_sha256":"afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de","exp":1644499999,"iat":1644496933,"iss":"https://dcon.example.com","sub":"organizations/acme"}`

	// The confusion attack: HS256 keyed with the published public key.
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	confused := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"checksum_sha256": "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de", "iat": vectorIat, "exp": vectorIat + 300, "iss": testIssuer})
	confused.Header["kid"] = kid
	confusedToken, err := confused.SignedString(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := signature.AppendES256(nil, stranger, kid, []byte(body), c.Now(), testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	other, err := signature.AppendES256(nil, stranger, "made-up-kid", []byte(body), c.Now(), testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	golangJWT := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"checksum_sha256": "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de", "iat": vectorIat, "exp": vectorIat + 300, "iss": testIssuer, "sub": testSubject})
	golangJWT.Header["kid"] = kid
	golangJWTToken, err := golangJWT.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		header  string
		body    string
		issuer  string
		subject string
		after   time.Duration
		want    error
	}{
		{name: "valid", header: valid},
		{name: "valid, issuer and subject checked", header: valid, issuer: testIssuer, subject: testSubject},
		{name: "signed by golang-jwt", header: golangJWTToken, issuer: testIssuer},
		{name: "missing", want: receiver.ErrMissingSignature},
		{name: "tampered body", header: valid, body: vectorBody + "\n", want: receiver.ErrChecksum},
		{name: "expired", header: valid, after: 361 * time.Second, want: receiver.ErrExpired},
		{name: "other issuer", header: valid, issuer: "https://evil.example.com", want: receiver.ErrClaims},
		{name: "other subject", header: valid, subject: "organizations/other", want: receiver.ErrClaims},
		{name: "alg none", header: b64(`{"alg":"none","kid":"`+kid+`"}`) + "." + parts[1] + ".", want: receiver.ErrAlgorithm},
		{name: "alg confusion: HS256 keyed with the public key", header: confusedToken, want: receiver.ErrAlgorithm},
		{name: "wrong key under a published kid", header: string(forged), want: receiver.ErrSignature},
		{name: "unknown kid", header: string(other), want: receiver.ErrUnknownKey},
		{name: "tampered claims", header: parts[0] + "." + b64(claims) + "." + parts[2], want: receiver.ErrSignature},
		{name: "no kid", header: b64(`{"alg":"ES256"}`) + "." + parts[1] + "." + parts[2], want: receiver.ErrMalformed},
		{name: "signature truncated", header: parts[0] + "." + parts[1] + "." + parts[2][:50], want: receiver.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := c.Now().Add(tt.after)
			v := mustVerifier(t, receiver.Config{
				JWKSURL: srv.jwksURL(), Issuer: tt.issuer, Subject: tt.subject,
				HTTPClient: srv.Client(), Now: func() time.Time { return now },
			})
			b := body
			if tt.body != "" {
				b = tt.body
			}
			h := map[string]string{}
			if tt.header != "" {
				h["dt-asymmetric-signature"] = tt.header
			}
			err := v.Verify(request(b, h), []byte(b))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// dcon rotates its key while a receiver runs: the receiver refetches the
// JWKS on the new kid — at most once per JWKSMinRefresh — and the old key's
// tokens keep verifying.
func TestVerifyES256FollowsRotation(t *testing.T) {
	t.Parallel()
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(t, c)
	v := mustVerifier(t, receiver.Config{JWKSURL: srv.jwksURL(), HTTPClient: srv.Client(), Now: c.Now, JWKSMaxAge: time.Hour})
	verify := func(tok string) error {
		return v.Verify(request("{}", map[string]string{receiver.ES256Header: tok}), []byte("{}"))
	}

	before := srv.sign(t, "{}", testIssuer, testSubject)
	if err := verify(before); err != nil {
		t.Fatal(err)
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("%d fetches, want 1", got)
	}

	c.Advance(10 * time.Second)
	if _, err := srv.keys.Rotate(c.Now()); err != nil {
		t.Fatal(err)
	}
	after := srv.sign(t, "{}", testIssuer, testSubject)
	if err := verify(after); !errors.Is(err, receiver.ErrUnknownKey) {
		t.Fatalf("new kid 10 s after the last fetch: err = %v, want ErrUnknownKey (rate bound)", err)
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("%d fetches within the minimum refresh interval, want 1", got)
	}

	c.Advance(21 * time.Second)
	after = srv.sign(t, "{}", testIssuer, testSubject)
	if err := verify(after); err != nil {
		t.Fatalf("new kid 31 s after the last fetch: %v", err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2", got)
	}
	if err := verify(before); err != nil {
		t.Fatalf("a token of the old key, in its overlap: %v", err)
	}

	// Made-up kids cannot make the receiver hammer the JWKS.
	for i := range 5 {
		forged := strings.Replace(after, strings.Split(after, ".")[0], b64(`{"alg":"ES256","kid":"k`+strconv.Itoa(i)+`","typ":"JWT"}`), 1)
		if err := verify(forged); !errors.Is(err, receiver.ErrUnknownKey) {
			t.Fatalf("made-up kid: err = %v", err)
		}
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("%d fetches after made-up kids, want 2", got)
	}
}

func TestVerifyES256HonoursCacheControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cacheControl string
		advance      time.Duration
		wantFetches  int32
	}{
		{"within max-age", "public, max-age=120", 119 * time.Second, 1},
		{"past max-age", "public, max-age=120", 121 * time.Second, 2},
		{"no-store, past the minimum interval", "no-store", 31 * time.Second, 2},
		{"no-store, within the minimum interval", "no-store", 29 * time.Second, 1},
		{"no header: the default max age", "", 4 * time.Minute, 1},
		{"no header, past the default max age", "", 5 * time.Minute, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClock(time.Unix(vectorIat, 0))
			srv := newJWKSServer(t, c)
			srv.cacheControl.Store(tt.cacheControl)
			v := mustVerifier(t, receiver.Config{JWKSURL: srv.jwksURL(), HTTPClient: srv.Client(), Now: c.Now})
			if err := v.Verify(request("{}", map[string]string{receiver.ES256Header: srv.sign(t, "{}", "", "")}), []byte("{}")); err != nil {
				t.Fatal(err)
			}
			c.Advance(tt.advance)
			if err := v.Verify(request("{}", map[string]string{receiver.ES256Header: srv.sign(t, "{}", "", "")}), []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if got := srv.fetches.Load(); got != tt.wantFetches {
				t.Fatalf("%d fetches, want %d", got, tt.wantFetches)
			}
		})
	}
}

func TestVerifyES256WhenTheJWKSFails(t *testing.T) {
	t.Parallel()
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(t, c)
	srv.failing.Store(true)
	v := mustVerifier(t, receiver.Config{JWKSURL: srv.jwksURL(), HTTPClient: srv.Client(), Now: c.Now})
	verify := func() error {
		return v.Verify(request("{}", map[string]string{receiver.ES256Header: srv.sign(t, "{}", "", "")}), []byte("{}"))
	}
	if err := verify(); !errors.Is(err, receiver.ErrKeyFetch) {
		t.Fatalf("JWKS down: err = %v, want ErrKeyFetch", err)
	}
	srv.failing.Store(false)
	c.Advance(31 * time.Second)
	if err := verify(); err != nil {
		t.Fatalf("JWKS back: %v", err)
	}
	// Stale keys are used while the JWKS is down.
	srv.failing.Store(true)
	c.Advance(time.Hour)
	if err := verify(); err != nil {
		t.Fatalf("JWKS down again, stale key: %v", err)
	}
	if got := srv.fetches.Load(); got != 3 {
		t.Fatalf("%d fetches, want 3", got)
	}
}

func TestVerifyES256Discovery(t *testing.T) {
	t.Parallel()
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(t, c)
	v := mustVerifier(t, receiver.Config{Issuer: srv.URL, HTTPClient: srv.Client(), Now: c.Now})
	tok := srv.sign(t, "{}", srv.URL, testSubject)
	if err := v.Verify(request("{}", map[string]string{receiver.ES256Header: tok}), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	tok = srv.sign(t, "{}", testIssuer, testSubject)
	if err := v.Verify(request("{}", map[string]string{receiver.ES256Header: tok}), []byte("{}")); !errors.Is(err, receiver.ErrClaims) {
		t.Fatalf("another issuer: err = %v", err)
	}
}

func TestVerifyStandard(t *testing.T) {
	t.Parallel()
	now := time.Unix(swTimestamp, 0)
	ts := strconv.Itoa(swTimestamp)
	tests := []struct {
		name          string
		id, ts, sig   string
		body, secret  string
		after         time.Duration
		want          error
		secretsExtras []string
	}{
		{name: "test vector", id: swID, ts: ts, sig: swSig},
		{name: "one valid of several", id: swID, ts: ts, sig: "v1,AAAA v1," + strings.Repeat("A", 43) + "= " + swSig},
		{name: "rotated secrets", id: swID, ts: ts, sig: swSig, secretsExtras: []string{signature.NewWhsec()}},
		{name: "missing id", ts: ts, sig: swSig, want: receiver.ErrMissingSignature},
		{name: "missing timestamp", id: swID, sig: swSig, want: receiver.ErrMissingSignature},
		{name: "missing signature", id: swID, ts: ts, want: receiver.ErrMissingSignature},
		{name: "v1, alone", id: swID, ts: ts, sig: "v1,", want: receiver.ErrSignature},
		{name: "wrong secret", id: swID, ts: ts, sig: swSig, secret: signature.NewWhsec(), want: receiver.ErrSignature},
		{name: "tampered body", id: swID, ts: ts, sig: swSig, body: swBody + " ", want: receiver.ErrSignature},
		{name: "5 min + 1 s old", id: swID, ts: ts, sig: swSig, after: 5*time.Minute + time.Second, want: receiver.ErrExpired},
		{name: "5 min + 1 s ahead", id: swID, ts: ts, sig: swSig, after: -5*time.Minute - time.Second, want: receiver.ErrNotYetValid},
		{name: "timestamp not a number", id: swID, ts: "x", sig: swSig, want: receiver.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret, body := swSecret, swBody
			if tt.secret != "" {
				secret = tt.secret
			}
			if tt.body != "" {
				body = tt.body
			}
			at := now.Add(tt.after)
			v := mustVerifier(t, receiver.Config{StandardSecrets: append(tt.secretsExtras, secret), Now: func() time.Time { return at }})
			h := map[string]string{}
			for k, val := range map[string]string{"Webhook-Id": tt.id, "Webhook-Timestamp": tt.ts, "Webhook-Signature": tt.sig} {
				if val != "" {
					h[k] = val
				}
			}
			if err := v.Verify(request(body, h), []byte(body)); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// Every configured scheme is required; those not configured are ignored.
func TestVerifyRequiresEveryConfiguredScheme(t *testing.T) {
	t.Parallel()
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(t, c)
	whsec := signature.NewWhsec()
	key, err := signature.ParseWhsec(whsec)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(vectorBody)
	all := http.Header{}
	all.Set(receiver.DTHeader, vectorToken)
	all.Set(receiver.ES256Header, srv.sign(t, vectorBody, "", ""))
	all.Set("webhook-id", "c82gg9catj3vmh4248og")
	all.Set("webhook-timestamp", strconv.FormatInt(c.Now().Unix(), 10))
	all.Set("webhook-signature", signature.StandardSign(key, "c82gg9catj3vmh4248og", c.Now(), body))

	v := mustVerifier(t, receiver.Config{
		Secrets: []string{vectorSecret}, JWKSURL: srv.jwksURL(), StandardSecrets: []string{whsec},
		HTTPClient: srv.Client(), Now: c.Now,
	})
	r := request(vectorBody, nil)
	r.Header = all.Clone()
	if err := v.Verify(r, body); err != nil {
		t.Fatalf("all three: %v", err)
	}
	for _, drop := range []string{receiver.DTHeader, receiver.ES256Header, "webhook-signature"} {
		r := request(vectorBody, nil)
		r.Header = all.Clone()
		r.Header.Del(drop)
		if err := v.Verify(r, body); !errors.Is(err, receiver.ErrMissingSignature) {
			t.Errorf("without %s: err = %v, want ErrMissingSignature", drop, err)
		}
	}

	only := mustVerifier(t, receiver.Config{Secrets: []string{vectorSecret}, Now: c.Now})
	r = request(vectorBody, nil)
	r.Header = all.Clone()
	r.Header.Set(receiver.ES256Header, "garbage")
	if err := only.Verify(r, body); err != nil {
		t.Errorf("an unconfigured scheme's header is checked: %v", err)
	}
}
