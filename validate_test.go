package dcon_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"dcon"
)

// validConnector returns a connector that passes ValidateConnector with the
// default rules; each test case changes one thing.
func validConnector() *dcon.Connector {
	return &dcon.Connector{
		ProjectID:   "c14u9p094l47cdv1o3pg",
		ID:          "c16pegipidie7lltrefg",
		DisplayName: "my-new-dcon",
		Type:        dcon.ConnectorHTTPPush,
		Status:      dcon.StatusActive,
		Events:      []dcon.EventType{dcon.EventTouch, dcon.EventTemperature, dcon.EventObjectPresent},
		Labels:      []string{"name", "custom-label-01"},
		HTTP: dcon.HTTPConfig{
			URL:             "https://example.com/api/endpoint",
			SignatureSecret: "some-very-good-secret",
			Headers:         map[string]string{"some-header": "abc123"},
		},
	}
}

func TestValidateConnector(t *testing.T) {
	t.Parallel()
	manyHeaders := map[string]string{}
	for i := range 33 {
		manyHeaders[fmt.Sprintf("X-H%02d", i)] = "v"
	}
	manyLabels := make([]string, 65)
	for i := range manyLabels {
		manyLabels[i] = fmt.Sprintf("l%d", i)
	}
	tests := []struct {
		name   string
		change func(c *dcon.Connector)
		rules  dcon.ConnectorRules
		want   string // the error message; "" for no error
	}{
		{"valid", func(c *dcon.Connector) {}, dcon.ConnectorRules{}, ""},
		{"minimal", func(c *dcon.Connector) {
			*c = dcon.Connector{Type: dcon.ConnectorHTTPPush, Status: dcon.StatusActive, HTTP: dcon.HTTPConfig{URL: "https://example.com"}}
		}, dcon.ConnectorRules{}, ""},

		// Type and status.
		{"no type", func(c *dcon.Connector) { c.Type = "" }, dcon.ConnectorRules{}, "type: must be HTTP_PUSH"},
		{"other type", func(c *dcon.Connector) { c.Type = "HTTP_PULL" }, dcon.ConnectorRules{}, "type: must be HTTP_PUSH"},
		{"user disabled", func(c *dcon.Connector) { c.Status = dcon.StatusUserDisabled }, dcon.ConnectorRules{}, ""},
		{"system disabled", func(c *dcon.Connector) { c.Status = dcon.StatusSystemDisabled }, dcon.ConnectorRules{}, ""},
		{"no status", func(c *dcon.Connector) { c.Status = "" }, dcon.ConnectorRules{}, "status: must be one of ACTIVE, USER_DISABLED, SYSTEM_DISABLED"},
		{"lowercase status", func(c *dcon.Connector) { c.Status = "active" }, dcon.ConnectorRules{}, "status: must be one of ACTIVE, USER_DISABLED, SYSTEM_DISABLED"},

		// Display name.
		{"display name 256 bytes", func(c *dcon.Connector) { c.DisplayName = strings.Repeat("é", 128) }, dcon.ConnectorRules{}, ""},
		{"display name 257 bytes", func(c *dcon.Connector) { c.DisplayName = strings.Repeat("x", 257) }, dcon.ConnectorRules{}, "displayName: over 256 bytes"},
		{"display name not UTF-8", func(c *dcon.Connector) { c.DisplayName = "a\xffb" }, dcon.ConnectorRules{}, "displayName: not valid UTF-8"},

		// Events.
		{"no events", func(c *dcon.Connector) { c.Events = nil }, dcon.ConnectorRules{}, ""},
		{"every event", func(c *dcon.Connector) { c.Events = append([]dcon.EventType(nil), dcon.EventTypes...) }, dcon.ConnectorRules{}, ""},
		{"unknown event", func(c *dcon.Connector) { c.Events = []dcon.EventType{"touch", "co2", "foo"} }, dcon.ConnectorRules{}, `events[2]: unknown event type "foo"`},
		{"duplicate event", func(c *dcon.Connector) { c.Events = []dcon.EventType{"touch", "co2", "touch"} }, dcon.ConnectorRules{}, `events[2]: duplicate event type "touch"`},

		// Labels.
		{"no labels", func(c *dcon.Connector) { c.Labels = nil }, dcon.ConnectorRules{}, ""},
		{"empty label key", func(c *dcon.Connector) { c.Labels = []string{"a", ""} }, dcon.ConnectorRules{}, "labels[1]: key must not be empty"},
		{"long label key", func(c *dcon.Connector) { c.Labels = []string{strings.Repeat("k", 65)} }, dcon.ConnectorRules{}, "labels[0]: key over 64 bytes"},
		{"label key with newline", func(c *dcon.Connector) { c.Labels = []string{"a\nb"} }, dcon.ConnectorRules{}, "labels[0]: key contains a control character"},
		{"duplicate label", func(c *dcon.Connector) { c.Labels = []string{"name", "x", "name"} }, dcon.ConnectorRules{}, `labels[2]: duplicate label key "name"`},
		{"too many labels", func(c *dcon.Connector) { c.Labels = manyLabels }, dcon.ConnectorRules{}, "labels: at most 64 label keys"},

		// URL.
		{"no url", func(c *dcon.Connector) { c.HTTP.URL = "" }, dcon.ConnectorRules{}, "httpConfig.url: required"},
		{"url with port, query", func(c *dcon.Connector) { c.HTTP.URL = "https://8.8.8.8:8443/hook?token=abc" }, dcon.ConnectorRules{}, ""},
		{"url IPv6", func(c *dcon.Connector) { c.HTTP.URL = "https://[2001:4860:4860::8888]:8443/hook" }, dcon.ConnectorRules{}, ""},
		{"url loopback", func(c *dcon.Connector) { c.HTTP.URL = "https://127.0.0.1:8443/hook" }, dcon.ConnectorRules{}, "httpConfig.url: host is a loopback, private, link-local or otherwise non-public address"},
		{"url loopback, dev", func(c *dcon.Connector) { c.HTTP.URL = "https://[::1]:8443/hook" }, dcon.ConnectorRules{AllowHTTP: true}, ""},
		{"url uppercase scheme", func(c *dcon.Connector) { c.HTTP.URL = "HTTPS://example.com/" }, dcon.ConnectorRules{}, ""},
		{"url 2048 bytes", func(c *dcon.Connector) { c.HTTP.URL = "https://example.com/" + strings.Repeat("a", 2048-20) }, dcon.ConnectorRules{}, ""},
		{"url 2049 bytes", func(c *dcon.Connector) { c.HTTP.URL = "https://example.com/" + strings.Repeat("a", 2049-20) }, dcon.ConnectorRules{}, "httpConfig.url: over 2048 bytes"},
		{"http", func(c *dcon.Connector) { c.HTTP.URL = "http://example.com/hook" }, dcon.ConnectorRules{}, "httpConfig.url: must be https://"},
		{"http allowed", func(c *dcon.Connector) { c.HTTP.URL = "http://127.0.0.1:8080/hook" }, dcon.ConnectorRules{AllowHTTP: true}, ""},
		{"https with http allowed", func(c *dcon.Connector) {}, dcon.ConnectorRules{AllowHTTP: true}, ""},
		{"javascript", func(c *dcon.Connector) { c.HTTP.URL = "javascript:alert(1)" }, dcon.ConnectorRules{}, "httpConfig.url: must be https://"},
		{"javascript, http allowed", func(c *dcon.Connector) { c.HTTP.URL = "javascript:alert(1)" }, dcon.ConnectorRules{AllowHTTP: true}, "httpConfig.url: must be https:// or http://"},
		{"ftp", func(c *dcon.Connector) { c.HTTP.URL = "ftp://example.com/file" }, dcon.ConnectorRules{}, "httpConfig.url: must be https://"},
		{"file", func(c *dcon.Connector) { c.HTTP.URL = "file:///etc/passwd" }, dcon.ConnectorRules{AllowHTTP: true}, "httpConfig.url: must be https:// or http://"},
		{"relative path", func(c *dcon.Connector) { c.HTTP.URL = "/api/endpoint" }, dcon.ConnectorRules{}, "httpConfig.url: must be an absolute https:// URL"},
		{"scheme-relative", func(c *dcon.Connector) { c.HTTP.URL = "//example.com/api" }, dcon.ConnectorRules{}, "httpConfig.url: must be an absolute https:// URL"},
		{"bare host", func(c *dcon.Connector) { c.HTTP.URL = "example.com" }, dcon.ConnectorRules{AllowHTTP: true}, "httpConfig.url: must be an absolute https:// or http:// URL"},
		{"no host", func(c *dcon.Connector) { c.HTTP.URL = "https:///path" }, dcon.ConnectorRules{}, "httpConfig.url: must have a host"},
		{"port only", func(c *dcon.Connector) { c.HTTP.URL = "https://:443/path" }, dcon.ConnectorRules{}, "httpConfig.url: must have a host"},
		{"opaque", func(c *dcon.Connector) { c.HTTP.URL = "https:example.com" }, dcon.ConnectorRules{}, "httpConfig.url: must have a host"},
		{"userinfo", func(c *dcon.Connector) { c.HTTP.URL = "https://user:pass@example.com/" }, dcon.ConnectorRules{}, "httpConfig.url: must not contain user information"},
		{"user only", func(c *dcon.Connector) { c.HTTP.URL = "https://user@example.com/" }, dcon.ConnectorRules{}, "httpConfig.url: must not contain user information"},
		{"fragment", func(c *dcon.Connector) { c.HTTP.URL = "https://example.com/hook#frag" }, dcon.ConnectorRules{}, "httpConfig.url: must not contain a fragment"},
		{"empty fragment", func(c *dcon.Connector) { c.HTTP.URL = "https://example.com/hook#" }, dcon.ConnectorRules{}, "httpConfig.url: must not contain a fragment"},
		{"control character", func(c *dcon.Connector) { c.HTTP.URL = "https://example.com/\r\nX-Injected: 1" }, dcon.ConnectorRules{}, "httpConfig.url: not a valid URL"},
		{"space in host", func(c *dcon.Connector) { c.HTTP.URL = "https://exa mple.com/" }, dcon.ConnectorRules{}, "httpConfig.url: not a valid URL"},
		{"bad port", func(c *dcon.Connector) { c.HTTP.URL = "https://example.com:port/" }, dcon.ConnectorRules{}, "httpConfig.url: not a valid URL"},

		// Signature secret.
		{"no secret", func(c *dcon.Connector) { c.HTTP.SignatureSecret = "" }, dcon.ConnectorRules{}, ""},
		{"secret 1024 bytes", func(c *dcon.Connector) { c.HTTP.SignatureSecret = strings.Repeat("s", 1024) }, dcon.ConnectorRules{}, ""},
		{"secret 1025 bytes", func(c *dcon.Connector) { c.HTTP.SignatureSecret = strings.Repeat("s", 1025) }, dcon.ConnectorRules{}, "httpConfig.signatureSecret: over 1024 bytes"},

		// Standard Webhooks secrets.
		{"one whsec", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{whsec(32)} }, dcon.ConnectorRules{}, ""},
		{"whsec 24 and 64 bytes", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{whsec(24), whsec(64)} }, dcon.ConnectorRules{}, ""},
		{"five whsec", func(c *dcon.Connector) {
			c.HTTP.StandardWebhookSecrets = []string{whsec(24), whsec(25), whsec(26), whsec(27), whsec(28)}
		}, dcon.ConnectorRules{}, ""},
		{"six whsec", func(c *dcon.Connector) {
			c.HTTP.StandardWebhookSecrets = []string{whsec(24), whsec(25), whsec(26), whsec(27), whsec(28), whsec(29)}
		}, dcon.ConnectorRules{}, "httpConfig.standardWebhookSecrets: at most 5 secrets"},
		{"whsec without prefix", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{whsec(32)[len("whsec_"):]} }, dcon.ConnectorRules{},
			`httpConfig.standardWebhookSecrets[0]: must start with "whsec_"`},
		{"whsec not base64", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{whsec(32), "whsec_not*base64"} }, dcon.ConnectorRules{},
			`httpConfig.standardWebhookSecrets[1]: must be "whsec_" followed by standard base64`},
		{"whsec 23 bytes", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{whsec(23)} }, dcon.ConnectorRules{},
			"httpConfig.standardWebhookSecrets[0]: key must be 24 to 64 bytes, is 23"},
		{"whsec 65 bytes", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{whsec(65)} }, dcon.ConnectorRules{},
			"httpConfig.standardWebhookSecrets[0]: key must be 24 to 64 bytes, is 65"},
		{"whsec empty", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{""} }, dcon.ConnectorRules{},
			`httpConfig.standardWebhookSecrets[0]: must start with "whsec_"`},
		{"whsec twice", func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{whsec(32), whsec(32)} }, dcon.ConnectorRules{},
			"httpConfig.standardWebhookSecrets[1]: duplicate secret"},
		{"asymmetric signature off", func(c *dcon.Connector) { c.HTTP.AsymmetricSignatureOff = true }, dcon.ConnectorRules{}, ""},

		// Headers.
		{"no headers", func(c *dcon.Connector) { c.HTTP.Headers = nil }, dcon.ConnectorRules{}, ""},
		{"token characters", func(c *dcon.Connector) {
			c.HTTP.Headers = map[string]string{"X-A!#$%&'*+-.^_`|~09az": "v", "Authorization": "Bearer abc"}
		}, dcon.ConnectorRules{}, ""},
		{"user agent", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"user-Agent": "mine"} }, dcon.ConnectorRules{},
			`httpConfig.headers["user-Agent"]: reserved header: dcon sets it`},
		{"name 257 bytes", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{strings.Repeat("x", 257): "v"} }, dcon.ConnectorRules{},
			`httpConfig.headers["` + strings.Repeat("x", 64) + `"...]: name over 256 bytes`},
		{"headers over 16 KiB together", func(c *dcon.Connector) {
			c.HTTP.Headers = map[string]string{"X-A": strings.Repeat("a", 8<<10), "X-B": strings.Repeat("b", 8<<10)}
		}, dcon.ConnectorRules{}, "httpConfig.headers: over 16384 bytes of names and values together"},
		{"tab and non-ASCII value", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": "a\tb é"} }, dcon.ConnectorRules{}, ""},
		{"empty value", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": ""} }, dcon.ConnectorRules{}, ""},
		{"32 headers", func(c *dcon.Connector) {
			c.HTTP.Headers = map[string]string{}
			for i := range 32 {
				c.HTTP.Headers[fmt.Sprintf("X-H%02d", i)] = "v"
			}
		}, dcon.ConnectorRules{}, ""},
		{"33 headers", func(c *dcon.Connector) { c.HTTP.Headers = manyHeaders }, dcon.ConnectorRules{}, "httpConfig.headers: at most 32 headers"},
		{"space in name", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X Y": "v"} }, dcon.ConnectorRules{}, `httpConfig.headers["X Y"]: not a valid header name`},
		{"empty name", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"": "v"} }, dcon.ConnectorRules{}, `httpConfig.headers[""]: not a valid header name`},
		{"colon in name", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A:": "v"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A:"]: not a valid header name`},
		{"CRLF in name", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A\r\nHost": "evil"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A\r\nHost"]: not a valid header name`},
		{"non-ASCII name", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-Ä": "v"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-Ä"]: not a valid header name`},
		{"CRLF injection in value", func(c *dcon.Connector) {
			c.HTTP.Headers = map[string]string{"X-A": "v\r\nX-Dt-Signature: forged"}
		}, dcon.ConnectorRules{}, `httpConfig.headers["X-A"]: value contains a control character`},
		{"LF in value", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": "v\nw"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A"]: value contains a control character`},
		{"CR in value", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": "v\rw"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A"]: value contains a control character`},
		{"NUL in value", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": "v\x00w"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A"]: value contains a control character`},
		{"escape in value", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": "\x1b[31m"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A"]: value contains a control character`},
		{"DEL in value", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": "a\x7f"} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A"]: value contains a control character`},
		{"value 8 KiB", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": strings.Repeat("v", 8192)} }, dcon.ConnectorRules{}, ""},
		{"value over 8 KiB", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-A": strings.Repeat("v", 8193)} }, dcon.ConnectorRules{}, `httpConfig.headers["X-A"]: value over 8192 bytes`},
		{"same name twice", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"X-Token": "a", "x-token": "b"} }, dcon.ConnectorRules{}, `httpConfig.headers["x-token"]: same header as "X-Token"`},
		{"first error in name order", func(c *dcon.Connector) {
			c.HTTP.Headers = map[string]string{"Z Z": "v", "A A": "v", "M M": "v"}
		}, dcon.ConnectorRules{}, `httpConfig.headers["A A"]: not a valid header name`},
		{"long name cut in message", func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{strings.Repeat("x", 100) + " ": "v"} }, dcon.ConnectorRules{},
			`httpConfig.headers["` + strings.Repeat("x", 64) + `"...]: not a valid header name`},
	}
	for _, reserved := range []string{
		"Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Upgrade", "TE", "Trailer", "Proxy-Authorization", "Proxy-Connection", "proxy-anything",
		"X-Dt-Signature", "DT-Asymmetric-Signature", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature",
		"host", "CONTENT-TYPE", "x-dt-signature", "dt-asymmetric-signature", "WEBHOOK-ID",
	} {
		tests = append(tests, struct {
			name   string
			change func(c *dcon.Connector)
			rules  dcon.ConnectorRules
			want   string
		}{"reserved " + reserved, func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{reserved: "v"} }, dcon.ConnectorRules{},
			fmt.Sprintf("httpConfig.headers[%q]: reserved header: dcon sets it", reserved)})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConnector()
			tc.change(c)
			err := dcon.ValidateConnector(c, tc.rules)
			checkInvalid(t, err, tc.want)
		})
	}
}

