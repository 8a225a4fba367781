package dcon_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependenciesPointInward keeps the layering of docs/design.md: the domain
// imports only the standard library, the delivery engine and the API never
// reach a store, and webhook and signature stay leaves.
func TestDependenciesPointInward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pkg       string
		forbidden []string // import path prefixes
		allowOnly []string // if set, every other non-standard dependency must be one of these
	}{
		{pkg: "dcon", allowOnly: []string{}},
		{pkg: "dcon/internal/delivery", forbidden: []string{"dcon/internal/pebble", "github.com/cockroachdb/", "dcon/internal/httpapi", "dcon/internal/ingest"}},
		{pkg: "dcon/internal/httpapi", forbidden: []string{"dcon/internal/pebble", "github.com/cockroachdb/", "dcon/internal/delivery", "dcon/internal/webhook"}},
		{pkg: "dcon/internal/ingest", forbidden: []string{"dcon/internal/pebble", "github.com/cockroachdb/", "dcon/internal/delivery", "dcon/internal/httpapi"}},
		{pkg: "dcon/internal/webhook", allowOnly: []string{"dcon", "dcon/internal/signature", "github.com/rs/xid"}},
		{pkg: "dcon/internal/signature", allowOnly: []string{}},
		{pkg: "dcon/internal/stats", allowOnly: []string{"dcon"}},
		{pkg: "dcon/receiver", allowOnly: []string{}},
		{pkg: "dcon/internal/deliverylog", allowOnly: []string{"dcon", "dcon/internal/webhook", "dcon/internal/signature", "github.com/rs/xid"}},
		{pkg: "dcon/internal/dashboard", forbidden: []string{"dcon/internal/pebble", "github.com/cockroachdb/"}},
		{pkg: "dcon/internal/metrics", forbidden: []string{"dcon/internal/pebble", "github.com/cockroachdb/", "dcon/internal/httpapi"}},
		{pkg: "dcon/internal/jetstream", forbidden: []string{"dcon/internal/pebble", "github.com/cockroachdb/", "dcon/internal/httpapi", "dcon/internal/delivery"}},
		{pkg: "dcon/internal/auth", allowOnly: []string{"dcon", "github.com/golang-jwt/jwt/v5", "github.com/rs/xid"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", tt.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if dep == tt.pkg {
					continue
				}
				for _, f := range tt.forbidden {
					if strings.HasPrefix(dep, f) {
						t.Errorf("%s depends on %s", tt.pkg, dep)
					}
				}
				if tt.allowOnly != nil && !hasAny(dep, tt.allowOnly) {
					t.Errorf("%s depends on %s; allowed: %v", tt.pkg, dep, tt.allowOnly)
				}
			}
		})
	}
}

func hasAny(dep string, allowed []string) bool {
	for _, a := range allowed {
		if dep == a {
			return true
		}
	}
	return false
}
