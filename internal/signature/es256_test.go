package signature

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer  = "https://dcon.example.com"
	testSubject = "organizations/c0md3pm0p7bet3vico8g"
	testKid     = "test-kid"
)

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// keyring returns a keyFor that knows exactly the given keys.
func keyring(keys map[string]*ecdsa.PublicKey) func(string) (*ecdsa.PublicKey, error) {
	return func(kid string) (*ecdsa.PublicKey, error) {
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
}

func mustES256(t testing.TB, key *ecdsa.PrivateKey, kid string, body []byte, iat time.Time) string {
	t.Helper()
	tok, err := AppendES256(nil, key, kid, body, iat, testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func TestAppendES256Form(t *testing.T) {
	t.Parallel()
	key := newP256(t)
	token := mustES256(t, key, testKid, []byte(vectorBody), time.Unix(vectorIat, 999e6))
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	dec := func(s string) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("part %q is not unpadded base64url: %v", s, err)
		}
		return string(b)
	}
	if got, want := dec(parts[0]), `{"alg":"ES256","kid":"test-kid","typ":"JWT"}`; got != want {
		t.Errorf("header %s, want %s", got, want)
	}
	wantClaims := `{"checksum_sha256":"afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de","exp":1644497233,"iat":1644496933,"iss":"https://dcon.example.com","sub":"organizations/c0md3pm0p7bet3vico8g"}`
	if got := dec(parts[1]); got != wantClaims {
		t.Errorf("claims\n got %s\nwant %s", got, wantClaims)
	}
	if sig := dec(parts[2]); len(sig) != 64 {
		t.Errorf("signature is %d bytes, want 64 (r||s)", len(sig))
	}

	claims, err := VerifyES256(token, []byte(vectorBody), keyring(map[string]*ecdsa.PublicKey{testKid: &key.PublicKey}), time.Unix(vectorIat+10, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := ES256Claims{ChecksumSHA256: "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de", Exp: vectorIat + 300, Iat: vectorIat, Iss: testIssuer, Sub: testSubject}
	if *claims != want {
		t.Errorf("claims %+v, want %+v", *claims, want)
	}
}

func TestAppendES256Appends(t *testing.T) {
	t.Parallel()
	key := newP256(t)
	tok, err := AppendES256([]byte("prefix:"), key, testKid, []byte("{}"), time.Unix(vectorIat, 0), testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(string(tok), "prefix:")
	if !ok {
		t.Fatalf("prefix lost: %s", tok)
	}
	if _, err := VerifyES256(rest, []byte("{}"), keyring(map[string]*ecdsa.PublicKey{testKid: &key.PublicKey}), time.Unix(vectorIat, 0), 0); err != nil {
		t.Fatal(err)
	}
}

func TestAppendES256RefusesOtherCurves(t *testing.T) {
	t.Parallel()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]*ecdsa.PrivateKey{"nil": nil, "P-384": p384} {
		if _, err := AppendES256(nil, key, testKid, nil, time.Now(), "", ""); err == nil {
			t.Errorf("%s key: no error", name)
		}
	}
}

// A token made by AppendES256 is a standard ES256 JWT: golang-jwt verifies it.
func TestAppendES256InteroperatesWithGolangJWT(t *testing.T) {
	t.Parallel()
	key := newP256(t)
	now := time.Now()
	token := mustES256(t, key, testKid, []byte(vectorBody), now)

	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != testKid {
			return nil, fmt.Errorf("kid %v", tok.Header["kid"])
		}
		return &key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithIssuer(testIssuer), jwt.WithSubject(testSubject))
	if err != nil {
		t.Fatalf("golang-jwt rejects the token: %v", err)
	}
	if parsed.Header["typ"] != "JWT" {
		t.Errorf("typ = %v", parsed.Header["typ"])
	}
	if exp, _ := claims.GetExpirationTime(); exp.Unix() != now.Unix()+300 {
		t.Errorf("exp %v, want iat+300", exp)
	}
}

// And an ES256 token made by golang-jwt verifies with VerifyES256.
func TestVerifyES256AcceptsGolangJWTToken(t *testing.T) {
	t.Parallel()
	key := newP256(t)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"checksum_sha256": "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de",
		"iat":             vectorIat,
		"exp":             vectorIat + 300,
		"iss":             testIssuer,
		"sub":             testSubject,
	})
	tok.Header["kid"] = testKid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := VerifyES256(s, []byte(vectorBody), keyring(map[string]*ecdsa.PublicKey{testKid: &key.PublicKey}), time.Unix(vectorIat+1, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Iss != testIssuer || claims.Sub != testSubject {
		t.Errorf("claims %+v", claims)
	}
}

func TestVerifyES256Rejects(t *testing.T) {
	t.Parallel()
	key, other := newP256(t), newP256(t)
	body := []byte(vectorBody)
	iat := time.Unix(vectorIat, 0)
	valid := mustES256(t, key, testKid, body, iat)
	parts := strings.Split(valid, ".")
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	claims := `{"checksum_sha256":"afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de","exp":1644497233,"iat":1644496933}`

	// The classic confusion attack: HS256 keyed with the public key, in the
	// two forms a verifier might hand to an HMAC (PEM and raw point).
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	rawKey, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	hs256With := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"checksum_sha256": "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de", "iat": vectorIat, "exp": vectorIat + 300})
		tok.Header["kid"] = testKid
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		token  string
		body   []byte
		keys   map[string]*ecdsa.PublicKey
		now    time.Time
		leeway time.Duration
		want   error
	}{
		{name: "tampered body", token: valid, body: []byte(vectorBody + " "), want: ErrChecksum},
		{name: "wrong key", token: valid, keys: map[string]*ecdsa.PublicKey{testKid: &other.PublicKey}, want: ErrSignature},
		{name: "unknown kid", token: valid, keys: map[string]*ecdsa.PublicKey{"another": &key.PublicKey}, want: ErrUnknownKey},
		{name: "nil key without error", token: valid, keys: map[string]*ecdsa.PublicKey{testKid: nil}, want: ErrUnknownKey},
		{name: "P-384 key for kid", token: valid, keys: map[string]*ecdsa.PublicKey{testKid: &p384.PublicKey}, want: ErrAlgorithm},
		{name: "expired", token: valid, now: iat.Add(301 * time.Second), want: ErrExpired},
		{name: "expired beyond leeway", token: valid, now: iat.Add(361 * time.Second), leeway: time.Minute, want: ErrExpired},
		{name: "issued in the future", token: valid, now: iat.Add(-time.Minute), want: ErrNotYetValid},
		{name: "alg none", token: enc(`{"alg":"none","kid":"test-kid","typ":"JWT"}`) + "." + parts[1] + ".", want: ErrAlgorithm},
		{name: "alg HS256 keyed with the PEM public key", token: hs256With(pemKey), want: ErrAlgorithm},
		{name: "alg HS256 keyed with the raw public key", token: hs256With(rawKey), want: ErrAlgorithm},
		{name: "alg RS256", token: enc(`{"alg":"RS256","kid":"test-kid"}`) + "." + parts[1] + "." + parts[2], want: ErrAlgorithm},
		{name: "alg es256 lowercase", token: enc(`{"alg":"es256","kid":"test-kid"}`) + "." + parts[1] + "." + parts[2], want: ErrAlgorithm},
		{name: "no kid", token: enc(`{"alg":"ES256","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], want: ErrMissingClaims},
		{name: "kid swapped in header", token: enc(`{"alg":"ES256","kid":"another","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], keys: map[string]*ecdsa.PublicKey{testKid: &key.PublicKey, "another": &key.PublicKey}, want: ErrSignature},
		{name: "tampered claims", token: parts[0] + "." + enc(claims) + "." + parts[2], want: ErrSignature},
		{name: "signature short", token: parts[0] + "." + parts[1] + "." + parts[2][:40], want: ErrSignature},
		{name: "signature DER-length", token: parts[0] + "." + parts[1] + "." + parts[2] + "AAAAAAAA", want: ErrSignature},
		{name: "signature not base64", token: parts[0] + "." + parts[1] + "." + strings.Repeat("*", 86), want: ErrMalformed},
		{name: "zero signature", token: parts[0] + "." + parts[1] + "." + strings.Repeat("A", 86), want: ErrSignature},
		{name: "two parts", token: parts[0] + "." + parts[1], want: ErrMalformed},
		{name: "four parts", token: valid + ".x", want: ErrMalformed},
		{name: "empty", token: "", want: ErrMalformed},
		{name: "header not JSON", token: enc("ES256") + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "typ not JWT", token: enc(`{"alg":"ES256","kid":"test-kid","typ":"JWE"}`) + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "too long", token: valid + strings.Repeat("a", maxTokenLen), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, keys, now := body, map[string]*ecdsa.PublicKey{testKid: &key.PublicKey}, iat
			if tt.body != nil {
				b = tt.body
			}
			if tt.keys != nil {
				keys = tt.keys
			}
			if !tt.now.IsZero() {
				now = tt.now
			}
			claims, err := VerifyES256(tt.token, b, keyring(keys), now, tt.leeway)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if claims != nil {
				t.Errorf("claims %+v returned with an error", claims)
			}
		})
	}
}

func TestVerifyES256ClaimErrors(t *testing.T) {
	t.Parallel()
	key := newP256(t)
	keys := keyring(map[string]*ecdsa.PublicKey{testKid: &key.PublicKey})
	sign := func(claims string) string {
		tok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"test-kid","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		s, err := jwt.SigningMethodES256.Sign(tok, key)
		if err != nil {
			t.Fatal(err)
		}
		return tok + "." + base64.RawURLEncoding.EncodeToString(s)
	}
	tests := []struct {
		name, claims string
		want         error
	}{
		{"exp missing", `{"checksum_sha256":"x","iat":1644496933}`, ErrMissingClaims},
		{"iat missing", `{"checksum_sha256":"x","exp":1644496933}`, ErrMissingClaims},
		{"checksum missing", `{"exp":1644497233,"iat":1644496933}`, ErrMissingClaims},
		{"exp a string", `{"checksum_sha256":"x","exp":"later","iat":1644496933}`, ErrMalformed},
		{"not JSON", `nope`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := VerifyES256(sign(tt.claims), nil, keys, time.Unix(vectorIat, 0), 0); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyES256Leeway(t *testing.T) {
	t.Parallel()
	key := newP256(t)
	keys := keyring(map[string]*ecdsa.PublicKey{testKid: &key.PublicKey})
	token := mustES256(t, key, testKid, []byte(vectorBody), time.Unix(vectorIat, 0))
	for _, now := range []int64{vectorIat, vectorIat + 300, vectorIat + 359, vectorIat - 59} {
		if _, err := VerifyES256(token, []byte(vectorBody), keys, time.Unix(now, 0), time.Minute); err != nil {
			t.Errorf("now = iat%+d: %v", now-vectorIat, err)
		}
	}
}

// FuzzVerifyES256 feeds VerifyES256 arbitrary tokens and bodies. It must never
// panic, must accept only tokens signed by the known key whose checksum matches
// the body, and must accept what AppendES256 makes.
func FuzzVerifyES256(f *testing.F) {
	key := newP256(f)
	keys := keyring(map[string]*ecdsa.PublicKey{testKid: &key.PublicKey})
	now := time.Unix(vectorIat, 0)
	f.Add(mustES256(f, key, testKid, []byte(vectorBody), now), []byte(vectorBody))
	f.Add(mustES256(f, key, testKid, []byte(vectorBody), now), []byte(vectorBody[1:]))
	f.Add(mustES256(f, key, "other", []byte("{}"), now), []byte("{}"))
	f.Add(vectorToken, []byte(vectorBody))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.", []byte("{}"))
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6InRlc3Qta2lkIn0.e30."+strings.Repeat("A", 86), []byte("{}"))
	f.Add("a.b.c", []byte(nil))
	f.Add("..", []byte("x"))

	f.Fuzz(func(t *testing.T, token string, body []byte) {
		claims, err := VerifyES256(token, body, keys, now, time.Minute)
		if err == nil {
			if claims == nil {
				t.Fatal("nil claims without an error")
			}
			if err := checkDTChecksums(&DTClaims{ChecksumSHA256: claims.ChecksumSHA256}, body); err != nil {
				t.Fatalf("accepted a token whose checksum does not match: %v", err)
			}
		}
		kid := token
		if len(kid) > 64 {
			kid = kid[:64]
		}
		own, err := AppendES256(nil, key, kid, body, now, "iss", "sub")
		if err != nil {
			t.Fatal(err)
		}
		got, err := VerifyES256(string(own), body, func(string) (*ecdsa.PublicKey, error) { return &key.PublicKey, nil }, now, 0)
		if err != nil {
			if errors.Is(err, ErrMissingClaims) && kid == "" {
				return // an empty kid is refused by design
			}
			t.Fatalf("own token rejected: %v", err)
		}
		if got.Iat != now.Unix() || got.Exp != now.Unix()+300 {
			t.Fatalf("own token claims %+v", got)
		}
	})
}

func BenchmarkAppendES256(b *testing.B) {
	key := newP256(b)
	buf := make([]byte, 0, 1024)
	body := []byte(vectorBody)
	iat := time.Unix(vectorIat, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var err error
		buf, err = AppendES256(buf[:0], key, testKid, body, iat, testIssuer, testSubject)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	key := newP256(b)
	keys := keyring(map[string]*ecdsa.PublicKey{testKid: &key.PublicKey})
	body := []byte(vectorBody)
	now := time.Unix(vectorIat, 0)
	token := mustES256(b, key, testKid, body, now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyES256(token, body, keys, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}
