package jetstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"dcon"
)

// recordVersion is the first byte of every record this package writes.
const recordVersion = 1

// errCorrupt says a stored record cannot be decoded.
var errCorrupt = errors.New("corrupt record")

// A record is one version of a queued delivery, or a dead letter, as the data of
// one stream message:
//
//	version byte (1)
//	uvarint-prefixed ConnectorID, ProjectID, EventID, EventType, LastError
//	uvarint Attempts
//	event time: byte 0 (the zero time) or 1 followed by varint UnixNano
//	varint Due, UnixNano
//	varint ExpireTime, UnixNano (0 in queue records)
//	the body, to the end
//
// Times are kept as UnixNano so that they come back as the same instant to
// the nanosecond (in UTC); 0 stands for the zero time.
func encodeRecord(d *dcon.Delivery, expire time.Time) []byte {
	b := make([]byte, 0, 64+len(d.ConnectorID)+len(d.ProjectID)+len(d.EventID)+len(d.LastError)+len(d.Body))
	b = append(b, recordVersion)
	for _, s := range []string{d.ConnectorID, d.ProjectID, d.EventID, string(d.EventType), d.LastError} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(max(d.Attempts, 0)))
	if d.EventTime.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, d.EventTime.UnixNano())
	}
	b = binary.AppendVarint(b, unixNano(d.Due))
	b = binary.AppendVarint(b, unixNano(expire))
	return append(b, d.Body...)
}

// unixNano is t.UnixNano, and 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// decodeRecord decodes a record written by encodeRecord. The body is a copy.
func decodeRecord(b []byte) (d dcon.Delivery, expire time.Time, err error) {
	r := reader{b: b}
	if v := r.byte(); v != recordVersion {
		return d, expire, fmt.Errorf("record version %d: %w", v, errCorrupt)
	}
	d.ConnectorID = r.string()
	d.ProjectID = r.string()
	d.EventID = r.string()
	d.EventType = dcon.EventType(r.string())
	d.LastError = r.string()
	if a := r.uvarint(); a <= math.MaxInt32 {
		d.Attempts = int(a)
	} else {
		r.err = errCorrupt
	}
	if r.byte() == 1 {
		d.EventTime = time.Unix(0, r.varint()).UTC()
	}
	if ns := r.varint(); ns != 0 {
		d.Due = time.Unix(0, ns).UTC()
	}
	if ns := r.varint(); ns != 0 {
		expire = time.Unix(0, ns).UTC()
	}
	if r.err != nil {
		return dcon.Delivery{}, time.Time{}, r.err
	}
	d.Body = append([]byte(nil), r.b...)
	return d, expire, nil
}

// reader reads a record; the first failure sticks in err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errCorrupt
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
