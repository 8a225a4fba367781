package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// connectorSecret reads a connector's signatureSecret through the CLI.
func connectorSecret(t *testing.T, base, project, id string) string {
	t.Helper()
	var c connectorResource
	if err := json.Unmarshal([]byte(mustCLI(t, base, "connectors", "get", id, "--project", project, "--output", "json").stdout), &c); err != nil {
		t.Fatal(err)
	}
	return c.HTTPConfig.SignatureSecret
}

// TestCLIRotateSecretGolden runs rotate-secret against a real node, for a
// script (--yes) in both output formats, and compares with golden files.
func TestCLIRotateSecretGolden(t *testing.T) {
	t.Parallel()
	base := startNode(t, serveConfig{Dev: true}).base
	n := newNormalizer()
	p := newCLIProject(t, base, "rotate")
	n.apply(p)
	c := createdID(t, base, "connectors", "create", "--project", p, "--url", "https://example.com/in", "--secret", "old-s3cret")
	unsigned := createdID(t, base, "connectors", "create", "--project", p, "--url", "https://example.com/unsigned")

	r := runCLI(t, base, "connectors", "rotate-secret", c, "--project", p, "--new-secret", "n3w-s3cret", "--yes")
	checkGolden(t, n, "connectors_rotate_secret_table", r)
	if got := connectorSecret(t, base, p, c); got != "n3w-s3cret" {
		t.Errorf("secret %q after rotation, want n3w-s3cret", got)
	}
	r = runCLI(t, base, "connectors", "rotate-secret", unsigned, "--project", p, "--new-secret", "first-s3cret", "--yes", "--output", "json")
	checkGolden(t, n, "connectors_rotate_secret_json", r)
	if got := connectorSecret(t, base, p, unsigned); got != "first-s3cret" {
		t.Errorf("secret %q after rotation, want first-s3cret", got)
	}
	r = runCLI(t, base, "connectors", "rotate-secret", c, "--project", p, "--new-secret", "n3w-s3cret", "--yes")
	checkGolden(t, n, "connectors_rotate_secret_same", r)

	// Without --new-secret, a strong secret is made up and printed.
	r = mustCLI(t, base, "connectors", "rotate-secret", c, "--project", p, "--yes")
	secret := connectorSecret(t, base, p, c)
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Errorf("made-up secret %q: want 32 bytes of base64url (%v)", secret, err)
	}
	if !strings.Contains(r.stdout, "New secret: "+secret+"\n") {
		t.Errorf("stdout does not show the new secret %q:\n%s", secret, r.stdout)
	}
}

// TestCLIRotateSecretConfirms checks the question asked on a terminal: only
// yes switches the secret; and without a terminal, --yes is required.
func TestCLIRotateSecretConfirms(t *testing.T) {
	t.Parallel()
	base := startNode(t, serveConfig{Dev: true}).base
	p := newCLIProject(t, base, "rotate")
	c := createdID(t, base, "connectors", "create", "--project", p, "--url", "https://example.com/in", "--secret", "old")

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
		if got := connectorSecret(t, base, p, c); got != tt.wantAfter {
			t.Errorf("answer %q: secret %q, want %q", tt.input, got, tt.wantAfter)
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
