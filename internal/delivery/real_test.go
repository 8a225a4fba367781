package delivery_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"dcon"
	"dcon/internal/delivery"
	"dcon/internal/pebble"
	"dcon/internal/webhook"
)

// receiver is an httptest TLS endpoint that counts what it receives and the
// most requests it had at once.
type receiver struct {
	srv               *httptest.Server
	got, now, most    atomic.Int64
	hang              bool
	http2             atomic.Int64
	releaseOnShutdown chan struct{}
}

func newReceiver(t *testing.T, hang bool) *receiver {
	t.Helper()
	r := &receiver{hang: hang, releaseOnShutdown: make(chan struct{})}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.now.Add(1)
		defer r.now.Add(-1)
		for m := r.most.Load(); n > m && !r.most.CompareAndSwap(m, n); m = r.most.Load() {
		}
		if req.ProtoMajor == 2 {
			r.http2.Add(1)
		}
		if r.hang {
			select {
			case <-req.Context().Done():
			case <-r.releaseOnShutdown:
			}
			return
		}
		r.got.Add(1)
	}))
	r.srv.EnableHTTP2 = true
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.srv.StartTLS()
	t.Cleanup(func() { close(r.releaseOnShutdown); r.srv.Close() })
	return r
}

func openPebble(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// listed is a connectors set that can also list itself, as *ingest.Router.
type listed struct{ connectors }

func (l listed) AllConnectors(context.Context) ([]*dcon.Connector, error) {
	var out []*dcon.Connector
	for _, c := range l.connectors {
		out = append(out, c)
	}
	return out, nil
}

func realEngine(t *testing.T, q dcon.Queue, cs delivery.Connectors, timeout time.Duration, roots ...*httptest.Server) *delivery.Engine {
	t.Helper()
	pool := x509.NewCertPool()
	for _, s := range roots {
		pool.AddCert(s.Certificate())
	}
	client, err := webhook.New(webhook.Config{Timeout: timeout, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	e, err := delivery.New(delivery.Config{Queue: q, Connectors: cs, Sender: client,
		PollInterval: 10 * time.Millisecond, Lease: time.Minute,
		Flow: delivery.FlowConfig{InitialWindow: 8, ProbeAfter: 10, ProbeInterval: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

func connectorTo(id, url string) *dcon.Connector {
	return &dcon.Connector{ID: id, Status: dcon.StatusActive, HTTP: dcon.HTTPConfig{URL: url}}
}

func publishTo(t *testing.T, e *delivery.Engine, q dcon.Queue, c string, n int, prefix string) {
	t.Helper()
	now := time.Now()
	ds := make([]dcon.Delivery, n)
	for i := range ds {
		id := fmt.Sprintf("%s%05d", prefix, i)
		ds[i] = dcon.Delivery{ConnectorID: c, EventID: id, EventTime: now, Body: []byte(`{}`), Due: now.Add(time.Minute)}
	}
	e.Admit(ds)
	if err := q.Enqueue(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	e.Dispatch(ds)
}

func TestHangingEndpointDoesNotSlowAHealthyOne(t *testing.T) {
	t.Parallel()
	healthy, hanging := newReceiver(t, false), newReceiver(t, true)
	db := openPebble(t, t.TempDir())
	cs := connectors{"ok": connectorTo("ok", healthy.srv.URL), "hang": connectorTo("hang", hanging.srv.URL)}
	e := realEngine(t, db, cs, time.Second, healthy.srv, hanging.srv)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	publishTo(t, e, db, "hang", 500, "h")
	start := time.Now()
	publishTo(t, e, db, "ok", 500, "o")
	waitUntil(t, "the healthy connector's events delivered", func() bool {
		n, err := db.Depth(context.Background(), "ok")
		return err == nil && n == 0 // duplicates may arrive: at least once
	})
	t.Logf("500 deliveries to a healthy endpoint in %v beside a hanging one", time.Since(start))
	if m := hanging.most.Load(); m > 8 {
		t.Errorf("the hanging endpoint had %d requests at once, more than its window", m)
	}
	// Attempts started before it went PROBING hang until their timeout; then
	// only the probe is out.
	waitUntil(t, "the hanging connector probing with one attempt out", func() bool {
		s := e.Flow("hang")
		return s.Mode == dcon.FlowProbing && s.InFlight <= 1
	})
	if s := e.Flow("hang"); s.Backlog != dcon.BacklogParked {
		t.Errorf("a hanging connector: %+v", s)
	}
	if healthy.http2.Load() == 0 {
		t.Errorf("an HTTP/2 endpoint was not spoken to in HTTP/2")
	}
}

func TestRestartDrainsAParkedBacklog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcv := newReceiver(t, false)
	cs := listed{connectors{"c1": connectorTo("c1", rcv.srv.URL)}}

	// A first process parks 300 events of a dead connector, then stops.
	db := openPebble(t, dir)
	e1, err := delivery.New(delivery.Config{Queue: db, Connectors: cs, Sender: deadSender{}, PollInterval: time.Hour,
		Flow: delivery.FlowConfig{InitialWindow: 2, ProbeAfter: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; e1.Flow("c1").Mode != dcon.FlowProbing; i++ {
		publishTo(t, e1, db, "c1", 1, fmt.Sprintf("a%d-", i))
		e1.Wait()
	}
	publishTo(t, e1, db, "c1", 300, "p")
	if err := e1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The next process knows nothing of it, looks, and drains it.
	db = openPebble(t, dir)
	t.Cleanup(func() { _ = db.Close() })
	e2 := realEngine(t, db, cs, time.Second, rcv.srv)
	if err := e2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the parked backlog drained", func() bool {
		n, err := db.Depth(context.Background(), "c1")
		return err == nil && n == 0
	})
	if got := rcv.got.Load(); got < 300 {
		t.Errorf("received %d, want at least 300", got)
	}
}

// deadSender fails every attempt.
type deadSender struct{}

func (deadSender) Send(context.Context, *dcon.Connector, webhook.Attempt) webhook.Result {
	return webhook.Result{StatusCode: 503, Err: errHTTP503}
}

// TestResentCopyOutlivesTheOldCopysAttempt: a :sync re-sends an event whose
// first copy is still being attempted. The old copy's success must not remove
// the new copy, whose own attempt failed: the new copy is tried again until
// its endpoint takes it.
func TestResentCopyOutlivesTheOldCopysAttempt(t *testing.T) {
	t.Parallel()
	oldArrived, release := make(chan struct{}), make(chan struct{})
	var newTries, newTaken atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		switch string(body) {
		case `{"copy":"old"}`:
			close(oldArrived)
			<-release
		case `{"copy":"new"}`:
			if newTries.Add(1) == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			newTaken.Add(1)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	db := openPebble(t, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	e := realEngine(t, db, connectors{"c1": connectorTo("c1", srv.URL)}, 10*time.Second, srv)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	handOff := func(d dcon.Delivery) {
		ds := []dcon.Delivery{d}
		e.Admit(ds)
		if err := db.Enqueue(context.Background(), ds); err != nil {
			t.Fatal(err)
		}
		e.Dispatch(ds)
	}

	now := time.Now()
	old := dcon.Delivery{ConnectorID: "c1", EventID: "ev1", EventTime: now, Body: []byte(`{"copy":"old"}`), Due: now.Add(time.Minute)}
	handOff(old)
	<-oldArrived
	resent := old
	resent.EventTime, resent.Body = now.Add(time.Second), []byte(`{"copy":"new"}`)
	handOff(resent)
	waitUntil(t, "the new copy's first attempt answered 500", func() bool { return newTries.Load() >= 1 })
	close(release) // the old copy's attempt succeeds now, and is acked

	waitUntil(t, "the new copy delivered", func() bool { return newTaken.Load() >= 1 })
	waitUntil(t, "the queue empty", func() bool {
		n, err := db.Depth(context.Background(), "c1")
		return err == nil && n == 0
	})
}
