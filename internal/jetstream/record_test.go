package jetstream

import (
	"bytes"
	"testing"
	"time"

	"dcon"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	tests := []struct {
		name   string
		d      dcon.Delivery
		expire time.Time
	}{
		{"full", dcon.Delivery{ConnectorID: "c1", ProjectID: "p1", EventID: "e1", EventType: dcon.EventTouch,
			EventTime: at, Body: []byte{0, 1, 255}, Attempts: 7, LastError: "503 ü\nnext", Due: at.Add(time.Second)}, at.Add(time.Hour)},
		{"zero times and empty body", dcon.Delivery{ConnectorID: "c1", EventID: "e2"}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, expire, err := decodeRecord(encodeRecord(&tt.d, tt.expire))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !expire.Equal(tt.expire) || !got.EventTime.Equal(tt.d.EventTime) || !got.Due.Equal(tt.d.Due) ||
				got.EventTime.IsZero() != tt.d.EventTime.IsZero() || !bytes.Equal(got.Body, tt.d.Body) {
				t.Errorf("times or body differ: got %+v expire %v", got, expire)
			}
			got.EventTime, got.Due, got.Body = tt.d.EventTime, tt.d.Due, tt.d.Body
			if got.ConnectorID != tt.d.ConnectorID || got.ProjectID != tt.d.ProjectID || got.EventID != tt.d.EventID ||
				got.EventType != tt.d.EventType || got.Attempts != tt.d.Attempts || got.LastError != tt.d.LastError {
				t.Errorf("got %+v, want %+v", got, tt.d)
			}
		})
	}
	for _, bad := range [][]byte{nil, {9}, {recordVersion, 200}} {
		if _, _, err := decodeRecord(bad); err == nil {
			t.Errorf("decodeRecord(%v) accepted a corrupt record", bad)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"no URL", Config{}, true},
		{"defaults", Config{URLs: []string{"nats://127.0.0.1:4222"}}, false},
		{"bad prefix", Config{URLs: []string{"x"}, Prefix: "a.b"}, true},
		{"two kinds of credentials", Config{URLs: []string{"x"}, User: "u", Token: "t"}, true},
		{"negative partitions", Config{URLs: []string{"x"}, Partitions: -1}, true},
		{"six replicas", Config{URLs: []string{"x"}, Replicas: 6}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tt.cfg.withDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("withDefaults: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (c.Partitions != DefaultPartitions || c.Replicas != 1 || c.Prefix != DefaultPrefix ||
				c.AckWait != DefaultAckWait || c.MaxAckPending != DefaultMaxAckPending || c.MaxAge != DefaultMaxAge) {
				t.Errorf("defaults not applied: %+v", c)
			}
		})
	}
}
