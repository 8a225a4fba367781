package pebble

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

var _ dcon.QueueInspector = (*DB)(nil)

// queueCounts keeps, in memory, how many records each connector has queued,
// so that QueueStats costs no scan. Every engine counts them once when it
// opens (countQueues); then the queue's writes keep them: Enqueue adds its new
// records (not those it replaces), Ack and Expire subtract the records they
// found, Drop sets zero. The writes read and update under the queue lock
// (shared), so a Drop (exclusive) sees counts and records agree; Ack and
// Expire hold their key locks from the read to the update. An Enqueue that
// replaces a record does the same; one that adds only new records (a fresh
// event) reads without them: its keys can only be written by a concurrent
// Enqueue of the same event for the same connector, in which case one record
// may be counted twice until the next reopen or Drop.
type queueCounts struct {
	m sync.Map // connector id → *connectorQueue
}

// connectorQueue is one connector's count, and where its oldest record is.
type connectorQueue struct {
	depth atomic.Int64

	mu sync.Mutex
	// from is an event id at or before every queued record's: the seek for
	// the oldest starts there, past the tombstones of what was acked before
	// it. lowered counts the Enqueues that moved it back, so that a seek does
	// not move it past a record enqueued while it ran.
	from    string
	lowered uint64
}

// of returns the connector's counts, creating them.
func (qc *queueCounts) of(connectorID string) *connectorQueue {
	if c, ok := qc.m.Load(connectorID); ok {
		return c.(*connectorQueue)
	}
	c, _ := qc.m.LoadOrStore(connectorID, &connectorQueue{})
	return c.(*connectorQueue)
}

// added counts a new record of eventID.
func (c *connectorQueue) added(eventID string) {
	c.depth.Add(1)
	c.mu.Lock()
	if c.from == "" || eventID < c.from {
		c.from = eventID
		c.lowered++
	}
	c.mu.Unlock()
}

// removed counts n records fewer; never below zero.
func (c *connectorQueue) removed(n int64) {
	if c.depth.Add(-n) < 0 {
		c.depth.Store(0)
	}
}

// countQueues counts the records of every connector in e, once, when e
// opens, and makes them the DB's counts.
func (db *DB) countQueues(e *engine) error {
	start := []byte(prefixQueue)
	it, err := e.pdb.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: prefixEnd(start)})
	if err != nil {
		return fmt.Errorf("count queues: %w", err)
	}
	counts := make(map[string]*connectorQueue)
	for valid := it.First(); valid; valid = it.Next() {
		connectorID, eventID, ok := splitMKey(it.Key())
		if !ok {
			continue
		}
		c := counts[connectorID]
		if c == nil {
			c = &connectorQueue{from: eventID} // keys ascend: the first is the lowest
			counts[connectorID] = c
		}
		c.depth.Add(1)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("count queues: %w", err)
	}
	db.qc.m.Clear()
	for id, c := range counts {
		db.qc.m.Store(id, c)
	}
	return nil
}

// queued returns which of ds have a record in e: found[i] is set when ds[i]
// has, and some when one has.
func queued(e *engine, ds []dcon.Delivery) (found []bool, some bool, err error) {
	found = make([]bool, len(ds))
	err = eachRecord(e, ds, func(i int, _ []byte) error {
		found[i], some = true, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return found, some, nil
}

// eachRecord calls fn with the index in ds and the record of each delivery
// of ds that is queued. The record is valid during the call only.
func eachRecord(e *engine, ds []dcon.Delivery, fn func(i int, record []byte) error) error {
	var key []byte
	for i := range ds {
		key = appendMKey(key[:0], ds[i].ConnectorID, ds[i].EventID)
		v, closer, err := e.pdb.Get(key)
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			continue
		case err != nil:
			return unavailable(err, "read %s", key)
		}
		err = fn(i, v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
	}
	return nil
}

// countEnqueued counts the records of ds that were not found before they
// were written; all of them when found is nil.
func (db *DB) countEnqueued(ds []dcon.Delivery, found []bool) {
	for i := range ds {
		if found == nil || !found[i] {
			db.qc.of(ds[i].ConnectorID).added(ds[i].EventID)
		}
	}
}

// countRemoved counts the records of ds that were found, and deleted.
func (db *DB) countRemoved(ds []dcon.Delivery, found []bool) {
	for i := range ds {
		if found[i] {
			db.qc.of(ds[i].ConnectorID).removed(1)
		}
	}
}

// countDropped counts a connector's queue as empty.
func (db *DB) countDropped(connectorID string) {
	if c, ok := db.qc.m.Load(connectorID); ok {
		c.(*connectorQueue).depth.Store(0)
	}
}

// QueueStats returns how many deliveries a connector has queued, from the
// counts kept in memory, and the event time of its oldest: the first of its
// records in event id order (xids, which follow time; a :sync copy keeps its
// event's id and time), found with one seek from where the last one found it.
func (db *DB) QueueStats(ctx context.Context, connectorID string) (dcon.QueueStats, error) {
	if !validKeyPart(connectorID) {
		return dcon.QueueStats{}, dcon.Errorf(dcon.EINVALID, "invalid connector id %q", connectorID)
	}
	v, ok := db.qc.m.Load(connectorID)
	if !ok {
		return dcon.QueueStats{}, nil
	}
	c := v.(*connectorQueue)
	depth := c.depth.Load()
	if depth == 0 {
		return dcon.QueueStats{}, nil
	}
	e, err := db.engine()
	if err != nil {
		return dcon.QueueStats{}, err
	}
	defer e.done()
	c.mu.Lock()
	from, lowered := c.from, c.lowered
	c.mu.Unlock()
	prefix := connectorPrefix(prefixQueue, connectorID)
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: append(prefix[:len(prefix):len(prefix)], from...),
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return dcon.QueueStats{}, unavailable(err, "queue stats of %s", connectorID)
	}
	defer it.Close()
	st := dcon.QueueStats{Depth: int(depth)}
	if !it.First() {
		if err := it.Error(); err != nil {
			return dcon.QueueStats{}, unavailable(err, "queue stats of %s", connectorID)
		}
		return st, nil // emptied since the count was read
	}
	_, eventID, _ := splitMKey(it.Key())
	if st.Oldest, err = recordEventTime(it.Value()); err != nil {
		return dcon.QueueStats{}, fmt.Errorf("queue stats of %s: %w", connectorID, err)
	}
	c.mu.Lock()
	if c.lowered == lowered {
		c.from = eventID
	}
	c.mu.Unlock()
	return st, nil
}

// recordEventTime returns the EventTime of a record without decoding the
// rest of it.
func recordEventTime(b []byte) (time.Time, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return time.Time{}, errCorrupt
	}
	r := reader{b: b[1:]}
	r.bytes() // project id
	r.bytes() // event type
	t := r.varint()
	if r.bad {
		return time.Time{}, errCorrupt
	}
	return fromNanos(t), nil
}
