package torture

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// level says how hard the suite pushes: the short version for CI, the long one
// on demand (DCON_TORTURE=long).
type level struct {
	long bool
}

func suiteLevel(t *testing.T) level {
	t.Helper()
	lv := level{long: os.Getenv("DCON_TORTURE") == "long"}
	if testing.Short() && !lv.long {
		t.Skip("the torture suite builds and runs the real binary")
	}
	return lv
}

// pick returns short or long by the level.
func pick[T any](lv level, short, long T) T {
	if lv.long {
		return long
	}
	return short
}

// figures is one row of the table of figures in docs/reliability.md.
type figures struct {
	scenario, published, crashes, lost, duplicates, expired, time string
}

// report logs a scenario's figures as a row of the table in
// docs/reliability.md, marked FIGURES, so that a run's rows can be pasted:
//
//	go test -v ./torture/ | sed -n 's/.*FIGURES //p'
func report(t *testing.T, f figures) {
	t.Helper()
	dash := func(s string) string {
		if s == "" {
			return " "
		}
		return s
	}
	t.Logf("FIGURES | %s | %s | %s | %s | %s | %s | %s |", f.scenario, dash(f.published), dash(f.crashes),
		dash(f.lost), dash(f.duplicates), dash(f.expired), dash(f.time))
}

// waitUntil polls cond every 20ms until it holds; it fails the test after
// timeout. The timeouts are generous: they bound a wait, they do not time it.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildDcon builds the dcon binary into a temporary directory. The go command
// caches the build, so each test building its own costs a link.
func buildDcon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dcon")
	args := []string{"build", "-o", bin}
	if os.Getenv("DCON_TORTURE_RACE") == "1" {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "dcon/cmd/dcon")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// server runs `dcon serve` and restarts it on the same flags.
type server struct {
	t    *testing.T
	bin  string
	args []string

	mu      sync.Mutex
	cur     *process
	base    atomic.Pointer[string] // http://127.0.0.1:port of the current process
	stderr  *tail
	starts  []time.Time // when each process was started
	crashes int
}

// process is one run of the binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit, once done is closed
}

func newServer(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	s := &server{t: t, bin: bin, args: args, stderr: &tail{}}
	t.Cleanup(func() {
		s.mu.Lock()
		p := s.cur
		s.mu.Unlock()
		if p != nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("dcon's last log lines:\n%s", s.stderr.String())
		}
	})
	return s
}

// start starts a process and waits until it listens.
func (s *server) start() {
	s.t.Helper()
	if err := s.tryStart(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) tryStart() error {
	cmd := exec.Command(s.bin, append([]string{"serve", "--dev", "--addr", "127.0.0.1:0"}, s.args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = s.stderr
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
				addr <- strings.TrimPrefix(strings.Fields(rest)[0], "http://")
			}
		}
		close(addr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			<-p.done
			return fmt.Errorf("dcon exited before listening: %v\n%s", p.err, s.stderr.String())
		}
		base := "http://" + a
		s.base.Store(&base)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("dcon did not listen within 60s")
	}
	s.mu.Lock()
	s.cur = p
	s.starts = append(s.starts, started)
	s.mu.Unlock()
	return nil
}

// url is the API's base URL, "http://127.0.0.1:port".
func (s *server) url() string { return *s.base.Load() }

func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.cmd.Process.Pid
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.t.Helper()
	s.mu.Lock()
	p := s.cur
	s.cur = nil
	s.crashes++
	s.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and returns how long the process took to exit and how it exited;
// it fails the test if it does not exit within timeout.
func (s *server) stop(timeout time.Duration) (time.Duration, error) {
	s.t.Helper()
	s.mu.Lock()
	p := s.cur
	s.cur = nil
	s.mu.Unlock()
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		s.t.Fatalf("dcon did not exit within %v of SIGTERM", timeout)
		return 0, nil
	}
}

// exited reports whether the current process has exited on its own, and how.
func (s *server) exited() (bool, error) {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// tail keeps the last 64 KiB a process wrote to stderr, and, between
// startCapture and endCapture, all of it (a goroutine dump).
type tail struct {
	mu      sync.Mutex
	buf     []byte
	all     int64
	capture *bytes.Buffer
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	w.all += int64(len(p))
	if w.capture != nil {
		w.capture.Write(p)
	}
	if len(w.buf) > 64<<10 {
		w.buf = append([]byte(nil), w.buf[len(w.buf)-32<<10:]...)
	}
	return len(p), nil
}

// startCapture starts keeping everything written from now on.
func (w *tail) startCapture() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.capture = &bytes.Buffer{}
}

