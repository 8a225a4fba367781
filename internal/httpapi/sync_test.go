package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"dcon"
)

// syncIngester is a fakeIngester whose Sync records its calls and answers
// what it is told.
type syncIngester struct {
	*fakeIngester
	mu    sync.Mutex
	calls []string // "project/connector"
	n     int
	err   error
}

func (s *syncIngester) Sync(ctx context.Context, projectID, connectorID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, projectID+"/"+connectorID)
	return s.n, s.err
}

func (s *syncIngester) syncCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func TestSyncConnector(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	base := "/v2/projects/" + project + "/dataconnectors/"
	tests := []struct {
		name   string
		path   string
		body   string
		err    error // what Sync fails with
		status int
		answer string // the body, or the error message
		synced bool
	}{
		{name: "no body", path: base + id + ":sync", status: 200, answer: `{}`, synced: true},
		{name: "empty object", path: base + id + ":sync", body: `{}`, status: 200, answer: `{}`, synced: true},
		{name: "unknown member", path: base + id + ":sync", body: `{"force":true}`, status: 400, answer: `unknown field "force"`},
		{name: "not an object", path: base + id + ":sync", body: `[]`, status: 400, answer: `request body must be a JSON object, not an array`},
		{name: "unknown connector", path: base + id + ":sync", err: dcon.Errorf(dcon.ENOTFOUND, "data connector projects/%s/dataconnectors/%s not found", project, id),
			status: 404, answer: "data connector projects/" + project + "/dataconnectors/" + id + " not found", synced: true},
		{name: "disabled connector", path: base + id + ":sync", err: dcon.Errorf(dcon.EINVALID, "connector is not ACTIVE (it is USER_DISABLED): only an ACTIVE connector can sync"),
			status: 400, answer: "connector is not ACTIVE (it is USER_DISABLED): only an ACTIVE connector can sync", synced: true},
		{name: "store down", path: base + id + ":sync", err: dcon.Errorf(dcon.EUNAVAILABLE, "the events could not be stored; try again"),
			status: 503, answer: "the events could not be stored; try again", synced: true},
		{name: "malformed connector id", path: base + "nope:sync", status: 404, answer: `data connector "nope" not found`},
		{name: "bad project", path: "/v2/projects/Bad/dataconnectors/" + id + ":sync", status: 404, answer: `project "Bad" not found`},
		{name: "unknown custom method", path: base + id + ":frob", status: 404, answer: `unknown custom method ":frob"`},
		{name: "metrics is read with GET", path: base + id + ":metrics", status: 405,
			answer: "method POST is not allowed on " + base + id + ":metrics; allowed: GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in *syncIngester
			e := newEnv(t, func(s *Server) {
				in = &syncIngester{fakeIngester: s.Ingest.(*fakeIngester), n: 3, err: tt.err}
				s.Ingest = in
			})
			res := e.do(t, "POST", tt.path, tt.body)
			if tt.status == 200 {
				res.want(t, tt.status, tt.answer)
			} else {
				res.wantError(t, tt.status, tt.answer)
			}
			var want []string
			if tt.synced {
				want = []string{project + "/" + id}
			}
			if got := in.syncCalls(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Sync calls %v, want %v", got, want)
			}
		})
	}
}

// eventIDs matches the event ids of a batch answer, which are fresh xids.
var eventIDs = regexp.MustCompile(`"eventId":"[0-9a-v]{20}"`)

func TestBatchPublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seedDevice(t, emuID, dcon.DeviceTemperature)
	const touchID = "emuc17m6d7lq0bgk44smcqh"
	e.seedDevice(t, touchID, dcon.DeviceTouch)
	body := `{"events":[
		{"deviceId":"` + emuID + `","event":{"temperature":{"value":21.5}}},
		{"deviceId":"emuc17m6d7lq0bgk44smcqv","event":{"touch":{}}},
		{"deviceId":"nope","event":{"touch":{}}},
		{"deviceId":"` + touchID + `","event":{"temperature":{"value":1}}},
		{"deviceId":"` + touchID + `"},
		{"deviceId":"` + touchID + `","event":"touch"},
		{"deviceId":"` + touchID + `","event":{"touch":{},"co2":{"ppm":1}}},
		{"deviceId":"` + touchID + `","event":{"smell":{}}},
		{"deviceId":"` + touchID + `","event":{"labelsChanged":{}}},
		{"event":{"touch":{}}},
		{"deviceId":"` + touchID + `","event":{"touch":{}}}
	]}`
	res := e.do(t, "POST", "/v2/projects/"+project+"/devices:batchPublish", body)
	res.want(t, http.StatusOK, "")
	var got struct {
		Results []map[string]any `json:"results"`
	}
	res.decode(t, &got)
	if len(got.Results) != 11 {
		t.Fatalf("%d results for 11 events", len(got.Results))
	}
	golden(t, "batch_publish.golden.json", eventIDs.ReplaceAllString(res.body, `"eventId":"{id}"`))

	pubs := e.ingest.publishes()
	want := []published{
		{project, emuID, dcon.EventTemperature, `{"value":21.5}`},
		{project, touchID, dcon.EventTouch, `{}`},
	}
	if fmt.Sprint(pubs) != fmt.Sprint(want) {
		t.Errorf("published %v, want %v", pubs, want)
	}
	if got.Results[0]["eventId"] == got.Results[10]["eventId"] {
		t.Errorf("two events share the id %v", got.Results[0]["eventId"])
	}
}

