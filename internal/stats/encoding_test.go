package stats

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// sample returns a connector state with a few buckets and both times set.
func sample(t testing.TB) *conn {
	t.Helper()
	tr, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		tr.observe("c1", i%3 != 0, time.Duration(i*i)*time.Microsecond, t0.Add(time.Duration(i)*20*time.Second))
	}
	tr.observe("c1", false, time.Hour, t0.Add(2*time.Hour))
	return tr.lookup("c1")
}

// equalState reports whether two states hold the same figures.
func equalState(a, b *conn) bool {
	return a.failingSince == b.failingSince && a.lastSuccess == b.lastSuccess && a.buckets == b.buckets
}

func TestEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	empty := newConn()
	empty.failingSince = t0.UnixNano()
	for name, c := range map[string]*conn{"sample": sample(t), "times only": empty, "zero": newConn()} {
		buf := c.appendState(nil)
		got, err := decode(buf)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !equalState(got, c) {
			t.Errorf("%s: decoded state differs", name)
		}
		if got.dirty {
			t.Errorf("%s: a decoded state is dirty", name)
		}
	}
	// Compact: the sample's 10 buckets hold 300 attempts in few bytes.
	if n := len(sample(t).appendState(nil)); n > 1024 {
		t.Errorf("the sample encodes in %d bytes, want at most 1 KiB", n)
	}
}

// header returns the start of a version-1 state: version, width, times.
func header(width uint64, failing, success int64) []byte {
	b := []byte{stateVersion}
	b = binary.AppendUvarint(b, width)
	b = binary.AppendVarint(b, failing)
	return binary.AppendVarint(b, success)
}

// bucketBytes encodes one bucket whose attempts are all in bin.
func bucketBytes(epoch int64, ok, failed uint64, bin byte, count uint64) []byte {
	b := binary.AppendVarint(nil, epoch)
	b = binary.AppendUvarint(b, ok)
	b = binary.AppendUvarint(b, failed)
	b = binary.AppendUvarint(b, 1)
	b = append(b, bin)
	return binary.AppendUvarint(b, count)
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	const w = 600
	e := epochOf(t0)
	valid := sample(t).appendState(nil)
	tests := []struct {
		name string
		buf  []byte
		want string // in the error
	}{
		{"empty", nil, "truncated"},
		{"unknown version", []byte{2, 0}, "unknown version 2"},
		{"truncated header", header(w, 1, 2)[:3], "truncated"},
		{"truncated state", valid[:len(valid)-1], "truncated"},
		{"trailing bytes", append(bytes.Clone(valid), 0), "1 bytes after the state"},
		{"too many buckets", join(header(w, 0, 0), uv(Buckets+1)), "19 buckets"},
		{"uvarint overflow", join(header(w, 0, 0), bytes.Repeat([]byte{0xff}, 11)), "overflows"},
		{"count too large", join(header(w, 0, 0), uv(1), bucketBytes(e, 1<<32, 0, 3, 1<<32)), "too large"},
		{"bin out of range", join(header(w, 0, 0), uv(1), bucketBytes(e, 1, 0, Bins, 1)), "bad bin 64"},
		{"empty bin", join(header(w, 0, 0), uv(1), bucketBytes(e, 0, 0, 3, 0)), "bad bin"},
		{"bins do not add up", join(header(w, 0, 0), uv(1), bucketBytes(e, 2, 1, 3, 2)), "bins hold 2 attempts, counts 3"},
		{"buckets out of order", join(header(w, 0, 0), uv(2), bucketBytes(e, 1, 0, 3, 1), bucketBytes(e, 1, 0, 3, 1)), "after bucket"},
		{"buckets too far apart", join(header(w, 0, 0), uv(2), bucketBytes(e, 1, 0, 3, 1), bucketBytes(e+Buckets, 1, 0, 3, 1)), "apart"},
		{"too many bins", join(header(w, 0, 0), uv(1), binary.AppendVarint(nil, e), uv(1), uv(0), uv(Bins+1)), "65 bins"},
	}
	for _, tt := range tests {
		c, err := decode(tt.buf)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: decode = %v, %v; want an error with %q", tt.name, c, err, tt.want)
		}
	}
}

// TestDecodeOtherWidth: a state written with another bucket width keeps its
// times and drops its buckets.
func TestDecodeOtherWidth(t *testing.T) {
	t.Parallel()
	buf := join(header(60, 7, 5), uv(1), bucketBytes(123, 1, 0, 3, 1))
	c, err := decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	if c.failingSince != 7 || c.lastSuccess != 5 || !equalState(c, &conn{failingSince: 7, lastSuccess: 5, buckets: newConn().buckets}) {
		t.Errorf("decoded %+v, want the times only", c)
	}
}

// TestConnSize keeps a connector's state within the memory the package doc
// states.
func TestConnSize(t *testing.T) {
	t.Parallel()
	if n := unsafe.Sizeof(conn{}); n > 5376 {
		t.Errorf("a connector's state is %d bytes; the package doc says it fits Go's 5376-byte size class", n)
	}
	if n := unsafe.Sizeof(shard{}); n != 64 {
		t.Errorf("a shard is %d bytes, want a 64-byte cache line", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sample(f).appendState(nil))
	f.Add(newConn().appendState(nil))
	f.Add(header(600, 1, 2))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Add(join(header(600, 0, 0), uv(1), bucketBytes(epochOf(t0), 1, 0, 3, 1)))
	f.Fuzz(func(t *testing.T, buf []byte) {
		c, err := decode(buf)
		if err != nil {
			return
		}
		again, err := decode(c.appendState(nil))
		if err != nil {
			t.Fatalf("a decoded state does not decode again: %v", err)
		}
		if !equalState(c, again) {
			t.Fatal("a decoded state changes through an encoding")
		}
		tr, _ := New(Config{})
		tr.shard("c").m["c"] = c
		m := tr.metrics("c", t0)
		if m.SuccessCount < 0 || m.ErrorCount < 0 || m.Latency99p < 0 {
			t.Fatalf("metrics of a decoded state: %+v", m)
		}
	})
}
