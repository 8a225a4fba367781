package receiving_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon/internal/signature"
)

// The secrets the examples are started with: X-Dt-Signature while rotating
// (new and old), and a Standard Webhooks secret.
const (
	newSecret = "new-secret"
	oldSecret = "old-secret"
)

// issuer is a stand-in for dcon's OIDC discovery and JWKS: the keys of a
// KeySet, published as dcon publishes them.
type issuer struct {
	url  string
	keys *signature.KeySet
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	ks, err := signature.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{keys: ks}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.url, "jwks_uri": is.url + "/.well-known/jwks.json"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		b, err := ks.JWKS(time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	is.url = srv.URL
	return is
}

// eventBody is a body as dcon sends it, for the event id.
func eventBody(id string) []byte {
	return []byte(`{"event":{"eventId":"` + id + `","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}`)
}

// signing says how one request is signed; the zero value of a field means
// "as dcon does, now".
type signing struct {
	secret   string            // X-Dt-Signature secret; "" is newSecret
	dtAge    time.Duration     // how long ago the X-Dt-Signature was made
	dtToken  string            // replaces the X-Dt-Signature made
	esKeys   *signature.KeySet // signs DT-Asymmetric-Signature; nil is the issuer's
	esAge    time.Duration     // how long ago the DT-Asymmetric-Signature was made
	iss      string            // its iss; "" is the issuer's URL
	whsec    string            // Standard Webhooks secret; "" is the example's
	whAge    time.Duration     // how long ago webhook-timestamp was
	omitDT   bool              // send no X-Dt-Signature
	tampered bool              // change the body after signing
}

// sign returns the headers dcon sends with body, signed as s says.
func (s signing) sign(t *testing.T, is *issuer, whsec string, body []byte) http.Header {
	t.Helper()
	now := time.Now()
	h := http.Header{"Content-Type": {"application/json"}}
	secret := s.secret
	if secret == "" {
		secret = newSecret
	}
	if !s.omitDT {
		tok := string(signature.AppendDT(nil, []byte(secret), body, now.Add(-s.dtAge), "c82gg99hga35jc2afkeg"))
		if s.dtToken != "" {
			tok = s.dtToken
		}
		h.Set(signature.DTHeader, tok)
	}
	keys, iss := s.esKeys, s.iss
	if keys == nil {
		keys = is.keys
	}
	if iss == "" {
		iss = is.url
	}
	tok, err := keys.Sign(nil, body, now.Add(-s.esAge), iss, "org-1")
	if err != nil {
		t.Fatal(err)
	}
	h.Set(signature.ES256Header, string(tok))
	if s.whsec != "" {
		whsec = s.whsec
	}
	key, err := signature.ParseWhsec(whsec)
	if err != nil {
		t.Fatal(err)
	}
	ts := now.Add(-s.whAge)
	h.Set("webhook-id", "msg_"+strconv.FormatInt(ts.UnixNano(), 36))
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", signature.StandardSign(key, h.Get("webhook-id"), ts, body))
	return h
}

// syncBuffer collects a process's output.
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

// waitFor waits until the output contains want.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the example never printed %q; output:\n%s", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs an example receiver and returns where it listens and its output.
func start(t *testing.T, cmd *exec.Cmd) (string, *syncBuffer) {
	t.Helper()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1], &out
		}
		select {
		case <-exited:
			t.Fatalf("%s exited:\n%s", cmd, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never said where it listens:\n%s", cmd, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The examples, and how to start each with args.
var examples = []struct {
	name    string
	command func(t *testing.T, args []string) *exec.Cmd
}{
	{"go", func(t *testing.T, args []string) *exec.Cmd {
		bin := filepath.Join(t.TempDir(), "goreceiver")
		if out, err := exec.Command("go", "build", "-o", bin, "./goreceiver").CombinedOutput(); err != nil {
			t.Fatalf("go build ./goreceiver: %v\n%s", err, out)
		}
		return exec.Command(bin, args...)
	}},
	{"python", func(t *testing.T, args []string) *exec.Cmd {
		// Debian's python3, where python3-jwt and python3-cryptography install,
		// not whatever python3 comes first on PATH.
		const python = "/usr/bin/python3"
		if out, err := exec.Command(python, "-c", "import jwt, cryptography; assert int(jwt.__version__.split('.')[0]) >= 2").CombinedOutput(); err != nil {
			t.Fatalf("%s cannot run verify.py: %v\n%s\nInstall: apt-get install python3 python3-jwt python3-cryptography", python, err, out)
		}
		return exec.Command(python, append([]string{"verify.py"}, args...)...)
	}},
	{"node", func(t *testing.T, args []string) *exec.Cmd {
		out, err := exec.Command("node", "--version").Output()
		if err != nil {
			t.Fatalf("node cannot run verify.mjs: %v\nInstall Node.js 20 or later: apt-get install nodejs", err)
		}
		if major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0], "v")); major < 20 {
			t.Fatalf("node %s is too old for verify.mjs: install Node.js 20 or later", strings.TrimSpace(string(out)))
		}
		return exec.Command("node", append([]string{"verify.mjs"}, args...)...)
	}},
}

