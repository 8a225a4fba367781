package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// stateVersion is the version of the encoding of a connector's state; the
// package doc describes it.
const stateVersion = 1

// appendState appends c's state to dst. c.mu must be held.
func (c *conn) appendState(dst []byte) []byte {
	dst = append(dst, stateVersion)
	dst = binary.AppendUvarint(dst, uint64(BucketWidth.Seconds()))
	dst = binary.AppendVarint(dst, c.failingSince)
	dst = binary.AppendVarint(dst, c.lastSuccess)
	// The ring in bucket order, oldest first.
	var used []*bucket
	for i := range c.buckets {
		if b := &c.buckets[i]; b.epoch != noEpoch && b.ok+b.failed > 0 {
			used = append(used, b)
		}
	}
	slices.SortFunc(used, func(a, b *bucket) int {
		if a.epoch < b.epoch {
			return -1
		}
		return 1 // epochs in a ring are distinct
	})
	dst = binary.AppendUvarint(dst, uint64(len(used)))
	for _, b := range used {
		dst = binary.AppendVarint(dst, b.epoch)
		dst = binary.AppendUvarint(dst, uint64(b.ok))
		dst = binary.AppendUvarint(dst, uint64(b.failed))
		n := 0
		for _, v := range b.bins {
			if v > 0 {
				n++
			}
		}
		dst = binary.AppendUvarint(dst, uint64(n))
		for i, v := range b.bins {
			if v > 0 {
				dst = append(dst, byte(i))
				dst = binary.AppendUvarint(dst, uint64(v))
			}
		}
	}
	return dst
}

// errTruncated reports a state that ends too early.
var errTruncated = errors.New("truncated")

// decoder reads the fields of an encoded state.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = errTruncated
		if n < 0 {
			d.err = errors.New("uvarint overflows 64 bits")
		}
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = errTruncated
		if n < 0 {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.err = errTruncated
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// count reads a count that must fit a bucket's uint32.
func (d *decoder) count(what string) uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 && d.err == nil {
		d.err = fmt.Errorf("%s %d is too large", what, v)
	}
	return uint32(v)
}

// decode returns the connector state that appendState encoded, or an error if
// buf is not one.
func decode(buf []byte) (*conn, error) {
	c, err := decodeState(buf)
	if err != nil {
		return nil, fmt.Errorf("decode connector stats: %w", err)
	}
	return c, nil
}

func decodeState(buf []byte) (*conn, error) {
	d := &decoder{buf: buf}
	if v := d.byte(); d.err == nil && v != stateVersion {
		return nil, fmt.Errorf("unknown version %d", v)
	}
	width := d.uvarint()
	c := newConn()
	c.failingSince = d.varint()
	c.lastSuccess = d.varint()
	n := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if n > Buckets {
		return nil, fmt.Errorf("%d buckets, more than %d", n, Buckets)
	}
	var first, prev int64
	for i := range int(n) {
		var b bucket
		b.epoch = d.varint()
		b.ok = d.count("successes")
		b.failed = d.count("errors")
		bins := d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		switch {
		case b.epoch == noEpoch:
			return nil, fmt.Errorf("bucket %d", b.epoch)
		case i == 0:
			first = b.epoch
		case b.epoch <= prev:
			return nil, fmt.Errorf("bucket %d after bucket %d", b.epoch, prev)
		case b.epoch-first >= Buckets || b.epoch-first < 0:
			return nil, fmt.Errorf("buckets %d and %d are more than %d apart", first, b.epoch, Buckets)
		}
		prev = b.epoch
		if bins > Bins {
			return nil, fmt.Errorf("%d bins, more than %d", bins, Bins)
		}
		var sum uint64
		lastBin := -1
		for range int(bins) {
			j := int(d.byte())
			v := d.count("bin count")
			if d.err != nil {
				return nil, d.err
			}
			if j >= Bins || j <= lastBin || v == 0 {
				return nil, fmt.Errorf("bad bin %d (count %d) after bin %d", j, v, lastBin)
			}
			lastBin = j
			b.bins[j] = v
			sum += uint64(v)
		}
		if total := uint64(b.ok) + uint64(b.failed); sum != total || total == 0 {
			return nil, fmt.Errorf("bucket %d: bins hold %d attempts, counts %d", b.epoch, sum, total)
		}
		if width == uint64(BucketWidth.Seconds()) {
			c.buckets[slot(b.epoch)] = b
		}
	}
	if len(d.buf) > 0 {
		return nil, fmt.Errorf("%d bytes after the state", len(d.buf))
	}
	return c, nil
}