// endCapture returns what was written since startCapture, and stops keeping it.
func (w *tail) endCapture() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.capture
	w.capture = nil
	if c == nil {
		return ""
	}
	return c.String()
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// client calls the API of a server, following its restarts.
type client struct {
	t       *testing.T
	srv     *server
	http    *http.Client
	project string
}

func newClient(t *testing.T, srv *server) *client {
	c := &client{t: t, srv: srv, http: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(c.http.CloseIdleConnections)
	var p struct {
		Name string `json:"name"`
	}
	c.must("POST", "/v2/projects", map[string]any{"displayName": "torture"}, &p)
	c.project = strings.TrimPrefix(p.Name, "projects/")
	return c
}

// call sends a JSON request and decodes a 200 answer into out. It returns the
// status, 0 when the server could not be reached.
func (c *client) call(method, path string, in, out any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.srv.url()+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return resp.StatusCode, raw, nil
}

func (c *client) must(method, path string, in, out any) {
	c.t.Helper()
	status, raw, err := c.call(method, path, in, out)
	if err != nil || status != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s %v", method, path, status, raw, err)
	}
}

// connector creates a connector to url (filtered to events, none = all) and
// returns its id.
func (c *client) connector(url string, events ...string) string {
	c.t.Helper()
	if events == nil {
		events = []string{}
	}
	var res struct {
		Name string `json:"name"`
	}
	c.must("POST", "/v2/projects/"+c.project+"/dataconnectors", map[string]any{
		"type": "HTTP_PUSH", "events": events, "httpConfig": map[string]any{"url": url, "signatureSecret": "torture"},
	}, &res)
	return res.Name[strings.LastIndexByte(res.Name, '/')+1:]
}

// device creates an emulated device of a type and returns its id.
func (c *client) device(typ string) string {
	c.t.Helper()
	var res struct {
		Name string `json:"name"`
	}
	c.must("POST", "/v2/projects/"+c.project+"/devices", map[string]any{"type": typ}, &res)
	return res.Name[strings.LastIndexByte(res.Name, '/')+1:]
}

// deadLetter is one entry of GET …/deadletters.
type deadLetter struct {
	EventID    string    `json:"eventId"`
	EventTime  time.Time `json:"eventTime"`
	ExpireTime time.Time `json:"expireTime"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"lastError"`
}

func (c *client) deadLetters(connectorID string) []deadLetter {
	c.t.Helper()
	var all []deadLetter
	token := ""
	for range 1000 { // pages of up to 1,000: far more than any scenario makes
		var res struct {
			DeadLetters   []deadLetter `json:"deadLetters"`
			NextPageToken string       `json:"nextPageToken"`
		}
		path := "/v2/projects/" + c.project + "/dataconnectors/" + connectorID + "/deadletters"
		if token != "" {
			path += "?pageToken=" + url.QueryEscape(token)
		}
		c.must("GET", path, nil, &res)
		all = append(all, res.DeadLetters...)
		if token = res.NextPageToken; token == "" {
			return all
		}
	}
	c.t.Fatalf("dead letters of %s: more than 1,000 pages", connectorID)
	return nil
}

// published is an event whose publish was acknowledged.
type published struct {
	Type  string
	Sent  time.Time // when the publish request was sent
	Acked time.Time
}

// ledger is what publishers were told: every acknowledged event, by id, and
// how the other publishes ended.
type ledger struct {
	mu        sync.Mutex
	acked     map[string]published
	tried     atomic.Int64
	refused   atomic.Int64 // 503 and other non-200 answers, per event
	unreached atomic.Int64 // no answer: the server was down or the connection broke
}

func newLedger() *ledger { return &ledger{acked: map[string]published{}} }

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *ledger) snapshot() map[string]published {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]published, len(l.acked))
	for k, v := range l.acked {
		m[k] = v
	}
	return m
}

