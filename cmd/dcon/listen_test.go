package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon/internal/auth"
	"dcon/internal/signature"
)

// syncBuffer is a bytes.Buffer safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitOutput waits until out matches re and returns the first submatch (or
// the match), failing the test after a while.
func waitOutput(t *testing.T, out *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[len(m)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("output never matched %s:\n%s", re, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const listenBody = `{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/p/devices/d","eventType":"touch","data":{"touch":{}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"x"},"metadata":{}}`

// post sends body to url with headers and returns the status and answer.
func post(t *testing.T, client *http.Client, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

func dtToken(secret, body string, iat time.Time) string {
	return string(signature.AppendDT(nil, []byte(secret), []byte(body), iat, "c82gg99hga35jc2afkeg"))
}

func TestListenChecksSignatures(t *testing.T) {
	t.Parallel()
	now := time.Now()
	whsec := signature.NewWhsec()
	whkey, err := signature.ParseWhsec(whsec)
	if err != nil {
		t.Fatal(err)
	}
	standard := func(ts time.Time) map[string]string {
		return map[string]string{
			"webhook-id":        "msg_1",
			"webhook-timestamp": strconv.FormatInt(ts.Unix(), 10),
			"webhook-signature": signature.StandardSign(whkey, "msg_1", ts, []byte(listenBody)),
		}
	}
	tests := []struct {
		name    string
		cfg     listenConfig
		headers map[string]string
		status  int
		prints  string
	}{
		{"good signature", listenConfig{Secrets: stringsFlag{"s3cret"}},
			map[string]string{"X-Dt-Signature": dtToken("s3cret", listenBody, now)}, http.StatusOK,
			`touch          c82gg9catj3vmh4248og projects/p/devices/d labels={"name":"x"} data={"touch":{}} (signature ok)`},
		{"wrong secret", listenConfig{Secrets: stringsFlag{"s3cret"}},
			map[string]string{"X-Dt-Signature": dtToken("other", listenBody, now)}, http.StatusUnauthorized, "REFUSED"},
		{"no signature", listenConfig{Secrets: stringsFlag{"s3cret"}}, nil, http.StatusUnauthorized, "signature missing"},
		{"expired", listenConfig{Secrets: stringsFlag{"s3cret"}},
			map[string]string{"X-Dt-Signature": dtToken("s3cret", listenBody, now.Add(-2*time.Hour))}, http.StatusUnauthorized, "expired"},
		{"old secret while rotating", listenConfig{Secrets: stringsFlag{"old", "new"}},
			map[string]string{"X-Dt-Signature": dtToken("old", listenBody, now)}, http.StatusOK, "(signature ok)"},
		{"new secret while rotating", listenConfig{Secrets: stringsFlag{"old", "new"}},
			map[string]string{"X-Dt-Signature": dtToken("new", listenBody, now)}, http.StatusOK, "(signature ok)"},
		{"unsigned, nothing configured", listenConfig{}, nil, http.StatusOK, "(unsigned)"},
		{"standard webhooks", listenConfig{StandardSecrets: stringsFlag{whsec}}, standard(now), http.StatusOK, "(signature ok)"},
		{"standard webhooks too old", listenConfig{StandardSecrets: stringsFlag{whsec}}, standard(now.Add(-10 * time.Minute)),
			http.StatusUnauthorized, "webhook-signature: signature expired"},
		{"raw", listenConfig{Raw: true}, nil, http.StatusOK, listenBody + "\n"},
		{"pretty", listenConfig{Pretty: true}, nil, http.StatusOK, "{\n  \"event\": {\n    \"eventId\": \"c82gg9catj3vmh4248og\","},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out syncBuffer
			h, err := newListenHandler(&out, &tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			if got, answer := post(t, srv.Client(), srv.URL, listenBody, tt.headers); got != tt.status {
				t.Errorf("status %d (%s), want %d", got, answer, tt.status)
			}
			if !strings.Contains(out.String(), tt.prints) {
				t.Errorf("output %q lacks %q", out.String(), tt.prints)
			}
		})
	}
}

// TestListenES256 checks DT-Asymmetric-Signature against keys found by OIDC
// discovery, and 503 when the keys cannot be fetched.
func TestListenES256(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ks, err := signature.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := signature.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/.well-known/jwks.json"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		b, _ := ks.JWKS(time.Now())
		_, _ = w.Write(b)
	})
	keys := httptest.NewServer(mux)
	t.Cleanup(keys.Close) // after the parallel subtests
	issuer = keys.URL

	sign := func(set *signature.KeySet, iss string) map[string]string {
		tok, err := set.Sign(nil, []byte(listenBody), now, iss, "org")
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"DT-Asymmetric-Signature": string(tok)}
	}
	tests := []struct {
		name    string
		issuer  string
		headers map[string]string
		status  int
		prints  string
	}{
		{"good", issuer, sign(ks, issuer), http.StatusOK, "(signature ok)"},
		{"unknown key", issuer, sign(other, issuer), http.StatusUnauthorized, "unknown signing key"},
		{"wrong issuer", issuer, sign(ks, "https://elsewhere.example"), http.StatusUnauthorized, "unexpected issuer"},
		{"no keys to be had", "http://127.0.0.1:1", sign(ks, "http://127.0.0.1:1"), http.StatusServiceUnavailable, "cannot check the signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out syncBuffer
			h, err := newListenHandler(&out, &listenConfig{Issuer: tt.issuer})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			if got, answer := post(t, srv.Client(), srv.URL, listenBody, tt.headers); got != tt.status {
				t.Errorf("status %d (%s), want %d", got, answer, tt.status)
			}
			if !strings.Contains(out.String(), tt.prints) {
				t.Errorf("output %q lacks %q", out.String(), tt.prints)
			}
		})
	}
}