// whsec returns a Standard Webhooks secret whose key is n bytes.
func whsec(n int) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n)))
}

func TestConnectorCloneCopiesStandardWebhookSecrets(t *testing.T) {
	t.Parallel()
	c := validConnector()
	c.HTTP.StandardWebhookSecrets = []string{whsec(32)}
	n := c.Clone()
	n.HTTP.StandardWebhookSecrets[0] = whsec(24)
	if c.HTTP.StandardWebhookSecrets[0] != whsec(32) {
		t.Fatal("Clone shares the Standard Webhooks secrets")
	}
}

func TestValidateConnectorNil(t *testing.T) {
	t.Parallel()
	checkInvalid(t, dcon.ValidateConnector(nil, dcon.ConnectorRules{}), "connector: required")
}

// TestReservedHeader checks names near the reserved ones are allowed.
func TestReservedHeader(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"Proxy-":         true,
		"Proxy":          false,
		"X-Proxy-Thing":  false,
		"Content-Type2":  false,
		"TE":             true,
		"Tea":            false,
		"X-Dt-Signature": true,
		"X-Dt-Sig":       false,
		"Authorization":  false,
		"Webhook-Idx":    false,
		"USER-AGENT":     true,
		"User-Agents":    false,
	} {
		if got := dcon.ReservedHeader(name); got != want {
			t.Errorf("ReservedHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidateLabels(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range 65 {
		many[fmt.Sprintf("l%02d", i)] = ""
	}
	full := map[string]string{}
	for i := range 64 {
		full[fmt.Sprintf("l%02d", i)] = ""
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"nil", nil, ""},
		{"empty", map[string]string{}, ""},
		{"emulated", map[string]string{"name": "my-sensor", dcon.LabelEmulated: ""}, ""},
		{"unicode", map[string]string{"名前": "センサー ✓", "tab-free": "a b"}, ""},
		{"64 labels", full, ""},
		{"65 labels", many, "labels: at most 64 labels"},
		{"longest key", map[string]string{strings.Repeat("k", 64): "v"}, ""},
		{"longest value", map[string]string{"k": strings.Repeat("é", 128)}, ""},
		{"empty key", map[string]string{"": "v"}, `labels[""]: key must not be empty`},
		{"long key", map[string]string{strings.Repeat("k", 65): "v"}, `labels["` + strings.Repeat("k", 64) + `"...]: key over 64 bytes`},
		{"long value", map[string]string{"k": strings.Repeat("v", 257)}, `labels["k"]: value over 256 bytes`},
		{"key not UTF-8", map[string]string{"a\xff": "v"}, `labels["a\xff"]: key is not valid UTF-8`},
		{"value not UTF-8", map[string]string{"k": "\xc3"}, `labels["k"]: value is not valid UTF-8`},
		{"newline in key", map[string]string{"a\nb": "v"}, `labels["a\nb"]: key contains a control character`},
		{"tab in value", map[string]string{"k": "a\tb"}, `labels["k"]: value contains a control character`},
		{"NUL in value", map[string]string{"k": "\x00"}, `labels["k"]: value contains a control character`},
		{"DEL in key", map[string]string{"k\x7f": "v"}, `labels["k\x7f"]: key contains a control character`},
		{"C1 control in value", map[string]string{"k": "a\u0085b"}, `labels["k"]: value contains a control character`},
		{"first error in key order", map[string]string{"z": "\n", "a": "\n", "m": "\n"}, `labels["a"]: value contains a control character`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkInvalid(t, dcon.ValidateLabels(tc.labels), tc.want)
		})
	}
}

// checkInvalid checks that err is nil when want is "", and otherwise an *Error
// with code EINVALID and message want.
func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *dcon.Error
	if !errors.As(err, &e) || e.Code != dcon.EINVALID {
		t.Fatalf("error %v is not an *Error with code %q", err, dcon.EINVALID)
	}
	if e.Message != want {
		t.Errorf("message\ngot  %s\nwant %s", e.Message, want)
	}
}
