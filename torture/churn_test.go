package torture

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// version is one state of a churning connector, from the moment the change
// that made it was sent until the change that ended it was answered.
type version struct {
	from, until time.Time // until is zero while it lasts
	active      bool
	events      []string
}

// TestConfigChurn publishes temperature, touch and batteryStatus events while
// connectors are created with a filter, re-filtered, disabled, re-enabled and
// deleted, over and over. A connector that takes every event and never
// changes must get every acknowledged event; a churning one must never get an
// event that no version of it, live while the event was published, wanted.
// dcon must not panic nor grow its sockets, fds or memory.
func TestConfigChurn(t *testing.T) {
	lv := suiteLevel(t)
	t.Parallel()
	bin := buildDcon(t)
	rc := newReceiver(t, nil)
	srv := newServer(t, bin, "--data", t.TempDir(), "--ca-file", rc.caFile(t),
		"--retry-initial", "100ms", "--retry-max", "1s", "--log-level", "warn")
	srv.start()
	c := newClient(t, srv)
	c.connector(rc.tagURL("all"))
	dev := c.device("temperature")
	types := []string{"temperature", "touch", "batteryStatus"}
	data := map[string]func(int) any{
		"temperature":   func(i int) any { return map[string]any{"value": i % 40} },
		"touch":         func(int) any { return map[string]any{} },
		"batteryStatus": func(i int) any { return map[string]any{"percentage": i % 100} },
	}
	before, _ := procUsage(srv.pid())

	l := newLedger()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				typ := types[i%len(types)]
				c.publishBatch(l, dev, typ, 20, data[typ])
			}
		}()
	}

	var (
		mu      sync.Mutex
		history = map[string][]version{} // tag → its versions
	)
	record := func(tag string, sent, answered time.Time, v version) {
		mu.Lock()
		defer mu.Unlock()
		h := history[tag]
		if n := len(h); n > 0 {
			h[n-1].until = answered
		}
		v.from = sent
		history[tag] = append(h, v)
	}
	filter := func() []string {
		f := slices.Clone(types)
		rand.Shuffle(len(f), func(i, j int) { f[i], f[j] = f[j], f[i] })
		return f[:1+rand.IntN(2)]
	}
	cycles := pick(lv, 3, 25)
	var cwg sync.WaitGroup
	for w := range 3 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for cycle := range cycles {
				tag := fmt.Sprintf("churn-%d-%d", w, cycle)
				ev := filter()
				sent := time.Now()
				id := c.connector(rc.tagURL(tag), ev...)
				record(tag, sent, time.Now(), version{active: true, events: ev})
				path := "/v2/projects/" + c.project + "/dataconnectors/" + id
				for _, change := range []struct {
					method string
					body   map[string]any
					v      version
				}{
					{"PATCH", nil, version{active: true}},
					{"PATCH", map[string]any{"status": "USER_DISABLED"}, version{}},
					{"PATCH", map[string]any{"status": "ACTIVE"}, version{active: true}},
					{"PATCH", nil, version{active: true}},
					{"DELETE", nil, version{}},
				} {
					time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond) // events flow meanwhile
					if change.method == "PATCH" && change.body == nil {
						ev = filter()
						change.body = map[string]any{"events": ev}
					}
					if change.v.active {
						change.v.events = ev
					}
					sent := time.Now()
					status, raw, err := c.call(change.method, path, change.body, nil)
					if err != nil || status != http.StatusOK {
						t.Errorf("%s %s %v: %d %s %v", change.method, path, change.body, status, raw, err)
						return
					}
					record(tag, sent, time.Now(), change.v)
				}
			}
		}()
	}
	cwg.Wait()
	close(done)
	wg.Wait()

	acked := l.snapshot()
	all := rc.waitDelivered(t, "all", acked, 2*time.Minute)
	t.Logf("the unchanging connector: %s", all)
	// Let what was in flight for the churning connectors arrive, then check
	// every event they got against their history.
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	checked, wrong := 0, 0
	for tag, h := range history {
		for id, d := range rc.deliveries(tag) {
			checked++
			p, ok := acked[id]
			if !ok {
				continue // its publish answer was lost; it may go anywhere it was routed
			}
			if !wanted(h, d.typ, p) {
				wrong++
				if wrong <= 5 {
					t.Errorf("%s got %s event %s published %v–%v, which no live version of it wanted: %+v",
						tag, d.typ, id, p.Sent.Format("15:04:05.000"), p.Acked.Format("15:04:05.000"), h)
				}
			}
		}
	}
	t.Logf("config churn: %d connectors created and deleted, %d deliveries to them checked against their filters, %d wrong",
		len(history), checked, wrong)
	if exited, err := srv.exited(); exited {
		t.Fatalf("dcon exited during churn: %v", err)
	}
	if before.fds > 0 {
		c.http.CloseIdleConnections()
		checkSockets(t, srv.pid(), before, rc.URL)
		after := checkNoLeak(t, srv.pid(), before, 512+8, 128) // memory; fds and sockets are checkSockets's
		t.Logf("dcon before churn %s, after %s", before, after)
	}
	report(t, figures{
		scenario:   "config churn",
		published:  fmt.Sprint(len(acked)),
		lost:       fmt.Sprint(all.lost),
		duplicates: fmt.Sprint(all.duplicates),
		time:       fmt.Sprintf("%d connectors churned; %d deliveries checked, %d against a filter", len(history), checked, wrong),
	})
}

// checkSockets checks that every socket dcon opened during a scenario is
// closed, except its idle keep-alive connections to the endpoint at
// endpointURL: the webhook client keeps up to 512 per endpoint for 90
// seconds, as many as were in flight at once, so their number says how busy
// the endpoint was, not that anything leaked. Every other socket (the API's,
// dead endpoints', anything leaked), and every other file, must be back to
// where it was, give or take a few.
func checkSockets(t *testing.T, pid int, before usage, endpointURL string) {
	t.Helper()
	u, err := url.Parse(endpointURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	const slack = 8
	var after usage
	var endpoint int
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		after, ok = procUsage(pid)
		if !ok {
			return
		}
		if endpoint, ok = socketsTo(pid, port); !ok {
			return
		}
		if after.sockets-endpoint <= before.sockets+slack && after.fds-endpoint <= before.fds+slack && endpoint <= 512 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("sockets: before %s; after %s, of which %d connections to the endpoint", before, after, endpoint)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sockets: before %d; after %d, of which %d idle keep-alive connections to the endpoint", before.sockets, after.sockets, endpoint)
}

// socketsTo counts a process's TCP sockets connected to port on this machine,
// from /proc; ok is false where /proc does not tell.
func socketsTo(pid, port int) (n int, ok bool) {
	inodes := map[string]bool{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if inode, found := strings.CutPrefix(l, "socket:["); err == nil && found {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	want := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"tcp", "tcp6"} {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		ok = true
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) > 9 && strings.HasSuffix(f[2], want) && inodes[f[9]] {
				n++
			}
		}
	}
	return n, ok
}

// wanted reports whether a version of a connector that was live at some
// moment of the publish wanted events of type typ.
func wanted(h []version, typ string, p published) bool {
	for _, v := range h {
		if !v.active || !(len(v.events) == 0 || slices.Contains(v.events, typ)) {
			continue
		}
		if v.from.After(p.Acked) || (!v.until.IsZero() && v.until.Before(p.Sent)) {
			continue
		}
		return true
	}
	return false
}
