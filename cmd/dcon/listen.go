package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"dcon/receiver"
)

// maxReceivedBody bounds what `dcon listen` reads of one request, and of the
// answer of --forward-to.
const maxReceivedBody = 1 << 20

// forwardTimeout is the time limit of one --forward-to request: dcon's own
// attempt timeout, so that the receiver's answer still reaches dcon.
const forwardTimeout = 10 * time.Second

// listenConfig is everything `dcon listen` can be told.
type listenConfig struct {
	Addr            string
	Secrets         stringsFlag // X-Dt-Signature secrets, old and new while rotating
	StandardSecrets stringsFlag // Standard Webhooks secrets (whsec_…)
	JWKSURL         string      // DT-Asymmetric-Signature keys
	Issuer          string      // iss of DT-Asymmetric-Signature; finds the JWKS when JWKSURL is empty
	Raw, Pretty     bool        // how each event is printed
	ForwardTo       string      // a local URL each verified request is passed on to
	TLS             bool        // serve HTTPS with a self-signed certificate
	TLSDir          string      // where that certificate is kept; "" is a temporary directory
	Connect         bool        // create a temporary connector pointing here
	Project         string      // the project of that connector
	Server          string      // the dcon server that connector is created on
	Credentials     string      // the key it is created with: a credentials file, as every client command's --credentials
	Events, Labels  listFlag    // that connector's event filter and labels

	api *cliOptions // how --connect reaches the server: --server, --credentials, as the client commands
}

// stringsFlag is a repeatable flag whose values are taken whole (a secret may
// hold a comma).
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, " ") }

func (s *stringsFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*s = append(*s, v)
	return nil
}

// verifies reports whether any signature is configured.
func (c *listenConfig) verifies() bool {
	return len(c.Secrets) > 0 || len(c.StandardSecrets) > 0 || c.JWKSURL != "" || c.Issuer != ""
}

