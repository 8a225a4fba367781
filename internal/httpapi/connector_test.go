package httpapi

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"dcon"
)

const fullConnector = `{
	"name": "projects/ignored/dataconnectors/ignored",
	"displayName": "my-new-dcon",
	"type": "HTTP_PUSH",
	"status": "ACTIVE",
	"events": ["touch", "temperature", "objectPresent"],
	"labels": ["name", "custom-label-01"],
	"httpConfig": {
		"url": "https://example.com/api/endpoint?a=1&b=2",
		"signatureSecret": "some-very-good-secret",
		"headers": {"some-header": "abc123"}
	}
}`

// Standard Webhooks secrets of the tests: "whsec_" and the base64 of 24 and
// 27 bytes.
const (
	testWhsec1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	testWhsec2 = "whsec_c2Vjb25kIHNlY3JldCBvZiAzMiBieXRlcyEh"
)

func TestCreateConnector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, golden, body string
	}{
		{"full", "connector_full.golden.json", fullConnector},
		{"minimal", "connector_minimal.golden.json", `{"type":"HTTP_PUSH","httpConfig":{"url":"https://example.com/in"}}`},
		{"user disabled", "connector_user_disabled.golden.json", `{"type":"HTTP_PUSH","status":"USER_DISABLED","httpConfig":{"url":"https://example.com/in"}}`},
		{"signatures", "connector_signatures.golden.json", `{"type":"HTTP_PUSH","httpConfig":{"url":"https://example.com/in",` +
			`"asymmetricSignature":false,"standardWebhookSecrets":["` + testWhsec1 + `","` + testWhsec2 + `"]}}`},
		{"asymmetric signature null is on", "connector_minimal.golden.json",
			`{"type":"HTTP_PUSH","httpConfig":{"url":"https://example.com/in","asymmetricSignature":null,"standardWebhookSecrets":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			res := e.do(t, "POST", "/v2/projects/"+project+"/dataconnectors", tt.body)
			res.want(t, http.StatusOK, "")
			var got connectorResource
			res.decode(t, &got)
			id := idOf(got.Name)
			if !dcon.ValidID(id) {
				t.Fatalf("id %q is not an xid", id)
			}
			golden(t, tt.golden, strings.ReplaceAll(res.body, id, "{id}"))

			stored := e.conns.get(project, id)
			if stored == nil {
				t.Fatal("connector not stored")
			}
			if want := newConnectorResource(stored); !reflect.DeepEqual(got, want) {
				t.Errorf("answered %+v, stored %+v", got, want)
			}
			// A read answers the same bytes.
			e.do(t, "GET", "/v2/projects/"+project+"/dataconnectors/"+id, "").want(t, http.StatusOK, res.body)
		})
	}
}

func TestCreateConnectorRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"system disabled", `{"type":"HTTP_PUSH","status":"SYSTEM_DISABLED","httpConfig":{"url":"https://x.com"}}`,
			400, "status SYSTEM_DISABLED is set by dcon only: use ACTIVE or USER_DISABLED"},
		{"unknown status", `{"type":"HTTP_PUSH","status":"ON","httpConfig":{"url":"https://x.com"}}`,
			400, `unknown status "ON": use ACTIVE or USER_DISABLED`},
		{"no type", `{"httpConfig":{"url":"https://x.com"}}`, 400, `field "type" is required: use HTTP_PUSH`},
		{"unknown field", `{"type":"HTTP_PUSH","colour":"red"}`, 400, `unknown field "colour"`},
		{"unknown nested field", `{"type":"HTTP_PUSH","httpConfig":{"url":"https://x.com","verb":"PUT"}}`,
			400, `unknown field "httpConfig.verb"`},
		{"string as number", `{"type":"HTTP_PUSH","displayName":7}`, 400, `field "displayName" must be a string, not a number`},
		{"nested wrong type", `{"type":"HTTP_PUSH","httpConfig":{"url":["https://x.com"]}}`,
			400, `field "httpConfig.url" must be a string, not an array`},
		{"wrong element type", `{"type":"HTTP_PUSH","events":["touch",1]}`, 400, `field "events" must be an array of strings, not a number`},
		{"headers not strings", `{"type":"HTTP_PUSH","httpConfig":{"headers":{"a":1}}}`,
			400, `field "httpConfig.headers" must be an object of strings, not a number`},
		{"httpConfig not object", `{"type":"HTTP_PUSH","httpConfig":"https://x.com"}`,
			400, `field "httpConfig" must be an object, not a string`},
		{"malformed", "{\"type\":\"HTTP_PUSH\",\n \"displayName\": x}", 400,
			"malformed JSON at line 2, column 17: invalid character 'x' looking for beginning of value"},
		{"truncated", `{"type":"HTTP_PUSH"`, 400, "malformed JSON: the body ends before the JSON value does"},
		{"trailing data", `{"type":"HTTP_PUSH","httpConfig":{"url":"https://x.com"}} {}`, 400,
			"malformed JSON at line 1, column 59: unexpected data after the JSON value"},
		{"array body", `[{"type":"HTTP_PUSH"}]`, 400, "request body must be a JSON object, not an array"},
		{"null body", `null`, 400, "request body must be a JSON object, not null"},
		{"empty body", ` `, 400, "request body is empty: send a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.do(t, "POST", "/v2/projects/"+project+"/dataconnectors", tt.body).wantError(t, tt.status, tt.msg)
			if n := e.conns.writeCount(); n != 0 {
				t.Errorf("%d writes after a rejected request", n)
			}
		})
	}
}

func TestCreateConnectorInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"ftp url", `{"type":"HTTP_PUSH","httpConfig":{"url":"ftp://x"}}`},
		{"http url", `{"type":"HTTP_PUSH","httpConfig":{"url":"http://example.com"}}`},
		{"no url", `{"type":"HTTP_PUSH"}`},
		{"unknown type", `{"type":"MQTT","httpConfig":{"url":"https://example.com"}}`},
		{"unknown event", `{"type":"HTTP_PUSH","events":["smell"],"httpConfig":{"url":"https://example.com"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			res := e.do(t, "POST", "/v2/projects/"+project+"/dataconnectors", tt.body)
			res.want(t, http.StatusBadRequest, "")
			if n := e.conns.writeCount(); n != 0 {
				t.Errorf("%d writes after a rejected request", n)
			}
		})
	}
}

func TestConnectorConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.conns.fail(dcon.Errorf(dcon.ECONFLICT, "already exists"))
	e.do(t, "POST", "/v2/projects/"+project+"/dataconnectors", `{"type":"HTTP_PUSH","httpConfig":{"url":"https://x.com"}}`).
		wantError(t, http.StatusConflict, "already exists")
}

