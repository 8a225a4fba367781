package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildDcon builds the dcon binary into a temporary directory.
func buildDcon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dcon")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running dcon binary.
type process struct {
	cmd  *exec.Cmd
	base string // 127.0.0.1:port
	done chan error
}

// startDcon starts `dcon serve` on a free loopback port and waits until it
// listens.
func startDcon(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--dev", "--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	lines := bufio.NewScanner(stdout)
	addr := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
				addr <- strings.TrimPrefix(strings.Fields(rest)[0], "http://")
			}
		}
		close(addr)
		p.done <- cmd.Wait()
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("dcon exited before listening: %v", <-p.done)
		}
		p.base = a
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("dcon did not start listening within 30s")
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// TestCrashLosesNothingAcknowledged runs the real binary, publishes events
// continuously while the receiver fails a third of the attempts, kills the
// process with SIGKILL at random moments, restarts it on the same data
// directory, and checks that every event whose publish got a 200 arrives at
// least once.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the real binary")
	}
	t.Parallel()
	bin := buildDcon(t)
	rc := newTestReceiver(t)
	rc.setAnswer(func(r received) int {
		// Fail about a third of the attempts, differently on each attempt.
		h := fnv.New32a()
		h.Write(r.Body)
		fmt.Fprint(h, time.Now().UnixNano())
		if h.Sum32()%3 == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	data := t.TempDir()
	args := []string{"--data", data, "--ca-file", rc.caFile(t), "--retry-initial", "50ms", "--retry-max", "500ms", "--log-level", "warn"}

	p := startDcon(t, bin, args...)
	var base atomic.Pointer[string]
	base.Store(&p.base)
	api := &apiClient{t: t, base: "http://" + p.base, http: &http.Client{Timeout: 10 * time.Second}}
	api.project = createProject(api)
	createConnector(api, map[string]any{"type": "HTTP_PUSH", "httpConfig": map[string]any{"url": rc.URL, "signatureSecret": "s"}})
	dev := createDevice(api, "temperature", map[string]string{"name": "crash"})

	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		attempts atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				attempts.Add(1)
				body := fmt.Sprintf(`{"temperature":{"value":%d}}`, i%50)
				resp, err := client.Post("http://"+*base.Load()+"/v2/projects/"+api.project+"/devices/"+dev.id()+":publish",
					"application/json", strings.NewReader(body))
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the server is down; it comes back
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					continue
				}
				var ev struct {
					EventID string `json:"eventId"`
				}
				if err := json.Unmarshal(raw, &ev); err != nil || ev.EventID == "" {
					t.Errorf("publish answered 200 with %s", raw)
					continue
				}
				mu.Lock()
				acked[ev.EventID] = true
				mu.Unlock()
			}
		}()
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }

	const crashes = 3
	for i := range crashes {
		target := ackedCount() + 150 + rand.IntN(150)
		deadline := time.Now().Add(60 * time.Second)
		for ackedCount() < target {
			if time.Now().After(deadline) {
				t.Fatalf("crash %d: only %d events acknowledged in 60s", i, ackedCount())
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.kill(t)
		restart := time.Now()
		p = startDcon(t, bin, args...)
		base.Store(&p.base)
		t.Logf("crash %d: killed with %d acknowledged; restarted in %v", i+1, ackedCount(), time.Since(restart).Round(time.Millisecond))
	}
	time.Sleep(200 * time.Millisecond) // a little more traffic after the last restart
	close(stop)
	wg.Wait()

	mu.Lock()
	want := acked
	mu.Unlock()
	rc.waitFor(t, "every acknowledged event", 60*time.Second, func(got []received) bool {
		delivered := map[string]bool{}
		for _, r := range got {
			if r.Status == http.StatusOK {
				delivered[eventID(r.Body)] = true
			}
		}
		for id := range want {
			if !delivered[id] {
				return false
			}
		}
		return true
	})

	// Delivered = answered 2xx. A duplicate is a second 2xx for the same event.
	delivered := map[string]int{}
	for _, r := range rc.requests() {
		if r.Status == http.StatusOK {
			delivered[eventID(r.Body)]++
		}
	}
	lost, duplicates := 0, 0
	for id := range want {
		if delivered[id] == 0 {
			lost++
		}
	}
	for _, n := range delivered {
		duplicates += n - 1
	}
	t.Logf("publishes tried %d, acknowledged %d, lost %d, duplicates %d, attempts at the receiver %d (failed ones included)",
		attempts.Load(), len(want), lost, duplicates, len(rc.requests()))
	if lost != 0 {
		t.Fatalf("%d acknowledged events were lost", lost)
	}

	// A clean stop: SIGTERM drains and exits 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("after SIGTERM dcon exited with %v, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("dcon did not stop within 30s of SIGTERM")
	}
}