func runListen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := listenConfig{}
	fs := newFlagSet("listen", `Run a receiver for a data connector: verify every request's signatures, print each event, answer 2xx
(401 to a bad signature). With --connect it also creates a data connector pointing at itself, deleted on exit.

  dcon listen --secret s3cret
  dcon listen --secret OLD --secret NEW                 # while rotating the connector's secret
  dcon listen --issuer http://127.0.0.1:8080 --pretty  # DT-Asymmetric-Signature, keys found by OIDC discovery
  dcon listen --secret s3cret --forward-to http://127.0.0.1:3000/hook
  dcon listen --project office --connect --label name  # needs 'dcon serve --dev', or --tls and --ca-file

--connect authenticates as the client commands do: DCON_KEY_ID and DCON_KEY_SECRET, else
--credentials, else what 'dcon login' kept (none: a server in --dev mode needs none).`, stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:9000", "`host:port` to listen on")
	fs.Var(&cfg.Secrets, "secret", "a `secret` the X-Dt-Signature must verify under (repeatable: give the old and the new one while rotating); requests with a bad or missing signature are refused with 401")
	fs.Var(&cfg.StandardSecrets, "standard-secret", "a Standard Webhooks `secret` (whsec_…) the webhook-signature must verify under (repeatable)")
	fs.StringVar(&cfg.JWKSURL, "jwks", "", "`URL` of the JWKS whose keys DT-Asymmetric-Signature must verify under")
	fs.StringVar(&cfg.Issuer, "issuer", "", "issuer `URL` of the dcon server: DT-Asymmetric-Signature's iss must equal it, and without --jwks the keys are found at <URL>/.well-known/openid-configuration")
	fs.BoolVar(&cfg.Raw, "raw", false, "print each body as received instead of a summary line")
	fs.BoolVar(&cfg.Pretty, "pretty", false, "print each body as indented JSON instead of a summary line")
	fs.StringVar(&cfg.ForwardTo, "forward-to", "", "pass each verified request on to this `URL` and answer dcon with its status")
	fs.BoolVar(&cfg.TLS, "tls", false, "serve HTTPS with a self-signed certificate; its PEM file is printed, for the server's --ca-file")
	fs.StringVar(&cfg.TLSDir, "tls-dir", "", "`directory` that keeps the --tls certificate and key across runs (default: a new temporary one each run)")
	fs.BoolVar(&cfg.Connect, "connect", false, "create a data connector in --project that points at this receiver, and delete it on exit")
	fs.StringVar(&cfg.Project, "project", "", "the project `id` of --connect")
	fs.StringVar(&cfg.Server, "server", "http://127.0.0.1:8080", "`URL` of the dcon server of --connect (when not given: the server the credentials name, if any)")
	fs.StringVar(&cfg.Credentials, "credentials", "", "with --connect, credentials `file` of a service account key (default: DCON_KEY_ID and DCON_KEY_SECRET, else what 'dcon login' kept)")
	fs.Var(&cfg.Events, "event", "with --connect, an event `type` to forward (repeatable, or comma-separated); none means every type")
	fs.Var(&cfg.Labels, "label", "with --connect, a device label `key` to include in each event (repeatable, or comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.api = &cliOptions{server: cfg.Server, credentials: cfg.Credentials, output: "table", fs: fs}
	if err := cfg.check(stdout); err != nil {
		return err
	}

	h, err := newListenHandler(stdout, &cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLS {
		certFile, cleanup, tlsConf, err := listenCertificate(cfg.TLSDir, cfg.Addr, time.Now())
		if err != nil {
			ln.Close()
			return err
		}
		defer cleanup()
		ln = tls.NewListener(ln, tlsConf)
		scheme = "https"
		fmt.Fprintf(stdout, "dcon listen: certificate in %s (start the server with --ca-file %s to trust it)\n", certFile, certFile)
	}
	self := scheme + "://" + dialable(ln.Addr()) + "/"
	fmt.Fprintf(stdout, "dcon listen: receiving on %s\n", self)

	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var tmp *tempConnector
	if cfg.Connect {
		if tmp, err = connectHere(ctx, &cfg, self); err != nil {
			_ = srv.Close()
			<-served
			return err
		}
		fmt.Fprintf(stdout, "dcon listen: created data connector %s in project %s, sending to %s; it is deleted on exit (Ctrl-C)\n", tmp.id, cfg.Project, self)
	}

	select {
	case err = <-served:
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(shut)
		cancel()
		err = <-served
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if tmp != nil {
		del, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if delErr := tmp.delete(del); delErr != nil {
			err = errors.Join(err, fmt.Errorf("delete the temporary data connector %s: %w", tmp.id, delErr))
		} else {
			fmt.Fprintf(stdout, "dcon listen: deleted data connector %s\n", tmp.id)
		}
	}
	return err
}

// check refuses contradictory flags and, for --connect without any signature
// configured, makes up a secret so that the receiver still verifies.
func (c *listenConfig) check(stdout io.Writer) error {
	if c.Raw && c.Pretty {
		return usagef("--raw and --pretty: choose one")
	}
	if c.TLSDir != "" && !c.TLS {
		return usagef("--tls-dir needs --tls")
	}
	if c.ForwardTo != "" {
		u, err := url.Parse(c.ForwardTo)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--forward-to %q: want an http:// or https:// URL such as http://127.0.0.1:3000/hook", c.ForwardTo)
		}
	}
	if !c.Connect {
		if c.Project != "" || len(c.Events) > 0 || len(c.Labels) > 0 {
			return usagef("--project, --event and --label are for --connect")
		}
		return nil
	}
	if c.Project == "" {
		return usagef("--connect needs --project (or DCON_PROJECT)")
	}
	if !c.verifies() {
		c.Secrets = stringsFlag{newSecret()}
		fmt.Fprintf(stdout, "dcon listen: the connector is signed with a new secret: %s\n", c.Secrets[0])
	}
	return nil
}

// newSecret returns a strong signature secret: 32 random bytes, base64url.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// dialable is the address a server on this machine can reach a listener at:
// an unspecified IP ("0.0.0.0", "::") becomes the loopback address.
func dialable(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// listenHandler is the HTTP handler of `dcon listen`: it verifies each
// request, prints it, and answers 200 or what --forward-to answered.
type listenHandler struct {
	out      io.Writer
	mu       sync.Mutex         // one print at a time
	verifier *receiver.Verifier // nil: nothing configured, accept unsigned requests
	format   string             // "line", "raw" or "pretty"
	forward  string             // --forward-to, or ""
	client   *http.Client       // for forward
}

func newListenHandler(out io.Writer, cfg *listenConfig) (*listenHandler, error) {
	h := &listenHandler{out: out, format: "line", forward: cfg.ForwardTo}
	switch {
	case cfg.Raw:
		h.format = "raw"
	case cfg.Pretty:
		h.format = "pretty"
	}
	if cfg.verifies() {
		v, err := receiver.NewVerifier(receiver.Config{
			Secrets:         cfg.Secrets,
			StandardSecrets: cfg.StandardSecrets,
			JWKSURL:         cfg.JWKSURL,
			Issuer:          cfg.Issuer,
		})
		if err != nil {
			return nil, usagef("%v", err)
		}
		h.verifier = v
	}
	if h.forward != "" {
		h.client = &http.Client{
			Timeout:       forwardTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return h, nil
}

func (h *listenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReceivedBody))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	verdict := "unsigned"
	if h.verifier != nil {
		if err := h.verifier.Verify(r, body); err != nil {
			status, why := http.StatusUnauthorized, "bad signature"
			if errors.Is(err, receiver.ErrKeyFetch) {
				status, why = http.StatusServiceUnavailable, "cannot check the signature"
			}
			h.printf("REFUSED %s: %s: %v\n", time.Now().UTC().Format(time.RFC3339), why, err)
			http.Error(w, why, status)
			return
		}
		verdict = "signature ok"
	}
	status := http.StatusOK
	if h.forward != "" {
		status = h.forwardTo(w, r, body)
		verdict += fmt.Sprintf(", forwarded: %d", status)
	} else {
		w.WriteHeader(status)
	}
	h.print(body, verdict)
}

// forwardTo passes the request on to --forward-to, headers (signatures
// included) and body unchanged, and writes its answer. It returns the status
// written: the forwarded one, or 502 when there was no answer.
func (h *listenHandler) forwardTo(w http.ResponseWriter, r *http.Request, body []byte) int {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, h.forward, bytes.NewReader(body))
	if err != nil {
		http.Error(w, "cannot forward", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	for k, vs := range r.Header {
		if !hopByHop(k) {
			req.Header[k] = vs
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.printf("FORWARD %s: %v\n", time.Now().UTC().Format(time.RFC3339), err)
		http.Error(w, "the forwarded-to receiver did not answer", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxReceivedBody))
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
	return resp.StatusCode
}

// hopByHop reports whether a request header belongs to one connection and
// is not to be forwarded (RFC 9110, section 7.6.1).
func hopByHop(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length":
		return true
	}
	return false
}

func (h *listenHandler) printf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.out, format, args...)
}

// print writes one received body in the chosen format.
func (h *listenHandler) print(body []byte, verdict string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.format {
	case "raw":
		fmt.Fprintf(h.out, "%s\n", body)
		return
	case "pretty":
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			fmt.Fprintf(h.out, "%s\n", buf.Bytes())
			return
		}
	}
	var m struct {
		Event struct {
			EventID    string          `json:"eventId"`
			TargetName string          `json:"targetName"`
			EventType  string          `json:"eventType"`
			Data       json.RawMessage `json:"data"`
		} `json:"event"`
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		fmt.Fprintf(h.out, "received %d bytes that are not an event (%s): %v\n", len(body), verdict, err)
		return
	}
	labels, _ := json.Marshal(m.Labels)
	fmt.Fprintf(h.out, "%s %-14s %s %s labels=%s data=%s (%s)\n", time.Now().UTC().Format("15:04:05.000"),
		m.Event.EventType, m.Event.EventID, m.Event.TargetName, labels, m.Event.Data, verdict)
}

// tempConnector is the data connector --connect created.
type tempConnector struct {
	client      *cliClient
	project, id string
}

// connectHere creates a data connector in cfg.Project that sends to self,
// signed with the last --secret (the newest, while rotating), with the
// client commands' credentials and server (cfg.api).
func connectHere(ctx context.Context, cfg *listenConfig, self string) (*tempConnector, error) {
	c, err := cfg.api.client(false)
	if err != nil {
		return nil, err
	}
	httpConfig := map[string]any{"url": self}
	if n := len(cfg.Secrets); n > 0 {
		httpConfig["signatureSecret"] = cfg.Secrets[n-1]
	}
	raw, err := c.post(ctx, projectPath(cfg.Project, "dataconnectors"), map[string]any{
		"type":        "HTTP_PUSH",
		"displayName": "dcon listen (temporary)",
		"events":      nonNil(cfg.Events),
		"labels":      nonNil(cfg.Labels),
		"httpConfig":  httpConfig,
	})
	if err != nil {
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest && !cfg.TLS:
			return nil, fmt.Errorf("create a data connector for %s: %w; a plain http:// receiver needs the server started with --dev, or use --tls and start the server with --ca-file", self, err)
		case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
			return nil, fmt.Errorf("create a data connector for %s: %w; the server needs a service account key: 'dcon login', --credentials, or DCON_KEY_ID and DCON_KEY_SECRET", self, err)
		}
		return nil, fmt.Errorf("create a data connector for %s: %w", self, err)
	}
	var res struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.Name == "" {
		return nil, fmt.Errorf("create a data connector: the answer names no connector")
	}
	return &tempConnector{client: c, project: cfg.Project, id: resourceID(res.Name)}, nil
}

