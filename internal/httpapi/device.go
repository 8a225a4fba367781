package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strings"

	"github.com/rs/xid"

	"dcon"
)

// deviceResource is a device as the API shows it (contract section 6).
type deviceResource struct {
	Name          string            `json:"name"`
	Type          dcon.DeviceType   `json:"type"`
	ProductNumber string            `json:"productNumber"`
	Labels        map[string]string `json:"labels"`
}

func newDeviceResource(d *dcon.Device) deviceResource {
	r := deviceResource{Name: d.Name(), Type: d.Type, ProductNumber: d.ProductNumber, Labels: d.Labels}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	return r
}

// deviceFields is a device as a client sends it. name and productNumber are
// output only, and type is set at creation only: they are accepted and ignored
// where they cannot be set.
type deviceFields struct {
	Name          json.RawMessage `json:"name"`
	Type          json.RawMessage `json:"type"`
	ProductNumber json.RawMessage `json:"productNumber"`
	Labels        json.RawMessage `json:"labels"`
}

func (a *api) decodeDevice(w http.ResponseWriter, r *http.Request) (*deviceFields, error) {
	body, err := a.readBody(w, r)
	if err != nil {
		return nil, err
	}
	var f deviceFields
	if err := decodeObject(body, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// emulatedLabels returns labels with the emulator's own label added.
func emulatedLabels(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	maps.Copy(out, labels)
	out[dcon.LabelEmulated] = ""
	return out
}

// validateLabels checks labels. A failure is the client's.
func validateLabels(labels map[string]string) error {
	err := dcon.ValidateLabels(labels)
	var e *dcon.Error
	if err != nil && !errors.As(err, &e) {
		return dcon.WrapError(dcon.EINVALID, err, "invalid labels: %v", err)
	}
	return err
}

// deviceIDs reads and checks the project and device ids of the path. An id that
// cannot exist is not found. verb is the custom method, if any.
func (a *api) deviceIDs(r *http.Request) (projectID, id, verb string, err error) {
	return a.checkDeviceIDs(r, r.PathValue("p"), r.PathValue("d"))
}

// checkDeviceIDs is deviceIDs for the values p and d of the path's {p} and
// {d}.
func (a *api) checkDeviceIDs(r *http.Request, p, d string) (projectID, id, verb string, err error) {
	if projectID, err = a.checkProjectID(r, p); err != nil {
		return "", "", "", err
	}
	id, verb = splitVerb(d)
	if !dcon.ValidDeviceID(id) {
		return "", "", "", dcon.Errorf(dcon.ENOTFOUND, "device %q not found", id)
	}
	return projectID, id, verb, nil
}

// deviceVerb refuses a custom method on a device route that has none: the
// known ones with 405, others with 404.
func (a *api) deviceVerb(w http.ResponseWriter, r *http.Request, verb string) (handled bool) {
	switch verb {
	case "":
		return false
	case "publish":
		a.methodNotAllowed(w, r, http.MethodPost)
	default:
		a.writeError(w, r, noVerb(verb))
	}
	return true
}

func (a *api) listDevices(w http.ResponseWriter, r *http.Request) error {
	return listPage(a, w, r, "devices", a.devices.ListDevices, newDeviceResource)
}

func (a *api) createDevice(w http.ResponseWriter, r *http.Request) error {
	p, err := a.projectID(r)
	if err != nil {
		return err
	}
	f, err := a.decodeDevice(w, r)
	if err != nil {
		return err
	}
	var t dcon.DeviceType
	if err := setField("type", f.Type, &t); err != nil {
		return err
	}
	if t == "" {
		return dcon.Errorf(dcon.EINVALID, `field "type" is required`)
	}
	if !t.Valid() {
		return dcon.Errorf(dcon.EINVALID, "unknown device type %q", t)
	}
	var labels map[string]string
	if err := setField("labels", f.Labels, &labels); err != nil {
		return err
	}
	labels = emulatedLabels(labels)
	if err := validateLabels(labels); err != nil {
		return err
	}
	now := a.now()
	d := &dcon.Device{
		ProjectID:  p,
		ID:         dcon.EmulatedDevicePrefix + xid.New().String(),
		Type:       t,
		Labels:     labels,
		CreateTime: now,
		UpdateTime: now,
	}
	if err := a.devices.CreateDevice(r.Context(), d); err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newDeviceResource(d))
}

func (a *api) getDevice(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.deviceIDs(r)
	if err != nil {
		return err
	}
	if a.deviceVerb(w, r, verb) {
		return nil
	}
	d, err := a.devices.Device(r.Context(), p, id)
	if err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newDeviceResource(d))
}

