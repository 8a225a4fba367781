package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime"

	"dcon"
)

// postConnector serves the custom methods of a connector: only :sync.
func (a *api) postConnector(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.connectorIDs(r)
	if err != nil {
		return err
	}
	switch verb {
	case "sync":
		return a.syncConnector(w, r, p, id)
	case "metrics":
		a.methodNotAllowed(w, r, "GET, HEAD")
		return nil
	case "":
		a.methodNotAllowed(w, r, "DELETE, GET, HEAD, PATCH")
		return nil
	}
	return noVerb(verb)
}

// syncConnector re-sends, through the connector, the latest event of each type
// of every device of the project (contract section 4), and answers {}. The
// body may be absent or {}.
func (a *api) syncConnector(w http.ResponseWriter, r *http.Request, projectID, connectorID string) error {
	if r.ContentLength != 0 {
		body, err := a.readBody(w, r)
		if err != nil {
			return err
		}
		if err := decodeObject(body, &struct{}{}); err != nil {
			return err
		}
	}
	n, err := a.ingest.Sync(r.Context(), projectID, connectorID)
	if err != nil {
		return err
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "connector synced",
		slog.String("connector", connectorID), slog.String("project", projectID), slog.Int("events", n))
	a.write(w, http.StatusOK, []byte("{}"))
	return nil
}

// batchRequest is the body of devices:batchPublish.
type batchRequest struct {
	Events []batchEvent `json:"events"`
}

// batchEvent is one event of a batch: the device, and the body that
// :publish takes for it, {"<eventType>": {...}}.
type batchEvent struct {
	DeviceID string          `json:"deviceId"`
	Event    json.RawMessage `json:"event"`
}

// batchResult is the outcome of one event of a batch: its eventId, or the
// contract's error body.
type batchResult struct {
	EventID string `json:"eventId,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    int    `json:"code,omitempty"`
	Help    string `json:"help,omitempty"`
}

// batchPublish publishes many events of a project in one request, for
// gateways: {"events":[{"deviceId":"emu…","event":{"temperature":{...}}}, …]}.
// Each event is checked and published on its own; the answer is 200 with one
// result per event, in order: {"results":[{"eventId":"…"}, {"error":…,
// "code":…,"help":…}, …]}. An event's result is an eventId only once every
// copy of it is durable. A malformed body, an empty list or more than
// dcon.MaxBatchEvents events refuse the whole request (400, 400, 413).
func (a *api) batchPublish(w http.ResponseWriter, r *http.Request) error {
	p, err := a.projectID(r)
	if err != nil {
		return err
	}
	body, err := a.readBody(w, r)
	if err != nil {
		return err
	}
	var req batchRequest
	if err := decodeObject(body, &req); err != nil {
		return err
	}
	switch n := len(req.Events); {
	case n == 0:
		return dcon.Errorf(dcon.EINVALID, `field "events" must hold at least one event: {"events":[{"deviceId":"emu…","event":{"temperature":{"value":23.0}}}]}`)
	case n > dcon.MaxBatchEvents:
		return dcon.Errorf(dcon.ETOOLARGE, "the batch has %d events; at most %d are allowed", n, dcon.MaxBatchEvents)
	}
	results := make([]batchResult, len(req.Events))
	reqs := make([]dcon.PublishRequest, 0, len(req.Events))
	at := make([]int, 0, len(req.Events)) // the position of each of reqs in the batch
	for i, e := range req.Events {
		if i > 0 && i%dcon.BatchYieldEvery == 0 {
			runtime.Gosched()
		}
		pr, err := decodeBatchEvent(e)
		if err != nil {
			results[i] = a.batchError(r, err)
			continue
		}
		reqs = append(reqs, pr)
		at = append(at, i)
	}
	if len(reqs) > 0 {
		published := a.ingest.PublishBatch(r.Context(), p, reqs)
		if len(published) != len(reqs) {
			return dcon.Errorf(dcon.EINTERNAL, "ingest answered %d results for %d events", len(published), len(reqs))
		}
		for j, res := range published {
			switch {
			case res.Err != nil:
				results[at[j]] = a.batchError(r, res.Err)
			case res.Event == nil:
				results[at[j]] = a.batchError(r, dcon.Errorf(dcon.EINTERNAL, "ingest answered neither an event nor an error"))
			default:
				results[at[j]] = batchResult{EventID: res.Event.ID}
			}
		}
	}
	return a.respond(w, http.StatusOK, struct {
		Results []batchResult `json:"results"`
	}{results})
}

// decodeBatchEvent checks one event of a batch as :publish checks its path
// and body. A device id that cannot exist is not found.
func decodeBatchEvent(e batchEvent) (dcon.PublishRequest, error) {
	if e.DeviceID == "" {
		return dcon.PublishRequest{}, dcon.Errorf(dcon.EINVALID, `field "deviceId" is required`)
	}
	if !dcon.ValidDeviceID(e.DeviceID) {
		return dcon.PublishRequest{}, dcon.Errorf(dcon.ENOTFOUND, "device %q not found", e.DeviceID)
	}
	switch event := bytes.TrimSpace(e.Event); {
	case len(event) == 0 || string(event) == "null":
		return dcon.PublishRequest{}, dcon.Errorf(dcon.EINVALID, `field "event" is required: {"temperature":{"value":23.0}}`)
	case event[0] != '{':
		return dcon.PublishRequest{}, dcon.Errorf(dcon.EINVALID, `field "event" must be an object, not %s: {"temperature":{"value":23.0}}`, jsonKind(event))
	}
	t, data, err := decodeEvent(e.Event)
	if err != nil {
		var de *dcon.Error
		if errors.As(err, &de) {
			return dcon.PublishRequest{}, dcon.WrapError(de.Code, err, "event: %s", de.Message)
		}
		return dcon.PublishRequest{}, err
	}
	return dcon.PublishRequest{DeviceID: e.DeviceID, Type: t, Data: data}, nil
}

// batchError is the result of an event of a batch that failed with err: the
// contract's error body, its status from the one table (statusFor). As in
// writeError, an internal error's cause is logged and never shown.
func (a *api) batchError(r *http.Request, err error) batchResult {
	status := statusFor(dcon.ErrorCode(err))
	msg := dcon.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		msg = "internal error"
		a.log.LogAttrs(r.Context(), slog.LevelError, "internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	return batchResult{Error: msg, Code: status, Help: helpLink}
}