func (t *tempConnector) delete(ctx context.Context) error {
	_, err := t.client.del(ctx, connectorPath(t.project, t.id))
	return err
}

// listenCertificate returns the TLS configuration of `dcon listen --tls` and
// the PEM file of its certificate. With dir set, the certificate and key are
// read from dir/cert.pem and dir/key.pem, and made and written there when
// they are missing, expired or do not name addr's host; without, they are
// made in a temporary directory that cleanup removes.
func listenCertificate(dir, addr string, now time.Time) (certFile string, cleanup func(), conf *tls.Config, err error) {
	cleanup = func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dcon-listen-tls-"); err != nil {
			return "", nil, nil, fmt.Errorf("--tls: %w", err)
		}
		tmp := dir
		cleanup = func() { _ = os.RemoveAll(tmp) }
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, nil, fmt.Errorf("--tls-dir: %w", err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	host, _, _ := net.SplitHostPort(addr)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || !certFits(cert.Leaf, host, now) {
		if err := writeSelfSigned(certFile, keyFile, host, now); err != nil {
			cleanup()
			return "", nil, nil, fmt.Errorf("--tls: %w", err)
		}
		if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			cleanup()
			return "", nil, nil, fmt.Errorf("--tls: %w", err)
		}
	}
	return certFile, cleanup, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// certFits reports whether a certificate is valid at now, for a while yet,
// and names host (the loopback address when host is unspecified).
func certFits(c *x509.Certificate, host string, now time.Time) bool {
	if c == nil || now.Before(c.NotBefore) || now.Add(24*time.Hour).After(c.NotAfter) {
		return false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return c.VerifyHostname(host) == nil
}

// writeSelfSigned makes a self-signed P-256 certificate, valid for a year,
// for localhost, the loopback addresses and host, and writes it and its key
// as PEM.
func writeSelfSigned(certFile, keyFile, host string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dcon listen"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // its own root, for --ca-file
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if ip == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
