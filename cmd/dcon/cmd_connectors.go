package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"dcon"
)

// cliConnector is the part of a data connector resource that the table shows.
type cliConnector struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName"`
	Status      string   `json:"status"`
	Events      []string `json:"events"`
	HTTPConfig  struct {
		URL string `json:"url"`
	} `json:"httpConfig"`
}

func connectorColumns() []string { return []string{"ID", "NAME", "STATUS", "EVENTS", "URL"} }

func connectorRow(c cliConnector) []string {
	events := strings.Join(c.Events, ",")
	if events == "" {
		events = "all"
	}
	return []string{resourceID(c.Name), c.DisplayName, c.Status, events, c.HTTPConfig.URL}
}

func connectorsNoun() noun {
	return noun{
		name:    "connectors",
		summary: "Manage the data connectors of a project: the HTTPS endpoints that receive its events.",
		examples: `  dcon connectors create --project office --display-name warehouse --url https://example.com/in \
      --secret s3cret --event temperature --event touch --label name --header Authorization="Bearer xyz"
  dcon connectors list --project office
  dcon connectors get c16pegipidie7lltrefg --project office --output json
  dcon connectors update c16pegipidie7lltrefg --project office --url https://example.com/v2/in
  dcon connectors metrics c16pegipidie7lltrefg --project office
  dcon connectors disable c16pegipidie7lltrefg --project office
  dcon connectors rotate-secret c16pegipidie7lltrefg --project office
  dcon connectors deliveries c16pegipidie7lltrefg --project office --follow
  dcon connectors replay c16pegipidie7lltrefg --project office --all
`,
		verbs: []verb{
			{"list", "list a project's data connectors", runConnectorsList},
			{"get", "show a data connector", runConnectorsGet},
			{"create", "create a data connector", runConnectorsCreate},
			{"update", "change the settings given as flags, and only those", runConnectorsUpdate},
			{"delete", "delete a data connector and its queue", runConnectorsDelete},
			{"metrics", "show delivery figures of the last 3 hours", runConnectorsMetrics},
			{"sync", "re-send every device's latest event of each type", runConnectorsSync},
			{"deliveries", "show recent delivery attempts; --follow to watch them live", runConnectorsDeliveries},
			{"deadletters", "list the events that expired undelivered, with their last error", runConnectorsDeadLetters},
			{"replay", "deliver dead letters again (--event, --since or --all)", runConnectorsReplay},
			{"enable", "set the status to ACTIVE", runConnectorsStatus("enable", "ACTIVE")},
			{"disable", "set the status to USER_DISABLED (drops its queue)", runConnectorsStatus("disable", "USER_DISABLED")},
			{"rotate-secret", "change the signature secret without a gap, step by step", runConnectorsRotateSecret(os.Stdin)},
		},
	}
}

func connectorPath(project, id string) string {
	return projectPath(project, "dataconnectors/") + url.PathEscape(id)
}

func runConnectorsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors list", "List a project's data connectors.",
		"  dcon connectors list --project office\n  dcon connectors list --project office --output json\n", stderr)
	o := addClientFlags(fs, true)
	c, err := parseClient(fs, o, args, true)
	if err != nil {
		return err
	}
	items, err := c.listAll(ctx, projectPath(o.project, "dataconnectors"), "dataConnectors")
	if err != nil {
		return err
	}
	return printList(stdout, o.output, "dataConnectors", items, connectorColumns(), connectorRow)
}

func runConnectorsGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors get <connector-id>", "Show a data connector. --output json shows every setting, the secret included.",
		"  dcon connectors get c16pegipidie7lltrefg --project office\n  dcon connectors get c16pegipidie7lltrefg --project office --output json\n", stderr)
	o := addClientFlags(fs, true)
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, connectorPath(o.project, id), nil)
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, connectorColumns(), connectorRow)
}

// connectorSettings are the flags of create and update.
type connectorSettings struct {
	displayName, url, secret string
	events, labels           listFlag
	headers                  mapFlag
}

