package stats

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"

	"dcon"
)

// Peers reads what the other nodes of a fleet stored of a connector's
// statistics: each node flushes its own Tracker to a shared Store, under its
// own name. internal/jetstream's Store implements it.
type Peers interface {
	// PeerStats returns a connector's stored states written by every node
	// but this one, by node name; none is not an error.
	PeerStats(ctx context.Context, connectorID string) (map[string][]byte, error)
}

// Fleet answers `:metrics` for a fleet of nodes that deliver the same
// connectors: the figures of every node's attempts together. It implements
// the API's MetricsReader.
//
// This node's figures come from its Tracker, as they are now; every other
// node's from the state it last flushed (every FlushInterval, 10 s by
// default), so another node's attempts count in the answer at most one
// interval after they ended. The counts are the sums of the nodes' counts in
// the window; latency99p is the 99th percentile of the union of the nodes'
// histograms, bin by bin, so it is exactly as accurate as one node's: the
// upper bound of the bin that holds it, never below the true value and at
// most 25 % above it. A node that stopped (or died) keeps counting until its
// attempts leave the window: its state stays in the store, and the window is
// taken at this node's now, not at the time of the state.
type Fleet struct {
	tracker *Tracker
	peers   Peers
	log     *slog.Logger
}

// NewFleet returns the fleet's figures: t's, and those of the states peers
// holds. log (nil: t's logger) reports undecodable states, which are skipped.
func NewFleet(t *Tracker, peers Peers, log *slog.Logger) (*Fleet, error) {
	if t == nil || peers == nil {
		return nil, errors.New("stats: a Fleet needs a Tracker and Peers")
	}
	if log == nil {
		log = t.cfg.Logger
	}
	return &Fleet{tracker: t, peers: peers, log: log}, nil
}

// ConnectorMetrics returns a connector's figures over the window that ends at
// the Tracker's Now, summed over the fleet: zeros for a connector without
// attempts. It fails only when the peers' states cannot be read.
func (f *Fleet) ConnectorMetrics(ctx context.Context, connectorID string) (dcon.ConnectorMetrics, error) {
	states, err := f.peers.PeerStats(ctx, connectorID)
	if err != nil {
		return dcon.ConnectorMetrics{}, err
	}
	last := epochOf(f.tracker.cfg.Now())
	var w window
	if c := f.tracker.lookup(connectorID); c != nil {
		c.mu.Lock()
		w.add(c, last)
		c.mu.Unlock()
	}
	for _, node := range slices.Sorted(maps.Keys(states)) {
		c, err := decode(states[node])
		if err != nil {
			f.log.Warn("skipping another node's undecodable connector stats", "node", node, "connector", connectorID, "err", err)
			continue
		}
		w.add(c, last)
	}
	return w.metrics(f.tracker.bounds), nil
}