// publishBatch publishes n events of type typ for a device in one
// devices:batchPublish and records the acknowledged ones. The data of each
// event is built by data(i).
func (c *client) publishBatch(l *ledger, device, typ string, n int, data func(i int) any) {
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = map[string]any{"deviceId": device, "event": map[string]any{typ: data(i)}}
	}
	var res struct {
		Results []struct {
			EventID string `json:"eventId"`
			Code    int    `json:"code"`
		} `json:"results"`
	}
	l.tried.Add(int64(n))
	sent := time.Now()
	status, raw, err := c.call("POST", "/v2/projects/"+c.project+"/devices:batchPublish", map[string]any{"events": events}, &res)
	switch {
	case err != nil || status == 0:
		l.unreached.Add(int64(n))
		return
	case status != http.StatusOK:
		l.refused.Add(int64(n))
		if status != http.StatusServiceUnavailable {
			c.t.Errorf("batchPublish answered %d %s", status, raw)
		}
		return
	case len(res.Results) != n:
		c.t.Errorf("batchPublish answered %d results for %d events", len(res.Results), n)
		return
	}
	acked := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range res.Results {
		if r.EventID == "" {
			l.refused.Add(1)
			if r.Code != http.StatusServiceUnavailable {
				c.t.Errorf("batchPublish refused an event with %d", r.Code)
			}
			continue
		}
		l.acked[r.EventID] = published{Type: typ, Sent: sent, Acked: acked}
	}
}

