package receiver

import (
	"container/list"
	"sync"
)

// DefaultDedupCapacity is the capacity NewDedup uses when given 0.
const DefaultDedupCapacity = 10_000

// Dedup remembers the ids of the most recent events, to drop the rare
// duplicate delivery: dcon delivers at least once, and a retry carries the
// same eventId. It holds at most its capacity of ids and forgets the least
// recently seen first, so its memory is bounded; size it to cover the events
// of the longest time a duplicate can take (a retry comes within 12 hours).
// For a guarantee across restarts or replicas, keep the ids in your database
// instead (a unique key on eventId).
//
// A Dedup is safe for concurrent use.
type Dedup struct {
	mu    sync.Mutex
	cap   int
	order *list.List               // of string ids, most recent first
	index map[string]*list.Element // id → its element of order
}

// NewDedup returns a Dedup that remembers up to capacity ids (0 or less means
// DefaultDedupCapacity).
func NewDedup(capacity int) *Dedup {
	if capacity <= 0 {
		capacity = DefaultDedupCapacity
	}
	return &Dedup{cap: capacity, order: list.New(), index: make(map[string]*list.Element, capacity)}
}

// Seen reports whether id was seen before, and remembers it as just seen. If
// handling the event then fails, call Forget so that dcon's retry is handled.
func (d *Dedup) Seen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.index[id]; ok {
		d.order.MoveToFront(e)
		return true
	}
	d.index[id] = d.order.PushFront(id)
	if d.order.Len() > d.cap {
		oldest := d.order.Back()
		d.order.Remove(oldest)
		delete(d.index, oldest.Value.(string))
	}
	return false
}

// Forget removes id, so that its next delivery is not a duplicate.
func (d *Dedup) Forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.index[id]; ok {
		d.order.Remove(e)
		delete(d.index, id)
	}
}

// Len returns the number of ids remembered.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
