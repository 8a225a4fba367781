package httpapi

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"dcon"
)

// fakeLog is a delivery log of fixed records, oldest first.
type fakeLog struct{ recs []DeliveryRecord }

func (f *fakeLog) Latest(_ string, limit int) ([]DeliveryRecord, uint64) {
	var out []DeliveryRecord
	for i := len(f.recs) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, f.recs[i])
	}
	return out, f.recs[len(f.recs)-1].Seq
}

func (f *fakeLog) Since(_ string, after uint64, limit int) ([]DeliveryRecord, uint64) {
	var out []DeliveryRecord
	next := after
	for _, r := range f.recs {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
			next = r.Seq
		}
	}
	return out, next
}

func TestDeliveries(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	path := "/v2/projects/" + project + "/dataconnectors/" + id + "/deliveries"
	log := &fakeLog{recs: []DeliveryRecord{
		{Seq: 41, At: testNow, EventID: "c82gg9catj3vmh4248og", Attempt: 1, StatusCode: 503, Latency: 1500 * time.Microsecond,
			Outcome: "FAILED", ErrorClass: "http_5xx", Error: "HTTP 503 Service Unavailable"},
		{Seq: 42, At: testNow.Add(time.Second), EventID: "c82gg9catj3vmh4248og", Attempt: 2, StatusCode: 200, Latency: 2 * time.Millisecond,
			Outcome: "DELIVERED"},
	}}
	failed := `{"seq":41,"time":"2022-02-10T12:42:13.313949Z","eventId":"c82gg9catj3vmh4248og","attempt":1,"statusCode":503,` +
		`"latencyMs":1.5,"outcome":"FAILED","errorClass":"http_5xx","error":"HTTP 503 Service Unavailable"}`
	delivered := `{"seq":42,"time":"2022-02-10T12:42:14.313949Z","eventId":"c82gg9catj3vmh4248og","attempt":2,"statusCode":200,` +
		`"latencyMs":2,"outcome":"DELIVERED","errorClass":"","error":""}`
	tests := []struct {
		name   string
		path   string
		plain  bool
		status int
		body   string
	}{
		{"newest first", path, false, http.StatusOK, `{"deliveries":[` + delivered + `,` + failed + `],"nextAfter":42}`},
		{"pageSize", path + "?pageSize=1", false, http.StatusOK, `{"deliveries":[` + delivered + `],"nextAfter":42}`},
		{"after: oldest first", path + "?after=0", false, http.StatusOK, `{"deliveries":[` + failed + `,` + delivered + `],"nextAfter":42}`},
		{"after the last", path + "?after=42", false, http.StatusOK, `{"deliveries":[],"nextAfter":42}`},
		{"a bad after", path + "?after=x", false, http.StatusBadRequest, ""},
		{"a bad pageSize", path + "?pageSize=-1", false, http.StatusBadRequest, ""},
		{"an unknown connector", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltreff/deliveries", false, http.StatusNotFound, ""},
		{"a custom method", "/v2/projects/" + project + "/dataconnectors/" + id + ":x/deliveries", false, http.StatusNotFound, ""},
		{"no delivery log", path, true, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(s *Server) {
				if !tt.plain {
					s.Deliveries = log
				}
			})
			e.seedConnector(t, id)
			e.do(t, "GET", tt.path, "").want(t, tt.status, tt.body)
		})
	}
}

// fakeReplayer records replay requests.
type fakeReplayer struct {
	mu   sync.Mutex
	reqs []dcon.ReplayRequest
	n    int
	err  error
}

func (f *fakeReplayer) Replay(_ context.Context, _, _ string, r dcon.ReplayRequest) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	return f.n, f.err
}

