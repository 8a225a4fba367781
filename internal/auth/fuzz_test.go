package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"dcon"
	"dcon/internal/httpapi"
	"dcon/internal/pebble"
)

// The fuzz targets' world is deterministic, so that the seeds checked in
// under testdata/fuzz hold valid assertions and tokens for ever: a fixed
// server key, fixed key ids and salts, and a fixed clock.
var (
	fuzzNow       = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fuzzServerKey = bytes.Repeat([]byte{7}, 32)
)

const (
	fuzzProject  = "c000000000000000fzp0"
	fuzzGoodKey  = "c000000000000000fzk1" // a valid key of fuzzAccount
	fuzzRevoked  = "c000000000000000fzk2" // a revoked key of fuzzAccount
	fuzzAccount  = "c000000000000000fzs1"
	fuzzTokenURL = "https://dcon.test/oauth2/token"
	fuzzSelfURL  = "http://example.com/oauth2/token" // what httptest.NewRequest reaches
)

// fuzzWorld is an Authenticator over a real store in a temporary directory,
// with one account and two keys (one revoked), and the Guard that serves
// the token endpoint.
type fuzzWorld struct {
	a       *Authenticator
	guard   http.Handler
	secrets map[string]string // key id → secret
}

func newFuzzWorld(tb testing.TB) *fuzzWorld {
	tb.Helper()
	db, err := pebble.Open(tb.TempDir(), pebble.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	a, err := New(Config{Store: db, ServerKey: fuzzServerKey, Now: func() time.Time { return fuzzNow }})
	if err != nil {
		tb.Fatal(err)
	}
	acc := &dcon.ServiceAccount{ID: fuzzAccount, Project: fuzzProject, Role: dcon.RoleReader,
		Email: dcon.ServiceAccountEmail(fuzzProject, fuzzAccount), CreateTime: fuzzNow}
	w := &fuzzWorld{a: a, secrets: map[string]string{}}
	var keys []*dcon.Key
	for i, id := range []string{fuzzGoodKey, fuzzRevoked} {
		k := &dcon.Key{ID: id, Account: acc.ID, Project: acc.Project, Salt: bytes.Repeat([]byte{byte(i + 1)}, 32), CreateTime: fuzzNow}
		w.secrets[id] = a.secret(k)
		k.SecretHash = dcon.HashSecret(w.secrets[id])
		if id == fuzzRevoked {
			k.RevokeTime = fuzzNow
		}
		keys = append(keys, k)
	}
	if err := db.CreateServiceAccount(context.Background(), acc, keys...); err != nil {
		tb.Fatal(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	w.guard = (&httpapi.Guard{Auth: a, Projects: db, TokenURL: fuzzTokenURL, Now: func() time.Time { return fuzzNow }}).Handler(api)
	return w
}

// hs256 signs header and claims (JSON) with secret, as a JWT.
func hs256(header, claims string, secret []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}

// signedBy reports whether a JWT is HS256 and carries a valid signature of
// secret, checked here without the JWT library, and returns its header and
// claims.
func signedBy(token string, secret []byte) (header, claims map[string]any, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, nil, false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return nil, nil, false
	}
	for i, into := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(raw, into) != nil {
			return nil, nil, false
		}
	}
	return header, claims, header["alg"] == "HS256"
}

// fuzzAssertion is a valid assertion of key id, as the original client makes
// it, with the claims changed by edit.
func (w *fuzzWorld) fuzzAssertion(kid string, edit func(map[string]any)) string {
	c := map[string]any{"iat": fuzzNow.Unix(), "exp": fuzzNow.Unix() + 3600, "aud": fuzzTokenURL,
		"iss": dcon.ServiceAccountEmail(fuzzProject, fuzzAccount)}
	if edit != nil {
		edit(c)
	}
	claims, _ := json.Marshal(c)
	return hs256(`{"alg":"HS256","kid":"`+kid+`","typ":"JWT"}`, string(claims), []byte(w.secrets[kid]))
}

// FuzzTokenEndpoint posts arbitrary form bodies, and forms around arbitrary
// assertions, to the real POST /oauth2/token (the Guard, the Authenticator,
// a Pebble store). It must never panic or answer 5xx, and must answer a
// token only to an assertion that the valid key signed (checked without
// the JWT library) with its account as iss and this endpoint as aud; every
// token it answers must authenticate as that key.
func FuzzTokenEndpoint(f *testing.F) {
	w := newFuzzWorld(f)
	good := w.fuzzAssertion(fuzzGoodKey, nil)
	form := func(assertion string) string {
		return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}.Encode()
	}
	for _, seed := range []struct{ body, assertion string }{
		{form(good), good},
		{form(good) + "&assertion=x", good[:len(good)-1] + "A"},
		{"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + good, good + "."},
		{form(w.fuzzAssertion(fuzzRevoked, nil)), w.fuzzAssertion(fuzzRevoked, nil)},
		{form(w.fuzzAssertion(fuzzGoodKey, func(c map[string]any) { c["aud"] = fuzzSelfURL })), w.fuzzAssertion(fuzzGoodKey, func(c map[string]any) { c["exp"] = fuzzNow.Unix() + 7200 })},
		{form(w.fuzzAssertion(fuzzGoodKey, func(c map[string]any) { c["iss"] = "x@y" })), w.fuzzAssertion(fuzzGoodKey, func(c map[string]any) { delete(c, "exp") })},
		{form(w.fuzzAssertion(fuzzGoodKey, func(c map[string]any) { c["aud"] = []string{"https://other.test/", fuzzTokenURL} })), w.fuzzAssertion(fuzzGoodKey, func(c map[string]any) { c["exp"] = fuzzNow.Unix() - 120 })},
		{form(hs256(`{"alg":"none","kid":"`+fuzzGoodKey+`"}`, `{"exp":1}`, nil)), "eyJhbGciOiJub25lIn0.e30."},
		{form(hs256(`{"alg":"HS256","kid":"a/b"}`, `{}`, []byte("k"))), hs256(`{"alg":"HS256","kid":["`+fuzzGoodKey+`"]}`, `{}`, []byte(w.secrets[fuzzGoodKey]))},
		{"grant_type=client_credentials&assertion=x", ""},
		{"%zz=1", "a.b.c"},
		{"assertion=" + strings.Repeat("a", 20<<10), strings.Repeat(".", 3)},
		{"", ""},
	} {
		f.Add(seed.body, seed.assertion)
	}
	f.Fuzz(func(t *testing.T, body, assertion string) {
		for _, b := range []string{body, form(assertion)} {
			req := httptest.NewRequest("POST", httpapi.TokenPath, strings.NewReader(b))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			w.guard.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("answered %d: %s", rec.Code, rec.Body)
			}
			if rec.Code != http.StatusOK {
				if !strings.Contains(rec.Body.String(), `"error":`) {
					t.Fatalf("answered %d without the contract's error body: %s", rec.Code, rec.Body)
				}
				continue
			}
			vals, err := url.ParseQuery(b)
			if err != nil {
				t.Fatalf("answered a token to a form that does not parse: %q", b)
			}
			w.checkIssued(t, vals.Get("assertion"), rec.Body.Bytes())
		}
	})
}

