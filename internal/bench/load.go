package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/xid"
)

// maxAnswer bounds what the bench reads of one answer.
const maxAnswer = 4 << 20

// client talks to the /v2 API of one server.
type client struct {
	base string
	http *http.Client
}

// call sends in as JSON and decodes a 2xx answer into out (when not nil).
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	raw, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// send sends one request and returns the body of a 2xx answer.
func (c *client) send(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	return raw, nil
}

// createProject creates a project and returns its id.
func (c *client) createProject(ctx context.Context) (string, error) {
	var res struct{ Name string }
	if err := c.call(ctx, http.MethodPost, "/v2/projects", map[string]any{"displayName": "bench"}, &res); err != nil {
		return "", err
	}
	return lastSegment(res.Name), nil
}

// createConnector creates a signed HTTP_PUSH connector that forwards every
// event to url, with the device label "name". Its requests carry the HS256
// X-Dt-Signature only: as the performance issue asks, the costly ES256
// DT-Asymmetric-Signature is off in every scenario, and throughput measures it
// separately (setAsymmetric).
func (c *client) createConnector(ctx context.Context, project, url, secret string) error {
	return c.call(ctx, http.MethodPost, "/v2/projects/"+project+"/dataconnectors", map[string]any{
		"type":       "HTTP_PUSH",
		"labels":     []string{"name"},
		"httpConfig": map[string]any{"url": url, "signatureSecret": secret, "asymmetricSignature": false},
	}, nil)
}

// setAsymmetric turns the ES256 DT-Asymmetric-Signature on or off for every
// connector of a project.
func (c *client) setAsymmetric(ctx context.Context, project string, on bool) error {
	var list struct {
		DataConnectors []struct{ Name string } `json:"dataConnectors"`
	}
	if err := c.call(ctx, http.MethodGet, "/v2/projects/"+project+"/dataconnectors", nil, &list); err != nil {
		return err
	}
	for _, dc := range list.DataConnectors {
		path := "/v2/" + dc.Name + "?update_mask=httpConfig.asymmetricSignature"
		body := map[string]any{"httpConfig": map[string]any{"asymmetricSignature": on}}
		if err := c.call(ctx, http.MethodPatch, path, body, nil); err != nil {
			return err
		}
	}
	return nil
}

// createDevice creates an emulated temperature sensor and returns its id.
func (c *client) createDevice(ctx context.Context, project string) (string, error) {
	var res struct{ Name string }
	err := c.call(ctx, http.MethodPost, "/v2/projects/"+project+"/devices", map[string]any{
		"type": "temperature", "labels": map[string]string{"name": "bench"},
	}, &res)
	return lastSegment(res.Name), err
}

func lastSegment(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}

// target is a device events are published for.
type target struct{ project, device string }

// publishOne publishes one temperature event whose value is stamp.
func (c *client) publishOne(ctx context.Context, t target, stamp int64) (xid.ID, error) {
	body := strconv.AppendInt([]byte(`{"temperature":{"value":`), stamp, 10)
	body = append(body, "}}"...)
	raw, err := c.send(ctx, http.MethodPost, "/v2/projects/"+t.project+"/devices/"+t.device+":publish", bytes.NewReader(body))
	if err != nil {
		return xid.ID{}, err
	}
	return eventID(raw)
}

// eventID reads the first eventId of an answer.
func eventID(raw []byte) (xid.ID, error) {
	key := []byte(`"eventId":"`)
	i := bytes.Index(raw, key)
	if i < 0 || len(raw) < i+len(key)+20 {
		return xid.ID{}, fmt.Errorf("no eventId in the answer %.200s", raw)
	}
	return xid.FromString(string(raw[i+len(key) : i+len(key)+20]))
}