func TestBatchPublishReportsStoreFailuresPerEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		result string
	}{
		{"unavailable", dcon.Errorf(dcon.EUNAVAILABLE, "the event could not be stored; try again"),
			`{"error":"the event could not be stored; try again","code":503,"help":"docs/api.md#errors"}`},
		{"internal", errors.New("bug: secret detail"), `{"error":"internal error","code":500,"help":"docs/api.md#errors"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.seedDevice(t, emuID, dcon.DeviceTemperature)
			e.ingest.err = tt.err
			res := e.do(t, "POST", "/v2/projects/"+project+"/devices:batchPublish",
				`{"events":[{"deviceId":"`+emuID+`","event":{"touch":{}}},{"deviceId":"nope","event":{"touch":{}}}]}`)
			res.want(t, http.StatusOK,
				`{"results":[`+tt.result+`,{"error":"device \"nope\" not found","code":404,"help":"docs/api.md#errors"}]}`)
			if strings.Contains(res.body, "secret detail") {
				t.Error("the cause of an internal error was shown")
			}
		})
	}
}

func TestBatchPublishRefusesTheWholeRequest(t *testing.T) {
	t.Parallel()
	one := `{"deviceId":"` + emuID + `","event":{"touch":{}}}`
	tests := []struct {
		name   string
		body   string
		status int
		msg    string
	}{
		{"no events member", `{}`, 400, `field "events" must hold at least one event: {"events":[{"deviceId":"emu…","event":{"temperature":{"value":23.0}}}]}`},
		{"empty list", `{"events":[]}`, 400, `field "events" must hold at least one event: {"events":[{"deviceId":"emu…","event":{"temperature":{"value":23.0}}}]}`},
		{"null list", `{"events":null}`, 400, `field "events" must hold at least one event: {"events":[{"deviceId":"emu…","event":{"temperature":{"value":23.0}}}]}`},
		{"too many events", `{"events":[` + strings.Repeat(one+",", dcon.MaxBatchEvents) + one + `]}`, 413,
			fmt.Sprintf("the batch has %d events; at most %d are allowed", dcon.MaxBatchEvents+1, dcon.MaxBatchEvents)},
		{"unknown member", `{"events":[` + one + `],"dryRun":true}`, 400, `unknown field "dryRun"`},
		{"events not a list", `{"events":{}}`, 400, `field "events" must be an array, not an object`},
		{"empty body", ``, 400, `request body is empty: send a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.seedDevice(t, emuID, dcon.DeviceTouch)
			e.do(t, "POST", "/v2/projects/"+project+"/devices:batchPublish", tt.body).wantError(t, tt.status, tt.msg)
			if n := len(e.ingest.publishes()); n != 0 {
				t.Errorf("a refused batch published %d events", n)
			}
		})
	}
}

func TestBatchPublishAtTheLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seedDevice(t, emuID, dcon.DeviceTouch)
	one := `{"deviceId":"` + emuID + `","event":{"touch":{}}}`
	res := e.do(t, "POST", "/v2/projects/"+project+"/devices:batchPublish",
		`{"events":[`+strings.Repeat(one+",", dcon.MaxBatchEvents-1)+one+`]}`)
	res.want(t, http.StatusOK, "")
	if n := strings.Count(res.body, `"eventId"`); n != dcon.MaxBatchEvents {
		t.Errorf("%d events published, want %d", n, dcon.MaxBatchEvents)
	}
}

func TestBatchPublishMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := "/v2/projects/" + project + "/devices:batchPublish"
	res := e.do(t, "GET", path, "")
	res.wantError(t, http.StatusMethodNotAllowed, "method GET is not allowed on "+path+"; allowed: POST")
	if got := res.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q, want POST", got)
	}
}
