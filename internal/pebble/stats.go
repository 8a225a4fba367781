package pebble

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

// prefixStats holds each connector's delivery statistics (internal/stats):
//
//	s/<connectorID>                             a connector's stats, stats's encoding
const prefixStats = "s/"

// statsKey returns s/<connectorID>, or an EINVALID error if the id cannot be
// part of a key.
func statsKey(connectorID string) ([]byte, error) {
	if !validKeyPart(connectorID) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid data connector id %q", connectorID)
	}
	return []byte(prefixStats + connectorID), nil
}

// SaveStats stores the statistics of several connectors, each an opaque value
// encoded by internal/stats, in one batch.
//
// The batch is committed without a sync: statistics are approximate and
// rewritten every few seconds, so losing the last flush to a power failure
// costs little, while a sync would add an fsync per flush to the disk that
// Enqueue syncs for every publish. Pebble writes the batch to the WAL at once,
// and the next synced write (the next Enqueue) makes it durable too.
func (db *DB) SaveStats(ctx context.Context, states map[string][]byte) error {
	if len(states) == 0 {
		return nil
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	for id, v := range states {
		key, err := statsKey(id)
		if err != nil {
			return err
		}
		if err := b.Set(key, v, nil); err != nil {
			return unavailable(err, "write stats of %s", id)
		}
	}
	if err := e.commit(b, pebble.NoSync); err != nil {
		return unavailable(err, "write stats")
	}
	return nil
}

// LoadStats returns every connector's stored statistics, by connector id.
func (db *DB) LoadStats(ctx context.Context) (map[string][]byte, error) {
	e, err := db.engine()
	if err != nil {
		return nil, err
	}
	defer e.done()
	start := []byte(prefixStats)
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: start, UpperBound: prefixEnd(start)})
	if err != nil {
		return nil, unavailable(err, "read stats")
	}
	defer it.Close()
	out := make(map[string][]byte)
	for valid := it.First(); valid; valid = it.Next() {
		out[string(it.Key()[len(start):])] = bytes.Clone(it.Value())
	}
	if err := it.Error(); err != nil {
		return nil, unavailable(err, "read stats")
	}
	return out, nil
}

// DeleteStats removes a connector's statistics; removing none is not an
// error. Like SaveStats, it does not sync.
func (db *DB) DeleteStats(ctx context.Context, connectorID string) error {
	key, err := statsKey(connectorID)
	if err != nil {
		return err
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if err := b.Delete(key, nil); err != nil {
		return fmt.Errorf("delete stats of %s: %w", connectorID, err)
	}
	if err := e.commit(b, pebble.NoSync); err != nil {
		return unavailable(err, "delete stats of %s", connectorID)
	}
	return nil
}
