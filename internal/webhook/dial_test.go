package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"dcon"
)

// fakeDNS is a resolver the test controls; answers can change between calls,
// as with DNS rebinding.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	lookups atomic.Int32
}

func (d *fakeDNS) set(host string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.answers == nil {
		d.answers = map[string][]netip.Addr{}
	}
	d.answers[host] = nil
	for _, a := range addrs {
		d.answers[host] = append(d.answers[host], netip.MustParseAddr(a))
	}
}

func (d *fakeDNS) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	d.lookups.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	addrs, ok := d.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

// hostURL is ts's URL with its host replaced by name (port kept): the
// httptest certificate is valid for example.com.
func hostURL(ts *httptest.Server, name string) string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "https://"))
	return "https://" + name + ":" + port + "/hook"
}

// TestSendDestinationPolicy checks the dial-time check: a name resolving to
// 127.0.0.1 is refused under the strict policy and delivered to when
// --allow-destination lists 127.0.0.0/8; IP literals are checked the same way.
func TestSendDestinationPolicy(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(ts.Close)

	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name   string
		policy *dcon.DestinationPolicy
		dns    []string // what example.com resolves to
		url    func() string
		ok     bool
	}{
		{"strict, name to loopback", &dcon.DestinationPolicy{}, []string{"127.0.0.1"}, func() string { return hostURL(ts, "example.com") }, false},
		{"strict, name to loopback and public", &dcon.DestinationPolicy{}, []string{"93.184.216.34", "127.0.0.1"}, func() string { return hostURL(ts, "example.com") }, false},
		{"strict, IPv4-mapped loopback", &dcon.DestinationPolicy{}, []string{"::ffff:127.0.0.1"}, func() string { return hostURL(ts, "example.com") }, false},
		{"strict, IP literal", &dcon.DestinationPolicy{}, nil, func() string { return ts.URL }, false},
		{"allowed range, name", &dcon.DestinationPolicy{Allow: loopback}, []string{"127.0.0.1"}, func() string { return hostURL(ts, "example.com") }, true},
		{"allowed range, IP literal", &dcon.DestinationPolicy{Allow: loopback}, nil, func() string { return ts.URL }, true},
		{"allow all", &dcon.DestinationPolicy{AllowAll: true}, []string{"127.0.0.1"}, func() string { return hostURL(ts, "example.com") }, true},
		{"no policy", nil, nil, func() string { return ts.URL }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dns := &fakeDNS{}
			dns.set("example.com", tt.dns...)
			c := newClient(t, ts, Config{Destinations: tt.policy, LookupIP: dns.lookup})
			conn := connector(tt.url())
			conn.HTTP.SignatureSecret = "s3cret-value"
			res := c.Send(context.Background(), conn, testAttempt())
			if tt.ok {
				if res.Err != nil {
					t.Fatalf("refused: %v", res.Err)
				}
				return
			}
			if !errors.Is(res.Err, ErrForbiddenDestination) {
				t.Fatalf("err %v, want ErrForbiddenDestination", res.Err)
			}
			if res.StatusCode != 0 {
				t.Errorf("status %d: the request was sent", res.StatusCode)
			}
			msg := res.Err.Error()
			if !strings.HasPrefix(msg, "destination not allowed") || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "s3cret") {
				t.Errorf("message %q: want a short one that names no address or secret", msg)
			}
		})
	}
}

// TestSendDestinationRebinding checks that every attempt resolves again: a
// name that was public at one attempt and private at the next is refused.
func TestSendDestinationRebinding(t *testing.T) {
	t.Parallel()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ts.Close)
	dns := &fakeDNS{}
	// An allowed range stands for "public" here: the test can only reach loopback.
	policy := &dcon.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("127.0.0.1/32")}}
	c := newClient(t, ts, Config{Destinations: policy, LookupIP: dns.lookup})
	c.transport.DisableKeepAlives = true // a fresh dial per attempt, as after an idle timeout
	conn := connector(hostURL(ts, "example.com"))

	dns.set("example.com", "127.0.0.1")
	if res := c.Send(context.Background(), conn, testAttempt()); res.Err != nil {
		t.Fatalf("first attempt: %v", res.Err)
	}
	dns.set("example.com", "169.254.169.254")
	if res := c.Send(context.Background(), conn, testAttempt()); !errors.Is(res.Err, ErrForbiddenDestination) {
		t.Fatalf("after rebinding: err %v, want ErrForbiddenDestination", res.Err)
	}
	if n := dns.lookups.Load(); n != 2 {
		t.Errorf("%d lookups, want one per attempt", n)
	}
}

// TestSendRedirectToPrivateNotFollowed checks that a receiver answering with
// a redirect to a private address gets a failed attempt and no request there.
func TestSendRedirectToPrivateNotFollowed(t *testing.T) {
	t.Parallel()
	var internal atomic.Int32
	inner := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { internal.Add(1) }))
	t.Cleanup(inner.Close)
	for _, status := range []int{301, 302, 303, 307, 308} {
		ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, inner.URL+"/latest/meta-data/", status)
		}))
		t.Cleanup(ts.Close)
		c := newClient(t, ts, Config{Destinations: &dcon.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
		res := c.Send(context.Background(), connector(ts.URL), testAttempt())
		if res.Err == nil || res.StatusCode != status {
			t.Errorf("redirect %d: status %d, err %v; want a failed attempt with the 3xx", status, res.StatusCode, res.Err)
		}
	}
	if n := internal.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}
