package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// noun is a client command with verbs: `dcon <noun> <verb> [flags] [args]`.
type noun struct {
	name     string
	summary  string
	examples string
	verbs    []verb
}

// verb is one action of a noun.
type verb struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// run finds the verb named by args[0] and runs it with the rest. Its errors
// say which verb failed: "get: data connector "x" not found (404)".
func (n noun) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		n.usage(stderr)
		return usagef("missing the action: one of %s", strings.Join(n.verbNames(), ", "))
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		n.usage(stderr)
		return flag.ErrHelp
	}
	for _, v := range n.verbs {
		if v.name == args[0] {
			return v.run(ctx, args[1:], stdout, stderr)
		}
	}
	if strings.HasPrefix(args[0], "-") {
		return usagef("missing the action before %s: one of %s", args[0], strings.Join(n.verbNames(), ", "))
	}
	return usagef("unknown action %q: use one of %s", args[0], strings.Join(n.verbNames(), ", "))
}

func (n noun) verbNames() []string {
	names := make([]string, len(n.verbs))
	for i, v := range n.verbs {
		names[i] = v.name
	}
	return names
}

func (n noun) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: dcon %s <action> [flags] [args]\n\n%s\n\nActions:\n", n.name, n.summary)
	for _, v := range n.verbs {
		fmt.Fprintf(w, "  %-13s %s\n", v.name, v.summary)
	}
	fmt.Fprintf(w, "\nExamples:\n%s\nRun 'dcon %s <action> --help' for an action's flags.\n", n.examples, n.name)
}

// commandLabel names the command that args run, for messages: the noun and its
// verb ("connectors get") for client commands, else the command's name.
func commandLabel(name string, args []string) string {
	for _, n := range []noun{projectsNoun(), devicesNoun(), connectorsNoun(), keysNoun()} {
		if n.name == name && len(args) > 0 && slices.Contains(n.verbNames(), args[0]) {
			return name + " " + args[0]
		}
	}
	return name
}

// verbFlags returns the flag set of one verb, whose --help shows its
// synopsis, flags and examples.
func verbFlags(name, synopsis, examples string, stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet(name, synopsis, stderr)
	flagsUsage := fs.Usage
	fs.Usage = func() {
		flagsUsage()
		fmt.Fprintf(stderr, "\nExamples:\n%s", examples)
	}
	return fs
}

// wantArgs checks the number of a verb's arguments.
func wantArgs(args []string, names ...string) error {
	switch {
	case len(args) < len(names):
		return usagef("missing %s", names[len(args)])
	case len(args) > len(names):
		return usagef("unexpected argument %q", args[len(names)])
	}
	return nil
}

// printJSON writes a JSON value as the API answered it, pretty-printed.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// printListJSON writes every page's items as one list answer, as the API
// writes a page: {"<key>": [...], "nextPageToken": ""}, pretty-printed.
func printListJSON(w io.Writer, key string, items []json.RawMessage) error {
	if items == nil {
		items = []json.RawMessage{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string][]json.RawMessage{key: items}); err != nil {
		return err
	}
	// The list first, as in the API's answers; then the (last) page token.
	list := bytes.TrimSuffix(bytes.TrimSpace(buf.Bytes()), []byte("}"))
	return printJSON(w, append(list, `,"nextPageToken":""}`...))
}

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row writes one row; tabs and newlines inside a cell become spaces.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
		if cells[i] == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// joinMap shows labels or headers as "k=v,k=v", sorted by key.
func joinMap(m map[string]string) string {
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

// printOne writes one resource: the API's JSON with --output json, else a
// table of one row. row turns the resource into its cells.
func printOne[R any](w io.Writer, output string, raw json.RawMessage, header []string, row func(R) []string) error {
	if output == "json" {
		return printJSON(w, raw)
	}
	return printTable(w, []json.RawMessage{raw}, header, row)
}

// printList writes a whole list: {"<key>": [...], "nextPageToken": ""} with
// --output json, else a table with one row per resource.
func printList[R any](w io.Writer, output, key string, items []json.RawMessage, header []string, row func(R) []string) error {
	if output == "json" {
		return printListJSON(w, key, items)
	}
	return printTable(w, items, header, row)
}

func printTable[R any](w io.Writer, raws []json.RawMessage, header []string, row func(R) []string) error {
	t := newTable(w, header...)
	for _, raw := range raws {
		var r R
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("read the server's answer: %w", err)
		}
		t.row(row(r)...)
	}
	return t.flush()
}

// printDeleted confirms a deletion: the API's answer ({}) with --output json,
// else one line.
func printDeleted(w io.Writer, output string, raw json.RawMessage, what, id string) error {
	if output == "json" {
		return printJSON(w, raw)
	}
	_, err := fmt.Fprintf(w, "deleted %s %s\n", what, id)
	return err
}
