package dcon

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// DefaultOrganization owns the projects made without naming an organization,
// until organizations become resources of their own.
const DefaultOrganization = "default"

// Project groups devices and data connectors; everything else lives under one.
type Project struct {
	ID           string    `json:"id"`
	DisplayName  string    `json:"displayName"`
	Organization string    `json:"organization"` // the organization's id
	CreateTime   time.Time `json:"createTime"`
	UpdateTime   time.Time `json:"updateTime"`
}

// Name is the project's resource name, "projects/{p}".
func (p *Project) Name() string { return "projects/" + p.ID }

// ProjectStore keeps projects. Errors carry ENOTFOUND for a missing project,
// ECONFLICT for an existing one, and ECONFLICT when deleting a project that
// still has connectors or devices.
type ProjectStore interface {
	CreateProject(ctx context.Context, p *Project) error
	Project(ctx context.Context, id string) (*Project, error)
	// ListProjects returns projects ordered by id, and the token of the next
	// page ("" on the last).
	ListProjects(ctx context.Context, p Page) ([]*Project, string, error)
	UpdateProject(ctx context.Context, p *Project) error
	// DeleteProject deletes a project with its service accounts and their
	// keys; ECONFLICT while it has connectors or devices, or holds an owner
	// account.
	DeleteProject(ctx context.Context, id string) error
}

// ProjectInUseError is the error of deleting a project that still has data
// connectors or devices, with code ECONFLICT, for example "project has 2 data
// connectors and 5 devices; delete them first". Every store answers it.
func ProjectInUseError(connectors, devices int) error {
	var parts []string
	if connectors > 0 {
		parts = append(parts, plural(connectors, "data connector"))
	}
	if devices > 0 {
		parts = append(parts, plural(devices, "device"))
	}
	them := "them"
	if connectors+devices == 1 {
		them = "it"
	}
	return Errorf(ECONFLICT, "project has %s; delete %s first", strings.Join(parts, " and "), them)
}

// plural returns "1 device", "2 devices".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
