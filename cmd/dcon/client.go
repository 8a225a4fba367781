package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxAnswerBytes bounds what the CLI reads of one API answer.
const maxAnswerBytes = 16 << 20

// cliClient is a small client of the /v2 API for the CLI commands: JSON in,
// raw JSON out, the contract's error body turned into an *apiError.
type cliClient struct {
	base string // the server's URL, without a trailing slash
	http *http.Client
	// keyID and secret, when set, authenticate every request (HTTP Basic).
	keyID, secret string
}

// newCLIClient returns a client of the server at base ("http://127.0.0.1:8080";
// a bare "host:port" means http://).
func newCLIClient(base string) (*cliClient, error) {
	base = strings.TrimSpace(base)
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usagef("--server %q: want a URL such as http://127.0.0.1:8080", base)
	}
	return &cliClient{
		base: strings.TrimRight(base, "/"),
		http: &http.Client{
			Timeout: 30 * time.Second,
			// The API answers 307 only to clean a path; anything else is not ours to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// apiError is an error answer of the API: the contract's
// {"error": "...", "code": 404, "help": "..."}.
type apiError struct {
	Status  int    // the HTTP status
	Message string // the "error" member, safe to show
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Status) }

// do sends one request. in, when not nil, is sent as JSON; query is added to
// the path. It returns the answer's body, "{}" for an empty 2xx answer, or an
// *apiError for any other status.
func (c *cliClient) do(ctx context.Context, method, path string, query url.Values, in any) (json.RawMessage, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dcon-cli/"+version)
	if c.keyID != "" {
		req.SetBasicAuth(c.keyID, c.secret)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the dcon server at %s (is `dcon serve` running? --server or DCON_SERVER says where): %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, answerError(resp.StatusCode, raw)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s %s: the server answered %d with a body that is not JSON", method, path, resp.StatusCode)
	}
	return raw, nil
}

// answerError turns an error answer into an *apiError, with the contract's
// message when the body is the contract's error body, else the status text.
func answerError(status int, raw []byte) *apiError {
	var b struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &b) == nil && b.Error != "" {
		return &apiError{Status: status, Message: b.Error}
	}
	msg := strings.ToLower(http.StatusText(status))
	if msg == "" {
		msg = "unexpected answer"
	}
	return &apiError{Status: status, Message: msg}
}

// get, post, patch and del are do with the method named.
func (c *cliClient) get(ctx context.Context, path string, query url.Values) (json.RawMessage, error) {
	return c.do(ctx, http.MethodGet, path, query, nil)
}

func (c *cliClient) post(ctx context.Context, path string, in any) (json.RawMessage, error) {
	if in == nil {
		in = struct{}{}
	}
	return c.do(ctx, http.MethodPost, path, nil, in)
}

func (c *cliClient) patch(ctx context.Context, path string, query url.Values, in any) (json.RawMessage, error) {
	return c.do(ctx, http.MethodPatch, path, query, in)
}

func (c *cliClient) del(ctx context.Context, path string) (json.RawMessage, error) {
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// listAll reads every page of a list under key ("dataConnectors", "devices",
// "projects") and returns the items as the API wrote them.
func (c *cliClient) listAll(ctx context.Context, path, key string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	q := url.Values{"page_size": {"100"}}
	for {
		raw, err := c.get(ctx, path, q)
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("GET %s: the answer is not a list: %w", path, err)
		}
		var items []json.RawMessage
		if v, ok := page[key]; ok {
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, fmt.Errorf("GET %s: %q is not a list: %w", path, key, err)
			}
		}
		all = append(all, items...)
		var next string
		if v, ok := page["nextPageToken"]; ok {
			_ = json.Unmarshal(v, &next)
		}
		if next == "" || next == q.Get("page_token") {
			return all, nil
		}
		q.Set("page_token", next)
	}
}

// resourceID is the last segment of a resource name ("projects/p/devices/emu…" → "emu…").
func resourceID(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// projectPath is the path of a project's collection, "/v2/projects/{p}/{collection}".
func projectPath(project, collection string) string {
	return "/v2/projects/" + url.PathEscape(project) + "/" + collection
}

// cliOptions are the flags every client command has.
type cliOptions struct {
	server      string
	output      string
	project     string
	credentials string        // a credentials file; "" means the environment, else dcon login's
	fs          *flag.FlagSet // to tell whether --server was given
}

// addClientFlags adds --server and --output to fs, and --project when the
// command works inside a project.
func addClientFlags(fs *flag.FlagSet, withProject bool) *cliOptions {
	o := &cliOptions{fs: fs}
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "`URL` of the dcon server")
	fs.StringVar(&o.credentials, "credentials", "", "credentials `file` of a service account key (default: DCON_KEY_ID and DCON_KEY_SECRET, else what 'dcon login' kept)")
	fs.StringVar(&o.output, "output", "table", "output `format`: table or json")
	if withProject {
		fs.StringVar(&o.project, "project", "", "the project `id`")
	}
	return o
}

// client checks the common flags and returns a client of the server.
func (o *cliOptions) client(withProject bool) (*cliClient, error) {
	if o.output != "table" && o.output != "json" {
		return nil, usagef("--output %q: use table or json", o.output)
	}
	if withProject && o.project == "" {
		return nil, usagef("--project is required (or set DCON_PROJECT); 'dcon projects list' shows the projects")
	}
	creds, err := cliCredentials(o.credentials)
	if err != nil {
		return nil, err
	}
	server := o.server
	if creds != nil && creds.Server() != "" && !flagGiven(o.fs, "server") {
		server = creds.Server()
	}
	c, err := newCLIClient(server)
	if err != nil {
		return nil, err
	}
	if creds != nil {
		c.keyID, c.secret = creds.ServiceAccount.KeyID, creds.ServiceAccount.Secret
	}
	return c, nil
}

// parseCLI parses a client command's flags, which may come before, between or
// after its arguments ("dcon devices get emu… --project p"), from the DCON_*
// environment and args, and returns the arguments. Everything after "--" is an
// argument.
func parseCLI(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // parseFlags reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := parseFlags(fs, flags); err != nil {
		return nil, err
	}
	return rest, nil
}

// listFlag is a repeatable flag: each use adds a value; a value with commas
// adds each part.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// mapFlag is a repeatable key=value flag.
type mapFlag map[string]string

func (m mapFlag) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func (m mapFlag) Set(v string) error {
	if v == "" {
		return nil // given, but empty: an update clears the map
	}
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", v)
	}
	m[k] = val
	return nil
}

// parseClient parses the flags of a verb that takes no argument and returns
// the client.
func parseClient(fs *flag.FlagSet, o *cliOptions, args []string, withProject bool) (*cliClient, error) {
	rest, err := parseCLI(fs, args)
	if err != nil {
		return nil, err
	}
	if err := wantArgs(rest); err != nil {
		return nil, err
	}
	return o.client(withProject)
}

// flagGiven reports whether a flag was set, on the command line or from the
// environment.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// parseClientID parses the flags of a verb that takes one id and returns the
// client and the id.
func parseClientID(fs *flag.FlagSet, o *cliOptions, args []string, what string) (*cliClient, string, error) {
	rest, err := parseCLI(fs, args)
	if err != nil {
		return nil, "", err
	}
	if err := wantArgs(rest, what); err != nil {
		return nil, "", err
	}
	c, err := o.client(true)
	if err != nil {
		return nil, "", err
	}
	return c, rest[0], nil
}