func addConnectorFlags(fs *flag.FlagSet) *connectorSettings {
	s := &connectorSettings{headers: mapFlag{}}
	fs.StringVar(&s.displayName, "display-name", "", "the connector's display `name`")
	fs.StringVar(&s.url, "url", "", "the endpoint `URL` that receives a POST per event (https://, or http:// when the server runs with --dev)")
	fs.StringVar(&s.secret, "secret", "", "the signature `secret` of X-Dt-Signature")
	fs.Var(&s.events, "event", "an event `type` to forward (repeatable, or comma-separated); none means every type")
	fs.Var(&s.labels, "label", "a device label `key` to include in each event (repeatable, or comma-separated)")
	fs.Var(s.headers, "header", "an extra request header `name=value` (repeatable)")
	return s
}

// body is the connector as the API takes it, with the members whose flags
// are in give (all when give is nil).
func (s *connectorSettings) body(give func(flagName string) bool) (map[string]any, []string) {
	if give == nil {
		give = func(string) bool { return true }
	}
	body := map[string]any{}
	httpConfig := map[string]any{}
	var mask []string
	for _, m := range []struct {
		flag, path string
		set        func()
	}{
		{"display-name", "displayName", func() { body["displayName"] = s.displayName }},
		{"event", "events", func() { body["events"] = nonNil(s.events) }},
		{"label", "labels", func() { body["labels"] = nonNil(s.labels) }},
		{"url", "httpConfig.url", func() { httpConfig["url"] = s.url }},
		{"secret", "httpConfig.signatureSecret", func() { httpConfig["signatureSecret"] = s.secret }},
		{"header", "httpConfig.headers", func() { httpConfig["headers"] = map[string]string(s.headers) }},
	} {
		if give(m.flag) {
			m.set()
			mask = append(mask, m.path)
		}
	}
	if len(httpConfig) > 0 {
		body["httpConfig"] = httpConfig
	}
	return body, mask
}

func nonNil(l listFlag) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func runConnectorsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors create", "Create a data connector (HTTP_PUSH). dcon chooses its id; the table shows it.",
		`  dcon connectors create --project office --url https://example.com/in
  dcon connectors create --project office --display-name warehouse --url https://example.com/in \
      --secret s3cret --event temperature --event touch --label name --header Authorization="Bearer xyz"
`, stderr)
	o := addClientFlags(fs, true)
	s := addConnectorFlags(fs)
	c, err := parseClient(fs, o, args, true)
	if err != nil {
		return err
	}
	if s.url == "" {
		return usagef("--url is required, for example --url https://example.com/in")
	}
	body, _ := s.body(nil)
	body["type"] = "HTTP_PUSH"
	raw, err := c.post(ctx, projectPath(o.project, "dataconnectors"), body)
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, connectorColumns(), connectorRow)
}

func runConnectorsUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors update <connector-id>",
		"Change the settings given as flags, and only those (the request's update_mask lists them).\nA repeatable flag replaces the whole list (--event touch leaves only touch); given once as \"\" it clears it.",
		`  dcon connectors update c16pegipidie7lltrefg --project office --url https://example.com/v2/in
  dcon connectors update c16pegipidie7lltrefg --project office --event temperature --event co2
  dcon connectors update c16pegipidie7lltrefg --project office --header ""   # an empty value clears a list
`, stderr)
	o := addClientFlags(fs, true)
	s := addConnectorFlags(fs)
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	body, mask := s.body(func(name string) bool { return flagGiven(fs, name) })
	if len(mask) == 0 {
		return usagef("nothing to update: give at least one of --display-name, --url, --secret, --event, --label, --header")
	}
	raw, err := c.patch(ctx, connectorPath(o.project, id), url.Values{"update_mask": {strings.Join(mask, ",")}}, body)
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, connectorColumns(), connectorRow)
}

func runConnectorsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors delete <connector-id>", "Delete a data connector, with its queued and expired deliveries.",
		"  dcon connectors delete c16pegipidie7lltrefg --project office\n", stderr)
	o := addClientFlags(fs, true)
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	raw, err := c.del(ctx, connectorPath(o.project, id))
	if err != nil {
		return err
	}
	return printDeleted(stdout, o.output, raw, "data connector", id)
}

// cliMetrics is a :metrics answer. The counts are kept as the API wrote them
// (a number, or a string as protobuf's JSON writes 64-bit integers).
type cliMetrics struct {
	Metrics struct {
		SuccessCount json.RawMessage `json:"successCount"`
		ErrorCount   json.RawMessage `json:"errorCount"`
		Latency99p   json.RawMessage `json:"latency99p"`
	} `json:"metrics"`
}

// plain shows a JSON scalar without quotes.
func plain(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func runConnectorsMetrics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors metrics <connector-id>",
		"Show a data connector's delivery figures over the last 3 hours: successful and failed attempts, and the 99th percentile of their latency.",
		"  dcon connectors metrics c16pegipidie7lltrefg --project office\n", stderr)
	o := addClientFlags(fs, true)
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, connectorPath(o.project, id)+":metrics", nil)
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, []string{"SUCCESS", "ERRORS", "LATENCY 99P"}, func(m cliMetrics) []string {
		return []string{plain(m.Metrics.SuccessCount), plain(m.Metrics.ErrorCount), plain(m.Metrics.Latency99p)}
	})
}

func runConnectorsSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors sync <connector-id>",
		"Re-send to one data connector, for every device of the project, its latest event of each type (same event ids).",
		"  dcon connectors sync c16pegipidie7lltrefg --project office\n", stderr)
	o := addClientFlags(fs, true)
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	raw, err := c.post(ctx, connectorPath(o.project, id)+":sync", nil)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(stdout, raw)
	}
	_, err = fmt.Fprintf(stdout, "synced data connector %s: the latest event of each type of every device is queued for it\n", id)
	return err
}

// runConnectorsStatus returns the verb that sets a connector's status.
func runConnectorsStatus(name, status string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		synopsis := "Set a data connector's status to " + status + "."
		if status != "ACTIVE" {
			synopsis += " It then receives nothing, and its queued deliveries are dropped."
		} else {
			synopsis += " It receives new events from now on; what was dropped while disabled is not sent."
		}
		fs := verbFlags("connectors "+name+" <connector-id>", synopsis,
			"  dcon connectors "+name+" c16pegipidie7lltrefg --project office\n", stderr)
		o := addClientFlags(fs, true)
		c, id, err := parseClientID(fs, o, args, "the data connector id")
		if err != nil {
			return err
		}
		raw, err := c.patch(ctx, connectorPath(o.project, id), url.Values{"update_mask": {"status"}}, map[string]any{"status": status})
		if err != nil {
			return err
		}
		return printOne(stdout, o.output, raw, connectorColumns(), connectorRow)
	}
}

// runConnectorsRotateSecret returns the rotate-secret verb, which asks for
// confirmation on in when in is a terminal.
func runConnectorsRotateSecret(in *os.File) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return rotateSecret(ctx, args, in, isInteractive(in), stdout, stderr)
	}
}

// isInteractive reports whether f is a terminal someone can answer on: a
// character device, but not the null device (whose reads end at once).
func isInteractive(f *os.File) bool {
	if !isTerminal(f) {
		return false
	}
	st, err := f.Stat()
	null, nullErr := os.Stat(os.DevNull)
	return err == nil && (nullErr != nil || !os.SameFile(st, null))
}

