package pebble

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

// prefixLatest starts the keys of the latest events:
//
//	l/<projectID>/<deviceID>/<eventType>    a device's latest event of a type
//
// The value is a hand-written binary encoding (see appendLatest); the device
// and the event type are in the key.
const prefixLatest = "l/"

// latestVersion is the first byte of every latest-event value.
const latestVersion = 1

var _ dcon.LatestEventStore = (*DB)(nil)

// latestDevicePrefix returns l/<projectID>/<deviceID>/, or an EINVALID error
// if either id cannot be part of a key.
func latestDevicePrefix(projectID, deviceID string) ([]byte, error) {
	if !validKeyPart(projectID) || !validKeyPart(deviceID) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid device name projects/%s/devices/%s", projectID, deviceID)
	}
	return []byte(prefixLatest + projectID + "/" + deviceID + "/"), nil
}

// appendLatest appends ev's value:
//
//	version byte (1)
//	uvarint len, event id
//	varint timestamp (Unix nanoseconds)
//	uvarint len, data
func appendLatest(dst []byte, ev *dcon.Event) []byte {
	dst = append(dst, latestVersion)
	dst = appendString(dst, ev.ID)
	dst = binary.AppendVarint(dst, nanos(ev.Timestamp))
	dst = binary.AppendUvarint(dst, uint64(len(ev.Data)))
	return append(dst, ev.Data...)
}

// latestLen is the length of ev's value.
func latestLen(ev *dcon.Event) int {
	return 1 + uvarintLen(uint64(len(ev.ID))) + len(ev.ID) + varintLen(nanos(ev.Timestamp)) +
		uvarintLen(uint64(len(ev.Data))) + len(ev.Data)
}

// decodeLatest decodes a value written by appendLatest into a new event of the
// given device and type. The event owns its bytes: b may be reused.
func decodeLatest(b []byte, projectID, deviceID string, t dcon.EventType) (*dcon.Event, error) {
	if len(b) == 0 || b[0] != latestVersion {
		return nil, errCorrupt
	}
	r := reader{b: b[1:]}
	id := r.bytes()
	ts := r.varint()
	data := r.bytes()
	if r.bad || len(r.b) != 0 {
		return nil, errCorrupt
	}
	return &dcon.Event{
		ID:         string(id),
		TargetName: "projects/" + projectID + "/devices/" + deviceID,
		Type:       t,
		Data:       append([]byte(nil), data...),
		Timestamp:  fromNanos(ts),
	}, nil
}

// PutLatest records evs as the latest events of their devices, in one batch
// committed with pebble.NoSync. Ingest calls it just before Enqueue, whose
// commit is synced: Pebble's write-ahead log is one ordered log whose sync
// covers every earlier write (and a log is synced when it is rotated), so the
// events become durable with the deliveries. Where no Enqueue follows (no
// connector wanted the event), they become durable with the next synced write
// of any kind; a crash before that may lose them.
func (db *DB) PutLatest(ctx context.Context, projectID string, evs []dcon.DeviceEvent) error {
	if len(evs) == 0 {
		return nil
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if err := addLatest(b, projectID, evs); err != nil {
		return err
	}
	if err := e.commit(b, pebble.NoSync); err != nil {
		return unavailable(err, "put %d latest events of project %s", len(evs), projectID)
	}
	return nil
}

// addLatest adds to b the records of evs, devices of one project, as their
// devices' latest events.
func addLatest(b *pebble.Batch, projectID string, evs []dcon.DeviceEvent) error {
	var key []byte
	for _, de := range evs {
		p, err := latestDevicePrefix(projectID, de.DeviceID)
		if err != nil {
			return err
		}
		if !validKeyPart(string(de.Event.Type)) {
			return dcon.Errorf(dcon.EINVALID, "invalid event type %q", de.Event.Type)
		}
		key = append(append(key[:0], p...), de.Event.Type...)
		op := b.SetDeferred(len(key), latestLen(de.Event))
		copy(op.Key, key)
		appendLatest(op.Value[:0], de.Event)
		if err := op.Finish(); err != nil {
			return fmt.Errorf("put latest %s: %w", key, err)
		}
	}
	return nil
}

// LatestEvents returns a device's latest events, ordered by event type.
func (db *DB) LatestEvents(ctx context.Context, projectID, deviceID string) ([]*dcon.Event, error) {
	p, err := latestDevicePrefix(projectID, deviceID)
	if err != nil {
		return nil, err
	}
	e, err := db.engine()
	if err != nil {
		return nil, err
	}
	defer e.done()
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, unavailable(err, "read %s", p)
	}
	defer it.Close()
	var out []*dcon.Event
	for valid := it.First(); valid; valid = it.Next() {
		t := internEventType(it.Key()[len(p):])
		ev, err := decodeLatest(it.Value(), projectID, deviceID, t)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", it.Key(), err)
		}
		out = append(out, ev)
	}
	if err := it.Error(); err != nil {
		return nil, unavailable(err, "read %s", p)
	}
	return out, nil
}

// DeleteLatest deletes a device's latest events, synced.
func (db *DB) DeleteLatest(ctx context.Context, projectID, deviceID string) error {
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if err := deleteLatest(b, projectID, deviceID); err != nil {
		return err
	}
	if err := e.commit(b, pebble.Sync); err != nil {
		return unavailable(err, "delete the latest events of projects/%s/devices/%s", projectID, deviceID)
	}
	return nil
}

// deleteLatest adds the deletion of a device's latest events to b, so that
// DeleteDevice can delete them in the same batch as the device.
func deleteLatest(b *pebble.Batch, projectID, deviceID string) error {
	p, err := latestDevicePrefix(projectID, deviceID)
	if err != nil {
		return err
	}
	if err := b.DeleteRange(p, prefixEnd(p), nil); err != nil {
		return fmt.Errorf("delete range %s: %w", p, err)
	}
	return nil
}
