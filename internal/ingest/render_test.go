package ingest

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"dcon"
)

// touchExample is the device and event of the contract's example body (section 2).
func touchExample() (*dcon.Event, *dcon.Device) {
	ts := time.Date(2022, 2, 10, 12, 42, 13, 313949000, time.UTC)
	dev := &dcon.Device{
		ProjectID: "c14u9p094l47cdv1o3pg",
		ID:        "emuc17m6d7lq0bgk44smcqg",
		Type:      dcon.DeviceTouch,
		Labels:    map[string]string{"name": "touch", "virtual-sensor": "", "room": "b12"},
	}
	ev := &dcon.Event{
		ID:         "c82gg9catj3vmh4248og",
		TargetName: dev.Name(),
		Type:       dcon.EventTouch,
		Data:       []byte(`{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}}`),
		Timestamp:  ts,
	}
	return ev, dev
}

func TestAppendBodyContractExample(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("testdata/touch-body.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, dev := touchExample()
	got := AppendBody(nil, ev.AppendJSON(nil), dev, []string{"name"})
	if !bytes.Equal(got, want) {
		t.Errorf("body differs from the contract's example\n got: %s\nwant: %s", got, want)
	}
}

func TestAppendBodyLabels(t *testing.T) {
	t.Parallel()
	ev, dev := touchExample()
	dev.Labels["quote\"d"] = "line\nbreak\u2028\x01"
	dev.Labels["bad-utf8"] = "a\xffb"
	tests := []struct {
		name string
		keys []string
		want string
	}{
		{"none chosen", nil, `{}`},
		{"chosen but absent on the device", []string{"floor"}, `{}`},
		{"one", []string{"room"}, `{"room":"b12"}`},
		{"sorted, each once", []string{"room", "name", "room", "absent"}, `{"name":"touch","room":"b12"}`},
		{"empty value", []string{"virtual-sensor"}, `{"virtual-sensor":""}`},
		{"escaped", []string{"quote\"d"}, `{"quote\"d":"line\nbreak\u2028\u0001"}`},
		{"invalid UTF-8 replaced", []string{"bad-utf8"}, `{"bad-utf8":"a\ufffdb"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := AppendBody(nil, ev.AppendJSON(nil), dev, tt.keys)
			var got struct {
				Labels   json.RawMessage `json:"labels"`
				Metadata map[string]string
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, body)
			}
			if string(got.Labels) != tt.want {
				t.Errorf("labels = %s, want %s", got.Labels, tt.want)
			}
			if got.Metadata["deviceId"] != dev.ID || got.Metadata["deviceType"] != "touch" {
				t.Errorf("metadata = %v", got.Metadata)
			}
		})
	}
}

// TestAppendStringMatchesEncodingJSON checks the hand-written JSON string
// encoder against encoding/json on awkward input: both must decode to the same
// string.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `"\`, "\x00\x1f\x7f", "tab\there", "é日本\U0001F600", "\u2028\u2029", "\xff\xfe", "<a&b>", "\U000E0001"} {
		enc := appendString(nil, s)
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, enc, err)
		}
		var want string
		std, _ := json.Marshal(s)
		_ = json.Unmarshal(std, &want)
		if back != want {
			t.Errorf("appendString(%q) decodes to %q, encoding/json's to %q", s, back, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil {
			t.Fatalf("appendString(%q) is not JSON: %v", s, err)
		}
		std, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(std, &want)
		if back != want {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json's to %q", s, back, want)
		}
	})
}
