package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"dcon"
)

// DeadLetterReader reads a connector's dead letters: its deliveries that
// expired, 12 hours after their event, before the endpoint acknowledged them.
// The queue (internal/pebble) implements it.
type DeadLetterReader interface {
	DeadLetters(ctx context.Context, connectorID string, limit int) ([]dcon.DeadLetter, error)
}

// DeadLetterPager pages through a connector's dead letters. A
// DeadLetterReader that implements it (internal/pebble does) gives the
// deadletters list page tokens.
type DeadLetterPager interface {
	DeadLettersAfter(ctx context.Context, connectorID string, after dcon.DeadLetterCursor, limit int) ([]dcon.DeadLetter, error)
}

// MaxDeadLetters is the most dead letters one read answers, and the default.
const MaxDeadLetters = 1000

// deadLettersResource is what GET …/dataconnectors/{d}/deadletters answers.
type deadLettersResource struct {
	DeadLetters []deadLetterResource `json:"deadLetters"`
	// NextPageToken is set, "" on the last page, when the reader pages.
	NextPageToken *string `json:"nextPageToken,omitempty"`
}

type deadLetterResource struct {
	EventID    string `json:"eventId"`
	EventTime  string `json:"eventTime"`
	ExpireTime string `json:"expireTime"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"lastError"`
}

// deadLetters answers GET /v2/projects/{p}/dataconnectors/{d}/deadletters: up
// to page_size (or pageSize; 1 to MaxDeadLetters, default MaxDeadLetters) of
// the connector's dead letters, oldest expiry first. When the reader pages
// (DeadLetterPager), page_token (or pageToken) continues from a previous
// answer's nextPageToken, which is "" on the last page. It is read-only and
// additive to the contract. Without a Server.DeadLetters the path is not found.
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
	limit, err := sizeOf(r, MaxDeadLetters, MaxDeadLetters)
	if err != nil {
		return err
	}
	pager, paging := a.deadLetterReader.(DeadLetterPager)
	var cursor dcon.DeadLetterCursor
	if paging {
		if cursor, err = parseDeadLetterToken(r); err != nil {
			return err
		}
	}
	if _, err := a.connectors.Connector(r.Context(), p, id); err != nil {
		return err
	}
	var dls []dcon.DeadLetter
	res := deadLettersResource{}
	if paging {
		if dls, err = pager.DeadLettersAfter(r.Context(), id, cursor, limit+1); err != nil {
			return err
		}
		next := ""
		if len(dls) > limit {
			dls = dls[:limit]
			next = deadLetterToken(dcon.CursorOf(&dls[limit-1]))
		}
		res.NextPageToken = &next
	} else if dls, err = a.deadLetterReader.DeadLetters(r.Context(), id, limit); err != nil {
		return err
	}
	res.DeadLetters = make([]deadLetterResource, 0, len(dls))
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

// deadLetterToken is the opaque page token of a cursor: base64url of
// "<expire Unix nanoseconds>/<event id>".
func deadLetterToken(c dcon.DeadLetterCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.ExpireTime.UnixNano(), 10) + "/" + c.EventID))
}

// parseDeadLetterToken reads the request's page_token (or pageToken): the
// zero cursor when there is none.
func parseDeadLetterToken(r *http.Request) (dcon.DeadLetterCursor, error) {
	q := r.URL.Query()
	tok := q.Get("page_token")
	if tok == "" {
		tok = q.Get("pageToken")
	}
	if tok == "" {
		return dcon.DeadLetterCursor{}, nil
	}
	bad := dcon.Errorf(dcon.EINVALID, "invalid page token")
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return dcon.DeadLetterCursor{}, bad
	}
	ns, eventID, ok := strings.Cut(string(b), "/")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || !dcon.ValidID(eventID) {
		return dcon.DeadLetterCursor{}, bad
	}
	return dcon.DeadLetterCursor{ExpireTime: time.Unix(0, n).UTC(), EventID: eventID}, nil
}
