package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

// lowWater is the low-water mark of the due index: no live entry sorts before
// it. It is a due — the lowest that may still be live — and, when the last
// Claim was cut short by its limit, the key after the last entry it took, so
// that the next Claim does not walk the tombstones of entries it took at that
// same due.
type lowWater struct {
	mu  sync.Mutex
	due int64  // Unix nanoseconds
	key []byte // nil, or a due-index key of due: the first that may be live
}

// lower moves the mark to due if due is at or below it.
func (w *lowWater) lower(due int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case due < w.due:
		w.due, w.key = due, nil
	case due == w.due:
		w.key = nil
	}
}

// start returns the mark's due and the first key to read.
func (w *lowWater) start() (int64, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.key != nil {
		return w.due, w.key
	}
	return w.due, dKeyBound(w.due)
}

// set moves the mark to due, and to key within it if key is not nil.
func (w *lowWater) set(due int64, key []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.due, w.key = due, key
}

// keyLocks are striped locks on deliveries' keys. Retry holds the one of its
// delivery from its read to its commit, and Ack and Expire hold theirs around
// their commits, so that a Retry cannot rewrite a record that an Ack or Expire
// deleted after the Retry read it. They are taken after qmu.
type keyLocks [256]sync.Mutex

// lock locks the stripes of ds, in ascending order, and returns the function
// that unlocks them.
func (l *keyLocks) lock(ds []dcon.Delivery) (unlock func()) {
	var set [len(l) / 64]uint64
	for i := range ds {
		s := stripe(ds[i].ConnectorID, ds[i].EventID)
		set[s/64] |= 1 << (s % 64)
	}
	for s := range len(l) {
		if set[s/64]&(1<<(s%64)) != 0 {
			l[s].Lock()
		}
	}
	return func() {
		for s := range len(l) {
			if set[s/64]&(1<<(s%64)) != 0 {
				l[s].Unlock()
			}
		}
	}
}

// stripe returns the key lock of a delivery: FNV-1a of its ids, folded to a byte.
func stripe(connectorID, eventID string) int {
	h := uint32(2166136261)
	for _, s := range [...]string{connectorID, "/", eventID} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint32(s[i])) * 16777619
		}
	}
	return int(byte(h ^ h>>8 ^ h>>16 ^ h>>24))
}

// checkIDs returns an EINVALID error if d's ids cannot be keys.
func checkIDs(d *dcon.Delivery) error {
	if !validKeyPart(d.ConnectorID) || !validKeyPart(d.EventID) {
		return dcon.Errorf(dcon.EINVALID, "delivery has an invalid connector id %q or event id %q", d.ConnectorID, d.EventID)
	}
	return nil
}

// Enqueue stores ds in one batch committed with pebble.Sync.
func (db *DB) Enqueue(ctx context.Context, ds []dcon.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ds) == 0 {
		return nil
	}
	minDue, err := checkDeliveries(ds)
	if err != nil {
		return err
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatchWithSize(batchSize("", nil, ds))
	defer e.closeBatch(b)
	if err := addDeliveries(b, ds); err != nil {
		return err
	}
	db.qmu.RLock()
	defer db.qmu.RUnlock()
	found, replaces, err := queued(e, ds)
	if err != nil {
		return err
	}
	if replaces { // rare (a :sync of queued events): read again, and write, under the key locks
		defer db.kl.lock(ds)()
		if found, _, err = queued(e, ds); err != nil {
			return err
		}
	}
	e.lw.lower(minDue)
	if err := e.commit(b, pebble.Sync); err != nil {
		return unavailable(err, "enqueue %d deliveries", len(ds))
	}
	db.countEnqueued(ds, found)
	return nil
}

// EnqueueEvents stores what a publish writes, in one batch: evs, events of
// one project, as their devices' latest events (as PutLatest), and ds, the
// deliveries of those events (as Enqueue). With deliveries the batch is
// committed with pebble.Sync — one commit and one sync for the whole
// publish —; without, with pebble.NoSync, as PutLatest.
//
// The events must be new — ids that were never queued, as ingest's fresh
// xids — so that, unlike Enqueue, it does not look for queued deliveries to
// replace: that read of every key is most of the cost of an Enqueue once the
// queue has been flushed to sstables.
func (db *DB) EnqueueEvents(ctx context.Context, projectID string, evs []dcon.DeviceEvent, ds []dcon.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ds) == 0 && len(evs) == 0 {
		return nil
	}
	minDue, err := checkDeliveries(ds)
	if err != nil {
		return err
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatchWithSize(batchSize(projectID, evs, ds))
	defer e.closeBatch(b)
	if err := addLatest(b, projectID, evs); err != nil {
		return err
	}
	if len(ds) == 0 {
		if err := e.commit(b, pebble.NoSync); err != nil {
			return unavailable(err, "put %d latest events of project %s", len(evs), projectID)
		}
		return nil
	}
	if err := addDeliveries(b, ds); err != nil {
		return err
	}
	db.qmu.RLock()
	defer db.qmu.RUnlock()
	e.lw.lower(minDue)
	if err := e.commit(b, pebble.Sync); err != nil {
		return unavailable(err, "enqueue %d deliveries", len(ds))
	}
	db.countEnqueued(ds, nil)
	return nil
}

