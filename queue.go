package dcon

import (
	"context"
	"time"
)

// Queue holds the deliveries waiting for their endpoints: conceptually one queue
// per connector, all in one store. Every implementation passes the conformance
// suite in internal/queuetest.
//
// The delivery engine uses it like this: ingest Enqueues a routed event's copies
// (durably) with Due set to a lease — the time before which nobody else may take
// them — and hands them to the engine in memory, which attempts them at once. On a
// 2xx it calls Ack; on a failure, Retry with the time of the next attempt. A
// poller Claims what has come due: retries, and after a crash everything that was
// in flight. A claimed delivery whose event is MaxEventAge old is Expired instead
// of being sent.
//
// Deliveries passed to Ack, Retry and Expire must carry the Due the queue last
// gave them (from Enqueue or Claim): implementations index deliveries by due time.
type Queue interface {
	// Enqueue stores ds durably — on disk, synced, or in a quorum — before it
	// returns. Concurrent calls share syncs. A delivery whose (ConnectorID,
	// EventID) is queued already replaces it.
	Enqueue(ctx context.Context, ds []Delivery) error

	// Claim returns up to limit deliveries whose Due is at or before now, earliest
	// Due first, and sets their Due to leaseUntil (the returned deliveries carry
	// it), so that no Claim returns them again before then.
	Claim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Delivery, error)

	// Ack removes delivered deliveries. It need not sync: losing an ack in a crash
	// only causes a duplicate delivery. It removes the copies ds are, and only
	// those: a delivery that Enqueue replaced meanwhile with a copy of another
	// EventTime (a :sync or a replay re-sent the event) stays queued.
	Ack(ctx context.Context, ds []Delivery) error

	// Retry records a failed attempt: it stores d's Attempts and LastError and
	// makes d due at the given time. It need not sync. Like Ack, it leaves
	// alone a copy of another EventTime that replaced d.
	Retry(ctx context.Context, d Delivery, at time.Time) error

	// Expire moves deliveries to the connector's dead letters, with their
	// LastError, recorded as expired at the given time.
	Expire(ctx context.Context, ds []Delivery, at time.Time) error

	// Drop removes every queued delivery of a connector (when it is deleted or
	// disabled) and returns how many there were.
	Drop(ctx context.Context, connectorID string) (int, error)

	// Depth returns how many deliveries a connector has queued.
	Depth(ctx context.Context, connectorID string) (int, error)

	// DeadLetters returns up to limit of a connector's expired deliveries, oldest
	// expiry first.
	DeadLetters(ctx context.Context, connectorID string, limit int) ([]DeadLetter, error)
}

// QueueStats describes one connector's queue.
type QueueStats struct {
	Depth  int       // deliveries queued, in flight or not
	Oldest time.Time // the event time of the oldest queued delivery; zero when empty
}

// QueueInspector tells how a connector's queue stands, for metrics and the
// dashboard. It must be cheap enough to call for every connector on every
// scrape: implementations keep counts rather than scan.
type QueueInspector interface {
	QueueStats(ctx context.Context, connectorID string) (QueueStats, error)
}

// ReplayRequest names a connector's dead letters to deliver again: those of
// EventIDs, or every one that expired at or after Since, or All of them.
// Exactly one of the three is set.
type ReplayRequest struct {
	EventIDs []string
	Since    time.Time
	All      bool
}

// MaxReplay is the most dead letters one Replay moves, and the most event ids
// one replay request may name.
const MaxReplay = 1000

// DeadLetterQueue is what a Queue may also do with its dead letters: page
// through them, deliver them again, and forget old ones. internal/pebble and
// internal/memqueue implement it, and pass queuetest.RunDeadLetters.
//
// Dead letters are ordered by expiry, then by event id; a DeadLetterCursor is
// a position in that order.
type DeadLetterQueue interface {
	// DeadLettersAfter returns up to limit of a connector's dead letters that
	// come after the cursor (all of them for the zero cursor), in order.
	DeadLettersAfter(ctx context.Context, connectorID string, after DeadLetterCursor, limit int) ([]DeadLetter, error)

	// Replay moves up to limit of a connector's dead letters named by r back
	// into its queue, in one atomic, durable write (as Enqueue), oldest expiry
	// first, and returns the deliveries it queued. Each keeps its EventID,
	// EventType and Body; its Attempts and LastError are reset, its EventTime
	// is now (a fresh MaxEventAge counts from the replay) and its Due is due
	// (the lease of the hand-off, as Enqueue's). Event ids of r that are not
	// dead letters are skipped. A queued delivery of the same event is
	// replaced.
	Replay(ctx context.Context, connectorID string, r ReplayRequest, now, due time.Time, limit int) ([]Delivery, error)

	// PurgeDeadLetters deletes every connector's dead letters that expired
	// before the given time. It need not sync.
	PurgeDeadLetters(ctx context.Context, expiredBefore time.Time) error
}

// DeadLetterCursor is a position among a connector's dead letters: just
// after the one of EventID that expired at ExpireTime. The zero cursor is
// the start.
type DeadLetterCursor struct {
	ExpireTime time.Time
	EventID    string
}

// CursorOf returns the position just after dl.
func CursorOf(dl *DeadLetter) DeadLetterCursor {
	return DeadLetterCursor{ExpireTime: dl.ExpireTime, EventID: dl.EventID}
}

// IsZero reports whether c is the start.
func (c DeadLetterCursor) IsZero() bool { return c.ExpireTime.IsZero() && c.EventID == "" }

// BacklogQueue is what a Queue may also do for the delivery engine's flow
// control: hand out one connector's parked deliveries (Delivery.Parked),
// oldest event first. internal/pebble and internal/memqueue implement it and
// pass queuetest.RunBacklog; the engine works without it (no parking).
type BacklogQueue interface {
	// ClaimConnector returns up to limit of the connector's parked deliveries
	// whose EventID is at or after from, in EventID order (publish order for
	// xids), and sets their Due to leaseUntil (the returned deliveries carry
	// it). It also returns next, the position to pass as from to resume: no
	// delivery between from and next is parked but those returned. Deliveries
	// that are not parked (leased, or waiting for a retry) are skipped.
	ClaimConnector(ctx context.Context, connectorID, from string, leaseUntil time.Time, limit int) (ds []Delivery, next string, err error)
}
