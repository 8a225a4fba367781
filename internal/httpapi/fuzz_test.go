package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"dcon"
)

// FuzzConnectorJSON feeds arbitrary bodies and update masks to the create and
// update paths of data connectors, through the whole handler. It must never
// panic or answer 500; a refused request must store nothing; an accepted
// one must store a connector that validates; and no answer may hold a
// secret.
func FuzzConnectorJSON(f *testing.F) {
	for _, seed := range []struct{ body, mask string }{
		{fullConnector, ""},
		{`{"type":"HTTP_PUSH","httpConfig":{"url":"https://example.com/in"}}`, ""},
		{`{"type":"HTTP_PUSH","httpConfig":{"url":"https://127.0.0.1/","signatureSecret":"s3cret-value"}}`, ""},
		{`{"type":"HTTP_PUSH","httpConfig":{"url":"https://2130706433/"}}`, ""},
		{`{"type":"HTTP_PUSH","httpConfig":{"url":"https://[::ffff:169.254.169.254]/"}}`, ""},
		{`{"httpConfig":{"headers":{"X-A":"a\r\nHost: evil"}}}`, "httpConfig.headers"},
		{`{"httpConfig":{"standardWebhookSecrets":["whsec_****00000000","` + testWhsec1 + `"]}}`, ""},
		{`{"httpConfig":{"signatureSecret":""}}`, "httpConfig.signatureSecret"},
		{`{"status":"SYSTEM_DISABLED","events":["touch","touch"]}`, "status,events"},
		{`{"labels":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ""},
		{`{"displayName":1}`, "displayName"},
		{`{"type":"HTTP_PUSH"} {}`, ""},
		{`[]`, ""},
		{``, ""},
	} {
		f.Add(seed.body, seed.mask)
	}
	const secret = "fuzz-seed-secret-value"
	f.Fuzz(func(t *testing.T, body, mask string) {
		conns := newFakeConnectors()
		seed := &dcon.Connector{
			ProjectID: project, ID: "c16pegipidie7lltrefg", Type: dcon.ConnectorHTTPPush, Status: dcon.StatusActive,
			HTTP:       dcon.HTTPConfig{URL: "https://example.com/seed", SignatureSecret: secret, StandardWebhookSecrets: []string{testWhsec2}},
			CreateTime: testNow, UpdateTime: testNow,
		}
		if err := conns.CreateConnector(t.Context(), seed); err != nil {
			t.Fatal(err)
		}
		h := (&Server{Connectors: conns, Devices: newFakeDevices(), Ingest: &fakeIngester{},
			Now: func() time.Time { return testNow }}).Handler()
		base := "/v2/projects/" + project + "/dataconnectors"
		for _, req := range []*http.Request{
			httptest.NewRequest("POST", base, strings.NewReader(body)),
			httptest.NewRequest("PATCH", base+"/"+seed.ID+"?update_mask="+url.QueryEscape(mask), strings.NewReader(body)),
		} {
			before := conns.writeCount()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			switch w.Code {
			case http.StatusOK:
				if conns.writeCount() != before+1 {
					t.Fatalf("%s answered 200 after %d writes", req.Method, conns.writeCount()-before)
				}
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
				if conns.writeCount() != before {
					t.Fatalf("%s answered %d but wrote", req.Method, w.Code)
				}
			default:
				t.Fatalf("%s answered %d: %s", req.Method, w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), testWhsec2) {
				t.Fatalf("%s answer holds a secret: %s", req.Method, w.Body)
			}
		}
		all, err := conns.AllConnectors(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range all {
			if err := dcon.ValidateConnector(c, dcon.ConnectorRules{}); err != nil {
				t.Fatalf("stored an invalid connector: %v", err)
			}
		}
	})
}