func TestPatchConnector(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	tests := []struct {
		name, query, body string
		status            int
		msg               string                // the error message when status is not 200
		change            func(*dcon.Connector) // what the patch changes in the seed
	}{
		{name: "displayName only", body: `{"displayName":"new"}`, status: 200,
			change: func(c *dcon.Connector) { c.DisplayName = "new" }},
		{name: "url only keeps secret and headers", body: `{"httpConfig":{"url":"https://new.example.com"}}`, status: 200,
			change: func(c *dcon.Connector) { c.HTTP.URL = "https://new.example.com" }},
		{name: "headers only", body: `{"httpConfig":{"headers":{"a":"b"}}}`, status: 200,
			change: func(c *dcon.Connector) { c.HTTP.Headers = map[string]string{"a": "b"} }},
		{name: "disable", body: `{"status":"USER_DISABLED"}`, status: 200,
			change: func(c *dcon.Connector) { c.Status = dcon.StatusUserDisabled }},
		{name: "null clears", body: `{"events":null,"labels":[]}`, status: 200,
			change: func(c *dcon.Connector) { c.Events, c.Labels = nil, nil }},
		{name: "same type", body: `{"type":"HTTP_PUSH","name":"projects/x/dataconnectors/y"}`, status: 200},
		{name: "empty object changes nothing", body: `{}`, status: 200},
		{name: "mask clears absent paths", query: "?update_mask=displayName,httpConfig.headers", body: `{}`, status: 200,
			change: func(c *dcon.Connector) { c.DisplayName, c.HTTP.Headers = "", nil }},
		{name: "mask ignores unmasked members", query: "?update_mask=displayName", body: `{"displayName":"n","events":["co2"]}`, status: 200,
			change: func(c *dcon.Connector) { c.DisplayName = "n" }},
		{name: "mask httpConfig as a whole", query: "?update_mask=httpConfig", body: `{"httpConfig":{"url":"https://n.example.com"}}`, status: 200,
			change: func(c *dcon.Connector) { c.HTTP = dcon.HTTPConfig{URL: "https://n.example.com"} }},
		{name: "updateMask spelling", query: "?updateMask=status,%20labels", body: `{"status":"USER_DISABLED"}`, status: 200,
			change: func(c *dcon.Connector) { c.Status, c.Labels = dcon.StatusUserDisabled, nil }},
		{name: "mask status cleared is active", query: "?update_mask=status", body: `{}`, status: 200},
		{name: "unknown mask path", query: "?update_mask=displayName,colour", body: `{"displayName":"x"}`,
			status: 400, msg: `unknown update_mask path "colour"`},
		{name: "system disabled refused", body: `{"status":"SYSTEM_DISABLED"}`,
			status: 400, msg: "status SYSTEM_DISABLED is set by dcon only: use ACTIVE or USER_DISABLED"},
		{name: "type change refused", body: `{"type":"WEBSOCKET"}`, status: 400, msg: "type cannot be changed (it is HTTP_PUSH)"},
		{name: "type change refused in mask", query: "?update_mask=type", body: `{}`, status: 400, msg: "type cannot be changed (it is HTTP_PUSH)"},
		{name: "unknown field", body: `{"displayName":"x","enabled":true}`, status: 400, msg: `unknown field "enabled"`},
		{name: "wrong type", body: `{"labels":"name"}`, status: 400, msg: `field "labels" must be an array, not a string`},
		{name: "asymmetric signature off", body: `{"httpConfig":{"asymmetricSignature":false}}`, status: 200,
			change: func(c *dcon.Connector) { c.HTTP.AsymmetricSignatureOff = true }},
		{name: "asymmetric signature on", body: `{"httpConfig":{"asymmetricSignature":true}}`, status: 200},
		{name: "standard webhook secrets", body: `{"httpConfig":{"standardWebhookSecrets":["` + testWhsec1 + `","` + testWhsec2 + `"]}}`, status: 200,
			change: func(c *dcon.Connector) { c.HTTP.StandardWebhookSecrets = []string{testWhsec1, testWhsec2} }},
		{name: "mask signature paths", query: "?update_mask=httpConfig.asymmetricSignature,httpConfig.standardWebhookSecrets",
			body: `{"displayName":"ignored","httpConfig":{"asymmetricSignature":false,"standardWebhookSecrets":["` + testWhsec1 + `"]}}`, status: 200,
			change: func(c *dcon.Connector) {
				c.HTTP.AsymmetricSignatureOff, c.HTTP.StandardWebhookSecrets = true, []string{testWhsec1}
			}},
		{name: "asymmetric signature not a boolean", body: `{"httpConfig":{"asymmetricSignature":"no"}}`,
			status: 400, msg: `field "httpConfig.asymmetricSignature" must be a boolean, not a string`},
		{name: "standard webhook secret invalid", body: `{"httpConfig":{"standardWebhookSecrets":["s3cret"]}}`,
			status: 400, msg: `httpConfig.standardWebhookSecrets[0]: must start with "whsec_"`},
		{name: "later error stores nothing", body: `{"displayName":"x","status":"SYSTEM_DISABLED"}`,
			status: 400, msg: "status SYSTEM_DISABLED is set by dcon only: use ACTIVE or USER_DISABLED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			seed := e.seedConnector(t, id)
			res := e.do(t, "PATCH", "/v2/projects/"+project+"/dataconnectors/"+id+tt.query, tt.body)
			if tt.status != http.StatusOK {
				res.wantError(t, tt.status, tt.msg)
				if got := e.conns.get(project, id); !reflect.DeepEqual(got, seed.Clone()) {
					t.Errorf("stored %+v after a rejected patch, want %+v", got, seed)
				}
				return
			}
			res.want(t, http.StatusOK, "")
			want := seed.Clone()
			if tt.change != nil {
				tt.change(want)
			}
			want.UpdateTime = testNow
			got := e.conns.get(project, id)
			if !reflect.DeepEqual(newConnectorResource(got), newConnectorResource(want)) {
				t.Errorf("stored\n %+v\nwant\n %+v", newConnectorResource(got), newConnectorResource(want))
			}
			var answered connectorResource
			res.decode(t, &answered)
			if !reflect.DeepEqual(answered, newConnectorResource(want)) {
				t.Errorf("answered\n %+v\nwant\n %+v", answered, newConnectorResource(want))
			}
		})
	}
}

