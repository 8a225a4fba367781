package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/rs/xid"

	"dcon"
)

// projectResource is a project as the API shows it: the original product's
// Project resource, whose clients read every member without checking that it
// exists, so every member is always present. dcon keeps no sensor or Cloud
// Connector counts and no inventory projects: sensorCount and
// cloudConnectorCount are 0 and inventory false. createTime and updateTime are
// dcon's own (additive).
type projectResource struct {
	Name                    string `json:"name"`
	DisplayName             string `json:"displayName"`
	Organization            string `json:"organization"`
	OrganizationDisplayName string `json:"organizationDisplayName"`
	SensorCount             int    `json:"sensorCount"`
	CloudConnectorCount     int    `json:"cloudConnectorCount"`
	Inventory               bool   `json:"inventory"`
	CreateTime              string `json:"createTime"`
	UpdateTime              string `json:"updateTime"`
}

func newProjectResource(p *dcon.Project) projectResource {
	return projectResource{
		Name:         p.Name(),
		DisplayName:  p.DisplayName,
		Organization: organizationPrefix + p.Organization,
		CreateTime:   dcon.FormatTime(p.CreateTime),
		UpdateTime:   dcon.FormatTime(p.UpdateTime),
	}
}

// projectList is a page of projects; a struct, so that the list comes before
// nextPageToken as in the other lists.
type projectList struct {
	Projects      []projectResource `json:"projects"`
	NextPageToken string            `json:"nextPageToken"`
}

// organizationPrefix starts an organization's resource name.
const organizationPrefix = "organizations/"

// projectFields is a project as a client sends it. Members are kept raw so that
// a present member (null included) can be told from an absent one. Only
// displayName can be set, and organization at creation; the other members are
// output only: accepted and ignored, so that a resource read can be sent back.
type projectFields struct {
	Name                    json.RawMessage `json:"name"`
	DisplayName             json.RawMessage `json:"displayName"`
	Organization            json.RawMessage `json:"organization"`
	OrganizationDisplayName json.RawMessage `json:"organizationDisplayName"`
	SensorCount             json.RawMessage `json:"sensorCount"`
	CloudConnectorCount     json.RawMessage `json:"cloudConnectorCount"`
	Inventory               json.RawMessage `json:"inventory"`
	CreateTime              json.RawMessage `json:"createTime"`
	UpdateTime              json.RawMessage `json:"updateTime"`
}

// The paths of a project that a request can name, as in update_mask.
// organization cannot change: naming it with another value is refused.
const (
	pathProjectDisplayName  = "displayName"
	pathProjectOrganization = "organization"
)

func (a *api) decodeProject(w http.ResponseWriter, r *http.Request) (*projectFields, error) {
	body, err := a.readBody(w, r)
	if err != nil {
		return nil, err
	}
	var f projectFields
	if err := decodeObject(body, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// presentProjectPaths lists the paths whose members are present in f.
func presentProjectPaths(f *projectFields) []string {
	var paths []string
	if f.DisplayName != nil {
		paths = append(paths, pathProjectDisplayName)
	}
	if f.Organization != nil {
		paths = append(paths, pathProjectOrganization)
	}
	return paths
}

// projectUpdateMask reads the update_mask (or updateMask) query parameter: nil
// when there is none, else its paths.
func projectUpdateMask(r *http.Request) ([]string, error) {
	q := r.URL.Query()
	values := q["update_mask"]
	if len(values) == 0 {
		values = q["updateMask"]
	}
	var paths []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			switch p = strings.TrimSpace(p); p {
			case "":
			case pathProjectDisplayName, pathProjectOrganization:
				paths = append(paths, p)
			default:
				return nil, dcon.Errorf(dcon.EINVALID, "unknown update_mask path %q", p)
			}
		}
	}
	return paths, nil
}

// organizationOf reads the organization member: the id of
// "organizations/{id}", dcon.DefaultOrganization when it is absent, null or "".
func organizationOf(raw json.RawMessage) (string, error) {
	var name string
	if err := setField(pathProjectOrganization, raw, &name); err != nil {
		return "", err
	}
	if name == "" {
		return dcon.DefaultOrganization, nil
	}
	id, ok := strings.CutPrefix(name, organizationPrefix)
	if !ok || !dcon.ValidProjectID(id) {
		return "", dcon.Errorf(dcon.EINVALID, "field %q must be %q followed by 1 to 63 lowercase letters, digits and hyphens, not %q",
			pathProjectOrganization, organizationPrefix, name)
	}
	return id, nil
}

