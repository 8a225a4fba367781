package httpapi

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"dcon"
)

// seedDevice stores an emulated device directly and returns it.
func (e *env) seedDevice(t *testing.T, id string, typ dcon.DeviceType) *dcon.Device {
	t.Helper()
	d := &dcon.Device{ProjectID: project, ID: id, Type: typ,
		Labels: map[string]string{"name": "seed", dcon.LabelEmulated: ""}}
	if err := e.devs.CreateDevice(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

const emuID = "emuc17m6d7lq0bgk44smcqg"

func TestDeviceLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := "/v2/projects/" + project + "/devices"
	e.do(t, "GET", base, "").want(t, http.StatusOK, `{"devices":[],"nextPageToken":""}`)

	res := e.do(t, "POST", base, `{"type":"temperature","labels":{"name":"my-sensor"}}`)
	res.want(t, http.StatusOK, "")
	var d deviceResource
	res.decode(t, &d)
	id := idOf(d.Name)
	if !strings.HasPrefix(id, "emu") || len(id) != 23 || !dcon.ValidDeviceID(id) {
		t.Fatalf("device id %q is not emu + xid", id)
	}
	golden(t, "device_created.golden.json", strings.ReplaceAll(res.body, id, "{id}"))
	if got := e.devs.get(project, id); got == nil || got.Type != dcon.DeviceTemperature {
		t.Fatalf("stored %+v", got)
	}

	path := base + "/" + id
	e.do(t, "GET", path, "").want(t, http.StatusOK, res.body)
	e.do(t, "GET", base, "").want(t, http.StatusOK, `{"devices":[`+res.body+`],"nextPageToken":""}`)

	// PATCH replaces the labels through ingest; the emulator's label stays.
	res = e.do(t, "PATCH", path, `{"labels":{"room":"kitchen"}}`)
	res.want(t, http.StatusOK, `{"name":"projects/`+project+`/devices/`+id+
		`","type":"temperature","productNumber":"","labels":{"room":"kitchen","virtual-sensor":""}}`)
	if got, want := e.ingest.labelCalls(), []map[string]string{{"room": "kitchen", "virtual-sensor": ""}}; !reflect.DeepEqual(got, want) {
		t.Errorf("SetDeviceLabels calls %v, want %v", got, want)
	}
	// A body without labels changes nothing; output-only members are ignored.
	e.do(t, "PATCH", path, `{"name":"x","type":"co2","productNumber":"p"}`).want(t, http.StatusOK, res.body)
	if n := len(e.ingest.labelCalls()); n != 1 {
		t.Errorf("%d SetDeviceLabels calls, want 1", n)
	}

	e.do(t, "DELETE", path, "").want(t, http.StatusOK, "{}")
	e.do(t, "GET", path, "").wantError(t, http.StatusNotFound, "device not found")
	e.do(t, "DELETE", path, "").wantError(t, http.StatusNotFound, "device not found")
	e.do(t, "PATCH", path, `{"labels":{}}`).wantError(t, http.StatusNotFound, "device not found")
}

func TestCreateDeviceLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := "/v2/projects/" + project + "/devices"
	for body, want := range map[string]map[string]string{
		`{"type":"touch"}`:                                 {"virtual-sensor": ""},
		`{"type":"touch","labels":null}`:                   {"virtual-sensor": ""},
		`{"type":"touch","labels":{"virtual-sensor":"x"}}`: {"virtual-sensor": ""},
		`{"type":"ccon","labels":{"a":"1","b":""}}`:        {"a": "1", "b": "", "virtual-sensor": ""},
	} {
		var d deviceResource
		e.do(t, "POST", base, body).decode(t, &d)
		if !maps.Equal(d.Labels, want) {
			t.Errorf("%s: labels %v, want %v", body, d.Labels, want)
		}
		if d.ProductNumber != "" {
			t.Errorf("%s: productNumber %q", body, d.ProductNumber)
		}
	}
}

func TestCreateDeviceRejected(t *testing.T) {
	t.Parallel()
	tests := []struct{ body, msg string }{
		{`{}`, `field "type" is required`},
		{`{"type":"toaster"}`, `unknown device type "toaster"`},
		{`{"type":1}`, `field "type" must be a string, not a number`},
		{`{"type":"touch","labels":["name"]}`, `field "labels" must be an object, not an array`},
		{`{"type":"touch","labels":{"name":1}}`, `field "labels" must be an object of strings, not a number`},
		{`{"type":"touch","colour":"red"}`, `unknown field "colour"`},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.do(t, "POST", "/v2/projects/"+project+"/devices", tt.body).wantError(t, http.StatusBadRequest, tt.msg)
			if n := e.devs.count(); n != 0 {
				t.Errorf("%d devices stored after a rejected request", n)
			}
		})
	}
}

func TestPatchDeviceRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.seedDevice(t, emuID, dcon.DeviceTemperature)
	path := "/v2/projects/" + project + "/devices/" + d.ID
	e.do(t, "PATCH", path, `{"labels":"x"}`).wantError(t, http.StatusBadRequest, `field "labels" must be an object, not a string`)
	e.do(t, "PATCH", path, `{"labels":{},"colour":1}`).wantError(t, http.StatusBadRequest, `unknown field "colour"`)
	if len(e.ingest.labelCalls()) != 0 || !maps.Equal(e.devs.get(project, d.ID).Labels, d.Labels) {
		t.Error("labels changed by a rejected request")
	}
}