// rotateSecret walks an operator through changing a connector's
// signatureSecret with no gap: the receiver accepts the old and the new
// secret, dcon switches, the receiver drops the old one. stdin is read for
// the confirmation when interactive.
func rotateSecret(ctx context.Context, args []string, stdin io.Reader, interactive bool, stdout, stderr io.Writer) error {
	fs := verbFlags("connectors rotate-secret <connector-id>",
		`Change a data connector's signature secret (X-Dt-Signature) without a gap, in four steps:
  1. configure your receiver to accept both the current and the new secret;
  2. confirm here (or pass --yes);
  3. dcon switches the connector to the new secret (PATCH, update_mask=httpConfig.signatureSecret);
  4. after a few minutes, remove the old secret from your receiver.
The new secret is --new-secret, or 32 random bytes (base64url) made up here.`,
		`  dcon connectors rotate-secret c16pegipidie7lltrefg --project office
  dcon connectors rotate-secret c16pegipidie7lltrefg --project office --new-secret "$NEW" --yes
`, stderr)
	o := addClientFlags(fs, true)
	var next string
	var yes bool
	fs.StringVar(&next, "new-secret", "", "the new signature `secret` (default: a strong one made up here)")
	fs.BoolVar(&yes, "yes", false, "switch without asking for confirmation (for scripts: make sure the receiver accepts both secrets first)")
	c, id, err := parseClientID(fs, o, args, "the data connector id")
	if err != nil {
		return err
	}
	if !yes && !interactive {
		return usagef("cannot ask for confirmation: the input is not a terminal; pass --yes once your receiver accepts both secrets")
	}
	if len(next) > dcon.MaxSignatureSecretLen {
		return usagef("--new-secret: over %d bytes", dcon.MaxSignatureSecretLen)
	}
	if next == "" {
		next = newSecret()
	}
	path := connectorPath(o.project, id)
	raw, err := c.get(ctx, path, nil)
	if err != nil {
		return err
	}
	var conn struct {
		HTTPConfig struct {
			// The secret itself is write-only: the server says only whether one is set.
			SignatureSecretSet bool `json:"signatureSecretSet"`
		} `json:"httpConfig"`
	}
	if err := json.Unmarshal(raw, &conn); err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}

	guide := stdout // the steps are the output, except that JSON output stays JSON
	if o.output == "json" {
		guide = stderr
	}
	printRotationSteps(guide, id, o.project, conn.HTTPConfig.SignatureSecretSet, next)
	if !yes {
		fmt.Fprint(stderr, "\nDoes your receiver accept both secrets now? Type yes to switch the connector: ")
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "yes" && a != "y" {
			return errors.New("not confirmed: the connector keeps its current secret")
		}
	}
	raw, err = c.patch(ctx, path, url.Values{"update_mask": {"httpConfig.signatureSecret"}},
		map[string]any{"httpConfig": map[string]any{"signatureSecret": next}})
	if err != nil {
		return fmt.Errorf("switch to the new secret: %w", err)
	}
	fmt.Fprintf(guide, "\nSwitched: data connector %s signs with the new secret from now on, retries included.\n", id)
	fmt.Fprintf(guide, "Last step (4): in a few minutes, remove the old secret from your receiver.\n")
	if o.output == "json" {
		return printJSON(stdout, raw)
	}
	return nil
}

// printRotationSteps writes steps 1 to 4 of a secret rotation.
func printRotationSteps(w io.Writer, id, project string, hasSecret bool, next string) {
	fmt.Fprintf(w, "Rotating the signature secret of data connector %s (project %s).\n\nNew secret: %s\n\n", id, project, next)
	if hasSecret {
		fmt.Fprintf(w, `1. Configure your receiver to accept both the current secret and the new one, for example
     dcon listen --secret "$CURRENT_SECRET" --secret %[1]q
     receiver.Config{Secrets: []string{currentSecret, %[1]q}}
   (Python and Node.js: docs/receiving.md, "Rotate the secret").
`, next)
	} else {
		fmt.Fprint(w, `1. The connector has no secret now: its requests carry no X-Dt-Signature. Make your
   receiver accept requests signed with the new secret, and unsigned ones until step 4.
`)
	}
	fmt.Fprint(w, `2. Confirm that it does.
3. dcon switches the connector to the new secret: every attempt from then on, retries of
   older events included, is signed afresh with it.
4. After a short window, remove the old secret from your receiver. A few minutes are
   enough: an attempt lasts at most 10 s, and a request your receiver refuses is retried,
   signed with the new secret.
`)
}
