package torture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// diagnoseStall captures dcon's state when deliveries did not arrive in time,
// before the test fails: every goroutine's stack (from --test-debug's
// /debug/goroutines, or else from SIGQUIT), saved to a file that outlives
// the test, with those of the delivery engine, the webhook client and the
// queue in the report; what the receiver saw of each event (every attempt and
// its answer); and each delivery's queue record and due-index entries, read
// from the data directory once the process has stopped. The process is
// stopped with SIGTERM, so that the store is closed and its unsynced writes
// (retries, leases) are on disk; if it does not exit within 30 s — a
// deadlock — SIGQUIT makes the Go runtime dump every goroutine and exit. It
// returns the report; the server is left stopped.
func diagnoseStall(t *testing.T, srv *server, rc *receiver, tag, connectorID string, ids []string) string {
	t.Helper()
	var r strings.Builder
	dump, err := srv.goroutines(true)
	if err != nil {
		fmt.Fprintf(&r, "no /debug/goroutines (%v): the dump comes from SIGQUIT if SIGTERM does not stop dcon\n", err)
	}
	own := ownGoroutines()
	hist := make([]string, len(ids)) // before stopping: the shutdown cancels attempts
	for i, id := range ids {
		hist[i] = rc.history(tag, id)
	}
	stopped := time.Now()
	quitDump, err := srv.stopOrQuit(30 * time.Second)
	fmt.Fprintf(&r, "dcon stopped at %s: %v\n", stopped.Format("15:04:05.000"), err)
	if quitDump != "" {
		r.WriteString("dcon did not exit on SIGTERM within 30 s: dumped by SIGQUIT\n")
		dump = quitDump
	}
	if dump != "" {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("dcon-%s-%d.goroutines", sanitize(t.Name()), time.Now().UnixNano()))
		if err := os.WriteFile(path, []byte(dump), 0o644); err != nil {
			fmt.Fprintf(&r, "save the goroutine dump: %v\n", err)
		}
		g := parseGoroutines(dump)
		fmt.Fprintf(&r, "goroutine dump: %d goroutines, saved in %s; those in delivery, webhook or the queue:\n", len(g), path)
		for _, s := range g {
			if strings.Contains(s, "dcon/internal/delivery.") || strings.Contains(s, "dcon/internal/webhook.") ||
				strings.Contains(s, "dcon/internal/pebble.(*DB)") {
				r.WriteString(indent(s))
			}
		}
	}
	for _, h := range hist {
		r.WriteString(h + "\n")
	}
	r.WriteString(own)
	recs, err := readQueue(srv.dataDir(), connectorID, ids)
	if err != nil {
		fmt.Fprintf(&r, "read the queue: %v\n", err)
	}
	for _, id := range ids {
		fmt.Fprintf(&r, "event %s in the queue: %s\n", id, recs[id])
	}
	return r.String()
}

// ownGoroutines describes the suite's own goroutines that serve the
// receivers (accepting, handshaking, answering): a receiver that stops
// accepting connections looks, from dcon, like an endpoint that times out.
// The whole dump is saved to a file that outlives the test.
func ownGoroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var r strings.Builder
	path := filepath.Join(os.TempDir(), fmt.Sprintf("torture-%d.goroutines", time.Now().UnixNano()))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		fmt.Fprintf(&r, "save the suite's goroutine dump: %v\n", err)
	}
	g := parseGoroutines(string(buf))
	conns := map[string]int{} // what the servers' connection goroutines do
	for _, s := range g {
		if strings.Contains(s, "net/http.(*conn).serve(") {
			conns[whatConnDoes(s)]++
		}
	}
	fmt.Fprintf(&r, "the suite's goroutines: %d, saved in %s; its servers' connections: %v; the servers' accept loops:\n", len(g), path, conns)
	for _, s := range g {
		if strings.Contains(s, "net/http.(*Server).Serve(") {
			r.WriteString(indent(s))
		}
	}
	return r.String()
}

// whatConnDoes names what a server connection's goroutine is doing: its
// state, and the first frame of the handler or of net/http above the
// runtime, the poller and the TLS and I/O machinery.
func whatConnDoes(stack string) string {
	lines := strings.Split(stack, "\n")
	state := ""
	if i, j := strings.IndexByte(lines[0], '['), strings.IndexByte(lines[0], ']'); i >= 0 && j > i {
		state = lines[0][i+1 : j]
	}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "dcon/torture.") || strings.HasPrefix(l, "net/http.") {
			return state + " " + l[:max(strings.LastIndexByte(l, '('), 0)]
		}
	}
	return state
}