// TestListenForwardTo checks that a verified request is passed on, its
// signature included, and that dcon gets the forwarded-to receiver's status.
func TestListenForwardTo(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var gotSig []string
	answer := http.StatusAccepted
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if string(body) != listenBody {
			t.Errorf("forwarded body %q", body)
		}
		gotSig = append(gotSig, r.Header.Get("X-Dt-Signature"))
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(answer)
		_, _ = w.Write([]byte("local says hi"))
	}))
	defer local.Close()

	var out syncBuffer
	h, err := newListenHandler(&out, &listenConfig{Secrets: stringsFlag{"s3cret"}, ForwardTo: local.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tok := dtToken("s3cret", listenBody, time.Now())
	sig := map[string]string{"X-Dt-Signature": tok}

	if status, body := post(t, srv.Client(), srv.URL, listenBody, sig); status != http.StatusAccepted || body != "local says hi" {
		t.Errorf("answer %d %q, want 202 from the local receiver", status, body)
	}
	mu.Lock()
	answer = http.StatusServiceUnavailable
	mu.Unlock()
	if status, _ := post(t, srv.Client(), srv.URL, listenBody, sig); status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want the local receiver's 503", status)
	}
	if status, _ := post(t, srv.Client(), srv.URL, listenBody, map[string]string{"X-Dt-Signature": dtToken("bad", listenBody, time.Now())}); status != http.StatusUnauthorized {
		t.Errorf("bad signature: status %d, want 401, not forwarded", status)
	}
	mu.Lock()
	if len(gotSig) != 2 || gotSig[0] != tok {
		t.Errorf("the local receiver got signatures %q, want the verified request's twice", gotSig)
	}
	mu.Unlock()
	if !strings.Contains(out.String(), "(signature ok, forwarded: 202)") || !strings.Contains(out.String(), "forwarded: 503") {
		t.Errorf("output %q", out.String())
	}

	local.Close()
	if status, _ := post(t, srv.Client(), srv.URL, listenBody, sig); status != http.StatusBadGateway {
		t.Errorf("local receiver down: status %d, want 502", status)
	}
}

// listenRun is one `dcon listen` running in process.
type listenRun struct {
	out, errOut syncBuffer
	url         string // where it receives
	cancel      context.CancelFunc
	done        chan error
}