// checkDeliveries returns an EINVALID error if some delivery of ds has ids
// that cannot be keys, and otherwise the earliest Due of ds, in nanoseconds.
func checkDeliveries(ds []dcon.Delivery) (minDue int64, err error) {
	minDue = int64(math.MaxInt64)
	for i := range ds {
		if err := checkIDs(&ds[i]); err != nil {
			return 0, err
		}
		minDue = min(minDue, nanos(ds[i].Due))
	}
	return minDue, nil
}

// batchSize is about the size of a batch that holds the latest events evs,
// of the project projectID, and the deliveries ds (a little more: each entry's varints are counted at
// their longest), so that it is allocated once rather than grown by
// doubling.
func batchSize(projectID string, evs []dcon.DeviceEvent, ds []dcon.Delivery) int {
	const header, entry = 12, 1 + 2*binary.MaxVarintLen32 // batch header; kind and two lengths
	n := header
	for _, de := range evs {
		n += entry + len(prefixLatest) + len(projectID) + 1 + len(de.DeviceID) + 1 + len(de.Event.Type) + latestLen(de.Event)
	}
	for i := range ds {
		d := &ds[i]
		n += 2*entry + mKeyLen(d.ConnectorID, d.EventID) + recordLen(d, nanos(d.Due)) + dKeyLen(d.ConnectorID, d.EventID)
	}
	return n
}

// addDeliveries adds to b the records of ds and their d entries.
func addDeliveries(b *pebble.Batch, ds []dcon.Delivery) error {
	for i := range ds {
		d := &ds[i]
		due := nanos(d.Due)
		op := b.SetDeferred(mKeyLen(d.ConnectorID, d.EventID), recordLen(d, due))
		appendMKey(op.Key[:0], d.ConnectorID, d.EventID)
		appendRecord(op.Value[:0], d, due)
		if err := op.Finish(); err != nil {
			return fmt.Errorf("enqueue %s/%s: %w", d.ConnectorID, d.EventID, err)
		}
		op = b.SetDeferred(dKeyLen(d.ConnectorID, d.EventID), 0)
		appendDKey(op.Key[:0], due, d.ConnectorID, d.EventID)
		if err := op.Finish(); err != nil {
			return fmt.Errorf("enqueue %s/%s: %w", d.ConnectorID, d.EventID, err)
		}
	}
	return nil
}

// Claim takes up to limit live entries of the due index between the low-water
// mark and now, earliest first, and leases them until leaseUntil.
func (db *DB) Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]dcon.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	e, err := db.engine()
	if err != nil {
		return nil, err
	}
	defer e.done()
	db.qmu.Lock()
	defer db.qmu.Unlock()

	nowN, leaseN := nanos(now), nanos(leaseUntil)
	from, lower := e.lw.start()
	if from > nowN {
		return nil, nil
	}
	upper := []byte(prefixDue[:len(prefixDue)-1] + "0") // after every d key
	if nowN < math.MaxInt64 {
		upper = dKeyBound(nowN + 1)
	}
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, unavailable(err, "claim")
	}
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	out, mark, markKey, err := claimScan(e, it, b, nowN, leaseN, limit)
	if cerr := it.Close(); err == nil && cerr != nil {
		err = unavailable(cerr, "claim")
	}
	if err != nil {
		return nil, err
	}
	if !b.Empty() {
		if err := e.commit(b, pebble.NoSync); err != nil {
			return nil, unavailable(err, "claim %d deliveries", len(out))
		}
	}
	if len(out) > 0 && leaseN <= mark {
		mark, markKey = leaseN, nil // the leases are behind the mark
	}
	e.lw.set(mark, markKey)
	return out, nil
}

