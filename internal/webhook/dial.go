package webhook

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"dcon"
)

// ErrForbiddenDestination is the cause of an attempt refused at dial time
// because the endpoint's address is not allowed by Config.Destinations.
var ErrForbiddenDestination = errors.New("webhook: destination address not allowed")

// guardedDialer dials only addresses that a policy allows. It resolves the
// host itself, checks every address the name has, and dials the checked
// addresses, so a name that resolves to a private address — now, or after a
// change of DNS since the connector was created (rebinding) — is refused on
// every attempt. The dialer's Control checks the address again just before
// connect, as a second line.
type guardedDialer struct {
	policy dcon.DestinationPolicy
	lookup dcon.LookupFunc
	dialer *net.Dialer
}

func newGuardedDialer(policy dcon.DestinationPolicy, lookup dcon.LookupFunc, d *net.Dialer) *guardedDialer {
	g := &guardedDialer{policy: policy, lookup: lookup, dialer: d}
	if g.lookup == nil {
		r := &net.Resolver{}
		g.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return r.LookupNetIP(ctx, "ip", host)
		}
	}
	d.Control = g.control
	return g
}

// forbidden is the error of a refused destination. Its message names no
// address or host: the host is in the connector's URL, which errors do not
// repeat, and a private address says too much about the network.
func forbidden() error {
	return &Error{msg: "destination not allowed: the endpoint's address is loopback, private, link-local or otherwise non-public (see --allow-destination)", err: ErrForbiddenDestination}
}

// DialContext resolves addr's host, refuses it if any of its addresses is not
// allowed, and dials the addresses in turn.
func (g *guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if addrs, err = g.lookup(ctx, host); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	for _, a := range addrs {
		if !g.policy.AllowsAddr(a) {
			return nil, forbidden()
		}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// control checks the address a socket is about to connect to.
func (g *guardedDialer) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !g.policy.AllowsAddr(ap.Addr()) {
		return forbidden()
	}
	return nil
}
