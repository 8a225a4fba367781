package dcon_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"dcon"
)

// TestDestinationPolicyAllowsAddr lists the addresses the strict policy
// refuses, the public ones it allows, and what an allow list changes.
func TestDestinationPolicyAllowsAddr(t *testing.T) {
	t.Parallel()
	onPrem := dcon.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd12::/16")}}
	tests := []struct {
		addr   string
		policy dcon.DestinationPolicy
		want   bool
	}{
		{"8.8.8.8", dcon.DestinationPolicy{}, true},
		{"1.1.1.1", dcon.DestinationPolicy{}, true},
		{"2001:4860:4860::8888", dcon.DestinationPolicy{}, true},
		{"::ffff:8.8.8.8", dcon.DestinationPolicy{}, true},

		{"127.0.0.1", dcon.DestinationPolicy{}, false},
		{"127.255.255.254", dcon.DestinationPolicy{}, false},
		{"0.0.0.0", dcon.DestinationPolicy{}, false},
		{"0.1.2.3", dcon.DestinationPolicy{}, false},
		{"10.0.0.1", dcon.DestinationPolicy{}, false},
		{"172.16.0.1", dcon.DestinationPolicy{}, false},
		{"172.31.255.255", dcon.DestinationPolicy{}, false},
		{"192.168.1.1", dcon.DestinationPolicy{}, false},
		{"100.64.0.1", dcon.DestinationPolicy{}, false},
		{"169.254.169.254", dcon.DestinationPolicy{}, false},
		{"169.254.0.1", dcon.DestinationPolicy{}, false},
		{"224.0.0.1", dcon.DestinationPolicy{}, false},
		{"239.255.255.250", dcon.DestinationPolicy{}, false},
		{"255.255.255.255", dcon.DestinationPolicy{}, false},
		{"240.0.0.1", dcon.DestinationPolicy{}, false},
		{"192.0.2.1", dcon.DestinationPolicy{}, false},
		{"::", dcon.DestinationPolicy{}, false},
		{"::1", dcon.DestinationPolicy{}, false},
		{"::ffff:127.0.0.1", dcon.DestinationPolicy{}, false},
		{"::ffff:169.254.169.254", dcon.DestinationPolicy{}, false},
		{"::127.0.0.1", dcon.DestinationPolicy{}, false},
		{"64:ff9b::a9fe:a9fe", dcon.DestinationPolicy{}, false},
		{"2002:7f00:1::", dcon.DestinationPolicy{}, false},
		{"fe80::1", dcon.DestinationPolicy{}, false},
		{"fe80::1%eth0", dcon.DestinationPolicy{}, false},
		{"fc00::1", dcon.DestinationPolicy{}, false},
		{"fd00:ec2::254", dcon.DestinationPolicy{}, false},
		{"ff02::1", dcon.DestinationPolicy{}, false},
		{"2001:db8::1", dcon.DestinationPolicy{}, false},

		{"10.1.2.3", onPrem, true},
		{"::ffff:10.1.2.3", onPrem, true},
		{"10.2.0.1", onPrem, false},
		{"fd12::1", onPrem, true},
		{"127.0.0.1", onPrem, false},
		{"127.0.0.1", dcon.DestinationPolicy{AllowAll: true}, true},
		{"169.254.169.254", dcon.DestinationPolicy{AllowAll: true}, true},
	}
	for _, tt := range tests {
		if got := tt.policy.AllowsAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%+v.AllowsAddr(%s) = %v, want %v", tt.policy, tt.addr, got, tt.want)
		}
	}
	if (dcon.DestinationPolicy{AllowAll: true}).AllowsAddr(netip.Addr{}) {
		t.Error("the zero Addr is allowed")
	}
}