func TestReplayDeadLetters(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	path := "/v2/projects/" + project + "/dataconnectors/" + id + "/deadletters:replay"
	since := time.Date(2022, 2, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		path   string
		body   string
		err    error
		status int
		answer string
		want   *dcon.ReplayRequest
	}{
		{name: "event ids", path: path, body: `{"eventIds":["c82gg9catj3vmh4248og"]}`, status: 200, answer: `{"replayed":3}`,
			want: &dcon.ReplayRequest{EventIDs: []string{"c82gg9catj3vmh4248og"}}},
		{name: "since", path: path, body: `{"since":"2022-02-10T12:00:00Z"}`, status: 200, want: &dcon.ReplayRequest{Since: since}},
		{name: "all", path: path, body: `{"all":true}`, status: 200, want: &dcon.ReplayRequest{All: true}},
		{name: "none", path: path, body: `{}`, status: 400, answer: errorJSON(400, `give exactly one of "eventIds", "since" and "all": {"eventIds":["c82gg9catj3vmh4248og"]}, {"since":"2022-02-10T12:00:00Z"} or {"all":true}`)},
		{name: "two", path: path, body: `{"all":true,"since":"2022-02-10T12:00:00Z"}`, status: 400},
		{name: "all false", path: path, body: `{"all":false}`, status: 400},
		{name: "empty ids", path: path, body: `{"eventIds":[]}`, status: 400},
		{name: "a bad time", path: path, body: `{"since":"yesterday"}`, status: 400},
		{name: "an unknown member", path: path, body: `{"every":true}`, status: 400},
		{name: "no body", path: path, body: ``, status: 400},
		{name: "a disabled connector", path: path, body: `{"all":true}`, status: 409,
			err:  dcon.Errorf(dcon.ECONFLICT, "connector is not ACTIVE"),
			want: &dcon.ReplayRequest{All: true}},
		{name: "an unknown connector", path: "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltreff/deadletters:replay", body: `{"all":true}`, status: 404},
		{name: "an unknown custom method", path: "/v2/projects/" + project + "/dataconnectors/" + id + "/deadletters:purge", body: `{"all":true}`, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rp := &fakeReplayer{n: 3, err: tt.err}
			e := newEnv(t, func(s *Server) { s.Replayer = rp })
			e.seedConnector(t, id)
			e.do(t, "POST", tt.path, tt.body).want(t, tt.status, tt.answer)
			rp.mu.Lock()
			defer rp.mu.Unlock()
			switch {
			case tt.want == nil && len(rp.reqs) != 0:
				t.Errorf("replayed %+v, want nothing", rp.reqs)
			case tt.want != nil && (len(rp.reqs) != 1 || !slices.Equal(rp.reqs[0].EventIDs, tt.want.EventIDs) ||
				!rp.reqs[0].Since.Equal(tt.want.Since) || rp.reqs[0].All != tt.want.All):
				t.Errorf("replayed %+v, want %+v", rp.reqs, *tt.want)
			}
		})
	}
	t.Run("without a replayer", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.seedConnector(t, id)
		e.do(t, "POST", path, `{"all":true}`).want(t, 404, "")
	})
	t.Run("GET is not allowed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(s *Server) { s.Replayer = &fakeReplayer{} })
		e.do(t, "GET", path, "").want(t, 405, "")
	})
}

// pagingDeadLetters is a dead-letter reader that pages, over fixed dead
// letters in order.
type pagingDeadLetters struct{ dls []dcon.DeadLetter }

func (p *pagingDeadLetters) DeadLetters(_ context.Context, _ string, limit int) ([]dcon.DeadLetter, error) {
	return p.dls[:min(limit, len(p.dls))], nil
}

func (p *pagingDeadLetters) DeadLettersAfter(_ context.Context, _ string, after dcon.DeadLetterCursor, limit int) ([]dcon.DeadLetter, error) {
	var out []dcon.DeadLetter
	for _, dl := range p.dls {
		past := after.IsZero() || dl.ExpireTime.After(after.ExpireTime) ||
			dl.ExpireTime.Equal(after.ExpireTime) && dl.EventID > after.EventID
		if past && len(out) < limit {
			out = append(out, dl)
		}
	}
	return out, nil
}

func TestDeadLetterPages(t *testing.T) {
	t.Parallel()
	const id = "c16pegipidie7lltrefg"
	path := "/v2/projects/" + project + "/dataconnectors/" + id + "/deadletters"
	store := &pagingDeadLetters{}
	for _, ev := range []string{"c82gg9catj3vmh4248o1", "c82gg9catj3vmh4248o2", "c82gg9catj3vmh4248o3"} {
		store.dls = append(store.dls, dcon.DeadLetter{Delivery: dcon.Delivery{ConnectorID: id, EventID: ev, EventTime: testNow}, ExpireTime: testNow})
	}
	e := newEnv(t, func(s *Server) { s.DeadLetters = store })
	e.seedConnector(t, id)
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatalf("too many pages: %v", got)
		}
		var page struct {
			DeadLetters []struct {
				EventID string `json:"eventId"`
			} `json:"deadLetters"`
			NextPageToken *string `json:"nextPageToken"`
		}
		e.do(t, "GET", path+"?pageSize=2&pageToken="+token, "").decode(t, &page)
		for _, dl := range page.DeadLetters {
			got = append(got, dl.EventID)
		}
		if page.NextPageToken == nil {
			t.Fatal("no nextPageToken")
		}
		if token = *page.NextPageToken; token == "" {
			break
		}
	}
	if len(got) != 3 || got[0] != store.dls[0].EventID || got[2] != store.dls[2].EventID {
		t.Errorf("paged through %v", got)
	}
	e.do(t, "GET", path+"?page_token=bad!", "").wantError(t, 400, "invalid page token")
}