// checkIssued fails unless assertion is one the valid key signed, for this
// endpoint, and answer holds a token that authenticates as that key.
func (w *fuzzWorld) checkIssued(t *testing.T, assertion string, answer []byte) {
	t.Helper()
	header, claims, ok := signedBy(assertion, []byte(w.secrets[fuzzGoodKey]))
	if !ok || header["kid"] != fuzzGoodKey {
		t.Fatalf("answered a token to an assertion the valid key did not sign: %q", assertion)
	}
	if claims["iss"] != dcon.ServiceAccountEmail(fuzzProject, fuzzAccount) {
		t.Fatalf("answered a token to an assertion of another iss: %q", assertion)
	}
	if !audienceIs(claims["aud"], fuzzTokenURL, fuzzSelfURL) {
		t.Fatalf("answered a token to an assertion of another aud: %q", assertion)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(answer, &out); err != nil || out.AccessToken == "" || out.TokenType != "bearer" || out.ExpiresIn != 3600 {
		t.Fatalf("token answer %s (%v)", answer, err)
	}
	p, err := w.a.Authenticate(context.Background(), "Bearer "+out.AccessToken)
	if err != nil || p.KeyID != fuzzGoodKey {
		t.Fatalf("the issued token does not authenticate as its key: %+v, %v", p, err)
	}
}

// audienceIs reports whether an aud claim (a string or a list) names one of urls.
func audienceIs(aud any, urls ...string) bool {
	var list []any
	switch v := aud.(type) {
	case string:
		list = []any{v}
	case []any:
		list = v
	}
	for _, a := range list {
		for _, u := range urls {
			if a == u {
				return true
			}
		}
	}
	return false
}

// FuzzBearerToken feeds arbitrary Authorization headers to Authenticate, the
// check the Guard makes of every request. It must never panic; every error
// must be EUNAUTHORIZED; and it may accept only HTTP Basic with the valid
// key's id and secret, or a bearer token that the server's token key signed
// (checked without the JWT library), unexpired, for the valid key — never
// the revoked key, whichever way it is presented.
func FuzzBearerToken(f *testing.F) {
	w := newFuzzWorld(f)
	ctx := context.Background()
	token := func(kid string) string {
		tok, err := w.a.accessToken(&dcon.Key{ID: kid}, fuzzNow)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	good, revoked := token(fuzzGoodKey), token(fuzzRevoked)
	basicOf := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	claims := `{"iss":"dcon-access","sub":"` + fuzzGoodKey + `","iat":` + jsonNum(fuzzNow.Unix()) + `,"exp":` + jsonNum(fuzzNow.Unix()+3600) + `}`
	for _, seed := range []string{
		"Bearer " + good,
		"bearer   " + good + " ",
		"Bearer " + good[:len(good)-1],
		"Bearer " + revoked,
		"Bearer " + w.fuzzAssertion(fuzzGoodKey, nil),
		"Bearer " + hs256(`{"alg":"HS256","kid":"dcon-access"}`, claims, []byte("guess")),
		"Bearer " + hs256(`{"alg":"none","kid":"dcon-access"}`, claims, nil),
		"Bearer " + hs256(`{"alg":"HS256","kid":"dcon-access"}`, strings.Replace(claims, `"exp"`, `"nope"`, 1), w.a.tokenKey),
		"Bearer " + hs256(`{"alg":"HS256","kid":"dcon-access"}`, strings.Replace(claims, fuzzGoodKey, "a/b", 1), w.a.tokenKey),
		basicOf(fuzzGoodKey, w.secrets[fuzzGoodKey]),
		basicOf(fuzzRevoked, w.secrets[fuzzRevoked]),
		basicOf(fuzzGoodKey, w.secrets[fuzzRevoked]),
		basicOf("", ""),
		"Basic !!!",
		"Digest x",
		"Bearer",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		p, err := w.a.Authenticate(ctx, header)
		if err != nil {
			if dcon.ErrorCode(err) != dcon.EUNAUTHORIZED {
				t.Fatalf("error %v (code %s), want EUNAUTHORIZED", err, dcon.ErrorCode(err))
			}
			return
		}
		if p == nil || p.KeyID != fuzzGoodKey || p.Account == nil || p.Account.ID != fuzzAccount {
			t.Fatalf("accepted %q as %+v; only the valid key may pass", header, p)
		}
		scheme, value, _ := strings.Cut(strings.TrimSpace(header), " ")
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(scheme, "Basic"):
			if value != strings.TrimPrefix(basicOf(fuzzGoodKey, w.secrets[fuzzGoodKey]), "Basic ") {
				raw, _ := base64.StdEncoding.DecodeString(value)
				if string(raw) != fuzzGoodKey+":"+w.secrets[fuzzGoodKey] {
					t.Fatalf("accepted Basic credentials %q that are not the valid key's", raw)
				}
			}
		case strings.EqualFold(scheme, "Bearer"):
			h, c, ok := signedBy(value, w.a.tokenKey)
			if !ok || h["kid"] != accessKid || c["sub"] != fuzzGoodKey || c["iss"] != accessKid {
				t.Fatalf("accepted a bearer token the server did not sign for the valid key: %q", value)
			}
			if exp, ok := c["exp"].(float64); !ok || time.Unix(int64(exp), 0).Add(leeway).Before(fuzzNow) {
				t.Fatalf("accepted an expired bearer token: %q", value)
			}
		default:
			t.Fatalf("accepted the scheme %q", scheme)
		}
	})
}

// jsonNum writes n in JSON.
func jsonNum(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestFuzzWorld checks that the fuzz targets' seeds reach the paths they
// guard: the valid assertion gets a token at the endpoint, and its token
// and Basic credentials authenticate.
func TestFuzzWorld(t *testing.T) {
	t.Parallel()
	w := newFuzzWorld(t)
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {w.fuzzAssertion(fuzzGoodKey, nil)}}
	req := httptest.NewRequest("POST", httpapi.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	w.guard.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("the valid assertion: %d %s", rec.Code, rec.Body)
	}
	w.checkIssued(t, form.Get("assertion"), rec.Body.Bytes())
	form.Set("assertion", w.fuzzAssertion(fuzzRevoked, nil))
	req = httptest.NewRequest("POST", httpapi.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	w.guard.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("the revoked key's assertion: %d %s", rec.Code, rec.Body)
	}
}
