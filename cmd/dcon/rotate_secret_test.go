package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"dcon/internal/signature"
)

// signer tells which secret a connector signs with now. The secret is
// write-only in the API, so it publishes an event and checks the
// X-Dt-Signature of what the connector's receiver gets.
type signer struct {
	t       *testing.T
	base    string
	rc      *testReceiver
	project string
	device  string
}

func newSigner(t *testing.T, base string, rc *testReceiver, project string) *signer {
	t.Helper()
	dev := createdID(t, base, "devices", "create", "--project", project, "--type", "touch")
	return &signer{t: t, base: base, rc: rc, project: project, device: dev}
}

// secret returns which of the candidates the connector whose endpoint path is
// path signed a fresh event with ("" for none: unsigned or another secret).
func (s *signer) secret(path string, candidates ...string) string {
	s.t.Helper()
	r := mustCLI(s.t, s.base, "publish", "--project", s.project, "--device", s.device, "touch", "--output", "json")
	var ev struct {
		EventID string `json:"eventId"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.EventID == "" {
		s.t.Fatalf("publish answered %q: %v", r.stdout, err)
	}
	var got received
	s.rc.waitFor(s.t, "the delivery of "+ev.EventID+" to "+path, 10*time.Second, func(rs []received) bool {
		for _, r := range rs {
			if r.Path == path && eventID(r.Body) == ev.EventID {
				got = r
				return true
			}
		}
		return false
	})
	for _, c := range candidates {
		if _, err := signature.VerifyDT(got.Header.Get("X-Dt-Signature"), got.Body, [][]byte{[]byte(c)}, time.Now(), time.Minute); err == nil {
			return c
		}
	}
	return ""
}

// TestCLIRotateSecretGolden runs rotate-secret against a real node, for a
// script (--yes) in both output formats, and compares with golden files.
func TestCLIRotateSecretGolden(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	base := startNode(t, serveConfig{Dev: true, CAFile: rc.caFile(t)}).base
	n := newNormalizer()
	p := newCLIProject(t, base, "rotate")
	n.apply(p)
	c := createdID(t, base, "connectors", "create", "--project", p, "--url", rc.URL+"/in", "--secret", "old-s3cret")
	unsigned := createdID(t, base, "connectors", "create", "--project", p, "--url", rc.URL+"/unsigned")
	sig := newSigner(t, base, rc, p)
	if got := sig.secret("/in", "old-s3cret"); got != "old-s3cret" {
		t.Fatalf("before rotation the connector signs with %q, want old-s3cret", got)
	}

	r := runCLI(t, base, "connectors", "rotate-secret", c, "--project", p, "--new-secret", "n3w-s3cret", "--yes")
	checkGolden(t, n, "connectors_rotate_secret_table", r)
	if got := sig.secret("/in", "old-s3cret", "n3w-s3cret"); got != "n3w-s3cret" {
		t.Errorf("after rotation the connector signs with %q, want n3w-s3cret", got)
	}
	r = runCLI(t, base, "connectors", "rotate-secret", unsigned, "--project", p, "--new-secret", "first-s3cret", "--yes", "--output", "json")
	checkGolden(t, n, "connectors_rotate_secret_json", r)
	if got := sig.secret("/unsigned", "first-s3cret"); got != "first-s3cret" {
		t.Errorf("after rotation the unsigned connector signs with %q, want first-s3cret", got)
	}

	// Without --new-secret, a strong secret is made up and printed.
	r = mustCLI(t, base, "connectors", "rotate-secret", c, "--project", p, "--yes")
	_, after, _ := strings.Cut(r.stdout, "New secret: ")
	secret, _, _ := strings.Cut(after, "\n")
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Errorf("made-up secret %q: want 32 bytes of base64url (%v)", secret, err)
	}
	if got := sig.secret("/in", "n3w-s3cret", secret); got != secret {
		t.Errorf("after rotation the connector signs with %q, want the made-up secret", got)
	}
}

// TestCLIRotateSecretConfirms checks the question asked on a terminal: only
// yes switches the secret; and without a terminal, --yes is required.
func TestCLIRotateSecretConfirms(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	base := startNode(t, serveConfig{Dev: true, CAFile: rc.caFile(t)}).base
	p := newCLIProject(t, base, "rotate")
	c := createdID(t, base, "connectors", "create", "--project", p, "--url", rc.URL+"/in", "--secret", "old")
	sig := newSigner(t, base, rc, p)

	tests := []struct {
		input     string
		wantErr   string
		wantAfter string
	}{
		{"no\n", "not confirmed: the connector keeps its current secret", "old"},
		{"", "not confirmed", "old"},
		{"yes\n", "", "new"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := rotateSecret(context.Background(), []string{c, "--project", p, "--new-secret", "new", "--server", base},
			strings.NewReader(tt.input), true, &stdout, &stderr)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("answer %q: err %v, want %q", tt.input, err, tt.wantErr)
		}
		if !strings.Contains(stderr.String(), "Type yes to switch") {
			t.Errorf("answer %q: stderr %q asks nothing", tt.input, stderr.String())
		}
		if !strings.Contains(stdout.String(), `dcon listen --secret "$CURRENT_SECRET" --secret "new"`) {
			t.Errorf("answer %q: stdout %q lacks step 1", tt.input, stdout.String())
		}
		if got := sig.secret("/in", "old", "new"); got != tt.wantAfter {
			t.Errorf("answer %q: the connector signs with %q, want %q", tt.input, got, tt.wantAfter)
		}
	}

	// Not a terminal (as in go test) and no --yes: nothing is sent.
	r := runCLI(t, base, "connectors", "rotate-secret", c, "--project", p)
	if r.code != exitUsage || !strings.Contains(r.stderr, "pass --yes") || r.stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 asking for --yes", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, base, "connectors", "rotate-secret", "nope", "--project", p, "--yes"); r.code != exitError || !strings.Contains(r.stderr, "not found (404)") {
		t.Errorf("unknown connector: exit %d, stderr %q", r.code, r.stderr)
	}
}