// patchDevice replaces a device's labels, when the body has them, through
// ingest, which publishes the labelsChanged event. Emulated devices keep their
// virtual-sensor label.
func (a *api) patchDevice(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.deviceIDs(r)
	if err != nil {
		return err
	}
	if a.deviceVerb(w, r, verb) {
		return nil
	}
	f, err := a.decodeDevice(w, r)
	if err != nil {
		return err
	}
	if f.Labels == nil {
		d, err := a.devices.Device(r.Context(), p, id)
		if err != nil {
			return err
		}
		return a.respond(w, http.StatusOK, newDeviceResource(d))
	}
	var labels map[string]string
	if err := setField("labels", f.Labels, &labels); err != nil {
		return err
	}
	if strings.HasPrefix(id, dcon.EmulatedDevicePrefix) {
		labels = emulatedLabels(labels)
	} else if labels == nil {
		labels = map[string]string{}
	}
	if err := validateLabels(labels); err != nil {
		return err
	}
	d, err := a.ingest.SetDeviceLabels(r.Context(), p, id, labels)
	if err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newDeviceResource(d))
}

func (a *api) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.deviceIDs(r)
	if err != nil {
		return err
	}
	if a.deviceVerb(w, r, verb) {
		return nil
	}
	if err := a.devices.DeleteDevice(r.Context(), p, id); err != nil {
		return err
	}
	a.write(w, http.StatusOK, []byte("{}"))
	return nil
}

// postDevice serves the custom methods of a device: only :publish.
func (a *api) postDevice(w http.ResponseWriter, r *http.Request) error {
	return a.postDeviceAt(w, r, r.PathValue("p"), r.PathValue("d"))
}

// postDeviceAt is postDevice for the values p and d of the path's {p} and
// {d}; the fast path of routing calls it directly.
func (a *api) postDeviceAt(w http.ResponseWriter, r *http.Request, p, d string) error {
	p, id, verb, err := a.checkDeviceIDs(r, p, d)
	if err != nil {
		return err
	}
	switch verb {
	case "publish":
		return a.publish(w, r, p, id)
	case "":
		a.methodNotAllowed(w, r, "DELETE, GET, HEAD, PATCH")
		return nil
	}
	return noVerb(verb)
}

// publish publishes the one event of the body, {"<eventType>": {...}}, and
// answers its envelope.
func (a *api) publish(w http.ResponseWriter, r *http.Request, projectID, deviceID string) error {
	body, err := a.readBody(w, r)
	if err != nil {
		return err
	}
	t, data, err := decodeEvent(body)
	if err != nil {
		return err
	}
	ev, err := a.ingest.Publish(r.Context(), projectID, deviceID, t, data)
	if err != nil {
		return err
	}
	// The envelope is rendered in a pooled buffer: Write copies it.
	bp, _ := a.answers.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = ev.AppendJSON((*bp)[:0])
	a.write(w, http.StatusOK, *bp)
	a.answers.Put(bp)
	return nil
}

// decodeEvent reads a publish body: an object with exactly one member, whose
// key is the event type and whose value its data.
func decodeEvent(body []byte) (dcon.EventType, json.RawMessage, error) {
	if key, data, ok := oneMember(body); ok {
		return checkEventType(key, data)
	}
	var members map[string]json.RawMessage
	if err := decodeObject(body, &members); err != nil {
		return "", nil, err
	}
	// A map forgets repeated keys: count the members of the object itself.
	if len(members) != 1 || countMembers(body) != 1 {
		return "", nil, dcon.Errorf(dcon.EINVALID,
			`the body must have exactly one member, the event type: {"temperature":{"value":23.0}}`)
	}
	var key string
	var data json.RawMessage
	for key, data = range members {
	}
	return checkEventType(key, data)
}

// checkEventType returns the event type key names, with its data, or the
// error that refuses it.
func checkEventType(key string, data json.RawMessage) (dcon.EventType, json.RawMessage, error) {
	t := dcon.EventType(key)
	switch {
	case !t.Valid():
		return "", nil, dcon.Errorf(dcon.EINVALID, "unknown event type %q", key)
	case t == dcon.EventLabelsChanged:
		return "", nil, dcon.Errorf(dcon.EINVALID, "labelsChanged events cannot be published: PATCH the device's labels instead")
	}
	return t, data, nil
}

// countMembers counts the members of body, a valid JSON object.
func countMembers(body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return 0
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil { // key
			return n
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return n
		}
		n++
	}
	return n
}