// applyProject sets the given paths of p from f; a path whose member is absent
// is cleared. The organization cannot change.
func applyProject(p *dcon.Project, f *projectFields, paths []string) error {
	for _, path := range paths {
		switch path {
		case pathProjectDisplayName:
			if err := setField(path, f.DisplayName, &p.DisplayName); err != nil {
				return err
			}
		case pathProjectOrganization:
			org, err := organizationOf(f.Organization)
			if err != nil {
				return err
			}
			if org != p.Organization {
				return dcon.Errorf(dcon.EINVALID, "organization cannot be changed (it is %s%s)", organizationPrefix, p.Organization)
			}
		}
	}
	return validateProject(p)
}

// validateProject checks what a client can set: displayName is valid UTF-8 of
// at most dcon.MaxDisplayNameLen bytes, as a connector's.
func validateProject(p *dcon.Project) error {
	if len(p.DisplayName) > dcon.MaxDisplayNameLen {
		return dcon.Errorf(dcon.EINVALID, "displayName: over %d bytes", dcon.MaxDisplayNameLen)
	}
	if !utf8.ValidString(p.DisplayName) {
		return dcon.Errorf(dcon.EINVALID, "displayName: not valid UTF-8")
	}
	return nil
}

// projectStore returns the server's project store, or fails with ENOTFOUND when
// projects are not enabled.
func (a *api) projectStore() (dcon.ProjectStore, error) {
	if a.projects == nil {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "projects are not enabled on this server")
	}
	return a.projects, nil
}

// pathProject reads and checks the project id of a project's own path. An id
// that cannot exist is not found.
func (a *api) pathProject(r *http.Request) (dcon.ProjectStore, string, error) {
	s, err := a.projectStore()
	if err != nil {
		return nil, "", err
	}
	id := r.PathValue("p")
	if !dcon.ValidProjectID(id) {
		return nil, "", dcon.Errorf(dcon.ENOTFOUND, "project %q not found", id)
	}
	return s, id, nil
}

func (a *api) listProjects(w http.ResponseWriter, r *http.Request) error {
	s, err := a.projectStore()
	if err != nil {
		return err
	}
	page, err := pageOf(r)
	if err != nil {
		return err
	}
	items, next, err := s.ListProjects(r.Context(), page)
	if err != nil {
		return err
	}
	out := make([]projectResource, 0, len(items))
	for _, p := range items {
		out = append(out, newProjectResource(p))
	}
	return a.respond(w, http.StatusOK, projectList{Projects: out, NextPageToken: next})
}

func (a *api) createProject(w http.ResponseWriter, r *http.Request) error {
	s, err := a.projectStore()
	if err != nil {
		return err
	}
	f, err := a.decodeProject(w, r)
	if err != nil {
		return err
	}
	org, err := organizationOf(f.Organization)
	if err != nil {
		return err
	}
	now := a.now()
	p := &dcon.Project{
		ID:           xid.New().String(),
		Organization: org,
		CreateTime:   now,
		UpdateTime:   now,
	}
	if err := applyProject(p, f, []string{pathProjectDisplayName}); err != nil {
		return err
	}
	if err := s.CreateProject(r.Context(), p); err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newProjectResource(p))
}

func (a *api) getProject(w http.ResponseWriter, r *http.Request) error {
	s, id, err := a.pathProject(r)
	if err != nil {
		return err
	}
	p, err := s.Project(r.Context(), id)
	if err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newProjectResource(p))
}

func (a *api) patchProject(w http.ResponseWriter, r *http.Request) error {
	s, id, err := a.pathProject(r)
	if err != nil {
		return err
	}
	mask, err := projectUpdateMask(r)
	if err != nil {
		return err
	}
	f, err := a.decodeProject(w, r)
	if err != nil {
		return err
	}
	if mask == nil {
		mask = presentProjectPaths(f)
	}
	p, err := s.Project(r.Context(), id)
	if err != nil {
		return err
	}
	if err := applyProject(p, f, mask); err != nil {
		return err
	}
	p.UpdateTime = a.now()
	if err := s.UpdateProject(r.Context(), p); err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newProjectResource(p))
}

func (a *api) deleteProject(w http.ResponseWriter, r *http.Request) error {
	s, id, err := a.pathProject(r)
	if err != nil {
		return err
	}
	if err := s.DeleteProject(r.Context(), id); err != nil {
		return err
	}
	a.write(w, http.StatusOK, []byte("{}"))
	return nil
}
