package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon"
	"dcon/internal/signature"
)

// memKeys is SigningKeys over a real KeySet kept in memory; fail, when set,
// is what Rotate answers.
type memKeys struct {
	set *signature.KeySet

	mu      sync.Mutex
	fail    error
	rotated int
}

func (m *memKeys) ActiveKeyID() string                { kid, _ := m.set.Active(); return kid }
func (m *memKeys) JWKS(now time.Time) ([]byte, error) { return m.set.JWKS(now) }

func (m *memKeys) Rotate(_ context.Context, now time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return "", m.fail
	}
	m.rotated++
	return m.set.Rotate(now)
}

const testIssuer = "https://dcon.example.com"

// newKeysEnv serves the key endpoints in front of the API of newEnv.
func newKeysEnv(t *testing.T) (*env, *memKeys) {
	t.Helper()
	set, err := signature.Generate(testNow)
	if err != nil {
		t.Fatal(err)
	}
	keys := &memKeys{set: set}
	e := newEnv(t)
	api := &Server{Connectors: e.conns, Devices: e.devs, Ingest: e.ingest, Now: func() time.Time { return testNow }}
	ks := &KeyServer{Keys: keys, Issuer: testIssuer + "/", Now: func() time.Time { return testNow }}
	srv := httptest.NewServer(ks.Handler(api.Handler()))
	t.Cleanup(srv.Close)
	e.url, e.client = srv.URL, srv.Client()
	return e, keys
}

func TestDiscoveryDocument(t *testing.T) {
	t.Parallel()
	e, _ := newKeysEnv(t)
	res := e.do(t, "GET", "/.well-known/openid-configuration", "")
	res.want(t, http.StatusOK, `{"issuer":"https://dcon.example.com","jwks_uri":"https://dcon.example.com/.well-known/jwks.json"}`)
	if cc := res.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestJWKSDocument(t *testing.T) {
	t.Parallel()
	e, keys := newKeysEnv(t)
	res := e.do(t, "GET", "/.well-known/jwks.json", "")
	res.want(t, http.StatusOK, "")
	parsed, err := signature.ParseJWKS([]byte(res.body))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parsed[keys.ActiveKeyID()]; !ok || len(parsed) != 1 {
		t.Fatalf("JWKS %s, want the active key alone", res.body)
	}
	if cc := res.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	etag := res.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q", etag)
	}

	// Revalidation: 304 while the keys are the same, 200 after a rotation.
	for _, tt := range []struct {
		inm  string
		want int
	}{{etag, http.StatusNotModified}, {"W/" + etag, http.StatusNotModified}, {`"other", ` + etag, http.StatusNotModified}, {`"other"`, http.StatusOK}} {
		req, _ := http.NewRequest("GET", e.url+"/.well-known/jwks.json", nil)
		req.Header.Set("If-None-Match", tt.inm)
		r, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != tt.want {
			t.Errorf("If-None-Match %s: status %d, want %d", tt.inm, r.StatusCode, tt.want)
		}
	}
	e.do(t, "POST", "/v2/keys:rotate", "").want(t, http.StatusOK, "")
	if got := e.do(t, "GET", "/.well-known/jwks.json", ""); got.header.Get("ETag") == etag {
		t.Error("the ETag did not change with the keys")
	}
}

func TestRotateKeys(t *testing.T) {
	t.Parallel()
	e, keys := newKeysEnv(t)
	var before keysResource
	e.do(t, "GET", "/v2/keys", "").decode(t, &before)
	if before.ActiveKeyID != keys.ActiveKeyID() || len(before.Keys) != 1 {
		t.Fatalf("GET /v2/keys = %+v", before)
	}
	var after keysResource
	e.do(t, "POST", "/v2/keys:rotate", `{}`).decode(t, &after)
	if after.ActiveKeyID == before.ActiveKeyID || after.ActiveKeyID != keys.ActiveKeyID() {
		t.Fatalf("after rotation the active key is %s (was %s, set says %s)", after.ActiveKeyID, before.ActiveKeyID, keys.ActiveKeyID())
	}
	// Both keys are published during the overlap, the new one first.
	var kids []string
	for _, raw := range after.Keys {
		var k struct{ Kid string }
		json.Unmarshal(raw, &k)
		kids = append(kids, k.Kid)
	}
	if len(kids) != 2 || kids[0] != after.ActiveKeyID || kids[1] != before.ActiveKeyID {
		t.Errorf("kids %v, want [new old]", kids)
	}
	var listed keysResource
	e.do(t, "GET", "/v2/keys", "").decode(t, &listed)
	if listed.ActiveKeyID != after.ActiveKeyID || len(listed.Keys) != 2 {
		t.Errorf("GET /v2/keys after a rotation = %+v", listed)
	}
}

func TestKeyEndpointErrors(t *testing.T) {
	t.Parallel()
	e, keys := newKeysEnv(t)
	e.do(t, "GET", "/v2/keys:rotate", "").wantError(t, http.StatusMethodNotAllowed, "method GET is not allowed on /v2/keys:rotate; allowed: POST")
	e.do(t, "POST", "/.well-known/jwks.json", "").wantError(t, http.StatusMethodNotAllowed, "method POST is not allowed on /.well-known/jwks.json; allowed: GET, HEAD")
	e.do(t, "GET", "/.well-known/other", "").wantError(t, http.StatusNotFound, "no resource at /.well-known/other")
	e.do(t, "GET", "/v2/keys:list", "").wantError(t, http.StatusNotFound, "no resource at /v2/keys:list")

	keys.mu.Lock()
	keys.fail = dcon.Errorf(dcon.EUNAVAILABLE, "cannot save the signing keys")
	keys.mu.Unlock()
	e.do(t, "POST", "/v2/keys:rotate", "").wantError(t, http.StatusServiceUnavailable, "cannot save the signing keys")

	// The API behind is still served.
	e.do(t, "GET", "/v2/projects/"+project+"/dataconnectors", "").want(t, http.StatusOK, `{"dataConnectors":[],"nextPageToken":""}`)
}
