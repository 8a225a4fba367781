package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"dcon"
)

// hostileDNS is the resolver of TestHostileInputs: names of the test and the
// addresses they resolve to.
func hostileDNS(_ context.Context, host string) ([]netip.Addr, error) {
	answers := map[string][]string{
		"public.example":   {"93.184.216.34"},
		"internal.example": {"10.0.0.5"},
		"meta.example":     {"169.254.169.254"},
		"v6local.example":  {"::1"},
		"mapped.example":   {"::ffff:127.0.0.1"},
		"mixed.example":    {"93.184.216.34", "192.168.1.10"},
	}
	var addrs []netip.Addr
	for _, a := range answers[host] {
		addrs = append(addrs, netip.MustParseAddr(a))
	}
	if addrs == nil {
		return nil, errors.New("no such host")
	}
	return addrs, nil
}

// dumpStore returns every key and value of the store in dir, which no process
// has open.
func dumpStore(t *testing.T, dir string) map[string]string {
	t.Helper()
	db, err := cpebble.Open(dir, &cpebble.Options{ReadOnly: true, Logger: quietPebble{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	kv := map[string]string{}
	for it.First(); it.Valid(); it.Next() {
		kv[string(it.Key())] = string(it.Value())
	}
	return kv
}

// quietPebble keeps Pebble's messages out of the output, fatal ones aside.
type quietPebble struct{ t *testing.T }

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (q quietPebble) Fatalf(format string, args ...any) {
	q.t.Fatalf(format, args...)
}

// hostileNode runs a node with the strict destination policy and no
// authentication, on dir, until the returned func stops it.
func hostileNode(t *testing.T, dir string) (url string, stop func()) {
	t.Helper()
	cfg := serveConfig{
		Data: dir, Timeout: 10 * time.Second, RetryInitial: time.Second, RetryMax: time.Minute, NoAuth: true,
		Security: securityConfig{Destinations: &dcon.DestinationPolicy{}, LookupIP: hostileDNS},
	}
	n, err := openNode(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	return srv.URL, func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	}
}

func hostileCall(t *testing.T, base, method, path, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestHostileInputs sends requests an attacker or a broken client could send
// — oversized, malformed, of the wrong types, with unknown fields, CRLF in
// headers, endpoints on loopback, private, link-local or metadata addresses
// in every spelling, names resolving to them — and checks that each is
// answered with the right 4xx and that the store, read raw before and after,
// is unchanged to the byte.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	// The baseline: a project, a connector, a device.
	base, stop := hostileNode(t, dir)
	var res struct {
		Name string `json:"name"`
	}
	mustJSON := func(method, path, body string) {
		status, out := hostileCall(t, base, method, path, body)
		if status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, status, out)
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
	}
	mustJSON("POST", "/v2/projects", `{"displayName":"hostile"}`)
	p := "/v2/projects/" + strings.TrimPrefix(res.Name, "projects/")
	mustJSON("POST", p+"/dataconnectors", `{"type":"HTTP_PUSH","status":"USER_DISABLED","httpConfig":{"url":"https://public.example/hook","signatureSecret":"s3cret-value"}}`)
	conn := "/v2/" + res.Name
	mustJSON("POST", p+"/devices", `{"type":"temperature","labels":{"name":"office"}}`)
	dev := "/v2/" + res.Name
	stop()
	before := dumpStore(t, dir)

	conns := p + "/dataconnectors"
	create := func(httpConfig string) string {
		return `{"type":"HTTP_PUSH","httpConfig":` + httpConfig + `}`
	}
	withURL := func(u string) string { return create(`{"url":"` + u + `"}`) }
	withHeaders := func(h string) string { return create(`{"url":"https://public.example/","headers":` + h + `}`) }
	manyHeaders := map[string]string{}
	for i := range 33 {
		manyHeaders[fmt.Sprintf("X-H%02d", i)] = "v"
	}
	many, _ := json.Marshal(manyHeaders)
	manyLabels := map[string]string{}
	for i := range 65 {
		manyLabels[fmt.Sprintf("l%d", i)] = "v"
	}
	labels, _ := json.Marshal(map[string]any{"labels": manyLabels})

	tests := []struct {
		name, method, path, body string
		header                   []string
		want                     int
	}{
		// Size and shape.
		{"oversized body", "POST", conns, `{"displayName":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413},
		{"oversized publish", "POST", dev + ":publish", `{"temperature":{"value":1,"x":"` + strings.Repeat("a", 1<<20) + `"}}`, nil, 413},
		{"empty body", "POST", conns, ``, nil, 400},
		{"malformed JSON", "POST", conns, `{"type":`, nil, 400},
		{"not an object", "POST", conns, `["HTTP_PUSH"]`, nil, 400},
		{"trailing data", "POST", conns, withURL("https://public.example/") + `{}`, nil, 400},
		{"nested 40 deep", "POST", conns, `{"labels":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, nil, 400},
		{"10,001 members", "POST", conns, `{"events":[` + strings.Repeat(`"touch",`, 10000) + `"touch"]}`, nil, 400},
		{"not JSON media type", "POST", conns, withURL("https://public.example/"), []string{"Content-Type", "text/plain"}, 415},
		{"display name an object", "POST", conns, `{"type":"HTTP_PUSH","displayName":{"a":1},"httpConfig":{"url":"https://public.example/"}}`, nil, 400},

		// Wrong types and unknown fields.
		{"type a number", "POST", conns, `{"type":1,"httpConfig":{"url":"https://public.example/"}}`, nil, 400},
		{"events a string", "POST", conns, `{"type":"HTTP_PUSH","events":"touch","httpConfig":{"url":"https://public.example/"}}`, nil, 400},
		{"labels an object", "POST", conns, `{"type":"HTTP_PUSH","labels":{"a":"b"},"httpConfig":{"url":"https://public.example/"}}`, nil, 400},
		{"headers an array", "POST", conns, withHeaders(`["X-A: b"]`), nil, 400},
		{"unknown field", "POST", conns, `{"type":"HTTP_PUSH","owner":"me","httpConfig":{"url":"https://public.example/"}}`, nil, 400},
		{"unknown httpConfig field", "POST", conns, create(`{"url":"https://public.example/","proxy":"http://10.0.0.1"}`), nil, 400},
		{"unknown event type", "POST", conns, `{"type":"HTTP_PUSH","events":["nope"],"httpConfig":{"url":"https://public.example/"}}`, nil, 400},
		{"status SYSTEM_DISABLED", "POST", conns, `{"type":"HTTP_PUSH","status":"SYSTEM_DISABLED","httpConfig":{"url":"https://public.example/"}}`, nil, 400},
		{"display name 257 bytes", "POST", conns, `{"type":"HTTP_PUSH","displayName":"` + strings.Repeat("a", 257) + `","httpConfig":{"url":"https://public.example/"}}`, nil, 400},
		{"secret 1025 bytes", "POST", conns, create(`{"url":"https://public.example/","signatureSecret":"` + strings.Repeat("k", 1025) + `"}`), nil, 400},
		{"bad whsec", "POST", conns, create(`{"url":"https://public.example/","standardWebhookSecrets":["whsec_short"]}`), nil, 400},

		// Custom headers.
		{"CRLF in header value", "POST", conns, withHeaders(`{"X-A":"v\r\nHost: evil"}`), nil, 400},
		{"LF in header value", "POST", conns, withHeaders(`{"X-A":"v\nX-Injected: 1"}`), nil, 400},
		{"colon in header name", "POST", conns, withHeaders(`{"X-A: b":"v"}`), nil, 400},
		{"Host header", "POST", conns, withHeaders(`{"host":"internal"}`), nil, 400},
		{"Content-Length header", "POST", conns, withHeaders(`{"Content-Length":"0"}`), nil, 400},
		{"Content-Type header", "POST", conns, withHeaders(`{"Content-Type":"text/plain"}`), nil, 400},
		{"User-Agent header", "POST", conns, withHeaders(`{"User-Agent":"curl"}`), nil, 400},
		{"signature header", "POST", conns, withHeaders(`{"X-Dt-Signature":"forged"}`), nil, 400},
		{"33 headers", "POST", conns, withHeaders(string(many)), nil, 400},
		{"header value over 8 KiB", "POST", conns, withHeaders(`{"X-A":"` + strings.Repeat("v", 8<<10+1) + `"}`), nil, 400},

		// Destinations (SSRF).
		{"http://", "POST", conns, withURL("http://public.example/"), nil, 400},
		{"loopback", "POST", conns, withURL("https://127.0.0.1:8080/"), nil, 400},
		{"localhost", "POST", conns, withURL("https://localhost/"), nil, 400},
		{"IPv6 loopback", "POST", conns, withURL("https://[::1]/"), nil, 400},
		{"IPv4-mapped IPv6 loopback", "POST", conns, withURL("https://[::ffff:127.0.0.1]/"), nil, 400},
		{"IPv4-mapped IPv6 hex", "POST", conns, withURL("https://[::ffff:7f00:1]/"), nil, 400},
		{"cloud metadata", "POST", conns, withURL("https://169.254.169.254/latest/meta-data/"), nil, 400},
		{"private 10/8", "POST", conns, withURL("https://10.0.0.1/"), nil, 400},
		{"private 172.16/12", "POST", conns, withURL("https://172.20.1.1/"), nil, 400},
		{"CGNAT", "POST", conns, withURL("https://100.64.0.1/"), nil, 400},
		{"unique local IPv6", "POST", conns, withURL("https://[fd00::1]/"), nil, 400},
		{"link-local IPv6 with zone", "POST", conns, withURL("https://[fe80::1%25eth0]/"), nil, 400},
		{"multicast", "POST", conns, withURL("https://224.0.0.1/"), nil, 400},
		{"unspecified", "POST", conns, withURL("https://0.0.0.0/"), nil, 400},
		{"decimal IPv4", "POST", conns, withURL("https://2130706433/"), nil, 400},
		{"octal IPv4", "POST", conns, withURL("https://0177.0.0.1/"), nil, 400},
		{"hex IPv4", "POST", conns, withURL("https://0x7f.0.0.1/"), nil, 400},
		{"short IPv4", "POST", conns, withURL("https://127.1/"), nil, 400},
		{"name resolving to private", "POST", conns, withURL("https://internal.example/"), nil, 400},
		{"name resolving to metadata", "POST", conns, withURL("https://meta.example/"), nil, 400},
		{"name resolving to IPv6 loopback", "POST", conns, withURL("https://v6local.example/"), nil, 400},
		{"name resolving to mapped loopback", "POST", conns, withURL("https://mapped.example/"), nil, 400},
		{"name resolving to public and private", "POST", conns, withURL("https://mixed.example:8443/"), nil, 400},
		{"PATCH to a private name", "PATCH", conn, `{"httpConfig":{"url":"https://internal.example/"}}`, nil, 400},
		{"PATCH to loopback", "PATCH", conn + "?update_mask=httpConfig.url", `{"httpConfig":{"url":"https://[::1]/"}}`, nil, 400},
		{"PATCH CRLF header", "PATCH", conn, `{"httpConfig":{"headers":{"X-A":"\r\n"}}}`, nil, 400},
		{"PATCH unknown mask", "PATCH", conn + "?update_mask=httpConfig.secret", `{}`, nil, 400},
		{"PATCH foreign whsec mask", "PATCH", conn, `{"httpConfig":{"standardWebhookSecrets":["whsec_****deadbeef"]}}`, nil, 400},

		// Devices and events.
		{"device of unknown type", "POST", p + "/devices", `{"type":"toaster"}`, nil, 400},
		{"device label with CR", "POST", p + "/devices", `{"type":"touch","labels":{"name":"a\rb"}}`, nil, 400},
		{"device with 65 labels", "POST", p + "/devices", `{"type":"touch",` + string(labels[1:]), nil, 400},
		{"device labels a string", "PATCH", dev, `{"labels":"name=x"}`, nil, 400},
		{"publish malformed", "POST", dev + ":publish", `{"temperature":{"value":}}`, nil, 400},
		{"publish value a string", "POST", dev + ":publish", `{"temperature":{"value":"hot"}}`, nil, 400},
		{"publish unknown field", "POST", dev + ":publish", `{"temperature":{"value":1,"unit":"F"}}`, nil, 400},
		{"publish wrong event type", "POST", dev + ":publish", `{"co2":{"ppm":400}}`, nil, 400},
		{"publish labelsChanged", "POST", dev + ":publish", `{"labelsChanged":{"added":{"a":"b"}}}`, nil, 400},
		{"publish two types", "POST", dev + ":publish", `{"temperature":{"value":1},"touch":{}}`, nil, 400},
		{"publish bad time", "POST", dev + ":publish", `{"temperature":{"value":1,"updateTime":"yesterday"}}`, nil, 400},

		// Projects and paths.
		{"project display name 257 bytes", "POST", "/v2/projects", `{"displayName":"` + strings.Repeat("a", 257) + `"}`, nil, 400},
		{"project bad organization", "POST", "/v2/projects", `{"organization":"../../etc"}`, nil, 400},
		{"invalid project id", "POST", "/v2/projects/..%2F..%2Fx/dataconnectors", withURL("https://public.example/"), nil, 404},
		{"other project", "POST", "/v2/projects/c14u9p094l47cdv1o3pg/dataconnectors", withURL("https://public.example/"), nil, 404},
	}
	if len(tests) < 40 {
		t.Fatalf("%d hostile inputs, want at least 40", len(tests))
	}

	base, stop = hostileNode(t, dir)
	for _, tt := range tests {
		status, body := hostileCall(t, base, tt.method, tt.path, tt.body, tt.header...)
		if status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, status, body, tt.want)
			continue
		}
		var e struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != status || e.Error == "" {
			t.Errorf("%s: body %s is not the contract's error", tt.name, body)
		}
		if strings.Contains(body, "s3cret-value") || bytes.ContainsAny([]byte(body), "\r") {
			t.Errorf("%s: body %q holds a secret or a CR", tt.name, body)
		}
	}
	stop()
	after := dumpStore(t, dir)
	if !maps.Equal(before, after) {
		for k, v := range after {
			if before[k] != v {
				t.Errorf("store changed at key %q", k)
			}
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Errorf("store lost key %q", k)
			}
		}
	}
}
