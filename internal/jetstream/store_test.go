package jetstream

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"dcon"
	"dcon/internal/jetstream/natstest"
	"dcon/internal/storetest"
)

// storeHarness opens each store under its own prefix on one shared server.
type storeHarness struct {
	srv *server.Server
	n   atomic.Int64
}

func (h *storeHarness) open(t testing.TB, prefix, node string) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), StoreConfig{Config: Config{URLs: []string{h.srv.ClientURL()}, Prefix: prefix}, Node: node})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (h *storeHarness) prefix() string { return fmt.Sprintf("S%d", h.n.Add(1)) }

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	h := &storeHarness{srv: natstest.StartServer(t, nil)}
	storetest.Run(t, func(t *testing.T) storetest.Store { return h.open(t, h.prefix(), "n1") })
	t.Run("Stats", func(t *testing.T) {
		t.Parallel()
		p := h.prefix()
		s := h.open(t, p, "n1")
		storetest.RunStats(t, s)
		// Another node's statistics are its own.
		other := h.open(t, p, "n2")
		if got, err := other.LoadStats(t.Context()); err != nil || len(got) != 0 {
			t.Errorf("LoadStats of another node = %v, %v", got, err)
		}
	})
}

// TestStoresSeeEachOthersChanges: a change made through one Store reaches
// another Store's mirror, and its OnConnectorChange, within a second; a
// stale read never brings back a deleted item.
func TestStoresSeeEachOthersChanges(t *testing.T) {
	t.Parallel()
	h := &storeHarness{srv: natstest.StartServer(t, nil)}
	p := h.prefix()
	a, b := h.open(t, p, "a"), h.open(t, p, "b")
	ctx := t.Context()
	changed := make(chan string, 16)
	b.OnConnectorChange(func(projectID, id string) { changed <- projectID + "/" + id })

	c := &dcon.Connector{ProjectID: "p1", ID: "c1", Status: dcon.StatusActive}
	if err := a.CreateConnector(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changed, "p1/c1")
	if got, err := b.Connector(ctx, "p1", "c1"); err != nil || got.Status != dcon.StatusActive {
		t.Fatalf("b.Connector = %+v, %v", got, err)
	}
	c.Status = dcon.StatusUserDisabled
	if err := b.UpdateConnector(ctx, c); err != nil { // b writes over the revision it mirrors
		t.Fatal(err)
	}
	if err := a.UpdateConnector(ctx, c); err != nil { // a's mirror is stale or not: Update re-reads
		t.Fatal(err)
	}
	waitChange(t, changed, "p1/c1")
	if err := a.DeleteConnector(ctx, "p1", "c1"); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changed, "p1/c1")
	// The change just seen may be a's update (b saw two updates): wait, a
	// bounded while, for the delete to reach b's mirror.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := b.Connector(ctx, "p1", "c1")
		if dcon.ErrorCode(err) == dcon.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b.Connector a second after a's delete: %v, want ENOTFOUND", err)
		}
	}
	if err := b.UpdateConnector(ctx, c); dcon.ErrorCode(err) != dcon.ENOTFOUND {
		t.Errorf("b.UpdateConnector after a's delete: %v, want ENOTFOUND", err)
	}
	// A device created through a is found through b at once (a mirror miss
	// reads the server).
	d := &dcon.Device{ProjectID: "p1", ID: "d1", Type: dcon.DeviceTemperature}
	if err := a.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Device(ctx, "p1", "d1"); err != nil {
		t.Errorf("b.Device right after a's create: %v", err)
	}
}

func waitChange(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("change of %s, want %s", got, want)
		}
	case <-time.After(time.Second):
		t.Fatalf("no change of %s within a second", want)
	}
}