// startListen runs `dcon listen args` until the test ends (or stop), and
// waits until it receives.
func startListen(t *testing.T, args ...string) *listenRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listenRun{cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- runListen(ctx, args, &l.out, &l.errOut) }()
	t.Cleanup(func() { _ = l.stop(t) })
	re := regexp.MustCompile(`receiving on (\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-l.done:
			l.done <- err
			t.Fatalf("dcon listen %s ended: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, l.out.String(), l.errOut.String())
		default:
		}
		if m := re.FindStringSubmatch(l.out.String()); m != nil {
			l.url = m[1]
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("dcon listen never said where it receives: %s", l.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop interrupts it, as Ctrl-C does, and returns what it returned.
func (l *listenRun) stop(t *testing.T) error {
	t.Helper()
	l.cancel()
	select {
	case err := <-l.done:
		l.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("dcon listen did not stop")
		return nil
	}
}

func TestListenRuns(t *testing.T) {
	t.Parallel()
	l := startListen(t, "--addr", "127.0.0.1:0", "--secret", "s3cret", "--secret", "with,comma")
	sig := map[string]string{"X-Dt-Signature": dtToken("with,comma", listenBody, time.Now())}
	if status, _ := post(t, &http.Client{}, l.url, listenBody, sig); status != http.StatusOK {
		t.Errorf("status %d, want 200", status)
	}
	if status, _ := post(t, &http.Client{}, l.url, listenBody, nil); status != http.StatusUnauthorized {
		t.Errorf("unsigned: status %d, want 401", status)
	}
	if err := l.stop(t); err != nil {
		t.Fatal(err)
	}
	if out := l.out.String(); strings.Count(out, "(signature ok)") != 1 || strings.Count(out, "REFUSED") != 1 {
		t.Errorf("output %q", out)
	}
}

// trusting returns a client that trusts the certificate in file.
func trusting(t *testing.T, file string) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("%s holds no certificate", file)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestListenTLS checks --tls: HTTPS with a certificate the printed PEM file
// lets a client verify, kept across runs with --tls-dir.
func TestListenTLS(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	certRe := regexp.MustCompile(`certificate in (\S+) `)
	var first []byte
	for run := range 2 {
		l := startListen(t, "--addr", "127.0.0.1:0", "--tls", "--tls-dir", dir)
		if !strings.HasPrefix(l.url, "https://127.0.0.1:") {
			t.Fatalf("receives on %s, want https://127.0.0.1:…", l.url)
		}
		certFile := waitOutput(t, &l.out, certRe)
		if certFile != filepath.Join(dir, "cert.pem") {
			t.Errorf("certificate in %s, want in %s", certFile, dir)
		}
		if status, _ := post(t, trusting(t, certFile), l.url, listenBody, nil); status != http.StatusOK {
			t.Errorf("status %d, want 200", status)
		}
		if err := l.stop(t); err != nil {
			t.Fatal(err)
		}
		pemData, _ := os.ReadFile(certFile)
		if run == 0 {
			first = pemData
		} else if !bytes.Equal(first, pemData) {
			t.Error("the second run made a new certificate instead of reusing the one in --tls-dir")
		}
	}

	// Without --tls-dir the certificate is temporary.
	l := startListen(t, "--addr", "127.0.0.1:0", "--tls")
	certFile := waitOutput(t, &l.out, certRe)
	if status, _ := post(t, trusting(t, certFile), l.url, listenBody, nil); status != http.StatusOK {
		t.Errorf("status %d, want 200", status)
	}
	if err := l.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(certFile); !os.IsNotExist(err) {
		t.Errorf("temporary certificate %s left behind (%v)", certFile, err)
	}
}

// connectorCount returns how many data connectors the node's project has.
func connectorCount(api *apiClient) int {
	api.t.Helper()
	var list struct {
		DataConnectors []connectorResource `json:"dataConnectors"`
	}
	api.mustCall("GET", "/v2/projects/"+api.project+"/dataconnectors", nil, &list)
	return len(list.DataConnectors)
}

// TestListenConnect runs a real node and `dcon listen --connect`: the
// temporary connector delivers a published event, signed, and is deleted on
// exit.
func TestListenConnect(t *testing.T) {
	t.Parallel()
	api := startNode(t, serveConfig{Dev: true})
	l := startListen(t, "--addr", "127.0.0.1:0", "--connect", "--project", api.project, "--server", api.base, "--label", "name")
	waitOutput(t, &l.out, regexp.MustCompile(`created data connector \S+`))
	if !strings.Contains(l.out.String(), "signed with a new secret") {
		t.Errorf("without --secret, --connect must make one up: %s", l.out.String())
	}
	if n := connectorCount(api); n != 1 {
		t.Fatalf("%d connectors, want the temporary one", n)
	}
	dev := createDevice(api, "temperature", map[string]string{"name": "office", "floor": "2"})
	publish(api, dev, "temperature", map[string]any{"value": 21.5})
	line := waitOutput(t, &l.out, regexp.MustCompile(`(temperature .*)\n`))
	if !strings.Contains(line, `labels={"name":"office"}`) || !strings.HasSuffix(line, "(signature ok)") {
		t.Errorf("printed %q, want the event with its name label, signature ok", line)
	}
	if err := l.stop(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.out.String(), "deleted data connector") {
		t.Errorf("output %q", l.out.String())
	}
	if n := connectorCount(api); n != 0 {
		t.Errorf("%d connectors left after exit, want 0", n)
	}
}

// TestListenConnectTLS connects a --tls receiver to a node that is not in
// development mode and trusts the receiver's certificate.
func TestListenConnectTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, _, _, err := listenCertificate(dir, "127.0.0.1:0", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	api := startNode(t, serveConfig{CAFile: certFile})
	l := startListen(t, "--addr", "127.0.0.1:0", "--tls", "--tls-dir", dir, "--secret", "s3cret",
		"--connect", "--project", api.project, "--server", api.base, "--event", "touch")
	waitOutput(t, &l.out, regexp.MustCompile(`created data connector \S+`))
	dev := createDevice(api, "touch", nil)
	publish(api, dev, "touch", map[string]any{})
	waitOutput(t, &l.out, regexp.MustCompile(`(touch .*\(signature ok\))`))
	if err := l.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := connectorCount(api); n != 0 {
		t.Errorf("%d connectors left after exit, want 0", n)
	}
}

// TestListenConnectNeedsDev checks the hint when the server refuses an
// http:// receiver.
func TestListenConnectNeedsDev(t *testing.T) {
	t.Parallel()
	api := startNode(t, serveConfig{})
	var out, errOut syncBuffer
	err := runListen(context.Background(), []string{"--addr", "127.0.0.1:0", "--connect", "--project", api.project, "--server", api.base}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--dev") {
		t.Fatalf("err = %v, want a hint about --dev", err)
	}
}

func TestListenFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--raw", "--pretty"}, "choose one"},
		{[]string{"--connect"}, "--connect needs --project"},
		{[]string{"--project", "p"}, "are for --connect"},
		{[]string{"--tls-dir", "x"}, "--tls-dir needs --tls"},
		{[]string{"--forward-to", "ftp://x"}, "--forward-to"},
		{[]string{"--secret", ""}, "empty value"},
		{[]string{"--standard-secret", "not-base64!"}, "Standard Webhooks secret"},
	}
	for _, tt := range tests {
		r := runCLI(t, "", append([]string{"listen", "--addr", "127.0.0.1:0"}, tt.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("dcon listen %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), r.code, r.stderr, exitUsage, tt.want)
		}
	}
}

// TestListenConnectAuthenticates runs `dcon listen --connect` against a
// server with authentication: it creates (and deletes) its connector with
// the client commands' credentials — here a developer's credentials file,
// which also names the server, so no --server — and a key that the server
// refuses gets a hint about credentials rather than about --dev.
func TestListenConnectAuthenticates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, _, _, err := listenCertificate(dir, "127.0.0.1:0", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a := startAuthNode(t, serveConfig{CAFile: certFile})
	owner := a.client(t, basic(a.creds.ServiceAccount.KeyID, a.creds.ServiceAccount.Secret))
	owner.project = a.creds.Project
	writeCreds := func(name string, acc account) string {
		path := filepath.Join(t.TempDir(), name)
		err := auth.WriteCredentials(path, &auth.Credentials{
			ServiceAccount: auth.CredentialsAccount{KeyID: acc.keyID, Secret: acc.secret, Email: acc.email, Algorithm: "HS256", TokenEndpoint: a.base + auth.TokenPath},
			Project:        a.creds.Project,
			APIURL:         a.base + "/v2",
		})
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	developer := writeCreds("developer.json", newAccount(t, owner, a.creds.Project, "developer"))

	l := startListen(t, "--addr", "127.0.0.1:0", "--tls", "--tls-dir", dir, "--secret", "s3cret",
		"--connect", "--project", a.creds.Project, "--credentials", developer, "--event", "touch")
	waitOutput(t, &l.out, regexp.MustCompile(`created data connector \S+`))
	if n := connectorCount(owner); n != 1 {
		t.Fatalf("%d connectors, want the temporary one", n)
	}
	dev := createDevice(owner, "touch", nil)
	publish(owner, dev, "touch", map[string]any{})
	waitOutput(t, &l.out, regexp.MustCompile(`(touch .*\(signature ok\))`))
	if err := l.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := connectorCount(owner); n != 0 {
		t.Errorf("%d connectors left after exit, want 0", n)
	}

	// A wrong secret: 401, and a hint about credentials.
	wrong := writeCreds("wrong.json", account{keyID: a.creds.ServiceAccount.KeyID, secret: otherFirstChar(a.creds.ServiceAccount.Secret)})
	var out, errOut syncBuffer
	err = runListen(context.Background(), []string{"--addr", "127.0.0.1:0", "--tls", "--tls-dir", dir,
		"--connect", "--project", a.creds.Project, "--credentials", wrong}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "(401)") || !strings.Contains(err.Error(), "dcon login") {
		t.Errorf("with a wrong secret: %v; want a 401 and a hint about credentials", err)
	}
	// A reader may not create connectors: 403, and nothing is left.
	reader := writeCreds("reader.json", newAccount(t, owner, a.creds.Project, "reader"))
	err = runListen(context.Background(), []string{"--addr", "127.0.0.1:0", "--tls", "--tls-dir", dir,
		"--connect", "--project", a.creds.Project, "--credentials", reader}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "(403)") {
		t.Errorf("as a reader: %v; want a 403", err)
	}
	if n := connectorCount(owner); n != 0 {
		t.Errorf("%d connectors after refusals, want 0", n)
	}
}