// publishers runs n goroutines that publish batches until stop is closed;
// the returned function stops them and waits.
func publishers(c *client, l *ledger, n, batch int, device, typ string, data func(i int) any) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				before := l.unreached.Load()
				c.publishBatch(l, device, typ, batch, data)
				if l.unreached.Load() != before {
					time.Sleep(10 * time.Millisecond) // the server is down; it comes back
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

// action is what a receiver does with one request.
type action int

const (
	answerOK      action = iota // 200
	answer500                   // 500
	answer429                   // 429 with Retry-After: 1
	answer302                   // a redirect, which is a failure
	answerSlow                  // 200 after a while
	answerHang                  // no answer; the connection closed once the client gave up, or after hang
	answerReset                 // the connection is reset
	answerEndless               // 200 and a body that never ends
)

var actionNames = [...]string{"200", "500", "429", "302", "slow 200", "hang", "reset", "endless 200"}

func (a action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action " + strconv.Itoa(int(a))
}

func (a action) ok() bool { return a == answerOK || a == answerSlow || a == answerEndless }

// receiver is a real TLS endpoint serving every connector of a test under
// /c/<tag>. It records, per tag and event id, the attempts and the 2xx
// answers, and counts its open connections.
type receiver struct {
	*httptest.Server
	decide func(tag, eventID string, attempt int) action
	hang   time.Duration // how long answerHang waits at most
	slow   time.Duration

	mu     sync.Mutex
	seen   map[string]map[string]*delivery // tag → event id → its deliveries
	reqs   []request
	opened map[string]time.Time // remote address → when its connection opened
	conns  atomic.Int64
}

// request is when a request arrived, and when its connection was opened.
type request struct{ at, opened time.Time }

// delivery is what a receiver saw of one event at one connector.
type delivery struct {
	attempts int
	ok       int
	first    time.Time // of the first 2xx
	typ      string
	id       string
	answers  []answered // every attempt, in order
}

// answered is one attempt a receiver saw: when it arrived and what it was told.
type answered struct {
	at time.Time
	a  action
}

func newReceiver(t *testing.T, decide func(tag, eventID string, attempt int) action) *receiver {
	t.Helper()
	rc := &receiver{decide: decide, hang: 30 * time.Second, slow: 200 * time.Millisecond,
		seen: map[string]map[string]*delivery{}, opened: map[string]time.Time{}}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.Config.ErrorLog = log.New(io.Discard, "", 0) // resets and timeouts are the point
	// So that leak checks see idle connections close: those that served a
	// request close after IdleTimeout; those that never had one (a client's
	// transport may dial for a request that is then served by another
	// connection, and keep the new one idle), after ReadHeaderTimeout, which
	// is all that bounds the wait for a first request.
	rc.Config.IdleTimeout = 2 * time.Second
	rc.Config.ReadHeaderTimeout = 5 * time.Second
	rc.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			rc.conns.Add(1)
			rc.mu.Lock()
			rc.opened[c.RemoteAddr().String()] = time.Now()
			rc.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			rc.conns.Add(-1)
		}
	}
	rc.TLS = &tls.Config{Certificates: []tls.Certificate{ecdsaCert(t)}}
	rc.StartTLS()
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var b struct {
		Event struct {
			EventID   string `json:"eventId"`
			EventType string `json:"eventType"`
		} `json:"event"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Event.EventID == "" {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	tag := strings.TrimPrefix(r.URL.Path, "/c/")
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, request{at: time.Now(), opened: rc.opened[r.RemoteAddr]})
	byEvent := rc.seen[tag]
	if byEvent == nil {
		byEvent = map[string]*delivery{}
		rc.seen[tag] = byEvent
	}
	d := byEvent[b.Event.EventID]
	if d == nil {
		d = &delivery{typ: b.Event.EventType, id: b.Event.EventID}
		byEvent[b.Event.EventID] = d
	}
	d.attempts++
	a := answerOK
	if rc.decide != nil {
		a = rc.decide(tag, b.Event.EventID, d.attempts)
	}
	d.answers = append(d.answers, answered{at: time.Now(), a: a})
	if a.ok() {
		d.ok++
		if d.first.IsZero() {
			d.first = time.Now()
		}
	}
	rc.mu.Unlock()
	rc.act(w, r, a)
}

func (rc *receiver) act(w http.ResponseWriter, r *http.Request, a action) {
	switch a {
	case answerOK:
		w.WriteHeader(http.StatusOK)
	case answer500:
		w.WriteHeader(http.StatusInternalServerError)
	case answer429:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	case answer302:
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
	case answerSlow:
		sleepCtx(r, rc.slow)
		w.WriteHeader(http.StatusOK)
	case answerHang:
		// Then close without an answer: returning would send net/http's
		// implicit 200, and a client late to its own deadline (a loaded
		// machine) would take it, rightly, as delivered, while the attempt
		// is recorded as not.
		sleepCtx(r, rc.hang)
		hangUp(w, false)
	case answerReset:
		hangUp(w, true)
	case answerEndless:
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		rcw := http.NewResponseController(w)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			_ = rcw.Flush()
		}
	}
}

// hangUp closes a request's connection without an answer; with reset, it
// resets it (RST) rather than closing it in order.
func hangUp(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok && reset {
		if tcp, ok := tc.NetConn().(interface{ SetLinger(int) error }); ok {
			_ = tcp.SetLinger(0)
		}
	}
	_ = conn.Close()
}

// ecdsaCert returns a self-signed P-256 certificate for 127.0.0.1, which a
// receiver serves instead of httptest's RSA one: a TLS handshake then costs
// the receiver tens of microseconds instead of milliseconds (an RSA-2048
// signature), so that on a loaded machine the suite's receivers, which share
// its process, do not collapse under the handshakes of dcon's retries (each
// attempt that times out closes its connection, and its retry dials anew).
func ecdsaCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"dcon torture receiver"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// sleepCtx waits d or until the client goes away.
func sleepCtx(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// caFile writes the receiver's certificate for --ca-file.
func (rc *receiver) caFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "receiver-ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tagURL is the endpoint of the connector tagged tag.
func (rc *receiver) tagURL(tag string) string { return rc.URL + "/c/" + tag }

// deliveries returns a copy of what tag's endpoint saw.
func (rc *receiver) deliveries(tag string) map[string]delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]delivery, len(rc.seen[tag]))
	for id, d := range rc.seen[tag] {
		c := *d
		c.answers = slices.Clone(d.answers)
		out[id] = c
	}
	return out
}

// firstRequestAfter returns when the first request on a connection opened
// after t arrived: the first request of a process started at t.
func (rc *receiver) firstRequestAfter(t time.Time) (time.Time, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, r := range rc.reqs {
		if r.opened.After(t) {
			return r.at, true
		}
	}
	return time.Time{}, false
}

// tally compares what was acknowledged with what tag's endpoint answered 2xx.
type tally struct {
	acked, delivered, lost, duplicates int
	attempts                           int
	lostIDs                            []string
	dupIDs                             []string // a few of the events delivered more than once
}

func (rc *receiver) tally(tag string, acked map[string]published) tally {
	got := rc.deliveries(tag)
	var ty tally
	ty.acked = len(acked)
	for id := range acked {
		if got[id].ok == 0 {
			ty.lost++
			if len(ty.lostIDs) < 5 {
				ty.lostIDs = append(ty.lostIDs, id)
			}
		}
	}
	for _, d := range got {
		ty.attempts += d.attempts
		if d.ok > 0 {
			ty.delivered++
			ty.duplicates += d.ok - 1
		}
		if d.ok > 1 && len(ty.dupIDs) < 3 {
			ty.dupIDs = append(ty.dupIDs, d.id)
		}
	}
	return ty
}

func (ty tally) String() string {
	return fmt.Sprintf("acknowledged %d, delivered %d, lost %d, duplicates %d, attempts %d",
		ty.acked, ty.delivered, ty.lost, ty.duplicates, ty.attempts)
}

// history describes what tag's endpoint saw of an event: every attempt, when
// it arrived and how it was answered.
func (rc *receiver) history(tag, id string) string {
	d := rc.deliveries(tag)[id]
	var b strings.Builder
	fmt.Fprintf(&b, "event %s: %d attempts, %d answered 2xx:", id, d.attempts, d.ok)
	for _, a := range d.answers {
		fmt.Fprintf(&b, " %s %s;", a.at.Format("15:04:05.000"), a.a)
	}
	return b.String()
}

// waitDelivered waits until every acknowledged event reached tag's endpoint.
func (rc *receiver) waitDelivered(t *testing.T, tag string, acked map[string]published, timeout time.Duration) tally {
	t.Helper()
	ty, ok := rc.awaitDelivered(tag, acked, timeout)
	if !ok {
		t.Fatalf("%s: after %v, %s; some lost: %v", tag, timeout, ty, ty.lostIDs)
	}
	return ty
}

// awaitDelivered is waitDelivered that reports, instead of failing, whether
// every acknowledged event arrived within timeout.
func (rc *receiver) awaitDelivered(tag string, acked map[string]published, timeout time.Duration) (tally, bool) {
	deadline := time.Now().Add(timeout)
	for {
		ty := rc.tally(tag, acked)
		if ty.lost == 0 {
			return ty, true
		}
		if time.Now().After(deadline) {
			return ty, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// usage is what a process holds, read from /proc.
type usage struct {
	fds, sockets int
	rssKB        int
}

func (u usage) String() string {
	return fmt.Sprintf("%d fds (%d sockets), %d MiB RSS", u.fds, u.sockets, u.rssKB>>10)
}

// procUsage reads a process's open files, sockets and resident memory; ok is
// false where /proc does not exist.
func procUsage(pid int) (usage, bool) {
	dir := fmt.Sprintf("/proc/%d", pid)
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return usage{}, false
	}
	var u usage
	for _, e := range ents {
		u.fds++
		if l, err := os.Readlink(dir + "/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			u.sockets++
		}
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return usage{}, false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			u.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return u, true
}

// checkNoLeak compares a process's usage after a scenario with before, once
// its attempts have settled: sockets and fds back within slack of where they
// were (idle keep-alive connections may remain), and memory not grown beyond
// slackMB.
func checkNoLeak(t *testing.T, pid int, before usage, slack, slackMB int) usage {
	t.Helper()
	var after usage
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		after, ok = procUsage(pid)
		if !ok {
			t.Log("no /proc: leak check skipped")
			return after
		}
		if after.sockets <= before.sockets+slack && after.fds <= before.fds+slack {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("leak: before %s, after %s", before, after)
			return after
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.rssKB > before.rssKB+slackMB<<10 {
		t.Errorf("memory grew: before %s, after %s", before, after)
	}
	return after
}

// clockFile is the file behind --test-clock-offset-file.
type clockFile string

func newClockFile(t *testing.T) clockFile {
	t.Helper()
	f := clockFile(filepath.Join(t.TempDir(), "clock-offset"))
	f.set(t, 0)
	return f
}

// set moves the server's clock to time.Now()+d; the server sees it within
// 100ms.
func (f clockFile) set(t *testing.T, d time.Duration) {
	t.Helper()
	tmp := string(f) + ".tmp"
	if err := os.WriteFile(tmp, []byte(d.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, string(f)); err != nil {
		t.Fatal(err)
	}
}
