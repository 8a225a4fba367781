package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/cli")

// cliResult is what one run of the CLI did.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

// runCLI runs dcon in process with args, against the server at base when it
// is not "" (--server is added).
func runCLI(t *testing.T, base string, args ...string) cliResult {
	t.Helper()
	full := append([]string(nil), args...)
	if base != "" {
		full = append(full, "--server", base)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), full, &stdout, &stderr)
	return cliResult{args: args, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, base string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, base, args...)
	if r.code != exitOK {
		t.Fatalf("dcon %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// createdID runs a create command with --output json and returns the new
// resource's id.
func createdID(t *testing.T, base string, args ...string) string {
	t.Helper()
	r := mustCLI(t, base, append(args, "--output", "json")...)
	var res struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Name == "" {
		t.Fatalf("dcon %s: no resource name in %q (%v)", strings.Join(args, " "), r.stdout, err)
	}
	return resourceID(res.Name)
}

// newCLIProject creates a project with `dcon projects create` and returns its id.
func newCLIProject(t *testing.T, base, displayName string) string {
	t.Helper()
	return createdID(t, base, "projects", "create", "--display-name", displayName)
}

// normalizer replaces what changes from run to run: each distinct id by a
// numbered placeholder (the same id always by the same one, devices as
// <dev1>…), timestamps by <time> and loopback ports by <port>.
type normalizer struct {
	ids                 map[string]string
	xid, time, loopback *regexp.Regexp
}

func newNormalizer() *normalizer {
	return &normalizer{
		ids:      map[string]string{},
		xid:      regexp.MustCompile(`\b(emu)?[0-9a-v]{20}\b`),
		time:     regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z`),
		loopback: regexp.MustCompile(`127\.0\.0\.1:\d+`),
	}
}

func (n *normalizer) apply(s string) string {
	s = n.xid.ReplaceAllStringFunc(s, func(id string) string {
		p, ok := n.ids[id]
		if !ok {
			kind := "id"
			if strings.HasPrefix(id, "emu") && len(id) == 23 {
				kind = "dev"
			}
			count := 1
			for _, v := range n.ids {
				if strings.HasPrefix(v, "<"+kind) {
					count++
				}
			}
			p = fmt.Sprintf("<%s%d>", kind, count)
			n.ids[id] = p
		}
		return p
	})
	s = n.time.ReplaceAllString(s, "<time>")
	return n.loopback.ReplaceAllString(s, "127.0.0.1:<port>")
}

// checkGolden compares a run with testdata/cli/<name>.golden, or rewrites the
// file with -update.
func checkGolden(t *testing.T, n *normalizer, name string, r cliResult) {
	t.Helper()
	args := make([]string, len(r.args))
	for i, a := range r.args {
		args[i] = a
		if a == "" || strings.ContainsAny(a, " \"'{}$*") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	got := n.apply(fmt.Sprintf("$ dcon %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr))
	path := filepath.Join("testdata", "cli", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (run with -update to rewrite it)\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// TestCLIGolden drives every client command against a real node, in both
// output formats, and compares what it prints with golden files.
func TestCLIGolden(t *testing.T) {
	t.Parallel()
	base := startNode(t, serveConfig{Dev: true}).base
	n := newNormalizer()
	golden := func(name string, args ...string) cliResult {
		t.Helper()
		r := runCLI(t, base, args...)
		checkGolden(t, n, name, r)
		return r
	}

	// Projects. The first create fixes the project every later step uses.
	p := newCLIProject(t, base, "CLI test")
	n.apply(p)
	golden("projects_create_table", "projects", "create", "--display-name", "Second")
	other := createdID(t, base, "projects", "create", "--display-name", "Third")
	golden("projects_create_json", "projects", "create", "--display-name", "Fourth", "--output", "json")
	golden("projects_get_table", "projects", "get", p)
	golden("projects_get_json", "projects", "get", p, "--output", "json")
	golden("projects_update_table", "projects", "update", other, "--display-name", "Third, renamed")
	golden("projects_delete_table", "projects", "delete", other)
	golden("projects_list_table", "projects", "list")
	golden("projects_list_json", "projects", "list", "--output", "json")

	// Data connectors.
	c := createdID(t, base, "connectors", "create", "--project", p, "--display-name", "warehouse",
		"--url", "https://example.com/in", "--secret", "s3cret", "--event", "temperature", "--event", "touch",
		"--label", "name,floor", "--header", "Authorization=Bearer xyz")
	golden("connectors_create_table", "connectors", "create", "--project", p, "--url", "http://127.0.0.1:9/minimal")
	golden("connectors_create_json", "connectors", "create", "--project", p, "--display-name", "json",
		"--url", "https://example.com/json", "--event", "co2", "--header", "A=1", "--header", "B=2", "--output", "json")
	golden("connectors_get_table", "connectors", "get", c, "--project", p)
	golden("connectors_get_json", "connectors", "get", c, "--project", p, "--output", "json")
	golden("connectors_list_table", "connectors", "list", "--project", p)
	golden("connectors_list_json", "connectors", "list", "--project", p, "--output", "json")
	// update_mask lists only the flags given: the secret, labels and headers stay.
	golden("connectors_update_json", "connectors", "update", c, "--project", p, "--url", "https://example.com/v2", "--event", "", "--output", "json")
	golden("connectors_disable_table", "connectors", "disable", c, "--project", p)
	golden("connectors_enable_table", "connectors", "enable", c, "--project", p)
	golden("connectors_metrics_table", "connectors", "metrics", c, "--project", p)
	golden("connectors_sync_table", "connectors", "sync", c, "--project", p)
	golden("connectors_metrics_json", "connectors", "metrics", c, "--project", p, "--output", "json")

	// Devices and publish.
	d := createdID(t, base, "devices", "create", "--project", p, "--type", "temperature", "--label", "name=office")
	golden("devices_create_table", "devices", "create", "--project", p, "--type", "proximity", "--label", "name=door", "--label", "floor=2")
	golden("devices_create_json", "devices", "create", "--project", p, "--type", "co2", "--output", "json")
	golden("devices_get_table", "devices", "get", d, "--project", p)
	golden("devices_get_json", "devices", "get", d, "--project", p, "--output", "json")
	golden("devices_update_table", "devices", "update", d, "--project", p, "--label", "name=lab", "--label", "room=b12")
	golden("devices_list_table", "devices", "list", "--project", p)
	golden("devices_list_json", "devices", "list", "--project", p, "--output", "json")
	golden("publish_table", "publish", "--project", p, "--device", d, "temperature", "value=21.5")
	golden("publish_json", "publish", "--project", p, "--device", d, "temperature", "value=-3", "isBackfilled=true", "--output", "json")
	golden("publish_data_json", "publish", "--project", p, "--device", d, "--data", `{"value":22,"samples":[{"value":22}]}`, "temperature", "--output", "json")

	// Errors: the API's message and status, exit 1.
	golden("connectors_get_unknown", "connectors", "get", "nope", "--project", p)
	golden("publish_wrong_type", "publish", "--project", p, "--device", d, "co2", "ppm=600")
	golden("projects_get_unknown", "projects", "get", "no-such-project")

	golden("connectors_delete_table", "connectors", "delete", c, "--project", p)
	golden("devices_delete_json", "devices", "delete", d, "--project", p, "--output", "json")
}

// TestCLIErrors checks the answers to command lines that are wrong (exit 2,
// nothing sent) and to failures (exit 1), with their messages.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	const unreachable = "http://127.0.0.1:1" // nothing listens on port 1
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"connectors", "list"}, exitUsage, "--project is required"},
		{[]string{"connectors", "get", "c16pegipidie7lltrefg"}, exitUsage, "--project is required"},
		{[]string{"devices", "list"}, exitUsage, "--project is required"},
		{[]string{"publish", "--device", "emu", "touch"}, exitUsage, "--project is required"},
		{[]string{"emulate"}, exitUsage, "--project is required"},
		{[]string{"connectors"}, exitUsage, "missing the action"},
		{[]string{"connectors", "frob"}, exitUsage, `unknown action "frob"`},
		{[]string{"connectors", "get", "--project", "p"}, exitUsage, "missing the data connector id"},
		{[]string{"connectors", "get", "a", "b", "--project", "p"}, exitUsage, `unexpected argument "b"`},
		{[]string{"connectors", "list", "--project", "p", "--output", "yaml"}, exitUsage, `--output "yaml": use table or json`},
		{[]string{"connectors", "create", "--project", "p"}, exitUsage, "--url is required"},
		{[]string{"connectors", "update", "c16pegipidie7lltrefg", "--project", "p"}, exitUsage, "nothing to update"},
		{[]string{"connectors", "list", "--project", "p", "--nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"devices", "create", "--project", "p"}, exitUsage, "--type is required"},
		{[]string{"devices", "create", "--project", "p", "--type", "touch", "--label", "novalue"}, exitUsage, "want key=value"},
		{[]string{"devices", "update", "emuc17m6d7lq0bgk44smcqg", "--project", "p"}, exitUsage, "nothing to update"},
		{[]string{"projects", "update", "p"}, exitUsage, "nothing to update"},
		{[]string{"projects", "get"}, exitUsage, "missing the project id"},
		{[]string{"publish", "--project", "p", "--device", "d"}, exitUsage, "missing the event type"},
		{[]string{"publish", "--project", "p", "touch"}, exitUsage, "--device is required"},
		{[]string{"publish", "--project", "p", "--device", "d", "temperature", "value"}, exitUsage, "want field=value"},
		{[]string{"publish", "--project", "p", "--device", "d", "temperature", "value=1", "--data", "{}"}, exitUsage, "not both"},
		{[]string{"publish", "--project", "p", "--device", "d", "temperature", "--data", "[1]"}, exitUsage, "want a JSON object"},
		{[]string{"emulate", "--project", "p", "--rate", "fast"}, exitUsage, "--rate"},
		{[]string{"emulate", "--project", "p", "--types", "toaster"}, exitUsage, `unknown device type "toaster"`},
		{[]string{"emulate", "--project", "p", "--devices", "0"}, exitUsage, "--devices 0"},
		{[]string{"connectors", "list", "--project", "p", "--server", "ftp://x"}, exitUsage, "--server"},
		{[]string{"connectors", "list", "--project", "p", "--server", unreachable}, exitError, "cannot reach the dcon server at " + unreachable},
		{[]string{"connectors", "--help"}, exitOK, "Examples:"},
		{[]string{"connectors", "update", "--help"}, exitOK, "update_mask"},
		{[]string{"publish", "--help"}, exitOK, "Examples:"},
		{[]string{"emulate", "--help"}, exitOK, "--use-existing"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if !slices.Contains(args, "--server") && !slices.Contains(args, "--help") {
				args = append(append([]string(nil), args...), "--server", unreachable)
			}
			r := runCLI(t, "", args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.stderr)
			}
			if tt.code != exitOK && r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

// TestCLIAPIErrorMessage checks that an API error names the command, the
// API's message and the status, on stderr, with exit 1.
func TestCLIAPIErrorMessage(t *testing.T) {
	t.Parallel()
	base := startNode(t, serveConfig{}).base
	p := newCLIProject(t, base, "errors")
	r := runCLI(t, base, "connectors", "get", "x", "--project", p)
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	if want := `data connector "x" not found (404)`; !strings.HasPrefix(r.stderr, "dcon connectors") || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want dcon connectors … %s", r.stderr, want)
	}
}

// TestCLIEmulate runs the emulator against a real node for 300 ms and checks
// that its events were published and delivered.
func TestCLIEmulate(t *testing.T) {
	t.Parallel()
	rc := newTestReceiver(t)
	base := startNode(t, serveConfig{CAFile: rc.caFile(t)}).base
	p := newCLIProject(t, base, "emulate")
	mustCLI(t, base, "connectors", "create", "--project", p, "--url", rc.URL+"/in")

	r := mustCLI(t, base, "emulate", "--project", p, "--devices", "3", "--types", "temperature,proximity,co2",
		"--duration", "300ms", "--rate", "50/s", "--output", "json")
	var sum struct {
		Devices   []string `json:"devices"`
		Published int      `json:"published"`
		Failed    int      `json:"failed"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("summary %q: %v", r.stdout, err)
	}
	// 50/s for 300 ms is 15 events, the first at once; allow a slow machine.
	if sum.Published < 5 || sum.Published > 20 || sum.Failed != 0 || len(sum.Devices) != 3 {
		t.Fatalf("summary = %+v, want 5–20 published, none failed, 3 devices; stderr: %s", sum, r.stderr)
	}
	rc.waitFor(t, fmt.Sprintf("%d events delivered", sum.Published), 10*time.Second, func(got []received) bool {
		return len(got) >= sum.Published
	})
	types := map[string]bool{}
	for _, req := range rc.requests() {
		var b struct {
			Metadata struct {
				DeviceType string `json:"deviceType"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(req.Body, &b); err != nil {
			t.Fatal(err)
		}
		types[b.Metadata.DeviceType] = true
	}
	if len(types) != 3 {
		t.Errorf("events came from device types %v, want temperature, proximity and co2", types)
	}

	// --use-existing publishes for the devices just made, and creates none.
	r = mustCLI(t, base, "emulate", "--project", p, "--use-existing", "--duration", "100ms", "--rate", "50/s")
	if !strings.HasPrefix(r.stdout, "published ") || !strings.Contains(r.stdout, "for 3 devices") {
		t.Errorf("stdout %q, want a summary for 3 devices", r.stdout)
	}
	var list struct {
		Devices []json.RawMessage `json:"devices"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, base, "devices", "list", "--project", p, "--output", "json").stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Devices) != 3 {
		t.Errorf("the project has %d devices, want 3", len(list.Devices))
	}
}

func TestEventBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fields []string
		data   string
		given  bool
		want   string
	}{
		{nil, "", false, `{"touch":{}}`},
		{[]string{"value=21.5"}, "", false, `{"touch":{"value":21.5}}`},
		{[]string{"value=-3", "isBackfilled=true", "state=PRESENT"}, "", false, `{"touch":{"isBackfilled":true,"state":"PRESENT","value":-3}}`},
		{[]string{"total=1e3", "id=01", "x=", "y=a=b", "n=null", "f=false"}, "", false, `{"touch":{"f":false,"id":"01","n":"null","total":1e3,"x":"","y":"a=b"}}`},
		{nil, ` {"value": 1} `, true, `{"touch":{"value":1}}`},
	}
	for _, tt := range tests {
		body, err := eventBody("touch", tt.fields, tt.data, tt.given)
		if err != nil {
			t.Errorf("eventBody(%q, %q): %v", tt.fields, tt.data, err)
			continue
		}
		got, _ := json.Marshal(body)
		if string(got) != tt.want {
			t.Errorf("eventBody(%q, %q) = %s, want %s", tt.fields, tt.data, got, tt.want)
		}
	}
}

// TestCommandLabel checks how messages name a client command: with its
// action, when there is one.
func TestCommandLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"connectors", []string{"get", "x"}, "connectors get"},
		{"projects", []string{"list"}, "projects list"},
		{"devices", nil, "devices"},
		{"devices", []string{"--help"}, "devices"},
		{"connectors", []string{"frob"}, "connectors"},
		{"publish", []string{"touch"}, "publish"},
		{"serve", []string{"--addr", "x"}, "serve"},
	}
	for _, tt := range tests {
		if got := commandLabel(tt.name, tt.args); got != tt.want {
			t.Errorf("commandLabel(%q, %q) = %q, want %q", tt.name, tt.args, got, tt.want)
		}
	}
}