// publishBatch publishes n temperature events, all stamped stamp, spread over
// devices of one project, in one devices:batchPublish. It returns the ids of
// the events accepted and the number refused.
func (c *client) publishBatch(ctx context.Context, project string, devices []string, n int, stamp int64) ([]xid.ID, int, error) {
	body := []byte(`{"events":[`)
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"deviceId":"`...)
		body = append(body, devices[i%len(devices)]...)
		body = append(body, `","event":{"temperature":{"value":`...)
		body = strconv.AppendInt(body, stamp, 10)
		body = append(body, "}}}"...)
	}
	body = append(body, "]}"...)
	raw, err := c.send(ctx, http.MethodPost, "/v2/projects/"+project+"/devices:batchPublish", bytes.NewReader(body))
	if err != nil {
		return nil, n, err
	}
	var res struct {
		Results []struct {
			EventID string `json:"eventId"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, n, fmt.Errorf("batchPublish: decode the answer: %w", err)
	}
	ids := make([]xid.ID, 0, len(res.Results))
	for _, r := range res.Results {
		if id, err := xid.FromString(r.EventID); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, n - len(ids), nil
}

// rawBody is a delivery body of the shape dcon sends, for the raw ceiling:
// a fresh event id and the stamp as the temperature value.
func rawBody(stamp int64) []byte {
	id := xid.New().String()
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	v := strconv.FormatInt(stamp, 10)
	return fmt.Appendf(nil, `{"event":{"eventId":"%s","targetName":"projects/d4benchbenchbenchbe0/devices/emud4benchbenchbenchbe0","eventType":"temperature","data":{"temperature":{"value":%s,"isBackfilled":false,"samples":[{"value":%s,"sampleTime":"%s"}],"updateTime":"%s"}},"timestamp":"%s"},"labels":{"name":"bench"},"metadata":{"deviceId":"emud4benchbenchbenchbe0","projectId":"d4benchbenchbenchbe0","deviceType":"temperature","productNumber":""}}`,
		id, v, v, now, now, now)
}

// postRaw posts one body straight to a receiver.
func postRaw(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// ledger holds the event ids the publishers got a 200 for, by project.
type ledger struct {
	n      atomic.Int64
	failed atomic.Int64

	mu    sync.Mutex
	ids   map[string][]xid.ID
	first error
}

func newLedger() *ledger { return &ledger{ids: make(map[string][]xid.ID)} }

func (l *ledger) add(project string, ids ...xid.ID) {
	l.mu.Lock()
	l.ids[project] = append(l.ids[project], ids...)
	l.mu.Unlock()
	l.n.Add(int64(len(ids)))
}

func (l *ledger) fail(n int, err error) {
	l.failed.Add(int64(n))
	l.mu.Lock()
	if l.first == nil {
		l.first = err
	}
	l.mu.Unlock()
}

// of returns the ids acknowledged for project.
func (l *ledger) of(project string) []xid.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[project]
}

// gate holds workers back while more than limit deliveries are outstanding:
// acknowledged events × fanout, minus what the watched sinks received since
// the gate was made. A zero limit never holds.
type gate struct {
	limit       int64
	outstanding atomic.Int64
}

// newGate starts a gate that recomputes the outstanding deliveries every 5 ms
// until ctx ends.
func newGate(ctx context.Context, limit int64, l *ledger, fanout int, sinks []*Sink) *gate {
	g := &gate{limit: limit}
	if limit <= 0 {
		return g
	}
	base := sumUnique(sinks)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			g.outstanding.Store(l.n.Load()*int64(fanout) - (sumUnique(sinks) - base))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return g
}

// wait returns once the gate is open or ctx ends.
func (g *gate) wait(ctx context.Context) {
	for g != nil && g.limit > 0 && g.outstanding.Load() > g.limit && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
}

func sumUnique(sinks []*Sink) int64 {
	var n int64
	for _, s := range sinks {
		n += s.Unique()
	}
	return n
}

// closedLoop runs conc workers, each calling fn again as soon as it returns,
// until d has passed, fn returns false or ctx ends. fn gets phase, which ends
// with the phase, to wait on; requests it makes should use ctx, so that none
// is cut short at the end of the phase. closedLoop returns how long it ran.
func closedLoop(ctx context.Context, conc int, d time.Duration, fn func(phase context.Context, worker int) bool) time.Duration {
	phase, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for phase.Err() == nil && fn(phase, w) {
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// pacedLoop calls fn rate times a second, each call in its own goroutine (at
// most maxOpen at once), for d or until ctx ends. It returns how long it ran
// and how many calls it made.
func pacedLoop(ctx context.Context, rate int, d time.Duration, maxOpen int, fn func(ctx context.Context)) (time.Duration, int) {
	start := time.Now()
	sem := make(chan struct{}, maxOpen)
	var wg sync.WaitGroup
	n := paced(ctx, rate, d, func() {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(ctx)
		})
	})
	wg.Wait()
	return time.Since(start), n
}

// pacedPool calls fn rate times a second, from conc workers, for d or until
// ctx ends: the calls of one worker follow each other, so that at most conc
// are open at once, as a sender with a window of conc has, and a call that
// finds every worker busy waits for one. It returns how long it ran.
func pacedPool(ctx context.Context, rate, conc int, d time.Duration, fn func(ctx context.Context)) time.Duration {
	start := time.Now()
	due := make(chan struct{}, rate)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for range due {
				fn(ctx)
			}
		})
	}
	paced(ctx, rate, d, func() {
		select {
		case due <- struct{}{}:
		case <-ctx.Done():
		}
	})
	close(due)
	wg.Wait()
	return time.Since(start)
}

// paced calls tick at rate ticks a second from now, for d or until ctx ends,
// and returns how many ticks it made.
func paced(ctx context.Context, rate int, d time.Duration, tick func()) int {
	start := time.Now()
	n := 0
	for ; ctx.Err() == nil; n++ {
		at := time.Duration(float64(n) / float64(rate) * float64(time.Second))
		if at >= d {
			break
		}
		if wait := time.Until(start.Add(at)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		tick()
	}
	return n
}

// isCancel reports whether err comes from the phase ending, not from a failure.
func isCancel(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
