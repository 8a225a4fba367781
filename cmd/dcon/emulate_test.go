package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"dcon"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want float64 // events per second; 0 for an error
	}{
		{"10/s", 10},
		{"10", 10},
		{"600/m", 10},
		{"36000/h", 10},
		{"1/500ms", 2},
		{"0.5/s", 0.5},
		{"", 0},
		{"fast", 0},
		{"0/s", 0},
		{"-1/s", 0},
		{"10/fortnight", 0},
		{"1/0s", 0},
		{"1000000/s", 0},
	}
	for _, tt := range tests {
		got, err := parseRate(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("parseRate(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestEmulatedEventsAreValid checks that every device type's emulated events
// are of a type the device sends and pass dcon's own validation.
func TestEmulatedEventsAreValid(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, typ := range dcon.DeviceTypes {
		d := newEmuDevice("emu", typ)
		seen := map[string]int{}
		for range 500 {
			eventType, data := d.next(rng)
			seen[eventType]++
			if !typ.Emits(dcon.EventType(eventType)) {
				t.Fatalf("a %s device emulated a %s event", typ, eventType)
			}
			raw, err := json.Marshal(data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dcon.ParseEventData(dcon.EventType(eventType), raw, now); err != nil {
				t.Fatalf("%s device, %s event %s: %v", typ, eventType, raw, err)
			}
		}
		if typ != dcon.DeviceTouch && typ != dcon.DeviceCloudConnector && seen[emuMainEvent(typ)] < 100 {
			t.Errorf("a %s device sent %v: want mostly its own kind", typ, seen)
		}
	}
}

// emuMainEvent is the main event type of a sensor type.
func emuMainEvent(t dcon.DeviceType) string {
	switch t {
	case dcon.DeviceProximity:
		return "objectPresent"
	case dcon.DeviceProximityCounter:
		return "objectPresentCount"
	case dcon.DeviceTouchCounter:
		return "touchCount"
	case dcon.DeviceWaterDetector:
		return "waterPresent"
	case dcon.DeviceCO2:
		return "co2"
	}
	return string(t)
}

// TestEmulatedTemperatureDrifts checks that temperatures stay near 21 °C and
// move in small steps.
func TestEmulatedTemperatureDrifts(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	d := newEmuDevice("emu", dcon.DeviceTemperature)
	prev := 21.0
	for range 2000 {
		eventType, data := d.next(rng)
		if eventType != "temperature" {
			continue
		}
		v := data["value"].(float64)
		if v < 17 || v > 25 || v-prev > 1.5 || prev-v > 1.5 {
			t.Fatalf("temperature %v after %v: want a small step near 21", v, prev)
		}
		prev = v
	}
}

// TestProgressOffTerminal checks that, when stderr is not a terminal, the
// count is written as whole lines, one per interval.
func TestProgressOffTerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf, 5*time.Second)
	p.show(emuSummary{published: 10, elapsed: time.Second}, false)
	p.show(emuSummary{published: 50, failed: 1, elapsed: 5 * time.Second}, false)
	p.show(emuSummary{published: 60, failed: 1, elapsed: 6 * time.Second}, false)
	p.note("publish for device %s: %s", "emu1", "boom")
	p.show(emuSummary{published: 100, failed: 1, elapsed: 10 * time.Second}, false)
	p.show(emuSummary{published: 101, failed: 1, elapsed: 10100 * time.Millisecond}, true)
	want := "published 50  failed 1  rate 10.0/s\npublish for device emu1: boom\npublished 100  failed 1  rate 10.0/s\n"
	if buf.String() != want {
		t.Errorf("progress wrote %q, want %q", buf.String(), want)
	}
}