// TestValidateConnectorDestination checks the host of connector URLs: the odd
// forms that some parsers or dialers read as IP addresses are refused.
func TestValidateConnectorDestination(t *testing.T) {
	t.Parallel()
	const (
		nonPublic = "httpConfig.url: host is a loopback, private, link-local or otherwise non-public address"
		notAName  = "httpConfig.url: host is neither a DNS name nor an IP address in canonical form"
	)
	onPrem := dcon.ConnectorRules{Destinations: dcon.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("192.168.10.0/24")}}}
	tests := []struct {
		url   string
		rules dcon.ConnectorRules
		want  string
	}{
		{"https://example.com/hook", dcon.ConnectorRules{}, ""},
		{"https://EXAMPLE.com./hook", dcon.ConnectorRules{}, ""},
		{"https://my_host.example.com/", dcon.ConnectorRules{}, ""},
		{"https://xn--bcher-kva.example/", dcon.ConnectorRules{}, ""},
		{"https://93.184.216.34/", dcon.ConnectorRules{}, ""},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]:8443/", dcon.ConnectorRules{}, ""},
		{"https://127.0.0.1/", dcon.ConnectorRules{}, nonPublic},
		{"https://127.0.0.1:8443/", dcon.ConnectorRules{}, nonPublic},
		{"https://10.0.0.1/", dcon.ConnectorRules{}, nonPublic},
		{"https://169.254.169.254/latest/meta-data/", dcon.ConnectorRules{}, nonPublic},
		{"https://[::1]/", dcon.ConnectorRules{}, nonPublic},
		{"https://[::ffff:127.0.0.1]/", dcon.ConnectorRules{}, nonPublic},
		{"https://[::ffff:7f00:1]/", dcon.ConnectorRules{}, nonPublic},
		{"https://[fe80::1%25eth0]/", dcon.ConnectorRules{}, "httpConfig.url: host must not have an IPv6 zone"},
		{"https://[fd00::1]/", dcon.ConnectorRules{}, nonPublic},
		{"https://[ff02::1]/", dcon.ConnectorRules{}, nonPublic},
		{"https://0.0.0.0/", dcon.ConnectorRules{}, nonPublic},
		{"https://2130706433/", dcon.ConnectorRules{}, notAName},
		{"https://0x7f000001/", dcon.ConnectorRules{}, notAName},
		{"https://0x7f.1/", dcon.ConnectorRules{}, notAName},
		{"https://0x7F.0.0.1/", dcon.ConnectorRules{}, notAName},
		{"https://0177.0.0.1/", dcon.ConnectorRules{}, notAName},
		{"https://127.1/", dcon.ConnectorRules{}, notAName},
		{"https://127.0.1/", dcon.ConnectorRules{}, notAName},
		{"https://017700000001/", dcon.ConnectorRules{}, notAName},
		{"https://-bad.example.com/", dcon.ConnectorRules{}, notAName},
		{"https://a..b/", dcon.ConnectorRules{}, notAName},
		{"https://localhost/", dcon.ConnectorRules{}, "httpConfig.url: host is a loopback name"},
		{"https://LocalHost./", dcon.ConnectorRules{}, "httpConfig.url: host is a loopback name"},
		{"https://api.localhost/", dcon.ConnectorRules{}, "httpConfig.url: host is a loopback name"},
		{"https://192.168.10.20/", onPrem, ""},
		{"https://192.168.11.20/", onPrem, nonPublic},
		{"http://127.0.0.1:9000/", dcon.ConnectorRules{AllowHTTP: true}, ""},
		{"http://localhost:9000/", dcon.ConnectorRules{AllowHTTP: true}, ""},
	}
	for _, tt := range tests {
		c := &dcon.Connector{Type: dcon.ConnectorHTTPPush, Status: dcon.StatusActive, HTTP: dcon.HTTPConfig{URL: tt.url}}
		err := dcon.ValidateConnector(c, tt.rules)
		if got := dcon.ErrorMessage(err); err == nil && tt.want != "" || err != nil && got != tt.want {
			t.Errorf("%s: got %v, want %q", tt.url, err, tt.want)
		}
	}
}

// TestCheckConnectorDestination resolves names with a lookup the test
// controls: a name that resolves to any non-public address is refused.
func TestCheckConnectorDestination(t *testing.T) {
	t.Parallel()
	dns := map[string][]string{
		"public.example":   {"93.184.216.34"},
		"loopback.example": {"127.0.0.1"},
		"mixed.example":    {"93.184.216.34", "10.0.0.7"},
		"meta.example":     {"169.254.169.254"},
		"v6.example":       {"::1"},
		"onprem.example":   {"10.1.2.3"},
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		addrs, ok := dns[host]
		if !ok {
			return nil, errors.New("no such host")
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
	onPrem := dcon.ConnectorRules{Destinations: dcon.DestinationPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}}
	tests := []struct {
		url   string
		rules dcon.ConnectorRules
		ok    bool
	}{
		{"https://public.example/", dcon.ConnectorRules{}, true},
		{"https://unknown.example/", dcon.ConnectorRules{}, true},
		{"https://93.184.216.34/", dcon.ConnectorRules{}, true},
		{"https://loopback.example/", dcon.ConnectorRules{}, false},
		{"https://mixed.example:8443/", dcon.ConnectorRules{}, false},
		{"https://meta.example/", dcon.ConnectorRules{}, false},
		{"https://v6.example/", dcon.ConnectorRules{}, false},
		{"https://onprem.example/", dcon.ConnectorRules{}, false},
		{"https://onprem.example/", onPrem, true},
		{"http://loopback.example/", dcon.ConnectorRules{AllowHTTP: true}, true},
	}
	for _, tt := range tests {
		c := &dcon.Connector{HTTP: dcon.HTTPConfig{URL: tt.url}}
		tt.rules.LookupIP = lookup
		err := dcon.CheckConnectorDestination(context.Background(), c, tt.rules)
		if (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && dcon.ErrorCode(err) != dcon.EINVALID {
			t.Errorf("%s: code %s, want %s", tt.url, dcon.ErrorCode(err), dcon.EINVALID)
		}
	}
}
