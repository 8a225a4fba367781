package pebble

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"dcon"
)

// recordVersion is the first byte of every delivery record.
const recordVersion = 1

// errCorrupt is returned for a record or key that cannot be decoded.
var errCorrupt = errors.New("corrupt record")

// zeroNanos stands for the zero time.Time, whose UnixNano is undefined.
const zeroNanos = math.MinInt64

// nanos returns t as Unix nanoseconds; the zero time becomes zeroNanos. Times
// outside the years 1678–2262 do not fit.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return zeroNanos
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos; times come back in UTC.
func fromNanos(n int64) time.Time {
	if n == zeroNanos {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// appendOrdered appends n as 8 bytes that sort, bytewise, as n does.
func appendOrdered(dst []byte, n int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(n)^(1<<63))
}

// ordered reads 8 bytes written by appendOrdered.
func ordered(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// recordLen returns the length of d's record with its Due replaced by due.
func recordLen(d *dcon.Delivery, due int64) int {
	return 1 +
		uvarintLen(uint64(len(d.ProjectID))) + len(d.ProjectID) +
		uvarintLen(uint64(len(d.EventType))) + len(d.EventType) +
		varintLen(nanos(d.EventTime)) +
		uvarintLen(uint64(d.Attempts)) +
		uvarintLen(uint64(len(d.LastError))) + len(d.LastError) +
		varintLen(due) +
		uvarintLen(uint64(len(d.Body))) + len(d.Body)
}

// appendRecord appends d's record, with due as its Due:
//
//	version byte (1)
//	uvarint len, projectID
//	uvarint len, eventType
//	varint eventTime (Unix nanoseconds)
//	uvarint attempts
//	uvarint len, lastError
//	varint due (Unix nanoseconds)
//	uvarint len, body
//
// ConnectorID and EventID are in the key.
func appendRecord(dst []byte, d *dcon.Delivery, due int64) []byte {
	dst = append(dst, recordVersion)
	dst = appendString(dst, d.ProjectID)
	dst = appendString(dst, string(d.EventType))
	dst = binary.AppendVarint(dst, nanos(d.EventTime))
	dst = binary.AppendUvarint(dst, uint64(d.Attempts))
	dst = appendString(dst, d.LastError)
	dst = binary.AppendVarint(dst, due)
	dst = binary.AppendUvarint(dst, uint64(len(d.Body)))
	return append(dst, d.Body...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeRecord decodes a record into d (all but ConnectorID and EventID) and
// returns its Due in nanoseconds and the bytes after it. d.Body is a copy: b may
// be reused once decodeRecord returns.
func decodeRecord(b []byte, d *dcon.Delivery) (due int64, rest []byte, err error) {
	if len(b) == 0 || b[0] != recordVersion {
		return 0, nil, errCorrupt
	}
	r := reader{b: b[1:]}
	projectID := r.bytes()
	eventType := r.bytes()
	eventTime := r.varint()
	attempts := r.uvarint()
	lastError := r.bytes()
	due = r.varint()
	body := r.bytes()
	if r.bad || attempts > math.MaxInt32 {
		return 0, nil, errCorrupt
	}
	d.ProjectID = string(projectID)
	d.EventType = internEventType(eventType)
	d.EventTime = fromNanos(eventTime)
	d.Attempts = int(attempts)
	d.LastError = string(lastError)
	d.Due = fromNanos(due)
	d.Body = append([]byte(nil), body...)
	return due, r.b, nil
}

// recordDue returns the Due of a record, in nanoseconds, without decoding the
// rest of it.
func recordDue(b []byte) (int64, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return 0, errCorrupt
	}
	r := reader{b: b[1:]}
	r.bytes()
	r.bytes()
	r.varint()
	r.uvarint()
	r.bytes()
	due := r.varint()
	if r.bad {
		return 0, errCorrupt
	}
	return due, nil
}

// internEventType returns the known event type that b spells without
// allocating, or a new one.
func internEventType(b []byte) dcon.EventType {
	for _, t := range dcon.EventTypes {
		if string(b) == string(t) {
			return t
		}
	}
	return dcon.EventType(b)
}

// reader reads varints and length-prefixed bytes; after the first failure bad
// is set and every read returns zero.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}