// TestPatchConnectorSignatureDefaults: a cleared or null asymmetricSignature
// is on again, cleared secrets are [].
func TestPatchConnectorSignatureDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, query, body string }{
		{"mask clears", "?update_mask=httpConfig.asymmetricSignature,httpConfig.standardWebhookSecrets", `{}`},
		{"mask httpConfig", "?update_mask=httpConfig", `{"httpConfig":{"url":"https://example.com/api/endpoint"}}`},
		{"null", "", `{"httpConfig":{"asymmetricSignature":null,"standardWebhookSecrets":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := e.seedConnector(t, "c16pegipidie7lltrefg")
			c.HTTP.AsymmetricSignatureOff, c.HTTP.StandardWebhookSecrets = true, []string{testWhsec1}
			if err := e.conns.UpdateConnector(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			res := e.do(t, "PATCH", "/v2/projects/"+project+"/dataconnectors/"+c.ID+tt.query, tt.body)
			res.want(t, http.StatusOK, "")
			var got connectorResource
			res.decode(t, &got)
			if !got.HTTPConfig.AsymmetricSignature || got.HTTPConfig.StandardWebhookSecrets == nil || len(got.HTTPConfig.StandardWebhookSecrets) != 0 {
				t.Errorf("httpConfig %+v, want asymmetricSignature true and no secrets", got.HTTPConfig)
			}
			if stored := e.conns.get(project, c.ID); stored.HTTP.AsymmetricSignatureOff || len(stored.HTTP.StandardWebhookSecrets) != 0 {
				t.Errorf("stored %+v", stored.HTTP)
			}
			if !strings.Contains(res.body, `"asymmetricSignature":true,"standardWebhookSecrets":[]`) {
				t.Errorf("body %s does not show both fields", res.body)
			}
		})
	}
}

func TestPatchConnectorKeepsSystemDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.seedConnector(t, "c16pegipidie7lltrefg")
	c.Status = dcon.StatusSystemDisabled
	c.StatusReason = "no successful delivery since 2026-11-20T08:00:00.000000Z (5 days)"
	if err := e.conns.UpdateConnector(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	// A client that sends back what it read does not fail; it can re-enable.
	path := "/v2/projects/" + project + "/dataconnectors/" + c.ID
	var res connectorResource
	e.do(t, "GET", path, "").decode(t, &res)
	if res.StatusReason != c.StatusReason {
		t.Errorf("statusReason = %q, want dcon's reason", res.StatusReason)
	}
	e.do(t, "PATCH", path, `{"status":"SYSTEM_DISABLED","displayName":"x"}`).want(t, 200, "")
	if got := e.conns.get(project, c.ID); got.StatusReason == "" {
		t.Errorf("a PATCH that keeps SYSTEM_DISABLED dropped the reason")
	}
	e.do(t, "PATCH", path, `{"status":"ACTIVE"}`).want(t, 200, "")
	if got := e.conns.get(project, c.ID); got.Status != dcon.StatusActive || got.DisplayName != "x" || got.StatusReason != "" {
		t.Errorf("status %s, displayName %q, reason %q: revived connector keeps dcon's reason", got.Status, got.DisplayName, got.StatusReason)
	}
}

func TestDeleteConnector(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.seedConnector(t, "c16pegipidie7lltrefg")
	path := "/v2/projects/" + project + "/dataconnectors/" + c.ID
	e.do(t, "DELETE", path, "").want(t, http.StatusOK, "{}")
	if e.conns.get(project, c.ID) != nil {
		t.Error("connector still stored")
	}
	e.do(t, "GET", path, "").wantError(t, http.StatusNotFound, "data connector not found")
	e.do(t, "DELETE", path, "").wantError(t, http.StatusNotFound, "data connector not found")
	e.do(t, "PATCH", path, `{"displayName":"x"}`).wantError(t, http.StatusNotFound, "data connector not found")
}

func TestListConnectors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := "/v2/projects/" + project + "/dataconnectors"
	e.do(t, "GET", base, "").want(t, http.StatusOK, `{"dataConnectors":[],"nextPageToken":""}`)

	var want []string
	for range 250 {
		res := e.do(t, "POST", base, `{"type":"HTTP_PUSH","httpConfig":{"url":"https://x.com"}}`)
		var c connectorResource
		res.decode(t, &c)
		want = append(want, idOf(c.Name))
	}
	e.seedConnector(t, "c16pegipidie7lltrefg") // another project's would not show; this one does
	want = append(want, "c16pegipidie7lltrefg")
	other := newEnv(t) // a separate server: nothing in common
	other.do(t, "GET", base, "").want(t, http.StatusOK, `{"dataConnectors":[],"nextPageToken":""}`)

	tests := []struct {
		name, query string
		pages       []int // the size of each page
	}{
		{"default size", "", []int{100, 100, 51}},
		{"size 60", "page_size=60", []int{60, 60, 60, 60, 11}},
		{"camelCase size, as the Python client sends", "pageSize=70", []int{70, 70, 70, 41}},
		{"size clamped", "page_size=1000", []int{100, 100, 51}},
		{"size 0 is default", "page_size=0", []int{100, 100, 51}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			var sizes []int
			token := ""
			for i := 0; ; i++ {
				q := "?" + tt.query
				if token != "" {
					// Alternate the two spellings of the token parameter.
					q += map[bool]string{true: "&page_token=", false: "&pageToken="}[i%2 == 0] + token
				}
				var page struct {
					DataConnectors []connectorResource
					NextPageToken  *string
				}
				e.do(t, "GET", base+q, "").decode(t, &page)
				if page.NextPageToken == nil {
					t.Fatal("nextPageToken missing")
				}
				sizes = append(sizes, len(page.DataConnectors))
				for _, c := range page.DataConnectors {
					got = append(got, idOf(c.Name))
				}
				if token = *page.NextPageToken; token == "" || i > 10 {
					break
				}
			}
			if !reflect.DeepEqual(sizes, tt.pages) {
				t.Errorf("page sizes %v, want %v", sizes, tt.pages)
			}
			if len(got) != len(want) || !sameSet(got, want) {
				t.Errorf("listed %d connectors, want %d, all different", len(got), len(want))
			}
		})
	}
}

func sameSet(a, b []string) bool {
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestListBadPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/v2/projects/" + project + "/dataconnectors", "/v2/projects/" + project + "/devices"} {
		for _, size := range []string{"abc", "-1", "1.5", "99999999999999999999"} {
			e.do(t, "GET", path+"?page_size="+size, "").
				wantError(t, http.StatusBadRequest, fmt.Sprintf("page_size %q is not a number from 1 to 100", size))
		}
		e.do(t, "GET", path+"?page_token=nonsense", "").wantError(t, http.StatusBadRequest, "invalid page token")
	}
}
