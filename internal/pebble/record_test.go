package pebble

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"dcon"
)

func sampleRecords() map[string]dcon.Delivery {
	return map[string]dcon.Delivery{
		"empty": {},
		"fresh": {
			ProjectID: "p1", EventType: dcon.EventTemperature, EventTime: base,
			Body: []byte(`{"event":{"eventId":"x"}}`), Due: base.Add(10 * time.Second),
		},
		"retried": {
			ProjectID: "c0ffee0000000000beef", EventType: dcon.EventLabelsChanged,
			EventTime: base.Add(-12 * time.Hour), Attempts: 1 << 20,
			LastError: "endpoint answered 503: ü", Body: bytes.Repeat([]byte{0, 1, 0xff}, 10000),
			Due: base.Add(time.Hour),
		},
		"before 1970": {
			ProjectID: "p", EventType: "someNewType", EventTime: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC),
			Due: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		},
		"extremes": {
			EventTime: time.Unix(0, math.MaxInt64), Due: time.Unix(0, math.MinInt64+1),
			Attempts: math.MaxInt32, LastError: strings.Repeat("e", 300),
		},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for name, d := range sampleRecords() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			due := nanos(d.Due)
			enc := appendRecord(nil, &d, due)
			if len(enc) != recordLen(&d, due) {
				t.Errorf("recordLen = %d, encoded %d bytes", recordLen(&d, due), len(enc))
			}
			enc = append(enc, "rest"...)
			var got dcon.Delivery
			gotDue, rest, err := decodeRecord(enc, &got)
			if err != nil {
				t.Fatalf("decodeRecord: %v", err)
			}
			if gotDue != due || string(rest) != "rest" {
				t.Errorf("due %d, rest %q; want %d, %q", gotDue, rest, due, "rest")
			}
			if rd, err := recordDue(enc); err != nil || rd != due {
				t.Errorf("recordDue = %d, %v; want %d", rd, err, due)
			}
			if got.ProjectID != d.ProjectID || got.EventType != d.EventType || !got.EventTime.Equal(d.EventTime) ||
				got.Attempts != d.Attempts || got.LastError != d.LastError || !got.Due.Equal(d.Due) ||
				!bytes.Equal(got.Body, d.Body) {
				t.Errorf("decoded %+v, want %+v", got, d)
			}
			if d.EventTime.IsZero() != got.EventTime.IsZero() {
				t.Errorf("EventTime.IsZero() = %v, want %v", got.EventTime.IsZero(), d.EventTime.IsZero())
			}
		})
	}
}

func TestRecordTruncatedOrCorrupt(t *testing.T) {
	t.Parallel()
	d := sampleRecords()["retried"]
	enc := appendRecord(nil, &d, nanos(d.Due))
	for n := 0; n < len(enc); n++ {
		var got dcon.Delivery
		if _, _, err := decodeRecord(enc[:n], &got); err == nil {
			t.Fatalf("decodeRecord of %d of %d bytes: no error", n, len(enc))
		}
		if _, err := recordDue(enc[:n]); err == nil && n < len(enc)-len(d.Body)-3 {
			t.Fatalf("recordDue of %d of %d bytes: no error", n, len(enc))
		}
	}
	tests := map[string][]byte{
		"other version":   append([]byte{2}, enc[1:]...),
		"length past end": {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"overlong varint": append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...),
	}
	bad := append([]byte{1, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x7f) // attempts > MaxInt32
	tests["too many attempts"] = append(bad, 0, 0, 0)
	for name, b := range tests {
		var got dcon.Delivery
		if _, _, err := decodeRecord(b, &got); err == nil {
			t.Errorf("%s: decodeRecord gave no error", name)
		}
	}
}

func TestDecodeRecordAllocs(t *testing.T) {
	d := sampleRecords()["fresh"]
	enc := appendRecord(nil, &d, nanos(d.Due))
	var got dcon.Delivery
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := decodeRecord(enc, &got); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 { // the project id and the body
		t.Errorf("decodeRecord: %v allocations, want at most 2", allocs)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	k := appendDKey(nil, -5, "c1", "e1")
	due, mk, ok := parseDKey(nil, k)
	if !ok || due != -5 || string(mk) != "q/m/c1/e1" {
		t.Errorf("parseDKey(%q) = %d, %q, %v", k, due, mk, ok)
	}
	if len(k) != dKeyLen("c1", "e1") {
		t.Errorf("dKeyLen = %d, key is %d bytes", dKeyLen("c1", "e1"), len(k))
	}
	for _, bad := range []string{"q/d/", "q/d/1234567/c1/e1", "q/d/12345678/c1e1", "q/d/12345678x/c1e1", "q/d/12345678//e1"} {
		if _, _, ok := parseDKey(nil, []byte(bad)); ok {
			t.Errorf("parseDKey(%q) ok", bad)
		}
	}
	// Ordered times sort as numbers do.
	times := []int64{math.MinInt64, -1 << 40, -1, 0, 1, 1 << 40, math.MaxInt64}
	for i := 1; i < len(times); i++ {
		if bytes.Compare(appendOrdered(nil, times[i-1]), appendOrdered(nil, times[i])) >= 0 {
			t.Errorf("%d does not sort before %d", times[i-1], times[i])
		}
	}
	if c, e, ok := splitMKey(appendMKey(nil, "c1", "e1")); !ok || c != "c1" || e != "e1" {
		t.Errorf("splitMKey = %q, %q, %v", c, e, ok)
	}
	if got := prefixEnd([]byte("q/m/c1/")); string(got) != "q/m/c10" {
		t.Errorf("prefixEnd = %q", got)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, d := range sampleRecords() {
		f.Add(appendRecord(nil, &d, nanos(d.Due)))
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var d dcon.Delivery
		due, rest, err := decodeRecord(b, &d)
		rdue, rerr := recordDue(b)
		if err != nil {
			return
		}
		if rerr != nil || rdue != due {
			t.Fatalf("recordDue = %d, %v; decodeRecord's due %d", rdue, rerr, due)
		}
		// What decodes re-encodes to a record that decodes the same.
		enc := appendRecord(nil, &d, due)
		if len(enc) > len(b)-len(rest) {
			t.Fatalf("re-encoding is longer (%d) than the input record (%d)", len(enc), len(b)-len(rest))
		}
		var again dcon.Delivery
		due2, rest2, err := decodeRecord(enc, &again)
		if err != nil || due2 != due || len(rest2) != 0 {
			t.Fatalf("re-decode: due %d, rest %d, %v", due2, len(rest2), err)
		}
		if again.ProjectID != d.ProjectID || again.EventType != d.EventType || !again.EventTime.Equal(d.EventTime) ||
			again.Attempts != d.Attempts || again.LastError != d.LastError || !bytes.Equal(again.Body, d.Body) {
			t.Fatalf("re-decoded %+v, want %+v", again, d)
		}
	})
}
