package jetstream

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"dcon"
)

// Dead letters: the <Prefix>_DEAD stream keeps one message per dead letter
// on <Prefix>.dl.<partition>.<connector>.<event> (MaxMsgsPerSubject 1), its
// data a record whose ExpireTime is the engine's time of the expiry.
//
// Replay reads the connector's dead letters (with their stream sequences),
// picks those the request names, writes them back into the queue (Enqueue:
// acknowledged by a quorum), then deletes each dead letter by its sequence.
// A delete by sequence succeeds once: a replay that loses a race with
// another (on this node or another) for a dead letter does not return it, so
// concurrent replays return each event once. The two writes are not one
// atomic write as on Pebble: a crash between them leaves the event both
// queued and a dead letter (a later replay delivers it again, which
// at-least-once allows), never neither.
//
// PurgeDeadLetters reads every dead letter of the stream and deletes by
// sequence those that expired before the cut. It costs a read of the whole
// stream per call (the sweeper calls it once an hour); the stream's own age
// limit (Config.DeadLetterMaxAge) is the backstop that costs nothing.

// deadLetter is a dead letter and its stream sequence.
type deadLetter struct {
	dcon.DeadLetter
	seq uint64
}

// readDeadLetters reads every dead letter on the subjects of filter, with
// their sequences, in no particular order.
func (q *Queue) readDeadLetters(ctx context.Context, filter string) ([]deadLetter, error) {
	c, err := q.dead.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, unavailable(err, "read dead letters %s", filter)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, unavailable(err, "read dead letters %s", filter)
	}
	pending := int(info.NumPending)
	var out []deadLetter
	for len(out) < pending {
		batch, err := c.Fetch(min(pending-len(out), 1000), jetstream.FetchContext(ctx))
		if err != nil {
			return nil, unavailable(err, "read dead letters %s", filter)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, unavailable(err, "read dead letters %s", filter)
			}
			d, expire, err := decodeRecord(m.Data())
			if err != nil {
				return nil, fmt.Errorf("jetstream: dead letter %s: %w", m.Subject(), err)
			}
			out = append(out, deadLetter{DeadLetter: dcon.DeadLetter{Delivery: d, ExpireTime: expire}, seq: md.Sequence.Stream})
			if md.NumPending == 0 {
				pending = len(out)
			}
		}
		if err := batch.Error(); err != nil {
			return nil, unavailable(err, "read dead letters %s", filter)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// deleteDeadLetter deletes the dead letter of sequence seq and reports
// whether this call deleted it (false: it was gone already).
func (q *Queue) deleteDeadLetter(ctx context.Context, seq uint64) (bool, error) {
	var resp apiResponse
	if err := q.api(ctx, "STREAM.MSG.DELETE."+q.cfg.Prefix+"_DEAD", map[string]any{"seq": seq, "no_erase": true}, &resp); err != nil {
		return false, unavailable(err, "delete dead letter %d", seq)
	}
	return resp.Error == nil && resp.Success, nil
}

// deleteDeadLetters deletes the dead letters of seqs, in parallel, and
// reports for each whether this call deleted it.
func (q *Queue) deleteDeadLetters(ctx context.Context, seqs []uint64) ([]bool, error) {
	deleted := make([]bool, len(seqs))
	errs := make([]error, len(seqs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallel)
	for i := range seqs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			deleted[i], errs[i] = q.deleteDeadLetter(ctx, seqs[i])
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return deleted, nil
}

// DeadLettersAfter returns up to limit of a connector's dead letters after
// the cursor, in order (expiry, then event id). It reads them all.
func (q *Queue) DeadLettersAfter(ctx context.Context, connectorID string, after dcon.DeadLetterCursor, limit int) ([]dcon.DeadLetter, error) {
	dls, err := q.DeadLetters(ctx, connectorID, int(^uint(0)>>1))
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(dls, after, func(dl dcon.DeadLetter, c dcon.DeadLetterCursor) int {
		return cmp.Or(dl.ExpireTime.Compare(c.ExpireTime), strings.Compare(dl.EventID, c.EventID))
	})
	if i < len(dls) && !after.IsZero() && dls[i].ExpireTime.Equal(after.ExpireTime) && dls[i].EventID == after.EventID {
		i++
	}
	dls = dls[i:]
	return dls[:min(max(limit, 0), len(dls))], nil
}

// Replay moves up to limit of a connector's dead letters named by r back
// into its queue, oldest expiry first, and returns the deliveries it queued;
// see the comment at the top of this file.
func (q *Queue) Replay(ctx context.Context, connectorID string, r dcon.ReplayRequest, now, due time.Time, limit int) ([]dcon.Delivery, error) {
	if err := checkToken("connector id", connectorID); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	all, err := q.readDeadLetters(ctx, q.deadFilter(connectorID))
	if err != nil {
		return nil, err
	}
	picked := pickReplay(all, r, limit)
	if len(picked) == 0 {
		return nil, nil
	}
	ds := make([]dcon.Delivery, len(picked))
	seqs := make([]uint64, len(picked))
	for i, dl := range picked {
		ds[i] = dcon.Delivery{ConnectorID: connectorID, ProjectID: dl.ProjectID, EventID: dl.EventID,
			EventType: dl.EventType, EventTime: now, Body: dl.Body, Due: due}
		seqs[i] = dl.seq
	}
	if err := q.Enqueue(ctx, ds); err != nil {
		return nil, err
	}
	deleted, err := q.deleteDeadLetters(ctx, seqs)
	if err != nil {
		return nil, err
	}
	out := ds[:0]
	for i := range ds {
		if deleted[i] {
			out = append(out, ds[i])
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// pickReplay returns up to limit of dls that r names, oldest expiry first
// (then by event id).
func pickReplay(dls []deadLetter, r dcon.ReplayRequest, limit int) []deadLetter {
	slices.SortFunc(dls, func(a, b deadLetter) int {
		return cmp.Or(a.ExpireTime.Compare(b.ExpireTime), strings.Compare(a.EventID, b.EventID))
	})
	var want map[string]bool
	if len(r.EventIDs) > 0 {
		want = make(map[string]bool, len(r.EventIDs))
		for _, id := range r.EventIDs {
			want[id] = true
		}
	}
	var out []deadLetter
	for _, dl := range dls {
		if len(out) == limit {
			break
		}
		switch {
		case want != nil:
			if !want[dl.EventID] {
				continue
			}
			delete(want, dl.EventID)
		case !r.All && dl.ExpireTime.Before(r.Since):
			continue
		}
		out = append(out, dl)
	}
	return out
}

// PurgeDeadLetters deletes every connector's dead letters that expired
// before expiredBefore; see the comment at the top of this file.
func (q *Queue) PurgeDeadLetters(ctx context.Context, expiredBefore time.Time) error {
	all, err := q.readDeadLetters(ctx, q.cfg.Prefix+".dl.>")
	if err != nil {
		return err
	}
	var seqs []uint64
	for _, dl := range all {
		if dl.ExpireTime.Before(expiredBefore) {
			seqs = append(seqs, dl.seq)
		}
	}
	_, err = q.deleteDeadLetters(ctx, seqs)
	return err
}
