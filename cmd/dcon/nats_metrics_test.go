package main

import (
	"testing"
	"time"

	"dcon/internal/jetstream/natstest"
)

// namedNATSNode starts a fleet node on url under its own statistics name (in
// one test process every node has the same host name).
func namedNATSNode(t *testing.T, url, name, caFile string) *natsNode {
	t.Helper()
	nc := singleServerNATS(url)
	nc.Node = name
	return startNATSNode(t, nc, caFile)
}

// twoNodeFleet starts two nodes, a and b, on one NATS server, and through a
// a project, a temperature device and a connector to a test receiver at
// path, which b has seen.
func twoNodeFleet(t *testing.T, path string) (a, b *natsNode, rc *testReceiver, project string, conn connectorResource, dev deviceResource) {
	t.Helper()
	srv := natstest.StartServer(t, nil)
	rc = newTestReceiver(t)
	ca := rc.caFile(t)
	a = namedNATSNode(t, srv.ClientURL(), "a", ca)
	b = namedNATSNode(t, srv.ClientURL(), "b", ca)
	project = createProject(a.api)
	a.api.project, b.api.project = project, project
	conn = createConnector(a.api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL + path}})
	dev = createDevice(a.api, "temperature", map[string]string{})
	waitConnectorOn(t, b, project, lastPart(conn.Name))
	return a, b, rc, project, conn, dev
}

// TestNATSFleetMetrics: `:metrics` on any node of a fleet counts every
// node's attempts. Events published through a node are delivered by that
// node; once the nodes' statistics are flushed (every 10 s; here at once),
// both nodes answer the sum.
func TestNATSFleetMetrics(t *testing.T) {
	t.Parallel()
	a, b, rc, project, conn, dev := twoNodeFleet(t, "/m")

	const perNode = 3
	for _, n := range []*natsNode{a, b} {
		for i := range perNode {
			publish(n.api, dev, "temperature", map[string]any{"value": i})
		}
	}
	rc.waitFor(t, "every event", 30*time.Second, func(got []received) bool { return len(byEvent(got, "/m")) >= 2*perNode })
	// The attempts are observed right after the receiver answers: wait, a
	// bounded while, until each node counted its own, then flush both.
	metricsPath := "/v2/projects/" + project + "/dataconnectors/" + lastPart(conn.Name) + ":metrics"
	total := func(n *natsNode) int64 {
		var m struct {
			Metrics metricsAnswer `json:"metrics"`
		}
		n.api.mustCall("GET", metricsPath, nil, &m)
		return m.Metrics.SuccessCount + m.Metrics.ErrorCount
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ma, _ := a.n.stats.ConnectorMetrics(t.Context(), lastPart(conn.Name))
		mb, _ := b.n.stats.ConnectorMetrics(t.Context(), lastPart(conn.Name))
		if ma.SuccessCount+mb.SuccessCount == 2*perNode {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes counted %d and %d successes, want %d together", ma.SuccessCount, mb.SuccessCount, 2*perNode)
		}
	}
	for _, n := range []*natsNode{a, b} {
		if err := n.n.stats.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for name, n := range map[string]*natsNode{"a": a, "b": b} {
		var m struct {
			Metrics metricsAnswer `json:"metrics"`
		}
		n.api.mustCall("GET", metricsPath, nil, &m)
		if m.Metrics.SuccessCount != 2*perNode || m.Metrics.ErrorCount != 0 || m.Metrics.Latency99p == "" {
			t.Errorf("node %s: :metrics = %+v, want %d successes (both nodes') and a p99", name, m.Metrics, 2*perNode)
		}
	}
	// A node that stops keeps counting for the window.
	b.stop(5 * time.Second)
	if got := total(a); got != 2*perNode {
		t.Errorf("after b stopped: a counts %d attempts, want %d", got, 2*perNode)
	}
}

// metricsAnswer is the "metrics" object of a `:metrics` answer.
type metricsAnswer struct {
	SuccessCount int64  `json:"successCount"`
	ErrorCount   int64  `json:"errorCount"`
	Latency99p   string `json:"latency99p"`
}

// TestNATSFleetKeyRotation: `dcon keys rotate` (POST /v2/keys:rotate) through
// one node makes every node sign with the new key and publish it within a
// second; two rotations through two nodes at once both count.
func TestNATSFleetKeyRotation(t *testing.T) {
	t.Parallel()
	a, b, rc, _, _, dev := twoNodeFleet(t, "/k")

	var before keysAnswer
	b.api.mustCall("GET", "/v2/keys", nil, &before)
	var rotated keysAnswer
	a.api.mustCall("POST", "/v2/keys:rotate", map[string]any{}, &rotated)
	if rotated.ActiveKeyID == before.ActiveKeyID || len(rotated.Keys) != 2 {
		t.Fatalf("rotation through a answered %+v; b's active key was %s", rotated, before.ActiveKeyID)
	}
	// b publishes the new key, and signs with it, within a second.
	waitActiveKey(t, b, rotated.ActiveKeyID)
	publish(b.api, dev, "temperature", map[string]any{"value": 1})
	rc.waitFor(t, "the event published through b", 30*time.Second, func(got []received) bool { return len(got) > 0 })
	if kid := es256Kid(t, rc.requests()[0]); kid != rotated.ActiveKeyID {
		t.Errorf("b signed with %s after the rotation through a, want %s", kid, rotated.ActiveKeyID)
	}

	// Two rotations at once, through a and b: one follows the other, and
	// both nodes end with the later one's key and the three keys published.
	type answer struct {
		status int
		body   []byte
		keys   keysAnswer
	}
	done := make(chan answer, 2)
	for _, n := range []*natsNode{a, b} {
		go func() {
			var r answer
			r.status, r.body = n.api.call("POST", "/v2/keys:rotate", map[string]any{}, &r.keys)
			done <- r
		}()
	}
	r1, r2 := <-done, <-done
	for _, r := range []answer{r1, r2} {
		if r.status != 200 {
			t.Fatalf("a rotation at the same time as another answered %d %s", r.status, r.body)
		}
	}
	k1, k2 := r1.keys, r2.keys
	if k1.ActiveKeyID == k2.ActiveKeyID {
		t.Fatalf("two rotations made one key, %s", k1.ActiveKeyID)
	}
	last := k1
	if len(k2.Keys) > len(k1.Keys) {
		last = k2
	}
	if len(last.Keys) != 4 {
		t.Errorf("the later rotation publishes %d keys, want 4 (each rotation's and the two before)", len(last.Keys))
	}
	for _, n := range []*natsNode{a, b} {
		waitActiveKey(t, n, last.ActiveKeyID)
	}
}

// waitActiveKey waits, a second at most, until node n's GET /v2/keys says
// kid is the active key.
func waitActiveKey(t *testing.T, n *natsNode, kid string) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		var k keysAnswer
		n.api.mustCall("GET", "/v2/keys", nil, &k)
		if k.ActiveKeyID == kid {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a second after the rotation, a node's active key is %s, want %s", k.ActiveKeyID, kid)
		}
	}
}

// waitConnectorOn waits, a second at most, until node n knows the connector.
func waitConnectorOn(t *testing.T, n *natsNode, project, id string) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		status, _ := n.api.call("GET", "/v2/projects/"+project+"/dataconnectors/"+id, nil, nil)
		if status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a second after its creation, a node answers %d for connector %s", status, id)
		}
	}
}
