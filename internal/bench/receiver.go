package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/xid"
)

// Sink modes: how a sink's endpoint answers.
const (
	modeOK   int32 = iota // 200, and the delivery is counted
	modeFail              // 500, not counted
	modeHang              // no answer until the client gives up
)

// Clock stamps times as microseconds since the start of a run, on the
// monotonic clock. Publishers put a stamp in the event; receivers compare it
// with their own.
type Clock struct{ base time.Time }

// NewClock returns a clock whose zero is now.
func NewClock() Clock { return Clock{base: time.Now()} }

// Now returns the microseconds since the clock's zero.
func (c Clock) Now() int64 { return time.Since(c.base).Microseconds() }

// arrival is one counted delivery: when it arrived and its latency, both in
// microseconds.
type arrival struct{ at, latency int64 }

// Sink is one connector's endpoint as the receivers see it: which events
// arrived how often, and when.
type Sink struct {
	mode     atomic.Int32
	unique   atomic.Int64
	unsigned atomic.Int64

	mu       sync.Mutex
	seen     map[xid.ID]uint32
	arrivals []arrival
}

func newSink() *Sink { return &Sink{seen: make(map[xid.ID]uint32)} }

// SetMode sets how the endpoint answers from now on.
func (s *Sink) SetMode(m int32) { s.mode.Store(m) }

// Unique is how many distinct events arrived.
func (s *Sink) Unique() int64 { return s.unique.Load() }

func (s *Sink) record(id xid.ID, at, latency int64, signed bool) {
	if !signed {
		s.unsigned.Add(1)
	}
	s.mu.Lock()
	n := s.seen[id]
	s.seen[id] = n + 1
	if n == 0 {
		s.arrivals = append(s.arrivals, arrival{at, latency})
	}
	s.mu.Unlock()
	if n == 0 {
		s.unique.Add(1)
	}
}

// Check counts, of the events in want, those that never arrived and the
// extra arrivals of those that arrived more than once.
func (s *Sink) Check(want []xid.ID) (lost, duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range want {
		switch n := s.seen[id]; n {
		case 0:
			lost++
		default:
			duplicates += int(n) - 1
		}
	}
	return lost, duplicates
}

// Arrivals returns the first arrivals whose arrival time is in [from, to).
func (s *Sink) Arrivals(from, to int64) []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []arrival
	for _, a := range s.arrivals {
		if a.at >= from && a.at < to {
			out = append(out, a)
		}
	}
	return out
}

// Receiver is one HTTP(S) endpoint on 127.0.0.1 serving sinks at /s/{i}. It
// can go down (its listener and connections closed: connection refused) and
// come back on the same address.
type Receiver struct {
	clock Clock
	sinks map[int]*Sink
	tls   *tls.Config

	mu   sync.Mutex
	addr string
	srv  *http.Server
	stop chan struct{} // closed by Close: releases hanging answers
}

// NewReceiver starts a receiver serving sinks, keyed by their index.
func NewReceiver(clock Clock, sinks map[int]*Sink, tlsConf *tls.Config) (*Receiver, error) {
	r := &Receiver{clock: clock, sinks: sinks, tls: tlsConf, addr: "127.0.0.1:0", stop: make(chan struct{})}
	if err := r.Up(); err != nil {
		return nil, err
	}
	return r, nil
}

// URL returns the URL of sink i on this receiver.
func (r *Receiver) URL(i int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	scheme := "http"
	if r.tls != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/s/%d", scheme, r.addr, i)
}

// Up starts serving, on the address the receiver had before if it had one.
func (r *Receiver) Up() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return nil
	}
	var (
		ln  net.Listener
		err error
	)
	for try := 0; try < 50; try++ { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("receiver: listen on %s: %w", r.addr, err)
	}
	r.addr = ln.Addr().String()
	if r.tls != nil {
		ln = tls.NewListener(ln, r.tls)
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 30 * time.Second, ErrorLog: discardLog()}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(r.srv)
	return nil
}

// Down closes the listener and every connection: the endpoint refuses
// connections until Up.
func (r *Receiver) Down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

// Close stops the receiver for good and releases hanging answers.
func (r *Receiver) Close() {
	r.mu.Lock()
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.mu.Unlock()
	r.Down()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ServeHTTP counts one delivery to the sink of the path.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	i, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/s/"))
	s := r.sinks[i]
	if err != nil || s == nil || req.Method != http.MethodPost {
		http.Error(w, "no such sink", http.StatusNotFound)
		return
	}
	switch s.mode.Load() {
	case modeHang:
		select {
		case <-req.Context().Done():
		case <-r.stop:
		}
		return
	case modeFail:
		_, _ = io.Copy(io.Discard, req.Body)
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(req.Body); err != nil {
		http.Error(w, "read the body", http.StatusBadRequest)
		return
	}
	now := r.clock.Now()
	id, sent, err := parseDelivery(buf.Bytes())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.record(id, now, now-sent, req.Header.Get("X-Dt-Signature") != "")
	w.WriteHeader(http.StatusNoContent)
}

// parseDelivery reads the eventId and the first "value" (the send stamp) of a
// delivery body, without decoding the whole of it.
func parseDelivery(body []byte) (xid.ID, int64, error) {
	idKey, valueKey := []byte(`"eventId":"`), []byte(`"value":`)
	i := bytes.Index(body, idKey)
	if i < 0 || len(body) < i+len(idKey)+20 {
		return xid.ID{}, 0, errors.New("no eventId in the body")
	}
	id, err := xid.FromString(string(body[i+len(idKey) : i+len(idKey)+20]))
	if err != nil {
		return xid.ID{}, 0, fmt.Errorf("eventId: %w", err)
	}
	j := bytes.Index(body, valueKey)
	if j < 0 {
		return xid.ID{}, 0, errors.New("no value in the body")
	}
	rest := body[j+len(valueKey):]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return xid.ID{}, 0, errors.New("value: no end")
	}
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest[:end])), 64)
	if err != nil {
		return xid.ID{}, 0, fmt.Errorf("value: %w", err)
	}
	return id, int64(v), nil
}

// selfSigned returns a TLS configuration for 127.0.0.1 with a fresh
// self-signed certificate, and that certificate in PEM for clients to trust.
func selfSigned() (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "dcon bench receiver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, certPEM, nil
}

// waitFor polls cond every 20 ms until it holds, ctx ends or the deadline
// passes; it reports whether cond held.
func waitFor(ctx context.Context, deadline time.Duration, cond func() bool) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	end := time.After(deadline)
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-end:
			return cond()
		case <-t.C:
		}
	}
	return true
}

// discardLog is the error log of the bench's HTTP servers: a receiver going
// down on purpose is not news.
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
