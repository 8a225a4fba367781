package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("publish <eventType> [field=value ...]",
		"Publish one event for a device. The field=value pairs make the event's data: numbers and\n"+
			"true/false are sent as JSON, anything else as a string. --data gives the data as JSON instead.\n"+
			"Prints the event id (the whole event with --output json).",
		`  dcon publish --project office --device emuc17m6d7lq0bgk44smcqg temperature value=21.5
  dcon publish --project office --device emuc17m6d7lq0bgk44smcqg objectPresent state=PRESENT
  dcon publish --project office --device emuc17m6d7lq0bgk44smcqg touch
  dcon publish --project office --device emuc17m6d7lq0bgk44smcqg temperature --data '{"value":21.5,"isBackfilled":true}'
`, stderr)
	o := addClientFlags(fs, true)
	device := fs.String("device", "", "the device `id`")
	data := fs.String("data", "", "the event's data as a JSON `object`, instead of field=value pairs")
	rawArgs := args
	args, err := parseCLI(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("missing the event type, for example: dcon publish --device emu… temperature value=21.5")
	}
	if *device == "" {
		return usagef("--device is required")
	}
	// DCON_DATA is serve's data directory: --data counts only on the command line.
	dataGiven := onCommandLine(rawArgs, "data")
	if !dataGiven {
		*data = ""
	}
	body, err := eventBody(args[0], args[1:], *data, dataGiven)
	if err != nil {
		return err
	}
	c, err := o.client(true)
	if err != nil {
		return err
	}
	raw, err := c.post(ctx, devicePath(o.project, *device)+":publish", body)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(stdout, raw)
	}
	var ev struct {
		EventID string `json:"eventId"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return fmt.Errorf("read the server's answer: %w", err)
	}
	_, err = fmt.Fprintln(stdout, ev.EventID)
	return err
}

// eventBody is the :publish body {"<eventType>": data}, data made of the
// field=value pairs or given as JSON.
func eventBody(eventType string, fields []string, data string, dataGiven bool) (map[string]json.RawMessage, error) {
	if dataGiven && len(fields) > 0 {
		return nil, usagef("give the data either as field=value pairs or with --data, not both")
	}
	if dataGiven {
		d := json.RawMessage(strings.TrimSpace(data))
		if !json.Valid(d) || !bytes.HasPrefix(d, []byte("{")) {
			return nil, usagef("--data %q: want a JSON object, for example '{\"value\":21.5}'", data)
		}
		return map[string]json.RawMessage{eventType: d}, nil
	}
	obj := map[string]json.RawMessage{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usagef("%q: want field=value, for example value=21.5", f)
		}
		obj[k] = fieldValue(v)
	}
	d, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{eventType: d}, nil
}

// fieldValue is the JSON of a field=value pair's value: a number, true or
// false as they are, anything else as a string.
func fieldValue(v string) json.RawMessage {
	if v == "true" || v == "false" {
		return json.RawMessage(v)
	}
	if v != "" && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) && json.Valid([]byte(v)) {
		return json.RawMessage(v)
	}
	s, _ := json.Marshal(v)
	return s
}

// onCommandLine reports whether the flag name is among args (before "--").
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if f, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && f == name {
			return true
		}
	}
	return false
}
