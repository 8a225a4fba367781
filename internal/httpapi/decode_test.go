package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"dcon"
)

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	type body struct {
		Name   string            `json:"name"`
		Count  int               `json:"count"`
		On     bool              `json:"on"`
		Tags   []string          `json:"tags"`
		Labels map[string]string `json:"labels"`
	}
	tests := []struct{ in, msg string }{
		{`{"name":"x","count":1,"on":true,"tags":["a"],"labels":{"a":"b"}}`, ""},
		{` {"name":"x"} ` + "\n", ""},
		{`"x"`, "request body must be a JSON object, not a string"},
		{`12`, "request body must be a JSON object, not a number"},
		{`true`, "request body must be a JSON object, not a boolean"},
		{`{"count":"1"}`, `field "count" must be an integer, not a string`},
		{`{"count":1.5}`, `field "count" must be an integer, not a number`},
		{`{"on":"yes"}`, `field "on" must be a boolean, not a string`},
		{`{"name":{}}`, `field "name" must be a string, not an object`},
		{`{"tags":[true]}`, `field "tags" must be an array of strings, not a boolean`},
		{`{"labels":[]}`, `field "labels" must be an object, not an array`},
		{`{"nam":"x"}`, `unknown field "nam"`},
		{"{\n\n  \"name\" \"x\"}", "malformed JSON at line 3, column 10: invalid character '\"' after object key"},
		{`{"name":"x"}}`, "malformed JSON at line 1, column 13: unexpected data after the JSON value"},
		{`{"name":"x"`, "malformed JSON: the body ends before the JSON value does"},
	}
	for _, tt := range tests {
		var b body
		err := decodeObject([]byte(tt.in), &b)
		if tt.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.in, err)
			}
			continue
		}
		if dcon.ErrorCode(err) != dcon.EINVALID || dcon.ErrorMessage(err) != tt.msg {
			t.Errorf("%s:\n got %s %q\nwant %s %q", tt.in, dcon.ErrorCode(err), dcon.ErrorMessage(err), dcon.EINVALID, tt.msg)
		}
	}
}

func TestRedirectPassesThrough(t *testing.T) {
	t.Parallel()
	h := (&Server{Connectors: newFakeConnectors(), Devices: newFakeDevices()}).Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/projects/p//dataconnectors", nil))
	if w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != "/v2/projects/p/dataconnectors" {
		t.Errorf("status %d, Location %q; want 307 to the clean path", w.Code, w.Header().Get("Location"))
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		`{"temperature": {"value": 23.0}}`, `{"touch":{}}`, `{}`, `{"a":1,"a":2}`, `[]`, `{"x":{}}`, `{"touch":{}} x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, data, err := decodeEvent(body)
		if err != nil {
			if dcon.ErrorCode(err) != dcon.EINVALID {
				t.Fatalf("error code %s: %v", dcon.ErrorCode(err), err)
			}
			return
		}
		if !typ.Valid() || typ == dcon.EventLabelsChanged || !json.Valid(data) {
			t.Fatalf("accepted type %q data %q", typ, data)
		}
	})
}
