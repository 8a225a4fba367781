package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// pyClient drives dcon the way the original product's Python client does:
// the same paths, request bodies, query parameters and response fields,
// written from the contract and that client's public source. Every response
// is read the way the client reads it — by indexing fields without checking
// that they exist — so a missing field fails here as it would crash there.
type pyClient struct {
	t    *testing.T
	base string // the client's base_url (and emulator_base_url): <server>/v2
	http *http.Client
	// auth, when set, is the Authorization header the client sends:
	// disruptive.Auth.basic or disruptive.Auth.service_account (pyServiceAccountAuth).
	auth string
}

// do sends a request as the client's requests.request(json=body) does and
// decodes the answer as response.json() does.
func (c *pyClient) do(method, path string, params url.Values, body any) map[string]any {
	c.t.Helper()
	var payload io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		payload = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, payload)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.URL.RawQuery = params.Encode()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatalf("%s %s: the answer is not JSON (the client calls response.json()): %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: status %d: %v", method, path, resp.StatusCode, out)
	}
	return out
}

// paginatedGet is the client's auto_paginated_list: pageSize and pageToken,
// until nextPageToken is "".
func (c *pyClient) paginatedGet(path, key string, pageSize int) []any {
	c.t.Helper()
	params := url.Values{"pageSize": {itoa(pageSize)}}
	var all []any
	for range 100 {
		page := c.do("GET", path, params, nil)
		all = append(all, field[[]any](c.t, page, key)...)
		next := field[string](c.t, page, "nextPageToken")
		if next == "" {
			return all
		}
		params.Set("pageToken", next)
	}
	c.t.Fatal("pagination did not end")
	return nil
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// field reads m[key] as a T, failing the test as the client would crash.
func field[T any](t *testing.T, m map[string]any, key string) T {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Fatalf("response lacks %q (the client reads it unchecked): %v", key, m)
	}
	tv, ok := v.(T)
	if !ok {
		t.Fatalf("response field %q is %T, want %T", key, v, tv)
	}
	return tv
}

// unpackDataConnector reads what the client's DataConnector.__init__ reads.
func unpackDataConnector(t *testing.T, dc map[string]any) (id, projectID string) {
	t.Helper()
	name := field[string](t, dc, "name")
	parts := strings.Split(name, "/")
	field[string](t, dc, "status")
	field[string](t, dc, "displayName")
	field[[]any](t, dc, "events")
	field[[]any](t, dc, "labels")
	if field[string](t, dc, "type") == "HTTP_PUSH" {
		cfg := field[map[string]any](t, dc, "httpConfig")
		field[string](t, cfg, "url")
		field[string](t, cfg, "signatureSecret")
		field[map[string]any](t, cfg, "headers")
	}
	return parts[len(parts)-1], parts[1]
}

// pyServiceAccountAuth does what the client's Auth.service_account does with
// a credentials file's keyId, secret, email and tokenEndpoint: it signs an
// HS256 JWT (header alg and kid; claims iat, exp = iat + 3600, aud = the
// token endpoint, iss = the email) with the secret, posts it form-encoded as
// an RFC 7523 assertion, reads access_token and expires_in, and answers the
// header "Bearer <access_token>".
func pyServiceAccountAuth(t *testing.T, keyID, secret, email, tokenEndpoint string) string {
	t.Helper()
	now := time.Now().Unix()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iat": now, "exp": now + 3600, "aud": tokenEndpoint, "iss": email})
	tok.Header = map[string]any{"alg": "HS256", "kid": keyID, "typ": "JWT"}
	encoded, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"assertion": {encoded}, "grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}}
	resp, err := http.Post(tokenEndpoint, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %d %v %v", resp.StatusCode, out, err)
	}
	field[float64](t, out, "expires_in")
	field[string](t, out, "token_type")
	return "Bearer " + field[string](t, out, "access_token")
}

// TestPythonClientCompatibility runs, against a real dcon, the calls the
// original client makes for projects, data connectors and the emulator:
// without authentication (as in --dev), with HTTP Basic, and with the OAuth2
// JWT-bearer flow from a credentials file.
func TestPythonClientCompatibility(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"no auth", "basic", "service account"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			rc := newTestReceiver(t)
			if mode == "no auth" {
				api := startNode(t, serveConfig{CAFile: rc.caFile(t)})
				pythonClientCalls(t, rc, &pyClient{t: t, base: api.base + "/v2", http: api.http})
				return
			}
			a := startAuthNode(t, serveConfig{CAFile: rc.caFile(t)})
			sa := a.creds.ServiceAccount
			c := &pyClient{t: t, base: a.creds.APIURL, http: &http.Client{}, auth: basic(sa.KeyID, sa.Secret)}
			if mode == "service account" {
				c.auth = pyServiceAccountAuth(t, sa.KeyID, sa.Secret, sa.Email, sa.TokenEndpoint)
			}
			pythonClientCalls(t, rc, c)
		})
	}
}

