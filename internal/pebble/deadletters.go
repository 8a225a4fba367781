package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

var _ dcon.DeadLetterQueue = (*DB)(nil)

// Dead letters live at q/x/<connectorID>/<expire>/<eventID>, so a connector's
// sort by expiry, then event id: the order of dcon.DeadLetterCursor. Replay
// and PurgeDeadLetters work on that layout:
//
//   - Replay reads the dead letters that the request names, then, holding their
//     striped key locks (as Ack and Expire do), checks that each is still there
//     and commits, in one synced batch, the deletion of their q/x keys and the
//     records and due entries of their new deliveries, and counts the new
//     records for QueueStats as Enqueue does. Two concurrent replays of the
//     same dead letter queue it once.
//   - PurgeDeadLetters walks the connectors that have dead letters, seeking from
//     one connector's prefix to the next, and deletes each one's expired range
//     q/x/<c>/ .. q/x/<c>/<expiredBefore> with one range deletion.

// xKeyBound returns q/x/<connectorID>/<expire>: the first key of that expiry.
func xKeyBound(connectorID string, expire int64) []byte {
	return appendOrdered(connectorPrefix(prefixDead, connectorID), expire)
}

// DeadLettersAfter returns up to limit of a connector's dead letters after the
// cursor, oldest expiry first.
func (db *DB) DeadLettersAfter(ctx context.Context, connectorID string, after dcon.DeadLetterCursor, limit int) ([]dcon.DeadLetter, error) {
	if !validKeyPart(connectorID) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid connector id %q", connectorID)
	}
	prefix := connectorPrefix(prefixDead, connectorID)
	lower := prefix
	if !after.IsZero() {
		// The key after the cursor's: its own key with a 0 byte appended.
		lower = append(appendXKey(nil, connectorID, nanos(after.ExpireTime), after.EventID), 0)
	}
	var out []dcon.DeadLetter
	err := db.scanDeadLetters(ctx, connectorID, lower, prefixEnd(prefix), func(dl dcon.DeadLetter) bool {
		out = append(out, dl)
		return len(out) < limit
	})
	return out, err
}

// scanDeadLetters calls fn with each of a connector's dead letters between
// lower and upper, in order, until fn returns false.
func (db *DB) scanDeadLetters(ctx context.Context, connectorID string, lower, upper []byte, fn func(dcon.DeadLetter) bool) error {
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return unavailable(err, "read dead letters of %s", connectorID)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		dl, err := decodeDeadLetter(it.Key(), it.Value(), connectorID)
		if err != nil {
			return fmt.Errorf("read dead letters of %s: %w", connectorID, err)
		}
		if !fn(dl) {
			break
		}
	}
	if err := it.Error(); err != nil {
		return unavailable(err, "read dead letters of %s", connectorID)
	}
	return nil
}

// Replay moves up to limit of the dead letters that r names back into the
// connector's queue, in one synced batch.
func (db *DB) Replay(ctx context.Context, connectorID string, r dcon.ReplayRequest, now, due time.Time, limit int) ([]dcon.Delivery, error) {
	if !validKeyPart(connectorID) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid connector id %q", connectorID)
	}
	if limit <= 0 {
		return nil, nil
	}
	dls, err := db.replayable(ctx, connectorID, r, limit)
	if err != nil || len(dls) == 0 {
		return nil, err
	}
	e, err := db.engine()
	if err != nil {
		return nil, err
	}
	defer e.done()
	ds := make([]dcon.Delivery, len(dls))
	for i := range dls {
		ds[i] = dcon.Delivery{
			ConnectorID: connectorID,
			ProjectID:   dls[i].ProjectID,
			EventID:     dls[i].EventID,
			EventType:   dls[i].EventType,
			EventTime:   now,
			Body:        dls[i].Body,
			Due:         due,
		}
	}
	db.qmu.RLock()
	defer db.qmu.RUnlock()
	defer db.kl.lock(ds)()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	out := ds[:0]
	dueN := nanos(due)
	var key []byte
	for i := range dls {
		key = appendXKey(key[:0], connectorID, nanos(dls[i].ExpireTime), dls[i].EventID)
		switch _, closer, err := e.pdb.Get(key); {
		case errors.Is(err, pebble.ErrNotFound):
			continue // replayed or purged since it was read
		case err != nil:
			return nil, unavailable(err, "replay %s", key)
		default:
			closer.Close()
		}
		if err := b.Delete(key, nil); err != nil {
			return nil, fmt.Errorf("replay %s: %w", key, err)
		}
		d := ds[i]
		key = appendMKey(key[:0], connectorID, d.EventID)
		if err := setRecord(b, key, &d, dueN); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, nil
	}
	found, _, err := queued(e, out) // for QueueStats's counts, as Enqueue
	if err != nil {
		return nil, err
	}
	e.lw.lower(dueN)
	if err := e.commit(b, pebble.Sync); err != nil {
		return nil, unavailable(err, "replay %d dead letters of %s", len(out), connectorID)
	}
	db.countEnqueued(out, found)
	return out, nil
}

// replayable reads up to limit of the connector's dead letters that r names,
// oldest expiry first.
func (db *DB) replayable(ctx context.Context, connectorID string, r dcon.ReplayRequest, limit int) ([]dcon.DeadLetter, error) {
	prefix := connectorPrefix(prefixDead, connectorID)
	lower, upper := prefix, prefixEnd(prefix)
	var want map[string]bool
	switch {
	case len(r.EventIDs) > 0:
		want = make(map[string]bool, len(r.EventIDs))
		for _, id := range r.EventIDs {
			want[id] = true
		}
	case !r.All:
		lower = xKeyBound(connectorID, nanos(r.Since))
	}
	var out []dcon.DeadLetter
	err := db.scanDeadLetters(ctx, connectorID, lower, upper, func(dl dcon.DeadLetter) bool {
		if want == nil || want[dl.EventID] {
			out = append(out, dl)
			delete(want, dl.EventID) // one dead letter per event id: the oldest
		}
		return len(out) < limit && (want == nil || len(want) > 0)
	})
	return out, err
}

// PurgeDeadLetters deletes, connector by connector, the dead letters that
// expired before expiredBefore, without syncing.
func (db *DB) PurgeDeadLetters(ctx context.Context, expiredBefore time.Time) error {
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	all := []byte(prefixDead)
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: all, UpperBound: prefixEnd(all)})
	if err != nil {
		return unavailable(err, "purge dead letters")
	}
	defer it.Close()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	cut := nanos(expiredBefore)
	for valid := it.First(); valid; {
		if err := ctx.Err(); err != nil {
			return err
		}
		rest := it.Key()[len(prefixDead):]
		sep := bytes.IndexByte(rest, '/')
		if sep <= 0 {
			return fmt.Errorf("purge dead letters: key %q: %w", it.Key(), errCorrupt)
		}
		connectorID := string(rest[:sep])
		start := connectorPrefix(prefixDead, connectorID)
		if err := b.DeleteRange(start, xKeyBound(connectorID, cut), nil); err != nil {
			return fmt.Errorf("purge dead letters of %s: %w", connectorID, err)
		}
		valid = it.SeekGE(prefixEnd(start))
	}
	if err := it.Error(); err != nil {
		return unavailable(err, "purge dead letters")
	}
	if b.Empty() {
		return nil
	}
	if err := e.commit(b, pebble.NoSync); err != nil {
		return unavailable(err, "purge dead letters")
	}
	return nil
}
