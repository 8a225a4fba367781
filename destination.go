package dcon

import (
	"context"
	"net/netip"
	"strings"
	"time"
)

// Connector endpoints are chosen by API callers, so without a check a caller
// could make dcon POST to anything dcon's host can reach: its own API on
// loopback, a database on the private network, the cloud provider's metadata
// service at 169.254.169.254. A [DestinationPolicy] says which addresses an
// endpoint may have. It is applied twice: when a connector is created or
// changed (to the URL's host, see [ValidateConnector] and
// [CheckConnectorDestination]) and by internal/webhook at dial time, on every
// attempt, to every address a name resolves to — DNS can change between the
// two (DNS rebinding).

// forbiddenPrefixes are the ranges no endpoint may be in unless the policy
// allows them: everything that is not a public unicast address.
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network", 0.0.0.0 reaches the local host
	netip.MustParsePrefix("10.0.0.0/8"),         // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),        // loopback
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, cloud metadata (169.254.169.254)
	netip.MustParsePrefix("172.16.0.0/12"),      // private (RFC 1918)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation
	netip.MustParsePrefix("192.168.0.0/16"),     // private (RFC 1918)
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, and 255.255.255.255 broadcast
	netip.MustParsePrefix("::/128"),             // unspecified
	netip.MustParsePrefix("::1/128"),            // loopback
	netip.MustParsePrefix("64:ff9b::/96"),       // NAT64 of IPv4: checked as the IPv4 address, see below
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use NAT64
	netip.MustParsePrefix("100::/64"),           // discard
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("2002::/16"),          // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fc00::/7"),           // unique local
	netip.MustParsePrefix("fe80::/10"),          // link-local
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
	netip.MustParsePrefix("ff00::/8"),           // multicast
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS metadata over IPv6 (inside fc00::/7 already)
	netip.MustParsePrefix("2001::/32"),          // Teredo: embeds an IPv4 address
	netip.MustParsePrefix("::ffff:0:0:0/96"),    // IPv4-translated (RFC 2765)
	netip.MustParsePrefix("::/96"),              // IPv4-compatible (deprecated): ::a.b.c.d
	netip.MustParsePrefix("fd00:ec2::/32"),      // AWS internal
	netip.MustParsePrefix("ff02::/16"),          // link-local multicast (inside ff00::/8)
	netip.MustParsePrefix("2001:10::/28"),       // ORCHID
	netip.MustParsePrefix("2001:20::/28"),       // ORCHIDv2
	netip.MustParsePrefix("3fff::/20"),          // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),          // segment routing SIDs
	netip.MustParsePrefix("2620:4f:8000::/48"),  // AS112 (DNS sink)
	netip.MustParsePrefix("192.88.99.0/24"),     // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("192.31.196.0/24"),    // AS112
	netip.MustParsePrefix("192.52.193.0/24"),    // AMT
	netip.MustParsePrefix("192.175.48.0/24"),    // AS112 direct delegation
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast (inside 240/4)
}

// DestinationPolicy says which IP addresses connector endpoints may have.
// The zero value is the strict policy: public unicast addresses only.
type DestinationPolicy struct {
	// AllowAll allows every address, loopback and private ones included:
	// development mode (dcon serve --dev), where receivers run on this machine.
	AllowAll bool
	// Allow lists ranges that are allowed although they are not public, for
	// receivers on premises (dcon serve --allow-destination CIDR, repeatable).
	// An address in one of them is allowed whatever else it is.
	Allow []netip.Prefix
}

// AllowsAddr reports whether an endpoint may have address a. Outside
// p.Allow, it refuses loopback, private (10/8, 172.16/12, 192.168/16),
// carrier-grade NAT (100.64/10), link-local (169.254/16, the cloud metadata
// address included; fe80::/10), unique-local (fc00::/7), multicast,
// unspecified, broadcast, documentation and reserved addresses, and IPv6 forms
// that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d is checked as the
// IPv4 address it maps; NAT64, 6to4, Teredo and the deprecated forms are
// refused). A zone (fe80::1%eth0) is refused too.
func (p DestinationPolicy) AllowsAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if p.AllowAll {
		return true
	}
	a = a.WithZone("")
	for _, pre := range p.Allow {
		if pre.Contains(a) || pre.Contains(a.Unmap()) {
			return true
		}
	}
	if a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	if !a.IsGlobalUnicast() {
		return false
	}
	for _, pre := range forbiddenPrefixes {
		if pre.Contains(a) {
			return false
		}
	}
	return true
}

// hostProblem says what is wrong with the host of a connector URL under p, or
// "": an IP literal must be in canonical form and allowed by p; any other host
// must be a DNS name (letters, digits, hyphens and dots, labels of at most 63
// bytes, at most 253 bytes, a last label that is not all digits) other than
// localhost. Hosts that only some parsers read as IP addresses — 2130706433,
// 0x7f.1, 0177.0.0.1, 127.1 — are refused as not valid names. Messages never
// repeat the host.
func (p DestinationPolicy) hostProblem(host string) string {
	if p.AllowAll {
		return ""
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "host is not a valid IPv6 address"
		}
		if a.Zone() != "" {
			return "host must not have an IPv6 zone"
		}
		if !p.AllowsAddr(a) {
			return "host is a loopback, private, link-local or otherwise non-public address"
		}
		return ""
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.AllowsAddr(a) {
			return "host is a loopback, private, link-local or otherwise non-public address"
		}
		return ""
	}
	if !isDNSName(host) {
		return "host is neither a DNS name nor an IP address in canonical form"
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return "host is a loopback name"
	}
	return ""
}

// isDNSName reports whether s is a DNS host name: labels of letters, digits,
// hyphens and underscores, 1 to 63 bytes, not starting or ending with a
// hyphen, at most 253 bytes in all with an optional final dot, and a last
// label that is not all digits (so that no dialer reads it as an IPv4 number,
// such as 2130706433 or 0x7f.1: "0x7f" is letters and digits but "1" is not
// a valid top-level label).
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	digits := true
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			digits = false
		}
	}
	if digits {
		return false
	}
	// 0x7f, 0X7F: a hexadecimal number some resolvers accept as an IPv4 part.
	if len(labels) <= 4 {
		for _, l := range labels {
			if len(l) > 2 && (l[:2] == "0x" || l[:2] == "0X") && isHex(l[2:]) {
				return false
			}
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// lookupTimeout bounds the resolution of a connector's host at creation.
const lookupTimeout = 3 * time.Second

// LookupFunc resolves a host name to its IP addresses, like
// (*net.Resolver).LookupNetIP with network "ip".
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// CheckConnectorDestination resolves the host of c's URL with rules.LookupIP,
// when the host is a DNS name and LookupIP is not nil, and refuses (EINVALID) a name any
// of whose addresses the rules' policy does not allow. A name that does not
// resolve is accepted: the receiver may not exist yet, and the dial-time check
// guards every attempt anyway. Call it after [ValidateConnector].
func CheckConnectorDestination(ctx context.Context, c *Connector, rules ConnectorRules) error {
	policy, lookup := rules.destinations(), rules.LookupIP
	if lookup == nil || policy.AllowAll {
		return nil
	}
	host := urlHost(c.HTTP.URL)
	if host == "" || strings.Contains(host, ":") {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // an IP literal: ValidateConnector checked it
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !policy.AllowsAddr(a) {
			return Errorf(EINVALID, "httpConfig.url: host resolves to a loopback, private, link-local or otherwise non-public address")
		}
	}
	return nil
}
