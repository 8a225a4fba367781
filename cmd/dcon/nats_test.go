package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"dcon/internal/jetstream/natstest"

	"github.com/nats-io/nats.go"
	jsapi "github.com/nats-io/nats.go/jetstream"
)

// natsNode is one dcon node of a fleet in a test: its API client and a way
// to kill it.
type natsNode struct {
	api   *apiClient
	n     *node
	srv   *httptest.Server
	clock string        // its --test-clock-offset-file
	dead  chan struct{} // closed when the node is stopped
	once  sync.Once
}

// singleServerNATS is the JetStream configuration of a fleet on one server
// at url: 4 partitions, one replica, a dead node's deliveries taken over
// after half a second.
func singleServerNATS(url string) natsConfig {
	return natsConfig{URLs: url, Partitions: 4, Replicas: 1, Prefix: "DCON", AckWait: 500 * time.Millisecond}
}

// startNATSNode opens a node on the NATS servers of nc, with its own data
// directory (the secrets come from the bucket) and its own API server. Its
// API client gives up on a call after 20 s.
func startNATSNode(t *testing.T, nc natsConfig, caFile string) *natsNode {
	t.Helper()
	clock := filepath.Join(t.TempDir(), "clock")
	if err := os.WriteFile(clock, []byte("0s"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := serveConfig{
		Data: t.TempDir(), CAFile: caFile, NoAuth: true,
		Timeout: 5 * time.Second, RetryInitial: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		TestClockFile: clock,
		NATS:          nc,
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := openNode(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	client := &http.Client{Transport: srv.Client().Transport, Timeout: 20 * time.Second}
	nn := &natsNode{api: &apiClient{t: t, base: srv.URL, http: client}, n: n, srv: srv, clock: clock, dead: make(chan struct{})}
	t.Cleanup(func() { nn.stop(15 * time.Second) })
	return nn
}

// stop closes the node, waiting for attempts under way up to drain. With
// no drain it is a kill: the queue's connection goes first, handing nothing
// back, and the attempts under way are cancelled.
func (nn *natsNode) stop(drain time.Duration) {
	nn.once.Do(func() {
		close(nn.dead)
		nn.srv.Close()
		if drain == 0 {
			nn.n.db.(*natsStore).Queue.Abandon()
		}
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		_ = nn.n.Close(ctx)
	})
}

// jump moves the node's clock ahead, past the leases of fresh copies.
func (nn *natsNode) jump(t *testing.T, d time.Duration) {
	if err := os.WriteFile(nn.clock, []byte(d.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitConnectors waits until every node lists n connectors in project:
// they reach a node's router through the config bucket's watch, and an
// event published before its node knows a connector is not routed to it.
func waitConnectors(t *testing.T, nodes []*natsNode, project string, n int) {
	t.Helper()
	for _, nn := range nodes {
		waitUntil(t, "the connectors on every node", 10*time.Second, func() bool {
			var list struct {
				DataConnectors []connectorResource `json:"dataConnectors"`
			}
			status, _ := nn.api.call("GET", "/v2/projects/"+project+"/dataconnectors", nil, &list)
			return status == http.StatusOK && len(list.DataConnectors) == n
		})
	}
}

// newSlowReceiver is a testReceiver that takes delay to answer each request,
// so that attempts are under way when a node is killed.
func newSlowReceiver(t *testing.T, delay time.Duration) *testReceiver {
	rc := &testReceiver{notify: make(chan struct{}, 1)}
	rc.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: http.StatusOK})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		select {
		case rc.notify <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// byEvent counts the requests of a path by event id.
func byEvent(rs []received, path string) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		if r.Path == path {
			m[eventID(r.Body)]++
		}
	}
	return m
}

// TestNATSFleet: three dcon nodes on one JetStream server share one
// configuration and one queue. A connector made through A receives the
// events published through B and C, each once, signed; disabling it through
// C stops deliveries from every node within a second; killing A under load
// loses nothing: B and C deliver what A held.
func TestNATSFleet(t *testing.T) {
	t.Parallel()
	srv := natstest.StartServer(t, nil)
	rc := newSlowReceiver(t, 50*time.Millisecond)
	ca := rc.caFile(t)
	a := startNATSNode(t, singleServerNATS(srv.ClientURL()), ca)
	b := startNATSNode(t, singleServerNATS(srv.ClientURL()), ca)
	c := startNATSNode(t, singleServerNATS(srv.ClientURL()), ca)
	project := createProject(a.api)
	for _, n := range []*natsNode{a, b, c} {
		n.api.project = project
	}
	conn := createConnector(a.api, map[string]any{"type": "HTTP_PUSH",
		"httpConfig": map[string]any{"url": rc.URL + "/main", "signatureSecret": "fleet-secret"}})
	createConnector(a.api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + "/canary"}})
	dev := createDevice(a.api, "temperature", map[string]string{"name": "hall"})
	waitConnectors(t, []*natsNode{b, c}, project, 2)

	// Published through B and C, delivered once each.
	var ids []string
	for i := range 10 {
		for _, n := range []*natsNode{b, c} {
			ids = append(ids, eventIDOf(t, publish(n.api, dev, "temperature", map[string]any{"value": i})))
		}
	}
	rc.waitFor(t, "20 deliveries to /main", 30*time.Second, func(got []received) bool { return len(byEvent(got, "/main")) >= len(ids) })
	counts := byEvent(rc.requests(), "/main")
	for _, id := range ids {
		if counts[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, counts[id])
		}
	}
	for _, r := range rc.requests() {
		if r.Path == "/main" {
			verifySignature(t, r, "fleet-secret")
			break
		}
	}

	// Disabled through C: every node knows within a second.
	c.api.mustCall("PATCH", "/v2/projects/"+project+"/dataconnectors/"+lastPart(conn.Name),
		map[string]any{"status": "USER_DISABLED"}, nil)
	deadline := time.Now().Add(time.Second)
	for _, n := range []*natsNode{a, b, c} {
		for {
			var got connectorResource
			n.api.mustCall("GET", "/v2/projects/"+project+"/dataconnectors/"+lastPart(conn.Name), nil, &got)
			if got.Status == "USER_DISABLED" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a node still sees the connector %s a second after it was disabled", got.Status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	before := len(byEvent(rc.requests(), "/main"))
	var canaryIDs []string
	for _, n := range []*natsNode{a, b, c} {
		canaryIDs = append(canaryIDs, eventIDOf(t, publish(n.api, dev, "temperature", map[string]any{"value": 99})))
	}
	rc.waitFor(t, "the canary's 3 events", 30*time.Second, func(got []received) bool {
		m := byEvent(got, "/canary")
		for _, id := range canaryIDs {
			if m[id] == 0 {
				return false
			}
		}
		return true
	})
	if after := len(byEvent(rc.requests(), "/main")); after != before {
		t.Errorf("the disabled connector received %d more events", after-before)
	}

	// Kill A under load: every acknowledged publish reaches the canary,
	// including the copies A had fetched when it died, which B and C take
	// once the consumers' AckWait has passed (issue 6: see ADR 0005).
	var mu sync.Mutex
	var loaded []string
	var wg sync.WaitGroup
	for w, n := range []*natsNode{a, b, c} {
		wg.Go(func() {
			for i := range 30 {
				if n == a && i == 10 {
					a.stop(0) // no drain: attempts under way are cancelled
					return
				}
				var ev struct {
					EventID string `json:"eventId"`
				}
				status, _ := n.api.call("POST", "/v2/projects/"+project+"/devices/"+dev.id()+":publish",
					map[string]any{"temperature": map[string]any{"value": w*100 + i}}, &ev)
				if status == http.StatusOK {
					mu.Lock()
					loaded = append(loaded, ev.EventID)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	// A's fresh copies were leased to A's hand-off; B and C take them once
	// the consumers' AckWait has passed and those leases end, which their
	// clocks now say they have.
	b.jump(t, 2*time.Minute)
	c.jump(t, 2*time.Minute)
	deadline = time.Now().Add(30 * time.Second)
	for {
		m := byEvent(rc.requests(), "/canary")
		var missing []string
		for _, id := range loaded {
			if m[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			logNATSQueue(t, srv.ClientURL())
			t.Fatalf("after 30s, %d of the %d acknowledged events never reached the canary: %v", len(missing), len(loaded), missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logNATSQueue logs what the queue stream holds and what its consumers think
// they have delivered, for a test that waited in vain.
func logNATSQueue(t *testing.T, url string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Log(err)
		return
	}
	defer nc.Close()
	js, _ := jsapi.New(nc)
	s, err := js.Stream(context.Background(), "DCON_QUEUE")
	if err != nil {
		t.Log(err)
		return
	}
	info, err := s.Info(context.Background(), jsapi.WithSubjectFilter("DCON.q.>"))
	if err != nil {
		t.Log(err)
		return
	}
	t.Logf("stream state: msgs=%d first=%d last=%d", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	for subj := range info.State.Subjects {
		msg, err := s.GetLastMsgForSubject(context.Background(), subj)
		if err != nil {
			t.Logf("subject %s: %v", subj, err)
			continue
		}
		t.Logf("subject %s seq=%d", subj, msg.Sequence)
	}
	for p := range 4 {
		ci, err := s.Consumer(context.Background(), fmt.Sprintf("DCON_Q_%d", p))
		if err != nil {
			t.Log(err)
			continue
		}
		i := ci.CachedInfo()
		t.Logf("consumer %d: pending=%d ackPending=%d redelivered=%d waiting=%d delivered=%+v ackfloor=%+v", p, i.NumPending, i.NumAckPending, i.NumRedelivered, i.NumWaiting, i.Delivered, i.AckFloor)
	}
}

func eventIDOf(t *testing.T, envelope []byte) string {
	t.Helper()
	id := eventID([]byte(`{"event":` + string(envelope) + `}`))
	if id == "" {
		t.Fatalf("publish answered %s", envelope)
	}
	return id
}

func lastPart(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}
