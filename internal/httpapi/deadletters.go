package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"dcon"
)

// DeadLetterReader reads a connector's dead letters: its deliveries that
// expired, 12 hours after their event, before the endpoint acknowledged them.
// The queue (internal/pebble) implements it.
type DeadLetterReader interface {
	DeadLetters(ctx context.Context, connectorID string, limit int) ([]dcon.DeadLetter, error)
}

// MaxDeadLetters is the most dead letters one read answers, and the default.
const MaxDeadLetters = 1000

// deadLettersResource is what GET …/dataconnectors/{d}/deadletters answers.
type deadLettersResource struct {
	DeadLetters []deadLetterResource `json:"deadLetters"`
}

type deadLetterResource struct {
	EventID    string `json:"eventId"`
	EventTime  string `json:"eventTime"`
	ExpireTime string `json:"expireTime"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"lastError"`
}

// deadLetters answers GET /v2/projects/{p}/dataconnectors/{d}/deadletters: up
// to page_size (1 to MaxDeadLetters, default MaxDeadLetters) of the connector's
// dead letters, oldest expiry first. It is read-only and additive to the
// contract. Without a Server.DeadLetters the path is not found.
func (a *api) deadLetters(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.connectorIDs(r)
	if err != nil {
		return err
	}
	if verb != "" {
		return dcon.Errorf(dcon.ENOTFOUND, "no resource at %s", r.URL.Path)
	}
	if a.deadLetterReader == nil {
		return dcon.Errorf(dcon.ENOTFOUND, "no resource at %s", r.URL.Path)
	}
	limit := MaxDeadLetters
	if s := r.URL.Query().Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return dcon.Errorf(dcon.EINVALID, "page_size %q is not a number from 1 to %d", s, MaxDeadLetters)
		}
		if n > 0 {
			limit = min(n, MaxDeadLetters)
		}
	}
	if _, err := a.connectors.Connector(r.Context(), p, id); err != nil {
		return err
	}
	dls, err := a.deadLetterReader.DeadLetters(r.Context(), id, limit)
	if err != nil {
		return err
	}
	res := deadLettersResource{DeadLetters: make([]deadLetterResource, 0, len(dls))}
	for _, d := range dls {
		res.DeadLetters = append(res.DeadLetters, deadLetterResource{
			EventID:    d.EventID,
			EventTime:  dcon.FormatTime(d.EventTime),
			ExpireTime: dcon.FormatTime(d.ExpireTime),
			Attempts:   d.Attempts,
			LastError:  d.LastError,
		})
	}
	return a.respond(w, http.StatusOK, res)
}