// goroutines returns what --test-debug's /debug/goroutines says: the first
// line is "goroutines N"; with stacks, every goroutine's stack follows.
func (s *server) goroutines(stacks bool) (string, error) {
	if !slices.Contains(s.args, "--test-debug") {
		return "", errors.New("dcon runs without --test-debug")
	}
	path := "/debug/goroutines"
	if stacks {
		path += "?stacks=1"
	}
	// No keep-alive: a connection left open would hold a goroutine in dcon.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(s.url() + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(b), nil
}

// goroutineCount returns the number of dcon's goroutines, from --test-debug.
func (s *server) goroutineCount() (int, error) {
	out, err := s.goroutines(false)
	if err != nil {
		return 0, err
	}
	var n int
	if _, err := fmt.Sscanf(out, "goroutines %d", &n); err != nil {
		return 0, fmt.Errorf("/debug/goroutines said %q: %w", out, err)
	}
	return n, nil
}

// stopOrQuit stops the current process with SIGTERM; if it has not exited
// within timeout, it sends SIGQUIT, which makes the Go runtime write every
// goroutine's stack to stderr and exit, and returns that dump.
func (s *server) stopOrQuit(timeout time.Duration) (dump string, err error) {
	s.mu.Lock()
	p := s.cur
	s.cur = nil
	s.mu.Unlock()
	if p == nil {
		return "", errors.New("not running")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return "", p.err
	case <-time.After(timeout):
	}
	s.stderr.startCapture()
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return s.stderr.endCapture(), p.err
}

// dataDir is the --data of the server's flags.
func (s *server) dataDir() string {
	for i, a := range s.args {
		if a == "--data" && i+1 < len(s.args) {
			return s.args[i+1]
		}
	}
	return ""
}

var goroutineHead = regexp.MustCompile(`(?m)^goroutine \d+ [^\n]*\[`)

// parseGoroutines splits a Go goroutine dump into one string per goroutine.
func parseGoroutines(dump string) []string {
	idx := goroutineHead.FindAllStringIndex(dump, -1)
	out := make([]string, 0, len(idx))
	for i, at := range idx {
		end := len(dump)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, strings.TrimSpace(dump[at[0]:end]))
	}
	return out
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, name)
}

// readQueue opens a stopped server's data directory read-only with Pebble
// and describes, for each event, its delivery record for connectorID
// (q/m/<connector>/<event>: attempts, last error, due) and every due-index
// entry that names it (q/d/<due>/<connector>/<event>). The encodings are
// internal/pebble's (keys.go, record.go), read here without that package so
// that nothing is written.
func readQueue(dir, connectorID string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for _, id := range ids {
		out[id] = "not read"
	}
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quietLogger{}})
	if err != nil {
		return out, err
	}
	defer db.Close()
	dues := map[string][]string{}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("q/d/"), UpperBound: []byte("q/d0")})
	if err != nil {
		return out, err
	}
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		const head = len("q/d/") + 8 + 1
		if len(k) <= head {
			continue
		}
		due := int64(binary.BigEndian.Uint64(k[4:12]) ^ 1<<63)
		conn, ev, _ := strings.Cut(string(k[head:]), "/")
		if conn == connectorID {
			dues[ev] = append(dues[ev], fmtNanos(due))
		}
	}
	if err := it.Close(); err != nil {
		return out, err
	}
	for _, id := range ids {
		v, closer, err := db.Get([]byte("q/m/" + connectorID + "/" + id))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			out[id] = fmt.Sprintf("no record (acked, expired or dropped); due-index entries %v", dues[id])
			continue
		case err != nil:
			out[id] = err.Error()
			continue
		}
		out[id] = fmt.Sprintf("record %s; due-index entries %v", describeRecord(v), dues[id])
		closer.Close()
	}
	return out, nil
}

// describeRecord decodes a delivery record (internal/pebble's record.go):
// version, project, event type, event time, attempts, last error, due, body.
func describeRecord(b []byte) string {
	if len(b) == 0 || b[0] != 1 {
		return fmt.Sprintf("of unknown version %q", b)
	}
	r := bytes.NewReader(b[1:])
	str := func() string {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return "?"
		}
		s := make([]byte, n)
		_, _ = r.Read(s)
		return string(s)
	}
	_ = str() // project
	typ := str()
	eventTime, _ := binary.ReadVarint(r)
	attempts, _ := binary.ReadUvarint(r)
	lastError := str()
	due, _ := binary.ReadVarint(r)
	return fmt.Sprintf("%s event of %s, %d attempts, last error %q, due %s", typ, fmtNanos(eventTime), attempts, lastError, fmtNanos(due))
}

func fmtNanos(n int64) string {
	return time.Unix(0, n).Local().Format("15:04:05.000")
}

// quietLogger silences Pebble's messages while the suite reads a data directory.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