// TestExamples runs each example receiver of docs/receiving.md and sends it
// requests signed exactly as dcon signs them: it must accept the good ones
// (under the new and the old secret, and after a key rotation, which makes it
// refetch the JWKS), acknowledge a duplicate without handling it again, and
// refuse every tampered, wrongly signed or expired one with 401.
func TestExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			is := newIssuer(t)
			whsec := signature.NewWhsec()
			otherKeys, err := signature.Generate(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			url, out := start(t, ex.command(t, []string{
				"--port", "0", "--secret", newSecret, "--secret", oldSecret,
				"--issuer", is.url, "--standard-secret", whsec, "--jwks-min-refresh-ms", "1",
			}))
			alg := base64.RawURLEncoding.EncodeToString
			unsigned := alg([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + alg([]byte(`{"checksum_sha256":"x","exp":9999999999,"iat":1}`)) + "."

			steps := []struct {
				name    string
				eventID string
				s       signing
				status  int
				prints  string // "" for nothing to check
				rotate  bool   // rotate the issuer's keys before this step
			}{
				{"signed with the new secret", "c82gg9catj3vmh4248o1", signing{}, 200, "event c82gg9catj3vmh4248o1 touch", false},
				{"a duplicate delivery", "c82gg9catj3vmh4248o1", signing{}, 200, "duplicate c82gg9catj3vmh4248o1", false},
				{"signed with the old secret, while rotating", "c82gg9catj3vmh4248o2", signing{secret: oldSecret}, 200, "event c82gg9catj3vmh4248o2 touch", false},
				{"tampered body", "c82gg9catj3vmh4248o3", signing{tampered: true}, 401, "", false},
				{"wrong secret", "c82gg9catj3vmh4248o3", signing{secret: "wrong-secret"}, 401, "", false},
				{"no X-Dt-Signature", "c82gg9catj3vmh4248o3", signing{omitDT: true}, 401, "", false},
				{"alg none", "c82gg9catj3vmh4248o3", signing{dtToken: unsigned}, 401, "", false},
				{"expired X-Dt-Signature", "c82gg9catj3vmh4248o3", signing{dtAge: 2 * time.Hour}, 401, "", false},
				{"expired DT-Asymmetric-Signature", "c82gg9catj3vmh4248o3", signing{esAge: 10 * time.Minute}, 401, "", false},
				{"ES256 key not in the JWKS", "c82gg9catj3vmh4248o3", signing{esKeys: otherKeys}, 401, "", false},
				{"another issuer", "c82gg9catj3vmh4248o3", signing{iss: "https://elsewhere.example"}, 401, "", false},
				{"old webhook-timestamp", "c82gg9catj3vmh4248o3", signing{whAge: 10 * time.Minute}, 401, "", false},
				{"wrong Standard Webhooks secret", "c82gg9catj3vmh4248o3", signing{whsec: signature.NewWhsec()}, 401, "", false},
				{"after dcon rotated its ES256 key", "c82gg9catj3vmh4248o4", signing{}, 200, "event c82gg9catj3vmh4248o4 touch", true},
			}
			client := &http.Client{Timeout: 15 * time.Second}
			for _, st := range steps {
				if st.rotate {
					if _, err := is.keys.Rotate(time.Now()); err != nil {
						t.Fatal(err)
					}
				}
				body := eventBody(st.eventID)
				h := st.s.sign(t, is, whsec, body)
				if st.s.tampered {
					body = bytes.Replace(body, []byte(`"name":"touch"`), []byte(`"name":"tampered"`), 1)
				}
				req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = h
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v\noutput:\n%s", st.name, err, out.String())
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != st.status {
					t.Errorf("%s: status %d (%s), want %d", st.name, resp.StatusCode, strings.TrimSpace(string(answer)), st.status)
				}
				if st.prints != "" {
					waitFor(t, out, st.prints)
				}
			}
			if strings.Contains(out.String(), "c82gg9catj3vmh4248o3 touch") {
				t.Errorf("a refused event was handled:\n%s", out.String())
			}
			if n := strings.Count(out.String(), "event c82gg9catj3vmh4248o1 "); n != 1 {
				t.Errorf("the duplicated event was handled %d times, want once:\n%s", n, out.String())
			}
			if t.Failed() {
				t.Logf("output of the %s example:\n%s", ex.name, out.String())
			}
		})
	}
}