func TestPublish(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, body string
		status           int
		msg              string    // the error message when status is not 200
		want             published // the recorded publish when status is 200
	}{
		{name: "temperature", path: emuID + ":publish", body: `{"temperature": {"value": 23.0}}`, status: 200,
			want: published{project, emuID, dcon.EventTemperature, `{"value":23.0}`}},
		{name: "touch", path: emuID + ":publish", body: `{"touch":{}}`, status: 200,
			want: published{project, emuID, dcon.EventTouch, `{}`}},
		{name: "no member", path: emuID + ":publish", body: `{}`, status: 400,
			msg: `the body must have exactly one member, the event type: {"temperature":{"value":23.0}}`},
		{name: "two members", path: emuID + ":publish", body: `{"touch":{},"temperature":{"value":1}}`, status: 400,
			msg: `the body must have exactly one member, the event type: {"temperature":{"value":23.0}}`},
		{name: "repeated member", path: emuID + ":publish", body: `{"touch":{},"touch":{}}`, status: 400,
			msg: `the body must have exactly one member, the event type: {"temperature":{"value":23.0}}`},
		{name: "unknown type", path: emuID + ":publish", body: `{"x":{}}`, status: 400, msg: `unknown event type "x"`},
		{name: "labelsChanged", path: emuID + ":publish", body: `{"labelsChanged":{}}`, status: 400,
			msg: "labelsChanged events cannot be published: PATCH the device's labels instead"},
		{name: "type the device does not send", path: emuID + ":publish", body: `{"co2":{"ppm":400}}`, status: 400,
			msg: "a temperature device does not send co2 events"},
		{name: "not an object", path: emuID + ":publish", body: `["touch"]`, status: 400,
			msg: "request body must be a JSON object, not an array"},
		{name: "device not found", path: "emuc17m6d7lq0bgk44smcq0:publish", body: `{"touch":{}}`, status: 404, msg: "device not found"},
		{name: "invalid device id", path: "sensor-1:publish", body: `{"touch":{}}`, status: 404, msg: `device "sensor-1" not found`},
		{name: "unknown custom method", path: emuID + ":explode", body: `{"touch":{}}`, status: 404, msg: `unknown custom method ":explode"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.seedDevice(t, emuID, dcon.DeviceTemperature)
			res := e.do(t, "POST", "/v2/projects/"+project+"/devices/"+tt.path, tt.body)
			if tt.status != http.StatusOK {
				res.wantError(t, tt.status, tt.msg)
				if got := e.ingest.publishes(); len(got) != 0 {
					t.Errorf("published %v after a rejected request", got)
				}
				return
			}
			if got := e.ingest.publishes(); !reflect.DeepEqual(got, []published{tt.want}) {
				t.Fatalf("published %v, want %v", got, tt.want)
			}
			var ev struct{ EventID, TargetName, EventType, Timestamp string }
			res.decode(t, &ev)
			want := `{"eventId":"` + ev.EventID + `","targetName":"projects/` + project + `/devices/` + emuID +
				`","eventType":"` + string(tt.want.Type) + `","data":{"` + string(tt.want.Type) + `":` + tt.want.Data +
				`},"timestamp":"2022-02-10T12:42:13.313949Z"}`
			res.want(t, http.StatusOK, want)
		})
	}
}

func TestDeviceCustomMethodRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seedDevice(t, emuID, dcon.DeviceTouch)
	base := "/v2/projects/" + project + "/devices/" + emuID
	tests := []struct {
		method, path string
		allow        string
	}{
		{"GET", base + ":publish", "POST"},
		{"PATCH", base + ":publish", "POST"},
		{"DELETE", base + ":publish", "POST"},
		{"POST", base, "DELETE, GET, HEAD, PATCH"},
	}
	for _, tt := range tests {
		res := e.do(t, tt.method, tt.path, "")
		res.wantError(t, http.StatusMethodNotAllowed,
			"method "+tt.method+" is not allowed on "+tt.path+"; allowed: "+tt.allow)
		if got := res.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
	e.do(t, "GET", base+":metrics", "").wantError(t, http.StatusNotFound, `unknown custom method ":metrics"`)
	if e.devs.get(project, emuID) == nil {
		t.Error("device deleted by DELETE :publish")
	}
}

func TestListDevicesPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := "/v2/projects/" + project + "/devices"
	for range 150 {
		e.do(t, "POST", base, `{"type":"touch"}`).want(t, http.StatusOK, "")
	}
	var seen []string
	token := ""
	for pages := 0; ; pages++ {
		var page struct {
			Devices       []deviceResource
			NextPageToken string
		}
		e.do(t, "GET", base+"?page_size=70&pageToken="+token, "").decode(t, &page)
		if want := []int{70, 70, 10}[pages]; len(page.Devices) != want {
			t.Fatalf("page %d has %d devices, want %d", pages, len(page.Devices), want)
		}
		for _, d := range page.Devices {
			seen = append(seen, d.Name)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if len(seen) != 150 || len(uniq(seen)) != 150 {
		t.Errorf("listed %d devices, %d different, want 150", len(seen), len(uniq(seen)))
	}
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

// BenchmarkPublish measures the API's own cost of a publish: routing, reading
// and checking the body, answering the envelope (the fake ingester is cheap).
func BenchmarkPublish(b *testing.B) {
	devs := newFakeDevices()
	if err := devs.CreateDevice(b.Context(), &dcon.Device{ProjectID: project, ID: emuID, Type: dcon.DeviceTemperature}); err != nil {
		b.Fatal(err)
	}
	h := (&Server{Connectors: newFakeConnectors(), Devices: devs, Ingest: &fakeIngester{devices: devs, now: testNow}}).Handler()
	path := "/v2/projects/" + project + "/devices/" + emuID + ":publish"
	body := []byte(`{"temperature":{"value":23.5}}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
