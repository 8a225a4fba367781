// Package memqueue is an in-memory [dcon.Queue] for the unit tests of other
// packages. It keeps nothing across a restart, so Enqueue is "durable" only for
// the life of the process; otherwise it follows the contract, and passes the
// conformance suite in internal/queuetest.
//
// It is simple rather than fast: one mutex, maps, and a sort on every Claim.
package memqueue

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"dcon"
)

// Queue is an in-memory dcon.Queue. The zero value is not usable; call New.
type Queue struct {
	mu   sync.Mutex
	q    map[key]dcon.Delivery
	dead map[string][]dcon.DeadLetter // by connector, oldest expiry first
}

type key struct{ connectorID, eventID string }

var _ dcon.Queue = (*Queue)(nil)

// New returns an empty queue.
func New() *Queue {
	return &Queue{q: make(map[key]dcon.Delivery), dead: make(map[string][]dcon.DeadLetter)}
}

// clone returns d with a body of its own, so that neither the caller nor the
// queue sees the other's changes.
func clone(d dcon.Delivery) dcon.Delivery {
	d.Body = slices.Clone(d.Body)
	return d
}

// Enqueue stores copies of ds, replacing queued deliveries with the same
// (ConnectorID, EventID).
func (q *Queue) Enqueue(ctx context.Context, ds []dcon.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		q.q[key{d.ConnectorID, d.EventID}] = clone(d)
	}
	return nil
}

// Claim returns up to limit deliveries due at or before now, earliest Due first
// (ties broken by connector then event id), and leases them until leaseUntil.
func (q *Queue) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]dcon.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var due []dcon.Delivery
	for _, d := range q.q {
		if !d.Due.After(now) {
			due = append(due, d)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		a, b := due[i], due[j]
		if !a.Due.Equal(b.Due) {
			return a.Due.Before(b.Due)
		}
		if a.ConnectorID != b.ConnectorID {
			return a.ConnectorID < b.ConnectorID
		}
		return a.EventID < b.EventID
	})
	if len(due) > limit {
		due = due[:limit]
	}
	for i := range due {
		due[i].Due = leaseUntil
		q.q[key{due[i].ConnectorID, due[i].EventID}] = due[i]
		due[i] = clone(due[i])
	}
	return due, nil
}

// Ack removes ds.
func (q *Queue) Ack(ctx context.Context, ds []dcon.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		delete(q.q, key{d.ConnectorID, d.EventID})
	}
	return nil
}

// Retry stores d's Attempts and LastError and makes it due at at. A delivery
// that is no longer queued (acked, dropped or expired) stays gone.
func (q *Queue) Retry(ctx context.Context, d dcon.Delivery, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := key{d.ConnectorID, d.EventID}
	cur, ok := q.q[k]
	if !ok {
		return nil
	}
	cur.Attempts, cur.LastError, cur.Due = d.Attempts, d.LastError, at
	q.q[k] = cur
	return nil
}

// Expire moves ds to their connectors' dead letters.
func (q *Queue) Expire(ctx context.Context, ds []dcon.Delivery, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		delete(q.q, key{d.ConnectorID, d.EventID})
		dls := append(q.dead[d.ConnectorID], dcon.DeadLetter{Delivery: clone(d), ExpireTime: at})
		sort.SliceStable(dls, func(i, j int) bool { return dls[i].ExpireTime.Before(dls[j].ExpireTime) })
		q.dead[d.ConnectorID] = dls
	}
	return nil
}

// Drop removes every queued delivery of connectorID and returns how many there
// were. Its dead letters stay.
func (q *Queue) Drop(ctx context.Context, connectorID string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for k := range q.q {
		if k.connectorID == connectorID {
			delete(q.q, k)
			n++
		}
	}
	return n, nil
}

// Depth returns how many deliveries connectorID has queued.
func (q *Queue) Depth(ctx context.Context, connectorID string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for k := range q.q {
		if k.connectorID == connectorID {
			n++
		}
	}
	return n, nil
}

// DeadLetters returns up to limit of connectorID's dead letters, oldest expiry
// first.
func (q *Queue) DeadLetters(ctx context.Context, connectorID string, limit int) ([]dcon.DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dls := q.dead[connectorID]
	if limit < len(dls) {
		dls = dls[:max(limit, 0)]
	}
	out := make([]dcon.DeadLetter, len(dls))
	for i, dl := range dls {
		out[i] = dcon.DeadLetter{Delivery: clone(dl.Delivery), ExpireTime: dl.ExpireTime}
	}
	return out, nil
}