// claimScan walks the due index with it, adding to b the writes that lease the
// live entries it takes and delete the stale ones it meets. It returns the
// deliveries taken and the new low-water mark: now, or, if limit stopped it,
// the due of the last entry taken and the key after that entry.
func claimScan(e *engine, it *pebble.Iterator, b *pebble.Batch, now, leaseN int64, limit int) (out []dcon.Delivery, mark int64, markKey []byte, err error) {
	mark = now
	var mKey []byte
	for valid := it.First(); valid; valid = it.Next() {
		due, mk, ok := parseDKey(mKey[:0], it.Key())
		if !ok {
			return nil, 0, nil, fmt.Errorf("claim: due index key %q: %w", it.Key(), errCorrupt)
		}
		mKey = mk
		d, live, err := liveRecord(e, mKey, due)
		if err != nil {
			return nil, 0, nil, err
		}
		if err := b.Delete(it.Key(), nil); err != nil {
			return nil, 0, nil, fmt.Errorf("claim: %w", err)
		}
		if !live {
			continue
		}
		d.Due = fromNanos(leaseN)
		out = append(out, d)
		if len(out) == limit {
			mark, markKey = due, append(bytes.Clone(it.Key()), 0)
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, 0, nil, unavailable(err, "claim")
	}
	// The leases are written after every deletion: a lease at or before now
	// may land on the key of a stale entry of the same delivery that the walk
	// deletes after taking the live one.
	for i := range out {
		mKey = appendMKey(mKey[:0], out[i].ConnectorID, out[i].EventID)
		if err := setRecord(b, mKey, &out[i], leaseN); err != nil {
			return nil, 0, nil, err
		}
	}
	return out, mark, markKey, nil
}

// liveRecord reads the record at mKey and reports whether it exists with the
// given due, decoding it if so.
func liveRecord(e *engine, mKey []byte, due int64) (dcon.Delivery, bool, error) {
	var d dcon.Delivery
	v, closer, err := e.pdb.Get(mKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return d, false, nil
	}
	if err != nil {
		return d, false, unavailable(err, "read %s", mKey)
	}
	defer closer.Close()
	if recDue, err := recordDue(v); err != nil || recDue != due {
		return d, false, err // a corrupt record is reported; another due is stale
	}
	if _, _, err := decodeRecord(v, &d); err != nil {
		return d, false, fmt.Errorf("decode %s: %w", mKey, err)
	}
	var ok bool
	if d.ConnectorID, d.EventID, ok = splitMKey(mKey); !ok {
		return d, false, fmt.Errorf("record key %q: %w", mKey, errCorrupt)
	}
	return d, true, nil
}

// setRecord adds to b the record of d at mKey with the given due, and its d
// entry.
func setRecord(b *pebble.Batch, mKey []byte, d *dcon.Delivery, due int64) error {
	op := b.SetDeferred(len(mKey), recordLen(d, due))
	copy(op.Key, mKey)
	appendRecord(op.Value[:0], d, due)
	if err := op.Finish(); err != nil {
		return fmt.Errorf("write %s: %w", mKey, err)
	}
	op = b.SetDeferred(dKeyLen(d.ConnectorID, d.EventID), 0)
	appendDKey(op.Key[:0], due, d.ConnectorID, d.EventID)
	if err := op.Finish(); err != nil {
		return fmt.Errorf("write due of %s: %w", mKey, err)
	}
	return nil
}

// Ack deletes the records of ds and their d entries, without syncing — the
// records of the copies ds are: one that Enqueue replaced meanwhile (a :sync
// or a replay re-sent the event; the new copy has another EventTime) stays.
// It reads each record first, which also keeps the counts of QueueStats
// right: they subtract only the records it deletes, not those that are gone
// already (dropped with their connector, expired, or acked before) — the
// counts are per connector and do not know which records are queued.
func (db *DB) Ack(ctx context.Context, ds []dcon.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	for i := range ds {
		if err := checkIDs(&ds[i]); err != nil {
			return err
		}
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	db.qmu.RLock()
	defer db.qmu.RUnlock()
	defer db.kl.lock(ds)()
	found, err := sameCopies(e, ds)
	if err != nil {
		return err
	}
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	var key []byte
	for i := range ds {
		if !found[i] {
			continue
		}
		d := &ds[i]
		key = appendMKey(key[:0], d.ConnectorID, d.EventID)
		if err := b.Delete(key, nil); err != nil {
			return fmt.Errorf("ack %s: %w", key, err)
		}
		key = appendDKey(key[:0], nanos(d.Due), d.ConnectorID, d.EventID)
		if err := b.Delete(key, nil); err != nil {
			return fmt.Errorf("ack %s: %w", key, err)
		}
	}
	if b.Empty() {
		return nil
	}
	if len(ds) > 1 {
		foundOnce(ds, found)
	}
	if err := e.commit(b, pebble.NoSync); err != nil {
		return unavailable(err, "ack %d deliveries", len(ds))
	}
	db.countRemoved(ds, found)
	return nil
}

// sameCopies reports, for each delivery of ds, whether its record is queued
// and is the same copy: of the same EventTime.
func sameCopies(e *engine, ds []dcon.Delivery) ([]bool, error) {
	found := make([]bool, len(ds))
	err := eachRecord(e, ds, func(i int, record []byte) error {
		eventTime, _, err := recordTimes(record)
		found[i] = err == nil && eventTime == nanos(ds[i].EventTime)
		return err
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// foundOnce keeps found set only for the first of the deliveries of ds that
// have the same ids, so that a record acked twice in one batch (the delivery
// engine acks in batches) is counted once.
func foundOnce(ds []dcon.Delivery, found []bool) {
	seen := make(map[[2]string]struct{}, len(ds))
	for i := range ds {
		if !found[i] {
			continue
		}
		k := [2]string{ds[i].ConnectorID, ds[i].EventID}
		if _, ok := seen[k]; ok {
			found[i] = false
			continue
		}
		seen[k] = struct{}{}
	}
}

// Retry rewrites d's record with its Attempts and LastError, due at at, without
// syncing. A delivery that is no longer queued (acked, dropped or expired)
// stays gone, and a copy that Enqueue replaced (another EventTime) is left as
// it is.
func (db *DB) Retry(ctx context.Context, d dcon.Delivery, at time.Time) error {
	if err := checkIDs(&d); err != nil {
		return err
	}
	mKey := appendMKey(nil, d.ConnectorID, d.EventID)
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	db.qmu.RLock()
	defer db.qmu.RUnlock()
	// Hold d's key lock from the read to the commit, so that an Ack or Expire
	// of d cannot commit in between and be undone by the rewrite.
	defer db.kl.lock([]dcon.Delivery{d})()
	v, closer, err := e.pdb.Get(mKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return unavailable(err, "retry %s", mKey)
	}
	var stored dcon.Delivery
	oldDue, _, err := decodeRecord(v, &stored)
	closer.Close()
	if err != nil {
		return fmt.Errorf("retry: decode %s: %w", mKey, err)
	}
	if !stored.EventTime.Equal(d.EventTime) {
		return nil // replaced by another copy (a :sync, a replay), which has its own attempts
	}
	stored.ConnectorID, stored.EventID = d.ConnectorID, d.EventID
	stored.Attempts, stored.LastError = d.Attempts, d.LastError

	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if err := b.Delete(appendDKey(nil, oldDue, d.ConnectorID, d.EventID), nil); err != nil {
		return fmt.Errorf("retry %s: %w", mKey, err)
	}
	due := nanos(at)
	if err := setRecord(b, mKey, &stored, due); err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	e.lw.lower(due)
	if err := e.commit(b, pebble.NoSync); err != nil {
		return unavailable(err, "retry %s", mKey)
	}
	return nil
}

// Expire deletes the records of ds and writes their dead letters, synced.
func (db *DB) Expire(ctx context.Context, ds []dcon.Delivery, at time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	expire := nanos(at)
	var key, val []byte
	for i := range ds {
		d := &ds[i]
		if err := checkIDs(d); err != nil {
			return err
		}
		key = appendMKey(key[:0], d.ConnectorID, d.EventID)
		if err := b.Delete(key, nil); err != nil {
			return fmt.Errorf("expire %s: %w", key, err)
		}
		due := nanos(d.Due)
		key = appendDKey(key[:0], due, d.ConnectorID, d.EventID)
		if err := b.Delete(key, nil); err != nil {
			return fmt.Errorf("expire %s: %w", key, err)
		}
		key = appendXKey(key[:0], d.ConnectorID, expire, d.EventID)
		val = binary.AppendVarint(appendRecord(val[:0], d, due), expire)
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("expire %s: %w", key, err)
		}
	}
	db.qmu.RLock()
	defer db.qmu.RUnlock()
	defer db.kl.lock(ds)()
	found, _, err := queued(e, ds)
	if err != nil {
		return err
	}
	if err := e.commit(b, pebble.Sync); err != nil {
		return unavailable(err, "expire %d deliveries", len(ds))
	}
	db.countRemoved(ds, found)
	return nil
}

// Drop deletes a connector's records with one range deletion, synced; Claim
// removes their d entries when it meets them.
func (db *DB) Drop(ctx context.Context, connectorID string) (int, error) {
	if !validKeyPart(connectorID) {
		return 0, dcon.Errorf(dcon.EINVALID, "invalid connector id %q", connectorID)
	}
	e, err := db.engine()
	if err != nil {
		return 0, err
	}
	defer e.done()
	db.qmu.Lock()
	defer db.qmu.Unlock()
	n, err := countIn(ctx, e, connectorPrefix(prefixQueue, connectorID))
	if err != nil {
		return 0, err
	}
	if n == 0 {
		db.countDropped(connectorID)
		return 0, nil
	}
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if err := deleteQueue(b, connectorID, false); err != nil {
		return 0, err
	}
	if err := e.commit(b, pebble.Sync); err != nil {
		return 0, unavailable(err, "drop queue of %s", connectorID)
	}
	db.countDropped(connectorID)
	return n, nil
}

// deleteQueue adds to b the range deletion of a connector's queued records,
// and of its dead letters too if deadLetters is set.
func deleteQueue(b *pebble.Batch, connectorID string, deadLetters bool) error {
	prefixes := []string{prefixQueue}
	if deadLetters {
		prefixes = append(prefixes, prefixDead)
	}
	for _, p := range prefixes {
		start := connectorPrefix(p, connectorID)
		if err := b.DeleteRange(start, prefixEnd(start), nil); err != nil {
			return fmt.Errorf("delete %s: %w", start, err)
		}
	}
	return nil
}

// Depth counts a connector's records.
func (db *DB) Depth(ctx context.Context, connectorID string) (int, error) {
	if !validKeyPart(connectorID) {
		return 0, dcon.Errorf(dcon.EINVALID, "invalid connector id %q", connectorID)
	}
	e, err := db.engine()
	if err != nil {
		return 0, err
	}
	defer e.done()
	return countIn(ctx, e, connectorPrefix(prefixQueue, connectorID))
}

// count counts the keys that start with prefix.
func (db *DB) count(ctx context.Context, prefix []byte) (int, error) {
	e, err := db.engine()
	if err != nil {
		return 0, err
	}
	defer e.done()
	return countIn(ctx, e, prefix)
}

// countIn counts the keys of e that start with prefix.
func countIn(ctx context.Context, e *engine, prefix []byte) (int, error) {
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, unavailable(err, "count %s", prefix)
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return 0, unavailable(err, "count %s", prefix)
	}
	return n, nil
}

// DeadLetters returns up to limit of a connector's dead letters, oldest expiry
// first.
func (db *DB) DeadLetters(ctx context.Context, connectorID string, limit int) ([]dcon.DeadLetter, error) {
	if !validKeyPart(connectorID) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid connector id %q", connectorID)
	}
	e, err := db.engine()
	if err != nil {
		return nil, err
	}
	defer e.done()
	prefix := connectorPrefix(prefixDead, connectorID)
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, unavailable(err, "read dead letters of %s", connectorID)
	}
	defer it.Close()
	var out []dcon.DeadLetter
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		dl, err := decodeDeadLetter(it.Key(), it.Value(), connectorID)
		if err != nil {
			return nil, fmt.Errorf("read dead letters of %s: %w", connectorID, err)
		}
		out = append(out, dl)
	}
	if err := it.Error(); err != nil {
		return nil, unavailable(err, "read dead letters of %s", connectorID)
	}
	return out, nil
}

// decodeDeadLetter decodes the dead letter at key q/x/<connectorID>/<expire>/<eventID>.
func decodeDeadLetter(key, val []byte, connectorID string) (dcon.DeadLetter, error) {
	var dl dcon.DeadLetter
	head := len(prefixDead) + len(connectorID) + 1 + 8 + 1
	if len(key) <= head || key[head-1] != '/' {
		return dl, fmt.Errorf("dead letter key %q: %w", key, errCorrupt)
	}
	_, rest, err := decodeRecord(val, &dl.Delivery)
	if err != nil {
		return dl, fmt.Errorf("dead letter %q: %w", key, err)
	}
	expire, n := binary.Varint(rest)
	if n <= 0 {
		return dl, fmt.Errorf("dead letter %q: %w", key, errCorrupt)
	}
	dl.ConnectorID = connectorID
	dl.EventID = string(key[head:])
	dl.ExpireTime = fromNanos(expire)
	return dl, nil
}
