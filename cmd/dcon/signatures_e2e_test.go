package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dcon"
	"dcon/internal/signature"
	"dcon/receiver"
)

// startSigningNode is startNode with the API on a port chosen before the
// node opens, so that the node's issuer is its own URL and receivers can
// discover its keys. It returns the client and the issuer.
func startSigningNode(t *testing.T, cfg serveConfig) (*apiClient, string) {
	t.Helper()
	cfg.NoAuth = true // this test is about signatures, not access control
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "http://" + ln.Addr().String()
	if cfg.Data == "" {
		cfg.Data = t.TempDir()
	}
	cfg.Timeout = 10 * time.Second
	cfg.RetryInitial, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	n, err := openNode(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	api := httptest.NewUnstartedServer(n.Handler())
	api.Listener.Close()
	api.Listener = ln
	api.Start()
	t.Cleanup(func() {
		api.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	c := &apiClient{t: t, base: api.URL, http: api.Client()}
	c.project = createProject(c)
	return c, cfg.Issuer
}

// asRequest rebuilds what a receiver got as the request its handler sees.
func asRequest(r received) *http.Request {
	req := httptest.NewRequest(http.MethodPost, r.Path, strings.NewReader(string(r.Body)))
	req.Header = r.Header.Clone()
	return req
}

// es256Kid returns the kid of a request's DT-Asymmetric-Signature.
func es256Kid(t *testing.T, r received) string {
	t.Helper()
	var tok jwtHeader
	part, _, _ := strings.Cut(r.Header.Get("DT-Asymmetric-Signature"), ".")
	if err := tok.decode(part); err != nil || tok.Kid == "" {
		t.Fatalf("DT-Asymmetric-Signature %q: no kid (%v)", r.Header.Get("DT-Asymmetric-Signature"), err)
	}
	return tok.Kid
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

func (h *jwtHeader) decode(part string) error {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, h)
}

// TestSignaturesEndToEnd: a real node signs every request with
// X-Dt-Signature and DT-Asymmetric-Signature by default; one receiver
// Verifier, configured with the node's issuer and found its keys by OIDC
// discovery, verifies events signed before, across and after a key rotation;
// a connector with Standard Webhooks secrets is verified by them.
func TestSignaturesEndToEnd(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	api, issuer := startSigningNode(t, serveConfig{CAFile: rc.caFile(t)})

	// The discovery document and the JWKS, cacheable.
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json"} {
		res, err := api.http.Get(api.base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "public, max-age=300" || res.Header.Get("ETag") == "" {
			t.Errorf("GET %s: %d, Cache-Control %q, ETag %q", path, res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("ETag"))
		}
	}

	var def struct {
		HTTPConfig struct {
			AsymmetricSignature    bool     `json:"asymmetricSignature"`
			StandardWebhookSecrets []string `json:"standardWebhookSecrets"`
		} `json:"httpConfig"`
	}
	api.mustCall("POST", "/v2/projects/"+api.project+"/dataconnectors", map[string]any{
		"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/default", "signatureSecret": "s3cret"},
	}, &def)
	if !def.HTTPConfig.AsymmetricSignature || def.HTTPConfig.StandardWebhookSecrets == nil || len(def.HTTPConfig.StandardWebhookSecrets) != 0 {
		t.Fatalf("default connector httpConfig %+v, want asymmetricSignature true and standardWebhookSecrets []", def.HTTPConfig)
	}
	whsec := signature.NewWhsec()
	createConnector(api, map[string]any{
		"type": "HTTP_PUSH",
		"httpConfig": map[string]any{"url": rc.URL + "/standard", "asymmetricSignature": false,
			"standardWebhookSecrets": []string{whsec}},
	})

	v, err := receiver.NewVerifier(receiver.Config{
		Secrets:        []string{"s3cret"},
		Issuer:         issuer,
		Subject:        dcon.DefaultOrganization,
		JWKSMinRefresh: time.Millisecond, // refetch at once on the rotated kid
	})
	if err != nil {
		t.Fatal(err)
	}
	dev := createDevice(api, "temperature", nil)
	deliveredTo := func(path, id string) received {
		t.Helper()
		var got received
		rc.waitFor(t, path+" gets "+id, 30*time.Second, func(rs []received) bool {
			for _, r := range rs {
				if r.Path == path && eventID(r.Body) == id {
					got = r
					return true
				}
			}
			return false
		})
		return got
	}
	publishOne := func() string {
		t.Helper()
		var ev struct {
			EventID string `json:"eventId"`
		}
		if err := json.Unmarshal(publish(api, dev, "temperature", map[string]any{"value": 21.5}), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.EventID
	}

	// Before the rotation.
	before := deliveredTo("/default", publishOne())
	if err := v.Verify(asRequest(before), before.Body); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	oldKid := es256Kid(t, before)

	var rotated struct {
		ActiveKeyID string            `json:"activeKeyId"`
		Keys        []json.RawMessage `json:"keys"`
	}
	api.mustCall("POST", "/v2/keys:rotate", map[string]any{}, &rotated)
	if rotated.ActiveKeyID == oldKid || len(rotated.Keys) != 2 {
		t.Fatalf("rotation answered active %s with %d keys; the old kid is %s", rotated.ActiveKeyID, len(rotated.Keys), oldKid)
	}

	// After the rotation: the new kid makes the same Verifier refetch the JWKS.
	after := deliveredTo("/default", publishOne())
	if kid := es256Kid(t, after); kid != rotated.ActiveKeyID {
		t.Fatalf("signed with %s after the rotation, want %s", kid, rotated.ActiveKeyID)
	}
	if err := v.Verify(asRequest(after), after.Body); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
	// Across it: a token of the old key, checked against the JWKS fetched
	// after the rotation, still verifies during the overlap.
	if err := v.Verify(asRequest(before), before.Body); err != nil {
		t.Fatalf("a request signed before the rotation, checked after it: %v", err)
	}

	// Standard Webhooks: the event id as webhook-id; no ES256 where turned off.
	sv, err := receiver.NewVerifier(receiver.Config{StandardSecrets: []string{whsec}})
	if err != nil {
		t.Fatal(err)
	}
	deliveredTo("/standard", eventID(before.Body))
	deliveredTo("/standard", eventID(after.Body))
	for _, r := range rc.requests() {
		if r.Path != "/standard" {
			continue
		}
		if err := sv.Verify(asRequest(r), r.Body); err != nil {
			t.Errorf("Standard Webhooks: %v", err)
		}
		if r.Header.Get("webhook-id") != eventID(r.Body) {
			t.Errorf("webhook-id %q, want the event id %q", r.Header.Get("webhook-id"), eventID(r.Body))
		}
		if r.Header.Get("DT-Asymmetric-Signature") != "" || r.Header.Get("X-Dt-Signature") != "" {
			t.Errorf("/standard got signatures it turned off or has no secret for: %v", r.Header)
		}
	}
}

// TestSigningKeysPersist: a first start generates a key in a 0600 file; a
// rotation is saved; a restart signs with the rotated key and still
// publishes the old one.
func TestSigningKeysPersist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k, err := loadKeySet(dir, time.Hour, now, log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, keysFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("keys file mode %v, want 0600", perm)
	}
	first := k.ActiveKeyID()
	again, err := loadKeySet(dir, time.Hour, now, log)
	if err != nil || again.ActiveKeyID() != first {
		t.Fatalf("reload: active %v (%v), want %s", again, err, first)
	}

	second, err := k.Rotate(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := loadKeySet(dir, time.Hour, now.Add(time.Minute), log)
	if err != nil {
		t.Fatal(err)
	}
	if restarted.ActiveKeyID() != second {
		t.Fatalf("after a restart the active key is %s, want the rotated %s", restarted.ActiveKeyID(), second)
	}
	for _, tt := range []struct {
		at   time.Time
		want int
	}{{now.Add(time.Minute), 2}, {now.Add(time.Hour + time.Second), 1}} {
		jwks, err := restarted.JWKS(tt.at)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := signature.ParseJWKS(jwks)
		if err != nil || len(keys) != tt.want {
			t.Errorf("JWKS at %v has %d keys (%v), want %d", tt.at, len(keys), err, tt.want)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(dir, keysFile+".tmp-*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}

	if err := os.WriteFile(filepath.Join(dir, keysFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadKeySet(dir, 0, now, log); err == nil {
		t.Error("a damaged keys file was accepted")
	}
}

func TestResolveIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		issuer, addr, want string
		bad                bool
	}{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{"", "", "http://127.0.0.1:8080", false},
		{"https://dcon.example.com/", "127.0.0.1:8080", "https://dcon.example.com", false},
		{"https://example.com/dcon", "", "https://example.com/dcon", false},
		{"dcon.example.com", "", "", true},
		{"ftp://dcon.example.com", "", "", true},
		{"https://dcon.example.com/?x=1", "", "", true},
		{"https://dcon.example.com/#f", "", "", true},
	}
	for _, tt := range tests {
		got, err := resolveIssuer(tt.issuer, tt.addr)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("resolveIssuer(%q, %q) = %q, %v; want %q (error: %v)", tt.issuer, tt.addr, got, err, tt.want, tt.bad)
		}
	}
}

// TestCLIKeys: dcon keys list and rotate against a real node.
func TestCLIKeys(t *testing.T) {
	t.Parallel()
	api := startNode(t, serveConfig{})
	list := mustCLI(t, api.base, "keys", "list")
	lines := strings.Split(strings.TrimSpace(list.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "KID") || !strings.Contains(lines[1], "active") || !strings.Contains(lines[1], "ES256") {
		t.Fatalf("keys list:\n%s", list.stdout)
	}
	oldKid := strings.Fields(lines[1])[0]

	var rotated struct {
		ActiveKeyID string `json:"activeKeyId"`
		Keys        []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	r := mustCLI(t, api.base, "keys", "rotate", "--output", "json")
	if err := json.Unmarshal([]byte(r.stdout), &rotated); err != nil {
		t.Fatalf("keys rotate --output json: %v\n%s", err, r.stdout)
	}
	if rotated.ActiveKeyID == oldKid || len(rotated.Keys) != 2 || rotated.Keys[1].Kid != oldKid {
		t.Fatalf("after rotate: %+v (old kid %s)", rotated, oldKid)
	}
	list = mustCLI(t, api.base, "keys", "list")
	if !strings.Contains(list.stdout, rotated.ActiveKeyID+"  active") || !strings.Contains(list.stdout, oldKid+"  retired") {
		t.Errorf("keys list after rotate:\n%s", list.stdout)
	}
}
