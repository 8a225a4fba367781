package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeFlagsAreStrict checks that dcon serve, unless told otherwise,
// refuses non-public destinations, limits management calls to 25 per 5 s and
// does not limit publishing.
func TestServeFlagsAreStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args        []string
		dev         bool
		allowAll    bool
		allowed     string
		rate, pubRL string
	}{
		{nil, false, false, "", "25/5s", "off"},
		{[]string{"--dev"}, true, true, "", "off", "off"},
		{[]string{"--dev", "--rate-limit", "25/5s"}, true, true, "", "25/5s", "off"},
		{[]string{"--allow-destination", "10.20.0.0/16", "--allow-destination", "fd00::/8,192.168.1.7/24"}, false, false,
			"10.20.0.0/16,fd00::/8,192.168.1.0/24", "25/5s", "off"},
		{[]string{"--rate-limit", "100/1m", "--publish-rate-limit", "1000/1s"}, false, false, "", "100/1m0s", "1000/1s"},
		{[]string{"--rate-limit", "off"}, false, false, "", "off", "off"},
	}
	for _, tt := range tests {
		var sc securityConfig
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.Bool("dev", false, "")
		registerSecurityFlags(fs, &sc)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		sc.devDefaults(fs, tt.dev)
		p := sc.destinations(tt.dev)
		if p.AllowAll != tt.allowAll || (*prefixesFlag)(&p.Allow).String() != tt.allowed {
			t.Errorf("%v dev=%v: policy %+v", tt.args, tt.dev, p)
		}
		if rules := sc.connectorRules(tt.dev); rules.AllowHTTP != tt.dev || (rules.LookupIP == nil) != tt.allowAll {
			t.Errorf("%v dev=%v: rules %+v", tt.args, tt.dev, rules)
		}
		if sc.RateLimit.String() != tt.rate || sc.PublishRateLimit.String() != tt.pubRL {
			t.Errorf("%v: rate limits %s and %s", tt.args, sc.RateLimit, sc.PublishRateLimit)
		}
	}
	for _, bad := range [][]string{{"--allow-destination", "10.0.0.1"}, {"--allow-destination", "x"}, {"--rate-limit", "25"}} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		registerSecurityFlags(fs, &securityConfig{})
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
	// A serveConfig built by a test, not by flags, allows every destination.
	if p := (&securityConfig{}).destinations(false); !p.AllowAll {
		t.Error("the zero securityConfig is strict")
	}
}

// TestTLSListenerServesHTTP2 generates the self-signed pair, serves the API
// over it and checks that a client trusting the printed certificate speaks
// HTTP/2; a second start reuses the pair.
func TestTLSListenerServesHTTP2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sc := securityConfig{TLSSelfSigned: true}
	var out bytes.Buffer
	certFile, keyFile, err := sc.tlsFiles(dir, "127.0.0.1:0", time.Now(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), certFile) {
		t.Errorf("output %q does not say where the certificate is", out.String())
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	again, _, err := sc.tlsFiles(dir, "127.0.0.1:0", time.Now(), io.Discard)
	if err != nil || again != certFile {
		t.Fatalf("second start: %s, %v", again, err)
	}
	pem1, _ := os.ReadFile(certFile)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})}
	done := make(chan error, 1)
	go func() { done <- serveAPI(srv, ln, certFile, keyFile) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem1) {
		t.Fatal("no certificate in the file")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	for _, host := range []string{ln.Addr().String(), "localhost:" + portOf(ln.Addr())} {
		res, err := client.Get("https://" + host + "/v2/projects")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 || string(body) != "HTTP/2.0" {
			t.Errorf("%s: %s, served as %s; want HTTP/2", host, res.Proto, body)
		}
	}
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

func TestTLSFilesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []securityConfig{
		{TLSCert: junk},
		{TLSKey: junk},
		{TLSCert: junk, TLSKey: junk},
		{TLSCert: junk, TLSKey: junk, TLSSelfSigned: true},
	} {
		if _, _, err := sc.tlsFiles(dir, "127.0.0.1:8080", time.Now(), io.Discard); err == nil {
			t.Errorf("%+v: accepted", sc)
		}
	}
	if c, k, err := (&securityConfig{}).tlsFiles(dir, "127.0.0.1:8080", time.Now(), io.Discard); c != "" || k != "" || err != nil {
		t.Errorf("no TLS flags: %q %q %v", c, k, err)
	}
}

func TestCheckDataDirWarns(t *testing.T) {
	t.Parallel()
	for mode, warn := range map[os.FileMode]bool{0o700: false, 0o750: true, 0o755: true} {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		var buf bytes.Buffer
		checkDataDir(dir, slog.New(slog.NewTextHandler(&buf, nil)))
		if got := strings.Contains(buf.String(), "chmod 700"); got != warn {
			t.Errorf("mode %v: warned %v, want %v", mode, got, warn)
		}
	}
}
