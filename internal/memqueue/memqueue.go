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

var (
	_ dcon.Queue           = (*Queue)(nil)
	_ dcon.DeadLetterQueue = (*Queue)(nil)
	_ dcon.QueueInspector  = (*Queue)(nil)
)

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

// Ack removes ds, unless Enqueue replaced them with copies of another
// EventTime.
func (q *Queue) Ack(ctx context.Context, ds []dcon.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		k := key{d.ConnectorID, d.EventID}
		if cur, ok := q.q[k]; ok && cur.EventTime.Equal(d.EventTime) {
			delete(q.q, k)
		}
	}
	return nil
}

// Retry stores d's Attempts and LastError and makes it due at at. A delivery
// that is no longer queued (acked, dropped or expired) stays gone; one that
// Enqueue replaced with a copy of another EventTime is left as it is.
func (q *Queue) Retry(ctx context.Context, d dcon.Delivery, at time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := key{d.ConnectorID, d.EventID}
	cur, ok := q.q[k]
	if !ok || !cur.EventTime.Equal(d.EventTime) {
		return nil // gone, or replaced by another copy
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
		sort.SliceStable(dls, func(i, j int) bool { return deadLetterLess(&dls[i], &dls[j]) })
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

// QueueStats returns how many deliveries connectorID has queued and the event
// time of the oldest; it scans the whole queue.
func (q *Queue) QueueStats(ctx context.Context, connectorID string) (dcon.QueueStats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var st dcon.QueueStats
	for k, d := range q.q {
		if k.connectorID != connectorID {
			continue
		}
		st.Depth++
		if st.Oldest.IsZero() || d.EventTime.Before(st.Oldest) {
			st.Oldest = d.EventTime
		}
	}
	return st, nil
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

// deadLetterLess orders dead letters by expiry, then by event id.
func deadLetterLess(a, b *dcon.DeadLetter) bool {
	if !a.ExpireTime.Equal(b.ExpireTime) {
		return a.ExpireTime.Before(b.ExpireTime)
	}
	return a.EventID < b.EventID
}

// afterCursor reports whether dl comes after the cursor c.
func afterCursor(dl *dcon.DeadLetter, c dcon.DeadLetterCursor) bool {
	if c.IsZero() {
		return true
	}
	return deadLetterLess(&dcon.DeadLetter{Delivery: dcon.Delivery{EventID: c.EventID}, ExpireTime: c.ExpireTime}, dl)
}

// DeadLettersAfter returns up to limit of connectorID's dead letters after the
// cursor, oldest expiry first.
func (q *Queue) DeadLettersAfter(ctx context.Context, connectorID string, after dcon.DeadLetterCursor, limit int) ([]dcon.DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []dcon.DeadLetter
	for i := range q.dead[connectorID] {
		dl := &q.dead[connectorID][i]
		if len(out) >= limit {
			break
		}
		if afterCursor(dl, after) {
			out = append(out, dcon.DeadLetter{Delivery: clone(dl.Delivery), ExpireTime: dl.ExpireTime})
		}
	}
	return out, nil
}

// Replay moves up to limit of the dead letters that r names back into the
// queue, with a fresh EventTime (now), no attempts and Due due.
func (q *Queue) Replay(ctx context.Context, connectorID string, r dcon.ReplayRequest, now, due time.Time, limit int) ([]dcon.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	want := make(map[string]bool, len(r.EventIDs))
	for _, id := range r.EventIDs {
		want[id] = true
	}
	var out []dcon.Delivery
	keep := q.dead[connectorID][:0:0]
	for _, dl := range q.dead[connectorID] {
		var named bool
		switch {
		case len(r.EventIDs) > 0:
			named = want[dl.EventID]
			delete(want, dl.EventID)
		case r.All:
			named = true
		default:
			named = !dl.ExpireTime.Before(r.Since)
		}
		if !named || len(out) >= limit {
			keep = append(keep, dl)
			continue
		}
		d := dcon.Delivery{ConnectorID: connectorID, ProjectID: dl.ProjectID, EventID: dl.EventID,
			EventType: dl.EventType, EventTime: now, Body: slices.Clone(dl.Body), Due: due}
		q.q[key{connectorID, d.EventID}] = d
		out = append(out, clone(d))
	}
	q.dead[connectorID] = keep
	return out, nil
}

// PurgeDeadLetters deletes every dead letter that expired before expiredBefore.
func (q *Queue) PurgeDeadLetters(ctx context.Context, expiredBefore time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for c, dls := range q.dead {
		keep := dls[:0:0]
		for _, dl := range dls {
			if !dl.ExpireTime.Before(expiredBefore) {
				keep = append(keep, dl)
			}
		}
		if len(keep) == 0 {
			delete(q.dead, c)
		} else {
			q.dead[c] = keep
		}
	}
	return nil
}

var _ dcon.BacklogQueue = (*Queue)(nil)

// ClaimConnector returns up to limit of connectorID's parked deliveries with
// an EventID at or after from, in EventID order, and leases them until
// leaseUntil.
func (q *Queue) ClaimConnector(ctx context.Context, connectorID, from string, leaseUntil time.Time, limit int) ([]dcon.Delivery, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, from, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for k := range q.q {
		if k.connectorID == connectorID && k.eventID >= from {
			ids = append(ids, k.eventID)
		}
	}
	slices.Sort(ids)
	var out []dcon.Delivery
	next := from
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		next = id + "\x00"
		d := q.q[key{connectorID, id}]
		if !d.Parked() {
			continue
		}
		d.Due = leaseUntil
		q.q[key{connectorID, id}] = d
		out = append(out, clone(d))
	}
	return out, next, nil
}
