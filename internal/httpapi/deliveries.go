package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"dcon"
)

// DeliveryRecord is one attempt or expiry in a connector's delivery log.
type DeliveryRecord struct {
	Seq        uint64 // increasing: a follower asks for the records after the last it saw
	At         time.Time
	EventID    string
	Attempt    int
	StatusCode int
	Latency    time.Duration
	Outcome    string // DELIVERED, FAILED or EXPIRED
	ErrorClass string // "" when delivered
	Error      string
}

// DeliveryLog reads the recent attempts and expiries of connectors;
// internal/deliverylog keeps them (cmd/dcon adapts it).
type DeliveryLog interface {
	// Latest returns up to limit of a connector's records, newest first, and
	// the sequence number to follow from.
	Latest(connectorID string, limit int) (records []DeliveryRecord, next uint64)
	// Since returns up to limit of a connector's records after the sequence
	// number after, oldest first, and the number to ask with next time.
	Since(connectorID string, after uint64, limit int) (records []DeliveryRecord, next uint64)
}

// Replayer delivers dead letters again; internal/ingest implements it.
type Replayer interface {
	// Replay moves the connector's dead letters that r names back into its
	// queue and dispatches them, and returns how many. Errors are
	// *dcon.Error: ENOTFOUND connector, ECONFLICT connector not ACTIVE,
	// EINVALID request, EUNAVAILABLE store.
	Replay(ctx context.Context, projectID, connectorID string, r dcon.ReplayRequest) (int, error)
}

// Page sizes of GET …/deliveries.
const (
	DefaultDeliveries = 100
	MaxDeliveries     = 1000
)

// deliveriesResource is what GET …/dataconnectors/{d}/deliveries answers.
type deliveriesResource struct {
	Deliveries []deliveryResource `json:"deliveries"`
	NextAfter  uint64             `json:"nextAfter"`
}

type deliveryResource struct {
	Seq        uint64  `json:"seq"`
	Time       string  `json:"time"`
	EventID    string  `json:"eventId"`
	Attempt    int     `json:"attempt"`
	StatusCode int     `json:"statusCode"`
	LatencyMs  float64 `json:"latencyMs"`
	Outcome    string  `json:"outcome"`
	ErrorClass string  `json:"errorClass"`
	Error      string  `json:"error"`
}

func newDeliveryResource(d DeliveryRecord) deliveryResource {
	return deliveryResource{
		Seq:        d.Seq,
		Time:       dcon.FormatTime(d.At),
		EventID:    d.EventID,
		Attempt:    d.Attempt,
		StatusCode: d.StatusCode,
		LatencyMs:  float64(d.Latency.Microseconds()) / 1000,
		Outcome:    d.Outcome,
		ErrorClass: d.ErrorClass,
		Error:      d.Error,
	}
}

// deliveries answers GET /v2/projects/{p}/dataconnectors/{d}/deliveries: the
// connector's recent attempts and expiries on this node, newest first; with
// after=SEQ, those after that sequence number, oldest first, to follow the
// log. pageSize (or page_size) is 1 to MaxDeliveries, default
// DefaultDeliveries. nextAfter is the number to pass as after next time.
// Additive to the contract; without a Server.Deliveries the path is not found.
func (a *api) deliveries(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.connectorIDs(r)
	if err != nil {
		return err
	}
	if verb != "" || a.deliveryLog == nil {
		return dcon.Errorf(dcon.ENOTFOUND, "no resource at %s", r.URL.Path)
	}
	limit, err := sizeOf(r, DefaultDeliveries, MaxDeliveries)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var after uint64
	following := q.Has("after")
	if following {
		if after, err = strconv.ParseUint(q.Get("after"), 10, 64); err != nil {
			return dcon.Errorf(dcon.EINVALID, "after %q is not a sequence number (the nextAfter of a previous answer)", q.Get("after"))
		}
	}
	if _, err := a.connectors.Connector(r.Context(), p, id); err != nil {
		return err
	}
	var recs []DeliveryRecord
	var next uint64
	if following {
		recs, next = a.deliveryLog.Since(id, after, limit)
	} else {
		recs, next = a.deliveryLog.Latest(id, limit)
	}
	res := deliveriesResource{Deliveries: make([]deliveryResource, 0, len(recs)), NextAfter: next}
	for _, d := range recs {
		res.Deliveries = append(res.Deliveries, newDeliveryResource(d))
	}
	return a.respond(w, http.StatusOK, res)
}

// replayBody is the body of …/deadletters:replay: exactly one member.
type replayBody struct {
	EventIDs []string `json:"eventIds"`
	Since    *string  `json:"since"`
	All      *bool    `json:"all"`
}

// replayRequest checks b and returns the request it makes.
func (b *replayBody) replayRequest() (dcon.ReplayRequest, error) {
	var r dcon.ReplayRequest
	set := 0
	if b.EventIDs != nil {
		set++
		r.EventIDs = b.EventIDs
		if len(b.EventIDs) == 0 {
			return r, dcon.Errorf(dcon.EINVALID, `"eventIds" is empty: name at least one event`)
		}
	}
	if b.Since != nil {
		set++
		t, err := time.Parse(time.RFC3339Nano, *b.Since)
		if err != nil || t.IsZero() {
			return r, dcon.Errorf(dcon.EINVALID, `"since" %q is not an RFC 3339 time, such as 2022-02-10T12:00:00Z`, *b.Since)
		}
		r.Since = t
	}
	if b.All != nil {
		set++
		if !*b.All {
			return r, dcon.Errorf(dcon.EINVALID, `"all" must be true when given`)
		}
		r.All = true
	}
	if set != 1 {
		return r, dcon.Errorf(dcon.EINVALID, `give exactly one of "eventIds", "since" and "all": {"eventIds":["c82gg9catj3vmh4248og"]}, {"since":"2022-02-10T12:00:00Z"} or {"all":true}`)
	}
	if len(r.EventIDs) > dcon.MaxReplay {
		return r, dcon.Errorf(dcon.EINVALID, `"eventIds" names %d events; at most %d may be replayed at once`, len(r.EventIDs), dcon.MaxReplay)
	}
	return r, nil
}

// replayDeadLetters answers POST …/dataconnectors/{d}/deadletters:replay:
// {"eventIds":[…]} (at most dcon.MaxReplay), {"since":RFC3339} or
// {"all":true} → {"replayed":N}. Replayed dead letters are delivered again
// with their original eventId. A connector that is not ACTIVE answers 409.
// Additive to the contract; without a Server.Replayer the path is not found.
func (a *api) replayDeadLetters(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.connectorIDs(r)
	if err != nil {
		return err
	}
	if verb != "" || a.replayer == nil {
		return dcon.Errorf(dcon.ENOTFOUND, "no resource at %s", r.URL.Path)
	}
	body, err := a.readBody(w, r)
	if err != nil {
		return err
	}
	var b replayBody
	if err := decodeObject(body, &b); err != nil {
		return err
	}
	req, err := b.replayRequest()
	if err != nil {
		return err
	}
	if _, err := a.connectors.Connector(r.Context(), p, id); err != nil {
		return err
	}
	n, err := a.replayer.Replay(r.Context(), p, id, req)
	if err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, struct {
		Replayed int `json:"replayed"`
	}{n})
}
