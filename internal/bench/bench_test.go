package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/xid"
)

func TestParseDelivery(t *testing.T) {
	t.Parallel()
	id := xid.New()
	tests := []struct {
		name    string
		body    string
		stamp   int64
		wantErr bool
	}{
		{"delivery body", string(rawBody(1234567)), 1234567, false},
		{"dcon's shape", `{"event":{"eventId":"` + id.String() + `","data":{"temperature":{"value":42,"samples":[{"value":42}]}}}}`, 42, false},
		{"no event id", `{"event":{"data":{"temperature":{"value":42}}}}`, 0, true},
		{"bad event id", `{"event":{"eventId":"!!!!!!!!!!!!!!!!!!!!","data":{"temperature":{"value":42}}}}`, 0, true},
		{"no value", `{"event":{"eventId":"` + id.String() + `","data":{"touch":{}}}}`, 0, true},
		{"value not a number", `{"event":{"eventId":"` + id.String() + `","data":{"temperature":{"value":"x"}}}}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stamp, err := parseDelivery([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && stamp != tt.stamp {
				t.Errorf("stamp = %d, want %d", stamp, tt.stamp)
			}
		})
	}
}

func TestLatencyOf(t *testing.T) {
	t.Parallel()
	if latencyOf(nil) != nil {
		t.Error("latencyOf(nil) is not nil")
	}
	var as []arrival
	for i := 1000; i >= 1; i-- { // 1..1000 ms, unsorted
		as = append(as, arrival{at: int64(i), latency: int64(i) * 1000})
	}
	got := *latencyOf(as)
	want := Latency{P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, N: 1000}
	if got != want {
		t.Errorf("latencyOf = %+v, want %+v", got, want)
	}
}

func TestSinkCheckCountsLostAndDuplicates(t *testing.T) {
	t.Parallel()
	s := newSink()
	a, b, c, stray := xid.New(), xid.New(), xid.New(), xid.New()
	s.record(a, 10, 1, true)
	s.record(b, 20, 2, true)
	s.record(b, 30, 3, true)
	s.record(b, 40, 4, false)
	s.record(stray, 50, 5, true) // not acknowledged: neither lost nor a duplicate
	lost, dups := s.Check([]xid.ID{a, b, c})
	if lost != 1 || dups != 2 {
		t.Errorf("Check = lost %d, duplicates %d; want 1, 2", lost, dups)
	}
	if s.Unique() != 3 || s.unsigned.Load() != 1 {
		t.Errorf("unique %d, unsigned %d; want 3, 1", s.Unique(), s.unsigned.Load())
	}
	if as := s.Arrivals(20, 50); len(as) != 1 || as[0].latency != 2 {
		t.Errorf("Arrivals(20, 50) = %v, want the first arrival of b only", as)
	}
}

func TestReceiverModesAndDowntime(t *testing.T) {
	t.Parallel()
	clock := NewClock()
	sink := newSink()
	rc, err := NewReceiver(clock, map[int]*Sink{7: sink}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	url := rc.URL(7)
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	post := func() error { return postRaw(context.Background(), hc, url, rawBody(clock.Now())) }

	if err := post(); err != nil {
		t.Fatalf("healthy sink: %v", err)
	}
	if sink.Unique() != 1 {
		t.Fatalf("healthy sink counted %d deliveries, want 1", sink.Unique())
	}
	sink.SetMode(modeFail)
	if err := post(); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("failing sink: err = %v, want a 500", err)
	}
	sink.SetMode(modeHang)
	if err := post(); err == nil {
		t.Error("hanging sink answered")
	}
	sink.SetMode(modeOK)
	rc.Down()
	if err := post(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down receiver: err = %v, want connection refused", err)
	}
	if err := rc.Up(); err != nil {
		t.Fatal(err)
	}
	if rc.URL(7) != url {
		t.Errorf("URL after Up = %s, want %s", rc.URL(7), url)
	}
	if err := post(); err != nil {
		t.Errorf("receiver back up: %v", err)
	}
	if sink.Unique() != 2 {
		t.Errorf("sink counted %d deliveries, want 2", sink.Unique())
	}
}

func TestProcStatusReadsThisProcess(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	for _, field := range []string{"VmHWM", "VmRSS"} {
		n, err := procStatus(os.Getpid(), field)
		if err != nil || n <= 0 {
			t.Errorf("procStatus(%s) = %d, %v; want a positive size", field, n, err)
		}
	}
	if _, err := procStatus(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("procStatus of an unknown field did not fail")
	}
}

func TestDirSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/a", make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir+"/sub", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/sub/b", make([]byte, 24), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := dirSize(dir); err != nil || n != 1024 {
		t.Errorf("dirSize = %d, %v; want 1024", n, err)
	}
}

func TestConfigRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no server and no binary", Config{}},
		{"unknown scenario", Config{ServerBin: "dcon", Scenarios: []string{"speed"}}},
		{"tls with a server of its own", Config{Server: "http://127.0.0.1:1", TLS: true}},
		{"negative events", Config{ServerBin: "dcon", Events: -1}},
		{"nats with a running server", Config{Server: "http://127.0.0.1:1", NATS: true}},
		{"nats with a scenario it does not run", Config{ServerBin: "dcon", NATS: true, Scenarios: []string{"backlog"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Run(context.Background(), tt.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("Run = %v, want a *ConfigError", err)
			}
		})
	}
}

func TestReportLeavesOutWhatDoesNotApply(t *testing.T) {
	t.Parallel()
	rep := Report{Machine: ThisMachine(), Scenarios: []Result{
		{Name: "latency", RawCeilingPerS: ptr(1000.0), DeliveredPerS: ptr(999.0), Ratio: ptr(0.999),
			Latency: &Latency{P50: 1, P90: 2, P99: 3, P999: 4, Max: 5, N: 10}},
	}}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Machine   map[string]any   `json:"machine"`
		Scenarios []map[string]any `json:"scenarios"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	s := got.Scenarios[0]
	for _, key := range []string{"name", "raw_ceiling_per_s", "delivered_per_s", "ratio", "latency_ms", "lost", "duplicates"} {
		if _, ok := s[key]; !ok {
			t.Errorf("the scenario lacks %q: %s", key, raw)
		}
	}
	for _, key := range []string{"peak_rss_bytes", "drain_per_s", "baseline_latency_ms"} {
		if _, ok := s[key]; ok {
			t.Errorf("the scenario has %q, which does not apply: %s", key, raw)
		}
	}
	for _, key := range []string{"cpus", "gomaxprocs", "go_version"} {
		if _, ok := got.Machine[key]; !ok {
			t.Errorf("the machine lacks %q", key)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "latency") || !strings.Contains(table.String(), "0.999") {
		t.Errorf("the table lacks the scenario:\n%s", table.String())
	}
}

func TestTableSetsBackendsBesideEachOther(t *testing.T) {
	t.Parallel()
	res := func(name, backend string, lost int) Result {
		return Result{Name: name, Backend: backend, DeliveredPerS: ptr(100.0), Lost: lost, Published: 1}
	}
	rep := Report{Machine: ThisMachine(), Scenarios: []Result{
		res("throughput/single", "pebble", 0), res("throughput/bulk", "pebble", 0),
		res("throughput/single", "nats", 1), res("throughput/bulk", "nats", 0),
		res("throughput/single", "nats×3", 0), res("throughput/bulk", "nats×3", 0),
		res("latency", "pebble", 0), res("latency", "nats", 0), res("latency", "nats×3", 0),
	}}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for line := range strings.SplitSeq(table.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] != "machine:" && !strings.HasPrefix(f[1], "[") {
			rows = append(rows, f[0]+" "+f[1])
		}
	}
	want := []string{"scenario backend",
		"throughput/single pebble", "throughput/single nats", "throughput/single nats×3",
		"throughput/bulk pebble", "throughput/bulk nats", "throughput/bulk nats×3",
		"latency pebble", "latency nats", "latency nats×3"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("rows:\n%s\nwant:\n%s\ntable:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"), table.String())
	}
	if !strings.Contains(table.String(), "  throughput/single [nats]: published 1") {
		t.Errorf("the extras do not name the backend:\n%s", table.String())
	}

	one := Report{Scenarios: []Result{res("latency", "pebble", 0)}}
	table.Reset()
	if err := one.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(table.String(), "backend") {
		t.Errorf("one backend, yet a backend column:\n%s", table.String())
	}
}

func TestStartNATS(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d servers", n), func(t *testing.T) {
			t.Parallel()
			ns, err := startNATS(context.Background(), t.TempDir(), n)
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Stop()
			urls := ns.URLs()
			if len(urls) != n {
				t.Fatalf("URLs = %v, want %d", urls, n)
			}
			for _, u := range urls {
				host, ok := strings.CutPrefix(u, "nats://")
				if !ok || !strings.HasPrefix(host, "127.0.0.1:") {
					t.Fatalf("URL %q is not a loopback nats:// URL", u)
				}
				c, err := net.DialTimeout("tcp", host, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				line, err := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if err != nil || !strings.HasPrefix(line, "INFO ") || !strings.Contains(line, `"jetstream":true`) {
					t.Errorf("%s greets with %q, %v; want INFO with JetStream", u, line, err)
				}
			}
			if !ns.clusterReady() {
				t.Error("not clusterReady after startNATS")
			}
			ns.Stop()
			if _, err := net.DialTimeout("tcp", strings.TrimPrefix(urls[0], "nats://"), time.Second); err == nil {
				t.Errorf("%s still accepts connections after Stop", urls[0])
			}
		})
	}
}

func TestNATSRunsItsScenariosOnEveryBackendByDefault(t *testing.T) {
	t.Parallel()
	cfg := Config{ServerBin: "dcon", NATS: true}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Scenarios, ",") != "throughput,latency,isolation" {
		t.Errorf("scenarios = %v", cfg.Scenarios)
	}
	want := []string{"--nats", "nats://a:1,nats://b:2,nats://c:3", "--nats-replicas", "3"}
	if got := backendCluster.serveFlags([]string{"nats://a:1", "nats://b:2", "nats://c:3"}); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("serveFlags = %q, want %q", got, want)
	}
	if got := backendPebble.serveFlags(nil); got != nil {
		t.Errorf("Pebble's serveFlags = %q, want none", got)
	}
}
