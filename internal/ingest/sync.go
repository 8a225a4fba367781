package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"dcon"
)

// SyncBatch is how many deliveries Sync stores in one Enqueue (one sync)
// before it hands them to the dispatcher and goes on.
const SyncBatch = 500

// errNoLatest is the cause of Sync's failure on an Ingester configured
// without a latest-event store.
var errNoLatest = errors.New("ingest: Sync needs Config.Latest, which is not set")

// Sync re-sends, through one connector only, the latest event of each type of
// every device of the project that the connector's filter wants: the
// connector's catch-up, for instance after it was created or re-enabled. It
// returns how many deliveries it enqueued.
//
// The connector must exist in the project (else ENOTFOUND) and be ACTIVE (else
// EINVALID). Each body is rendered anew, as Route does, with the device's
// current labels and the connector's current label keys, around the event's
// original envelope: the same eventId, data and timestamp, so receivers that
// deduplicate on eventId or version on timestamp see the event they may already
// have. A queued copy of the same event for the connector is replaced.
//
// A re-sent delivery's EventTime, from which its 12 hours count, is the time of
// the sync, not the event's: an event older than 12 hours would otherwise
// expire without a single attempt. Its body keeps the original timestamp.
//
// Deliveries are enqueued SyncBatch at a time, each batch durable before it is
// handed to the dispatcher. If a batch cannot be stored, Sync stops with
// EUNAVAILABLE; what it handed off before stays handed off, and the returned
// count says how much that was. If the connector leaves ACTIVE during the sync,
// Sync stops at the next batch.
func (in *Ingester) Sync(ctx context.Context, projectID, connectorID string) (int, error) {
	if in.latest == nil {
		return 0, dcon.WrapError(dcon.EINTERNAL, errNoLatest, "internal error")
	}
	c, err := in.activeConnector(projectID, connectorID)
	if err != nil {
		return 0, err
	}
	now := in.now()
	s := syncer{in: in, conn: c, now: now, lease: now.Add(in.lease)}
	page := dcon.Page{Size: dcon.MaxPageSize}
	for {
		devs, next, err := in.devices.ListDevices(ctx, projectID, page)
		if err != nil {
			return s.sent, fmt.Errorf("sync %s: list devices: %w", c.Name(), err)
		}
		for _, dev := range devs {
			if err := s.device(ctx, dev); err != nil {
				return s.sent, err
			}
		}
		if next == "" {
			break
		}
		page.Token = next
	}
	err = s.flush(ctx)
	return s.sent, err
}

// activeConnector returns the connector as routing knows it now, ENOTFOUND if
// the project has no such connector, EINVALID if it is not ACTIVE.
func (in *Ingester) activeConnector(projectID, connectorID string) (*dcon.Connector, error) {
	c, ok := in.router.Lookup(connectorID)
	if !ok || c.ProjectID != projectID {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "data connector projects/%s/dataconnectors/%s not found", projectID, connectorID)
	}
	if c.Status != dcon.StatusActive {
		return nil, dcon.Errorf(dcon.EINVALID, "connector is not ACTIVE (it is %s): only an ACTIVE connector can sync", c.Status)
	}
	return c, nil
}

// syncer collects one Sync's deliveries and enqueues them in batches.
type syncer struct {
	in    *Ingester
	conn  *dcon.Connector // shared: read only
	now   time.Time
	lease time.Time
	ds    []dcon.Delivery // not yet enqueued
	sent  int             // enqueued and handed off
}

// device adds the deliveries of one device's latest events that the
// connector wants, enqueueing each full batch.
func (s *syncer) device(ctx context.Context, dev *dcon.Device) error {
	evs, err := s.in.latest.LatestEvents(ctx, dev.ProjectID, dev.ID)
	if err != nil {
		return fmt.Errorf("sync %s: latest events of %s: %w", s.conn.Name(), dev.Name(), err)
	}
	for _, ev := range evs {
		if !s.conn.Wants(ev.Type) {
			continue
		}
		envelope := ev.AppendJSON(make([]byte, 0, 256+len(ev.Data)))
		s.ds = append(s.ds, dcon.Delivery{
			ConnectorID: s.conn.ID,
			ProjectID:   dev.ProjectID,
			EventID:     ev.ID,
			EventType:   ev.Type,
			EventTime:   s.now, // not ev.Timestamp: see Sync
			Body:        AppendBody(make([]byte, 0, len(envelope)+160), envelope, dev, s.conn.Labels),
			Due:         s.lease,
		})
		if len(s.ds) >= SyncBatch {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush enqueues the collected deliveries, if the connector is still ACTIVE,
// and hands them off.
func (s *syncer) flush(ctx context.Context) error {
	if len(s.ds) == 0 {
		return nil
	}
	if _, err := s.in.activeConnector(s.conn.ProjectID, s.conn.ID); err != nil {
		return err
	}
	if err := s.in.admitEnqueue(ctx, s.ds); err != nil {
		return dcon.WrapError(dcon.EUNAVAILABLE, err, "the events could not be stored; try again")
	}
	s.in.dispatch.Dispatch(s.ds)
	s.sent += len(s.ds)
	s.ds = nil // the dispatcher may keep the slice
	return nil
}
