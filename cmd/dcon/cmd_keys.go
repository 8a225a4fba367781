package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// keysNoun is `dcon keys`: the ES256 keys that sign DT-Asymmetric-Signature.
func keysNoun() noun {
	return noun{
		name: "keys",
		summary: "Show and rotate the keys that sign DT-Asymmetric-Signature. The server publishes them at\n" +
			"<issuer>/.well-known/jwks.json; a key replaced by a rotation stays published for --key-overlap (24h).",
		examples: `  dcon keys list
  dcon keys rotate
  dcon keys list --output json
`,
		verbs: []verb{
			{"list", "list the published signing keys, the active one first", runKeysList},
			{"rotate", "make a fresh key the active one; the old one stays published for the overlap", runKeysRotate},
		},
	}
}

// keysAnswer is the answer of GET /v2/keys and POST /v2/keys:rotate.
type keysAnswer struct {
	ActiveKeyID string `json:"activeKeyId"`
	Keys        []struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Crv string `json:"crv"`
	} `json:"keys"`
}

func runKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("keys list", "List the published signing keys: the active one, and those replaced but still in their overlap.",
		"  dcon keys list\n  dcon keys list --output json\n", stderr)
	o := addClientFlags(fs, false)
	c, err := parseClient(fs, o, args, false)
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, "/v2/keys", nil)
	if err != nil {
		return err
	}
	return printKeys(stdout, o.output, raw)
}

func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("keys rotate", "Make a fresh signing key the active one, at once. Receivers that verify through the JWKS\n"+
		"need no change: the old key stays published for the server's --key-overlap.",
		"  dcon keys rotate\n  dcon keys rotate --server http://127.0.0.1:8080 --output json\n", stderr)
	o := addClientFlags(fs, false)
	c, err := parseClient(fs, o, args, false)
	if err != nil {
		return err
	}
	raw, err := c.post(ctx, "/v2/keys:rotate", nil)
	if err != nil {
		return err
	}
	return printKeys(stdout, o.output, raw)
}

// printKeys writes the keys: the API's JSON with --output json, else a table.
func printKeys(w io.Writer, output string, raw json.RawMessage) error {
	if output == "json" {
		return printJSON(w, raw)
	}
	var a keysAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	t := newTable(w, "KID", "STATUS", "ALG", "CURVE")
	for _, k := range a.Keys {
		status := "retired (published)"
		if k.Kid == a.ActiveKeyID {
			status = "active"
		}
		t.row(k.Kid, status, k.Alg, k.Crv)
	}
	return t.flush()
}
