package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchSmoke runs every scenario of `dcon bench` briefly against the real
// binary and checks that nothing is lost and that the JSON has its fields. It
// asserts no performance figure.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the bench")
	}
	t.Parallel()
	bin := buildDcon(t)
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--server-bin", bin,
		"--scenario", "throughput,latency,fanout,connectors,isolation,backlog",
		"--duration", "2s", "--events", "2000", "--connectors-scale", "small", "--concurrency", "16",
		"--server-flags", "--retry-initial 50ms --retry-max 500ms --timeout 2s",
		"--drain-deadline", "60s", "--json", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("dcon bench exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("\n%s", stdout.String())

	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Machine   map[string]any   `json:"machine"`
		Scenarios []map[string]any `json:"scenarios"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("the JSON does not decode: %v\n%s", err, raw)
	}
	for _, key := range []string{"cpus", "gomaxprocs", "go_version", "kernel", "cpu_model"} {
		if _, ok := rep.Machine[key]; !ok {
			t.Errorf("machine lacks %q", key)
		}
	}
	names := map[string]map[string]any{}
	for _, s := range rep.Scenarios {
		name, _ := s["name"].(string)
		names[name] = s
		if s["lost"] != 0.0 {
			t.Errorf("%s lost %v events", name, s["lost"])
		}
		for _, key := range []string{"raw_ceiling_per_s", "delivered_per_s", "ratio", "latency_ms", "duplicates", "peak_rss_bytes"} {
			if _, ok := s[key]; !ok {
				t.Errorf("%s lacks %q", name, key)
			}
		}
		if lat, ok := s["latency_ms"].(map[string]any); ok {
			for _, q := range []string{"p50", "p90", "p99", "p999", "max"} {
				if _, ok := lat[q]; !ok {
					t.Errorf("%s latency_ms lacks %q", name, q)
				}
			}
		}
	}
	for _, want := range []string{"throughput/single", "throughput/bulk", "throughput/bulk+es256", "latency", "fanout", "connectors", "isolation", "backlog"} {
		if names[want] == nil {
			t.Errorf("no result for %s", want)
		}
	}
	if b := names["backlog"]; b != nil {
		for _, key := range []string{"disk_bytes", "drain_per_s", "healthy_latency_ms", "healthy_latency_raw_load_ms", "first_delivery_after_up_s"} {
			if _, ok := b[key]; !ok {
				t.Errorf("backlog lacks %q", key)
			}
		}
	}
	if i := names["isolation"]; i != nil {
		if _, ok := i["baseline_delivered_per_s"]; !ok {
			t.Error("isolation lacks baseline_delivered_per_s")
		}
	}
	if !strings.Contains(stdout.String(), "scenario") {
		t.Errorf("no table on stdout:\n%s", stdout.String())
	}
}

// TestBenchNATSSmoke runs `dcon bench --nats` briefly: the throughput,
// latency and isolation scenarios on Pebble, on one in-process NATS server
// and on a cluster of three. It checks that every backend has its rows and
// that nothing is lost; it asserts no performance figure.
func TestBenchNATSSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the bench on NATS")
	}
	t.Parallel()
	bin := buildDcon(t)
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--server-bin", bin, "--nats",
		"--scenario", "throughput,latency,isolation", "--duration", "600ms", "--concurrency", "8", "--rate", "200",
		// Fewer partitions: a fresh R3 queue makes one consumer per partition,
		// seconds for the default 32.
		"--server-flags", "--retry-initial 50ms --retry-max 500ms --timeout 2s --nats-partitions 4",
		"--drain-deadline", "60s", "--json", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("dcon bench --nats exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("\n%s", stdout.String())

	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Config    struct{ Backends []string } `json:"config"`
		Scenarios []struct {
			Name      string   `json:"name"`
			Backend   string   `json:"backend"`
			Lost      *int     `json:"lost"`
			Delivered *float64 `json:"delivered_per_s"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("the JSON does not decode: %v\n%s", err, raw)
	}
	if got := strings.Join(rep.Config.Backends, ","); got != "pebble,nats,nats×3" {
		t.Errorf("config.backends = %q, want pebble,nats,nats×3", got)
	}
	rows := map[string]bool{}
	for _, s := range rep.Scenarios {
		rows[s.Name+" ["+s.Backend+"]"] = true
		if s.Lost == nil || *s.Lost != 0 {
			t.Errorf("%s [%s] lost %v events", s.Name, s.Backend, s.Lost)
		}
		if s.Delivered == nil || *s.Delivered <= 0 {
			t.Errorf("%s [%s] delivered nothing", s.Name, s.Backend)
		}
	}
	for _, name := range []string{"throughput/single", "throughput/bulk", "throughput/bulk+es256", "latency", "isolation"} {
		for _, backend := range []string{"pebble", "nats", "nats×3"} {
			if !rows[name+" ["+backend+"]"] {
				t.Errorf("no result for %s on %s", name, backend)
			}
		}
	}
	if !strings.Contains(stdout.String(), "nats×3") {
		t.Errorf("the table has no nats×3 rows:\n%s", stdout.String())
	}
}
