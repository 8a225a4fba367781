package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dcon"
	"dcon/internal/httpapi"
)

// securityConfig is what serve is told about destinations, rate limits and
// TLS on the API listener.
type securityConfig struct {
	// Destinations is the policy of connector endpoints, at creation and at
	// every dial. runServe always sets it: strict, plus --allow-destination
	// ranges (--dev allows everything). Nil, in tests that build a
	// serveConfig themselves, allows every destination.
	Destinations *dcon.DestinationPolicy
	// LookupIP resolves endpoint host names for the checks; nil means the
	// system's resolver. Tests inject one.
	LookupIP dcon.LookupFunc
	// RateLimit limits management calls per caller; PublishRateLimit limits
	// publishing. The zero value is no limit (tests); runServe's defaults are
	// 25/5s and off.
	RateLimit, PublishRateLimit httpapi.RateLimit
	// TLSCert and TLSKey are PEM files for the API listener; TLSSelfSigned
	// generates (once) a self-signed pair in the data directory instead.
	TLSCert, TLSKey string
	TLSSelfSigned   bool
}

// registerSecurityFlags adds the flags of sc to fs and makes the destination
// policy strict.
func registerSecurityFlags(fs *flag.FlagSet, sc *securityConfig) {
	sc.Destinations = &dcon.DestinationPolicy{}
	sc.RateLimit = httpapi.DefaultRateLimit
	fs.Var((*prefixesFlag)(&sc.Destinations.Allow), "allow-destination",
		"a `CIDR` range of non-public addresses that connector endpoints may have all the same, for receivers on premises (repeatable, or comma-separated); without it, loopback, private, link-local and metadata addresses are refused")
	fs.Var(&sc.RateLimit, "rate-limit", "management calls allowed per service account (per client IP without authentication, and at the token endpoint), as `requests/window` (for example 25/5s), or off")
	fs.Var(&sc.PublishRateLimit, "publish-rate-limit", "publish calls allowed per service account (per client IP without authentication), as `requests/window` (for example 1000/1s), or off")
	fs.StringVar(&sc.TLSCert, "tls-cert", "", "PEM `file` of the API's TLS certificate (with --tls-key): serve https:// and HTTP/2")
	fs.StringVar(&sc.TLSKey, "tls-key", "", "PEM `file` of the private key of --tls-cert")
	fs.BoolVar(&sc.TLSSelfSigned, "tls-self-signed", false, "serve https:// with a self-signed certificate generated in the data directory (development; clients must trust the printed file)")
}

// devDefaults turns the management rate limit off in development mode
// (--dev: quick starts, tests, benchmarks), unless --rate-limit was given.
func (sc *securityConfig) devDefaults(fs *flag.FlagSet, dev bool) {
	if !dev {
		return
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "rate-limit" })
	if !set {
		sc.RateLimit = httpapi.RateLimit{}
	}
}

// prefixesFlag is a repeatable flag of CIDR ranges.
type prefixesFlag []netip.Prefix

func (p *prefixesFlag) String() string {
	s := make([]string, len(*p))
	for i, pre := range *p {
		s[i] = pre.String()
	}
	return strings.Join(s, ",")
}

func (p *prefixesFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		pre, err := netip.ParsePrefix(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("%q is not a CIDR range such as 10.20.0.0/16", part)
		}
		*p = append(*p, pre.Masked())
	}
	return nil
}

// connectorRules are the rules connectors are validated against.
func (sc *securityConfig) connectorRules(dev bool) dcon.ConnectorRules {
	p := sc.destinations(dev)
	rules := dcon.ConnectorRules{AllowHTTP: dev, Destinations: *p}
	if !p.AllowAll {
		rules.LookupIP = sc.lookup()
	}
	return rules
}

// destinations is the endpoint policy of the delivery client.
func (sc *securityConfig) destinations(dev bool) *dcon.DestinationPolicy {
	p := dcon.DestinationPolicy{AllowAll: true}
	if sc.Destinations != nil {
		p = *sc.Destinations
	}
	p.AllowAll = p.AllowAll || dev
	return &p
}

func (sc *securityConfig) lookup() dcon.LookupFunc {
	if sc.LookupIP != nil {
		return sc.LookupIP
	}
	r := &net.Resolver{}
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		return r.LookupNetIP(ctx, "ip", host)
	}
}

