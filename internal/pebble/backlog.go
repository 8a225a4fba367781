package pebble

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

var _ dcon.BacklogQueue = (*DB)(nil)

// ClaimConnector walks a connector's records, q/m/<connectorID>/, from the
// key of from, in key order — event id order, which for xids is publish
// order — and leases the parked ones it meets (Due at their deadline) until
// leaseUntil, up to limit. It reads only the head of each record to tell a
// parked one, and decodes only those it takes. The caller keeps the cursor:
// next is the key after the last record walked, so the next call does not
// walk again the tombstones of what was acked or the records in flight.
func (db *DB) ClaimConnector(ctx context.Context, connectorID, from string, leaseUntil time.Time, limit int) ([]dcon.Delivery, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, from, err
	}
	if !validKeyPart(connectorID) {
		return nil, from, dcon.Errorf(dcon.EINVALID, "invalid connector id %q", connectorID)
	}
	if limit <= 0 {
		return nil, from, nil
	}
	e, err := db.engine()
	if err != nil {
		return nil, from, err
	}
	defer e.done()
	db.qmu.Lock()
	defer db.qmu.Unlock()

	prefix := connectorPrefix(prefixQueue, connectorID)
	lower := append(bytes.Clone(prefix), from...)
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, from, unavailable(err, "claim backlog of %s", connectorID)
	}
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	leaseN := nanos(leaseUntil)
	out, next, err := backlogScan(it, b, len(prefix), leaseN, limit)
	if cerr := it.Close(); err == nil && cerr != nil {
		err = unavailable(cerr, "claim backlog of %s", connectorID)
	}
	if err != nil {
		return nil, from, err
	}
	if next == "" {
		next = from
	}
	if len(out) == 0 {
		return nil, next, nil
	}
	e.lw.lower(leaseN)
	if err := e.commit(b, pebble.NoSync); err != nil {
		return nil, from, unavailable(err, "claim %d deliveries of %s", len(out), connectorID)
	}
	return out, next, nil
}

// backlogScan walks records with it, adding to b the writes that lease the
// parked ones it takes, and returns them and the event id after the last
// record walked ("" if none was).
func backlogScan(it *pebble.Iterator, b *pebble.Batch, prefixLen int, leaseN int64, limit int) ([]dcon.Delivery, string, error) {
	var out []dcon.Delivery
	var last []byte
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		last = append(last[:0], it.Key()...)
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, "", unavailable(err, "read %s", it.Key())
		}
		eventTime, due, err := recordTimes(v)
		if err != nil {
			return nil, "", fmt.Errorf("read %s: %w", it.Key(), err)
		}
		if eventTime == zeroNanos || !fromNanos(due).Equal(fromNanos(eventTime).Add(dcon.MaxEventAge)) {
			continue // not parked: in flight, or waiting for a retry
		}
		var d dcon.Delivery
		if _, _, err := decodeRecord(v, &d); err != nil {
			return nil, "", fmt.Errorf("decode %s: %w", it.Key(), err)
		}
		var ok bool
		if d.ConnectorID, d.EventID, ok = splitMKey(it.Key()); !ok {
			return nil, "", fmt.Errorf("record key %q: %w", it.Key(), errCorrupt)
		}
		if err := b.Delete(appendDKey(nil, due, d.ConnectorID, d.EventID), nil); err != nil {
			return nil, "", fmt.Errorf("claim %s: %w", it.Key(), err)
		}
		if err := setRecord(b, it.Key(), &d, leaseN); err != nil {
			return nil, "", err
		}
		d.Due = fromNanos(leaseN)
		out = append(out, d)
	}
	if err := it.Error(); err != nil {
		return nil, "", unavailable(err, "claim backlog")
	}
	if last == nil {
		return out, "", nil
	}
	return out, string(last[prefixLen:]) + "\x00", nil
}

// recordTimes returns the event time and the Due of a record, in
// nanoseconds, without decoding the rest of it.
func recordTimes(b []byte) (eventTime, due int64, err error) {
	if len(b) == 0 || b[0] != recordVersion {
		return 0, 0, errCorrupt
	}
	r := reader{b: b[1:]}
	r.bytes()
	r.bytes()
	eventTime = r.varint()
	r.uvarint()
	r.bytes()
	due = r.varint()
	if r.bad {
		return 0, 0, errCorrupt
	}
	return eventTime, due, nil
}
