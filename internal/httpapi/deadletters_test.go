package httpapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"dcon"
)

// deadLetterDevices is a fake dead-letter reader (the Pebble store is the real
// one; it is also the device store, hence the embedding).
type deadLetterDevices struct {
	*fakeDevices
	dls   []dcon.DeadLetter
	err   error
	limit chan int
}

func (d *deadLetterDevices) DeadLetters(_ context.Context, connectorID string, limit int) ([]dcon.DeadLetter, error) {
	d.limit <- limit
	if d.err != nil {
		return nil, d.err
	}
	var out []dcon.DeadLetter
	for _, dl := range d.dls {
		if dl.ConnectorID == connectorID && len(out) < limit {
			out = append(out, dl)
		}
	}
	return out, nil
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	path := "/v2/projects/" + project + "/dataconnectors/" + id + "/deadletters"
	eventTime := testNow.Add(-12 * time.Hour)
	dls := []dcon.DeadLetter{{
		Delivery: dcon.Delivery{ConnectorID: id, ProjectID: project, EventID: "c82gg9catj3vmh4248og",
			EventTime: eventTime, Attempts: 7, LastError: "status 500"},
		ExpireTime: testNow,
	}}
	tests := []struct {
		name      string
		path      string
		err       error // the store's
		plain     bool  // a server without a dead-letter reader
		status    int
		body      string
		wantLimit int // 0: the store is not asked
	}{
		{
			name:   "the connector's dead letters",
			path:   path,
			status: http.StatusOK,
			body: `{"deadLetters":[{"eventId":"c82gg9catj3vmh4248og","eventTime":"2022-02-10T00:42:13.313949Z",` +
				`"expireTime":"2022-02-10T12:42:13.313949Z","attempts":7,"lastError":"status 500"}]}`,
			wantLimit: MaxDeadLetters,
		},
		{name: "page_size bounds the answer", path: path + "?page_size=5", status: http.StatusOK, wantLimit: 5},
		{name: "page_size is clamped", path: path + "?page_size=5000", status: http.StatusOK, wantLimit: MaxDeadLetters},
		{name: "a bad page_size", path: path + "?page_size=x", status: http.StatusBadRequest},
		{name: "an unknown connector", path: "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltreff/deadletters", status: http.StatusNotFound},
		{name: "a malformed connector id", path: "/v2/projects/" + project + "/dataconnectors/nope/deadletters", status: http.StatusNotFound},
		{name: "a custom method", path: "/v2/projects/" + project + "/dataconnectors/" + id + ":metrics/deadletters", status: http.StatusNotFound},
		{name: "no dead-letter reader", path: path, plain: true, status: http.StatusNotFound},
		{
			name: "the store is unavailable", path: path, status: http.StatusServiceUnavailable,
			err:       dcon.WrapError(dcon.EUNAVAILABLE, errors.New("disk"), "the store is unavailable"),
			wantLimit: MaxDeadLetters,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &deadLetterDevices{dls: dls, err: tt.err, limit: make(chan int, 1)}
			e := newEnv(t, func(s *Server) {
				store.fakeDevices = s.Devices.(*fakeDevices)
				if !tt.plain {
					s.DeadLetters = store
				}
			})
			e.seedConnector(t, id)
			e.do(t, "GET", tt.path, "").want(t, tt.status, tt.body)
			select {
			case got := <-store.limit:
				if got != tt.wantLimit {
					t.Errorf("asked the store for %d dead letters, want %d", got, tt.wantLimit)
				}
			default:
				if tt.wantLimit != 0 {
					t.Errorf("the store was not asked")
				}
			}
		})
	}
}