// pythonClientCalls makes the client's calls through c.
func pythonClientCalls(t *testing.T, rc *testReceiver, c *pyClient) {

	// Project.create_project(organization_id, display_name)
	p := c.do("POST", "/projects", nil, map[string]any{"organization": "organizations/" + "default", "displayName": "compat"})
	projectID := strings.Split(field[string](t, p, "name"), "/")[1]
	for _, k := range []string{"displayName", "organization", "organizationDisplayName"} {
		field[string](t, p, k)
	}
	field[float64](t, p, "sensorCount")
	field[float64](t, p, "cloudConnectorCount")
	field[bool](t, p, "inventory")

	// DataConnector.create_data_connector(...): status, events, labels always
	// sent; displayName only when not empty; the config under httpConfig.
	dc := c.do("POST", "/projects/"+projectID+"/dataconnectors", nil, map[string]any{
		"status": "ACTIVE", "events": []string{}, "labels": []string{"name"}, "displayName": "my-first-dcon",
		"type":       "HTTP_PUSH",
		"httpConfig": map[string]any{"url": rc.URL, "signatureSecret": "some-good-secret", "headers": map[string]string{"x-api-key": "k"}},
	})
	dcID, dcProject := unpackDataConnector(t, dc)
	if dcProject != projectID {
		t.Errorf("project id from the connector's name = %q, want %q", dcProject, projectID)
	}
	// A second one, created with the client's defaults (no display name).
	c.do("POST", "/projects/"+projectID+"/dataconnectors", nil, map[string]any{
		"status": "USER_DISABLED", "events": []string{"touch"}, "labels": []string{},
		"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/second"},
	})

	// list_data_connectors: paginated with pageSize/pageToken.
	dcs := c.paginatedGet("/projects/"+projectID+"/dataconnectors", "dataConnectors", 1)
	if len(dcs) != 2 {
		t.Fatalf("listed %d data connectors, want 2", len(dcs))
	}
	for _, d := range dcs {
		unpackDataConnector(t, d.(map[string]any))
	}

	// update_data_connector: only the given fields, httpConfig partial.
	up := c.do("PATCH", "/projects/"+projectID+"/dataconnectors/"+dcID, nil, map[string]any{
		"displayName": "new-name", "httpConfig": map[string]any{"headers": map[string]string{"x-api-key": "k2"}},
	})
	unpackDataConnector(t, up)
	cfg := field[map[string]any](t, up, "httpConfig")
	if field[string](t, up, "displayName") != "new-name" || field[string](t, cfg, "url") != rc.URL ||
		field[string](t, cfg, "signatureSecret") != "" || !field[bool](t, cfg, "signatureSecretSet") || field[map[string]any](t, cfg, "headers")["x-api-key"] != "k2" {
		t.Errorf("partial update changed the wrong fields: %v", up)
	}

	// Emulator.create_device(project_id, device_type, display_name, labels):
	// the display name goes in as the label "name".
	dev := c.do("POST", "/projects/"+projectID+"/devices", nil, map[string]any{"type": "temperature", "labels": map[string]string{"name": "office"}})
	devID := field[string](t, dev, "name")[strings.LastIndexByte(field[string](t, dev, "name"), '/')+1:]
	if !strings.HasPrefix(devID, "emu") || len(devID) != 23 {
		t.Errorf("device id %q: the client treats a device as emulated when its id starts with emu and is 23 long", devID)
	}
	field[string](t, dev, "type")
	field[map[string]any](t, dev, "labels")
	if devs := c.paginatedGet("/projects/"+projectID+"/devices", "devices", 100); len(devs) != 1 {
		t.Errorf("listed %d devices, want 1", len(devs))
	}

	// Emulator.publish_event(device_id, project_id, data): {event_type: data._raw}.
	c.do("POST", "/projects/"+projectID+"/devices/"+devID+":publish", nil, map[string]any{
		"temperature": map[string]any{"value": 21.5, "updateTime": "2026-11-25T10:00:00Z"},
	})
	c.do("POST", "/projects/"+projectID+"/devices/"+devID+":publish", nil, map[string]any{
		"touch": map[string]any{"updateTime": time.Now().UTC().Format(time.RFC3339Nano)},
	})
	rc.waitFor(t, "two deliveries", 10*time.Second, func(got []received) bool { return len(got) >= 2 })

	// get_metrics: metrics.successCount, errorCount, latency99p.
	waitForMetrics := time.Now().Add(10 * time.Second)
	for {
		m := field[map[string]any](t, c.do("GET", "/projects/"+projectID+"/dataconnectors/"+dcID+":metrics", nil, nil), "metrics")
		latency := field[string](t, m, "latency99p")
		if field[float64](t, m, "successCount") == 2 && field[float64](t, m, "errorCount") == 0 && strings.HasSuffix(latency, "s") {
			break
		}
		if time.Now().After(waitForMetrics) {
			t.Fatalf("metrics = %v, want 2 successes", m)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// sync_data_connector: a POST with no body at all.
	c.do("POST", "/projects/"+projectID+"/dataconnectors/"+dcID+":sync", nil, nil)
	rc.waitFor(t, "the synced events", 10*time.Second, func(got []received) bool { return len(got) >= 4 })

	// delete_data_connector and Emulator.delete_device: the client still calls
	// response.json() on the answer.
	c.do("DELETE", "/projects/"+projectID+"/dataconnectors/"+dcID, nil, nil)
	c.do("DELETE", "/projects/"+projectID+"/devices/"+devID, nil, nil)
}