// rateLimited wraps the API in the rate limits of management and publish
// calls. It goes behind the Guard, which authenticates the caller: each
// service account has its own budget (httpapi.CallerKey); without
// authentication, each client IP.
func (sc *securityConfig) rateLimited(api http.Handler, log *slog.Logger) http.Handler {
	if sc.RateLimit.Off() && sc.PublishRateLimit.Off() {
		return api
	}
	return (&httpapi.RateLimiter{Management: sc.RateLimit, Publish: sc.PublishRateLimit, Logger: log}).Handler(api)
}

// tokenLimited wraps the Guard in the limit of the token endpoint, which the
// Guard serves before anyone is authenticated: --rate-limit per client IP.
func (sc *securityConfig) tokenLimited(guard http.Handler, log *slog.Logger) http.Handler {
	if sc.RateLimit.Off() {
		return guard
	}
	return (&httpapi.RateLimiter{Token: sc.RateLimit, Logger: log}).Handler(guard)
}

// loginLimited wraps the dashboard's login POST in the same limit as the
// token endpoint: --rate-limit per client IP (its callers are not
// authenticated yet), with a budget of its own; past it, 429 with
// Retry-After, before the secret is checked.
func (sc *securityConfig) loginLimited(login http.Handler, log *slog.Logger) http.Handler {
	if sc.RateLimit.Off() {
		return login
	}
	perIP := func(*http.Request) string { return "" } // "": the client's IP address
	return (&httpapi.RateLimiter{Management: sc.RateLimit, Key: perIP, Logger: log}).Handler(login)
}

// tlsFiles returns the certificate and key files the API listener serves
// with, "" and "" for plain HTTP. With --tls-self-signed it generates them in
// the data directory on first use, for the hosts of addr and loopback, and
// says where the certificate is for clients to trust.
func (sc *securityConfig) tlsFiles(dataDir, addr string, now time.Time, stdout io.Writer) (cert, key string, err error) {
	switch {
	case sc.TLSSelfSigned && (sc.TLSCert != "" || sc.TLSKey != ""):
		return "", "", usagef("--tls-self-signed and --tls-cert/--tls-key: choose one")
	case (sc.TLSCert == "") != (sc.TLSKey == ""):
		return "", "", usagef("--tls-cert and --tls-key go together")
	case sc.TLSCert != "":
		if _, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey); err != nil {
			return "", "", usagef("--tls-cert/--tls-key: %v", err)
		}
		return sc.TLSCert, sc.TLSKey, nil
	case !sc.TLSSelfSigned:
		return "", "", nil
	}
	cert, key, err = selfSignedPair(filepath.Join(dataDir, "tls"), addr, now)
	if err != nil {
		return "", "", fmt.Errorf("--tls-self-signed: %w", err)
	}
	fmt.Fprintf(stdout, "TLS: self-signed certificate %s (clients trust it with, for example, curl --cacert %s)\n", cert, cert)
	return cert, key, nil
}

// selfSignedPair returns dir/api-cert.pem and dir/api-key.pem, made now
// unless they exist and the certificate is valid for another day at least.
// The key file is owner-only.
func selfSignedPair(dir, addr string, now time.Time) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "api-cert.pem"), filepath.Join(dir, "api-key.pem")
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && now.Add(24*time.Hour).Before(pair.Leaf.NotAfter) {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dcon (self-signed)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that clients can trust it as its own CA
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip != nil {
			if !ip.IsLoopback() && !ip.IsUnspecified() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", keyDER); err != nil {
		return "", "", err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// writePEM writes one PEM block to path, owner-only, replacing it whole.
func writePEM(path, typ string, der []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := errors.Join(pem.Encode(tmp, &pem.Block{Type: typ, Bytes: der}), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// serveAPI serves srv on ln: over TLS, with HTTP/2 offered by ALPN, when
// certFile is set; else plain HTTP/1.1.
func serveAPI(srv *http.Server, ln net.Listener, certFile, keyFile string) error {
	if certFile == "" {
		return srv.Serve(ln)
	}
	if srv.TLSConfig == nil {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return srv.ServeTLS(ln, certFile, keyFile) // adds "h2" to NextProtos
}

// checkDataDir warns when the data directory, which holds secrets (signing
// keys, connector secrets, credentials), can be read by others than its owner.
func checkDataDir(dir string, log *slog.Logger) {
	st, err := os.Stat(dir)
	if err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("the data directory can be read by other users; it holds secrets: chmod 700 it", "dir", dir, "mode", st.Mode().Perm().String())
	}
}
