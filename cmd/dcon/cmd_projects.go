package main

import (
	"context"
	"io"
	"net/url"
)

// cliProject is the part of a project resource that the table shows. The id
// is read from "id" when the API sends one, else from the resource name.
type cliProject struct {
	Name         string `json:"name"`
	ID           string `json:"id"`
	DisplayName  string `json:"displayName"`
	Organization string `json:"organization"`
}

func (p cliProject) id() string {
	if p.ID != "" {
		return p.ID
	}
	return resourceID(p.Name)
}

func projectColumns() []string { return []string{"ID", "NAME", "ORGANIZATION"} }

func projectRow(p cliProject) []string {
	return []string{p.id(), p.DisplayName, resourceID(p.Organization)}
}

func projectsNoun() noun {
	return noun{
		name:    "projects",
		summary: "Manage projects. Devices and data connectors live in a project.",
		examples: `  dcon projects create --display-name "Office"
  dcon projects list
  dcon projects get d1abcdefghijklmnopq0 --output json
  dcon projects update d1abcdefghijklmnopq0 --display-name "Head office"
  dcon projects delete d1abcdefghijklmnopq0
`,
		verbs: []verb{
			{"list", "list the projects", runProjectsList},
			{"get", "show a project", runProjectsGet},
			{"create", "create a project", runProjectsCreate},
			{"update", "change a project's display name", runProjectsUpdate},
			{"delete", "delete a project (it must have no devices or connectors)", runProjectsDelete},
		},
	}
}

func runProjectsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("projects list", "List the projects.", "  dcon projects list\n  dcon projects list --output json\n", stderr)
	o := addClientFlags(fs, false)
	c, err := parseClient(fs, o, args, false)
	if err != nil {
		return err
	}
	items, err := c.listAll(ctx, "/v2/projects", "projects")
	if err != nil {
		return err
	}
	return printList(stdout, o.output, "projects", items, projectColumns(), projectRow)
}

// projectArg is the project a verb acts on: its argument, else --project.
func projectArg(args []string, o *cliOptions) (string, error) {
	if len(args) == 0 && o.project != "" {
		return o.project, nil
	}
	if err := wantArgs(args, "the project id"); err != nil {
		return "", err
	}
	return args[0], nil
}

func runProjectsGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("projects get <project-id>", "Show a project (the argument, else --project).",
		"  dcon projects get d1abcdefghijklmnopq0\n  DCON_PROJECT=d1abcdefghijklmnopq0 dcon projects get --output json\n", stderr)
	o := addClientFlags(fs, true)
	args, err := parseCLI(fs, args)
	if err != nil {
		return err
	}
	id, err := projectArg(args, o)
	if err != nil {
		return err
	}
	c, err := o.client(false)
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, "/v2/projects/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, projectColumns(), projectRow)
}

func runProjectsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("projects create", "Create a project. dcon chooses its id; the table shows it.",
		"  dcon projects create --display-name \"Office\"\n  dcon projects create --display-name \"Lab\" --output json\n", stderr)
	o := addClientFlags(fs, false)
	displayName := fs.String("display-name", "", "the project's display `name`")
	c, err := parseClient(fs, o, args, false)
	if err != nil {
		return err
	}
	raw, err := c.post(ctx, "/v2/projects", map[string]any{"displayName": *displayName})
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, projectColumns(), projectRow)
}

func runProjectsUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("projects update <project-id>", "Change a project's display name.",
		"  dcon projects update d1abcdefghijklmnopq0 --display-name \"Head office\"\n", stderr)
	o := addClientFlags(fs, true)
	displayName := fs.String("display-name", "", "the new display `name`")
	args, err := parseCLI(fs, args)
	if err != nil {
		return err
	}
	id, err := projectArg(args, o)
	if err != nil {
		return err
	}
	if !flagGiven(fs, "display-name") {
		return usagef("nothing to update: give --display-name")
	}
	c, err := o.client(false)
	if err != nil {
		return err
	}
	raw, err := c.patch(ctx, "/v2/projects/"+url.PathEscape(id), nil, map[string]any{"displayName": *displayName})
	if err != nil {
		return err
	}
	return printOne(stdout, o.output, raw, projectColumns(), projectRow)
}

func runProjectsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("projects delete <project-id>", "Delete a project. It must have no devices and no data connectors left.",
		"  dcon projects delete d1abcdefghijklmnopq0\n", stderr)
	o := addClientFlags(fs, true)
	args, err := parseCLI(fs, args)
	if err != nil {
		return err
	}
	id, err := projectArg(args, o)
	if err != nil {
		return err
	}
	c, err := o.client(false)
	if err != nil {
		return err
	}
	raw, err := c.del(ctx, "/v2/projects/"+url.PathEscape(id))
	if err != nil {
		return err
	}
	return printDeleted(stdout, o.output, raw, "project", id)
}
