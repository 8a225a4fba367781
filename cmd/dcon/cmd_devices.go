package main

import (
	"context"
	"io"
	"net/url"
)

// cliDevice is the part of a device resource that the table shows.
type cliDevice struct {
	Name   string            `json:"name"`
	Type   string            `json:"type"`
	Labels map[string]string `json:"labels"`
}

func deviceColumns() []string { return []string{"ID", "TYPE", "LABELS"} }

func deviceRow(d cliDevice) []string {
	return []string{resourceID(d.Name), d.Type, joinMap(d.Labels)}
}

func devicesNoun() noun {
	return noun{
		name:    "devices",
		summary: "Manage the emulated devices of a project and their labels.",
		examples: `  dcon devices create --project office --type temperature --label name=kitchen
  dcon devices list --project office
  dcon devices get emuc17m6d7lq0bgk44smcqg --project office --output json
  dcon devices update emuc17m6d7lq0bgk44smcqg --project office --label name=lab --label floor=2
  dcon devices delete emuc17m6d7lq0bgk44smcqg --project office
`,
		verbs: []verb{
			{"list", "list a project's devices", runDevicesList},
			{"get", "show a device", runDevicesGet},
			{"create", "create an emulated device", runDevicesCreate},
			{"update", "replace a device's labels (publishes labelsChanged)", runDevicesUpdate},
			{"delete", "delete a device", runDevicesDelete},
		},
	}
}

func devicePath(project, id string) string {
	return projectPath(project, "devices/") + url.PathEscape(id)
}

func runDevicesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("devices list", "List a project's devices.", "  dcon devices list --project office\n  dcon devices list --project office --output json\n", stderr)
	o := addClientFlags(fs, true)
	c, err := parseClient(fs, o, args, true)
	if err != nil {
		return err
	}
	items, err := c.listAll(ctx, projectPath(o.project, "devices"), "devices")
	if err != nil {
		return err
	}
	return printList(stdout, o.output, "devices", items, deviceColumns(), deviceRow)
}

func runDevicesGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("devices get <device-id>", "Show a device.", "  dcon devices get emuc17m6d7lq0bgk44smcqg --project office\n", stderr)
	o := addClientFlags(fs, true)
	c, id, err := parseClientID(fs, o, args, "the device id")
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, devicePath(o.project, id), nil)
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, deviceColumns(), deviceRow)
}

func runDevicesCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("devices create", "Create an emulated device. dcon chooses its id (emu…) and adds the label virtual-sensor.",
		"  dcon devices create --project office --type temperature\n  dcon devices create --project office --type co2 --label name=meeting-room --label floor=3\n", stderr)
	o := addClientFlags(fs, true)
	typ := fs.String("type", "", "the device `type`: temperature, proximity, touch, humidity, proximityCounter, touchCounter, waterDetector, co2, motion, deskOccupancy, contact or ccon")
	labels := mapFlag{}
	fs.Var(labels, "label", "a label `key=value` (repeatable)")
	c, err := parseClient(fs, o, args, true)
	if err != nil {
		return err
	}
	if *typ == "" {
		return usagef("--type is required, for example --type temperature")
	}
	raw, err := c.post(ctx, projectPath(o.project, "devices"), map[string]any{"type": *typ, "labels": map[string]string(labels)})
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, deviceColumns(), deviceRow)
}

func runDevicesUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("devices update <device-id>", "Replace a device's labels with the --label flags given. A change publishes a labelsChanged event.",
		"  dcon devices update emuc17m6d7lq0bgk44smcqg --project office --label name=lab --label floor=2\n", stderr)
	o := addClientFlags(fs, true)
	labels := mapFlag{}
	fs.Var(labels, "label", "a label `key=value` (repeatable); the labels given replace all others, and --label \"\" alone removes them")
	c, id, err := parseClientID(fs, o, args, "the device id")
	if err != nil {
		return err
	}
	if !flagGiven(fs, "label") {
		return usagef("nothing to update: give the new labels with --label key=value (repeatable; --label \"\" removes them all)")
	}
	raw, err := c.patch(ctx, devicePath(o.project, id), nil, map[string]any{"labels": map[string]string(labels)})
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, deviceColumns(), deviceRow)
}

func runDevicesDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("devices delete <device-id>", "Delete a device.", "  dcon devices delete emuc17m6d7lq0bgk44smcqg --project office\n", stderr)
	o := addClientFlags(fs, true)
	c, id, err := parseClientID(fs, o, args, "the device id")
	if err != nil {
		return err
	}
	raw, err := c.del(ctx, devicePath(o.project, id))
	if err != nil {
		return err
	}
	return printDeleted(stdout, o.output, raw, "device", id)
}
