package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"dcon"
)

// fakeProjects is an in-memory dcon.ProjectStore. Like the real store, it
// refuses to delete a project that has connectors or devices in conns or devs.
// When err is set, every call fails with it.
type fakeProjects struct {
	conns *fakeConnectors
	devs  *fakeDevices

	mu  sync.Mutex
	m   map[string]*dcon.Project // by id
	err error
}

func (f *fakeProjects) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func notFoundProject(id string) error {
	return dcon.Errorf(dcon.ENOTFOUND, "project projects/%s not found", id)
}

func (f *fakeProjects) CreateProject(_ context.Context, p *dcon.Project) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, ok := f.m[p.ID]; ok {
		return dcon.Errorf(dcon.ECONFLICT, "project %s already exists", p.Name())
	}
	n := *p
	f.m[p.ID] = &n
	return nil
}

func (f *fakeProjects) Project(_ context.Context, id string) (*dcon.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	p, ok := f.m[id]
	if !ok {
		return nil, notFoundProject(id)
	}
	n := *p
	return &n, nil
}

func (f *fakeProjects) ListProjects(_ context.Context, page dcon.Page) ([]*dcon.Project, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, "", f.err
	}
	var all []*dcon.Project
	for _, p := range f.m {
		n := *p
		all = append(all, &n)
	}
	slices.SortFunc(all, func(a, b *dcon.Project) int { return cmpString(a.ID, b.ID) })
	return paginate(all, page, func(p *dcon.Project) string { return p.ID })
}

func (f *fakeProjects) UpdateProject(_ context.Context, p *dcon.Project) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, ok := f.m[p.ID]; !ok {
		return notFoundProject(p.ID)
	}
	n := *p
	f.m[p.ID] = &n
	return nil
}

func (f *fakeProjects) DeleteProject(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, ok := f.m[id]; !ok {
		return notFoundProject(id)
	}
	conns, devs := f.conns.countIn(id), f.devs.countIn(id)
	if conns+devs > 0 {
		return dcon.Errorf(dcon.ECONFLICT, "project has %d data connector(s) and %d device(s); delete them first", conns, devs)
	}
	delete(f.m, id)
	return nil
}

func (f *fakeProjects) get(id string) *dcon.Project {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.m[id]; ok {
		n := *p
		return &n
	}
	return nil
}

func (f *fakeProjects) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

func (f *fakeConnectors) countIn(projectID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.m {
		if c.ProjectID == projectID {
			n++
		}
	}
	return n
}

func (f *fakeDevices) countIn(projectID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.m {
		if d.ProjectID == projectID {
			n++
		}
	}
	return n
}

// newProjectEnv starts a test server with a project store; opts may change its
// Server before it starts.
func newProjectEnv(t *testing.T, opts ...func(*Server)) (*env, *fakeProjects) {
	t.Helper()
	var fp *fakeProjects
	e := newEnv(t, append([]func(*Server){func(s *Server) {
		fp = &fakeProjects{conns: s.Connectors.(*fakeConnectors), devs: s.Devices.(*fakeDevices), m: map[string]*dcon.Project{}}
		s.Projects = fp
	}}, opts...)...)
	return e, fp
}

// seedProject stores a project directly and returns it.
func seedProject(t *testing.T, fp *fakeProjects, id string) *dcon.Project {
	t.Helper()
	p := &dcon.Project{
		ID:           id,
		DisplayName:  "seed",
		Organization: "acme",
		CreateTime:   testNow.Add(-time.Hour),
		UpdateTime:   testNow.Add(-time.Hour),
	}
	if err := fp.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateProject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, golden, body string
	}{
		{"full", "project_created.golden.json", `{"displayName":"My Project","organization":"organizations/bvmdh4b5r0c0008fbsvg"}`},
		{"minimal", "project_minimal.golden.json", `{}`},
		{"null and empty are the defaults", "project_minimal.golden.json", `{"displayName":null,"organization":""}`},
		{"a resource read, sent back", "project_minimal.golden.json", `{"name":"projects/ignored","displayName":"",
			"organization":"organizations/default","organizationDisplayName":"Acme","sensorCount":3,"cloudConnectorCount":1,
			"inventory":true,"createTime":"2020-01-01T00:00:00Z","updateTime":"2020-01-01T00:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, fp := newProjectEnv(t)
			res := e.do(t, "POST", "/v2/projects", tt.body)
			res.want(t, http.StatusOK, "")
			var got projectResource
			res.decode(t, &got)
			id := idOf(got.Name)
			if !dcon.ValidID(id) {
				t.Fatalf("id %q is not an xid", id)
			}
			golden(t, tt.golden, strings.ReplaceAll(res.body, id, "{id}"))

			stored := fp.get(id)
			if stored == nil {
				t.Fatal("project not stored")
			}
			if want := newProjectResource(stored); !reflect.DeepEqual(got, want) {
				t.Errorf("answered %+v, stored %+v", got, want)
			}
			// A read answers the same bytes.
			e.do(t, "GET", "/v2/projects/"+id, "").want(t, http.StatusOK, res.body)
			// And the project's collections are there, empty.
			e.do(t, "GET", "/v2/projects/"+id+"/dataconnectors", "").want(t, http.StatusOK, `{"dataConnectors":[],"nextPageToken":""}`)
		})
	}
}

func TestCreateProjectRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		header     []string
		status     int
		msg        string
	}{
		{"unknown field", `{"displayName":"x","colour":"red"}`, nil, 400, `unknown field "colour"`},
		{"displayName not a string", `{"displayName":7}`, nil, 400, `field "displayName" must be a string, not a number`},
		{"organization not a string", `{"organization":{"id":"x"}}`, nil, 400, `field "organization" must be a string, not an object`},
		{"organization without its prefix", `{"organization":"acme"}`, nil, 400,
			`field "organization" must be "organizations/" followed by 1 to 63 lowercase letters, digits and hyphens, not "acme"`},
		{"organization without an id", `{"organization":"organizations/"}`, nil, 400,
			`field "organization" must be "organizations/" followed by 1 to 63 lowercase letters, digits and hyphens, not "organizations/"`},
		{"organization with a bad id", `{"organization":"organizations/Acme/x"}`, nil, 400,
			`field "organization" must be "organizations/" followed by 1 to 63 lowercase letters, digits and hyphens, not "organizations/Acme/x"`},
		{"displayName too long", `{"displayName":"` + strings.Repeat("x", dcon.MaxDisplayNameLen+1) + `"}`, nil, 400, "displayName: over 256 bytes"},
		{"not an object", `["x"]`, nil, 400, "request body must be a JSON object, not an array"},
		{"empty body", ``, nil, 400, "request body is empty: send a JSON object"},
		{"trailing data", `{} {}`, nil, 400, "malformed JSON at line 1, column 4: unexpected data after the JSON value"},
		{"too large", `{"displayName":"` + strings.Repeat("x", 600) + `"}`, nil, 413, "request body is larger than 512 bytes"},
		{"not JSON", `{}`, []string{"Content-Type", "text/plain"}, 415, `unsupported Content-Type "text/plain": send application/json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, fp := newProjectEnv(t, func(s *Server) { s.MaxBodyBytes = 512 })
			e.do(t, "POST", "/v2/projects", tt.body, tt.header...).wantError(t, tt.status, tt.msg)
			if n := fp.count(); n != 0 {
				t.Errorf("%d projects stored", n)
			}
		})
	}
}

func TestPatchProject(t *testing.T) {
	t.Parallel()
	const id = "c0md3pm0p7bet3vico8g"
	tests := []struct {
		name, query, body string
		status            int
		displayName       string // after the request
		msg               string // of an error
	}{
		{"displayName", "", `{"displayName":"renamed"}`, 200, "renamed", ""},
		{"nothing named, nothing changed", "", `{}`, 200, "seed", ""},
		{"same organization", "", `{"displayName":"renamed","organization":"organizations/acme"}`, 200, "renamed", ""},
		{"mask", "?update_mask=displayName", `{"displayName":"renamed"}`, 200, "renamed", ""},
		{"camelCase mask", "?updateMask=displayName", `{"displayName":"renamed"}`, 200, "renamed", ""},
		{"mask clears an absent member", "?update_mask=displayName", `{}`, 200, "", ""},
		{"mask leaves out a member", "?update_mask=", `{"displayName":"renamed"}`, 200, "renamed", ""},
		{"output-only members ignored", "", `{"name":"projects/x","displayName":"renamed","sensorCount":9,"inventory":true}`, 200, "renamed", ""},
		{"other organization", "", `{"organization":"organizations/other"}`, 400, "seed",
			"organization cannot be changed (it is organizations/acme)"},
		{"unknown mask path", "?update_mask=displayName,sensorCount", `{"displayName":"renamed"}`, 400, "seed",
			`unknown update_mask path "sensorCount"`},
		{"unknown field", "", `{"displayName":"renamed","owner":"me"}`, 400, "seed", `unknown field "owner"`},
		{"displayName too long", "", `{"displayName":"` + strings.Repeat("é", 129) + `"}`, 400, "seed", "displayName: over 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, fp := newProjectEnv(t)
			seed := seedProject(t, fp, id)
			res := e.do(t, "PATCH", "/v2/projects/"+id+tt.query, tt.body)
			if tt.status != http.StatusOK {
				res.wantError(t, tt.status, tt.msg)
				if got := fp.get(id); !reflect.DeepEqual(got, seed) {
					t.Errorf("stored %+v after a refused patch, want %+v", got, seed)
				}
				return
			}
			want := *seed
			want.DisplayName = tt.displayName
			want.UpdateTime = testNow
			res.want(t, http.StatusOK, resourceJSON(t, newProjectResource(&want)))
			if got := fp.get(id); !reflect.DeepEqual(got, &want) {
				t.Errorf("stored %+v, want %+v", got, &want)
			}
		})
	}
}

// resourceJSON is v as the API writes it.
func resourceJSON(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestDeleteProject(t *testing.T) {
	t.Parallel()
	const id = "c0md3pm0p7bet3vico8g"
	e, fp := newProjectEnv(t)
	seedProject(t, fp, id)
	path := "/v2/projects/" + id

	// Not empty: refused, with the store's reason, and nothing deleted.
	c := &dcon.Connector{ProjectID: id, ID: "c16pegipidie7lltrefg", Type: dcon.ConnectorHTTPPush, Status: dcon.StatusActive}
	if err := e.conns.CreateConnector(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	res := e.do(t, "POST", path+"/devices", `{"type":"touch"}`)
	res.want(t, http.StatusOK, "")
	var dev deviceResource
	res.decode(t, &dev)
	e.do(t, "DELETE", path, "").wantError(t, http.StatusConflict, "project has 1 data connector(s) and 1 device(s); delete them first")
	e.do(t, "DELETE", path+"/dataconnectors/"+c.ID, "").want(t, http.StatusOK, "{}")
	e.do(t, "DELETE", path, "").wantError(t, http.StatusConflict, "project has 0 data connector(s) and 1 device(s); delete them first")
	e.do(t, "GET", path, "").want(t, http.StatusOK, "")
	e.do(t, "DELETE", "/v2/"+dev.Name, "").want(t, http.StatusOK, "{}")

	// Empty: deleted, and everything under it is gone.
	e.do(t, "DELETE", path, "").want(t, http.StatusOK, "{}")
	if fp.get(id) != nil {
		t.Error("project still stored")
	}
	notFound := "project projects/" + id + " not found"
	e.do(t, "GET", path, "").wantError(t, http.StatusNotFound, notFound)
	e.do(t, "DELETE", path, "").wantError(t, http.StatusNotFound, notFound)
	e.do(t, "PATCH", path, `{"displayName":"x"}`).wantError(t, http.StatusNotFound, notFound)
	e.do(t, "GET", path+"/devices", "").wantError(t, http.StatusNotFound, notFound)
}

// TestProjectMustExist: with a project store, every path under a project that
// does not exist is not found, and nothing is stored.
func TestProjectMustExist(t *testing.T) {
	t.Parallel()
	e, fp := newProjectEnv(t)
	const other = "c0md3pm0p7bet3vico8g"
	seedProject(t, fp, project)
	e.seedConnector(t, "c16pegipidie7lltrefg") // in project, which exists
	msg := "project projects/" + other + " not found"
	base := "/v2/projects/" + other
	for _, req := range []struct{ method, path, body string }{
		{"GET", base + "/dataconnectors", ""},
		{"POST", base + "/dataconnectors", `{"type":"HTTP_PUSH","httpConfig":{"url":"https://x.com"}}`},
		{"GET", base + "/dataconnectors/c16pegipidie7lltrefg", ""},
		{"PATCH", base + "/dataconnectors/c16pegipidie7lltrefg", `{"displayName":"x"}`},
		{"DELETE", base + "/dataconnectors/c16pegipidie7lltrefg", ""},
		{"GET", base + "/devices", ""},
		{"POST", base + "/devices", `{"type":"touch"}`},
		{"GET", base + "/devices/" + emuID, ""},
		{"PATCH", base + "/devices/" + emuID, `{"labels":{}}`},
		{"DELETE", base + "/devices/" + emuID, ""},
		{"POST", base + "/devices/" + emuID + ":publish", `{"touch":{}}`},
	} {
		e.do(t, req.method, req.path, req.body).wantError(t, http.StatusNotFound, msg)
	}
	if n := e.conns.countIn(other) + e.devs.countIn(other); n != 0 {
		t.Errorf("%d resources stored under a missing project", n)
	}
	if got := e.conns.get(project, "c16pegipidie7lltrefg"); got == nil || got.DisplayName != "seed" {
		t.Errorf("the existing project's connector changed: %+v", got)
	}
	// The existing project's collections answer.
	e.do(t, "GET", "/v2/projects/"+project+"/devices", "").want(t, http.StatusOK, `{"devices":[],"nextPageToken":""}`)
}

func TestListProjects(t *testing.T) {
	t.Parallel()
	e, _ := newProjectEnv(t)
	e.do(t, "GET", "/v2/projects", "").want(t, http.StatusOK, `{"projects":[],"nextPageToken":""}`)
	var want []string
	for i := range 250 {
		res := e.do(t, "POST", "/v2/projects", fmt.Sprintf(`{"displayName":"p%d"}`, i))
		var p projectResource
		res.decode(t, &p)
		want = append(want, p.Name)
	}
	slices.Sort(want)

	tests := []struct {
		name, query string
		pages       []int
	}{
		{"default size", "", []int{100, 100, 50}},
		{"size 60", "page_size=60", []int{60, 60, 60, 60, 10}},
		{"size clamped", "page_size=1000", []int{100, 100, 50}},
		{"exact pages", "page_size=50", []int{50, 50, 50, 50, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			var sizes []int
			token := ""
			for i := 0; ; i++ {
				q := "?" + tt.query
				if token != "" {
					q += map[bool]string{true: "&page_token=", false: "&pageToken="}[i%2 == 0] + token
				}
				var page struct {
					Projects      []projectResource
					NextPageToken *string
				}
				e.do(t, "GET", "/v2/projects"+q, "").decode(t, &page)
				if page.NextPageToken == nil {
					t.Fatal("nextPageToken missing")
				}
				sizes = append(sizes, len(page.Projects))
				for _, p := range page.Projects {
					got = append(got, p.Name)
				}
				if token = *page.NextPageToken; token == "" || i > 10 {
					break
				}
			}
			if !reflect.DeepEqual(sizes, tt.pages) {
				t.Errorf("page sizes %v, want %v", sizes, tt.pages)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("listed %d projects, want all %d in id order", len(got), len(want))
			}
		})
	}
	e.do(t, "GET", "/v2/projects?page_size=x", "").wantError(t, http.StatusBadRequest, `page_size "x" is not a number from 1 to 100`)
	e.do(t, "GET", "/v2/projects?pageSize=-1", "").wantError(t, http.StatusBadRequest, `pageSize "-1" is not a number from 1 to 100`)
	e.do(t, "GET", "/v2/projects?page_token=nonsense", "").wantError(t, http.StatusBadRequest, "invalid page token")
}

// TestProjectsNotEnabled: without a project store, the projects resource does
// not exist, and any valid project id works as a namespace.
func TestProjectsNotEnabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const msg = "projects are not enabled on this server"
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/v2/projects", ""},
		{"POST", "/v2/projects", `{}`},
		{"GET", "/v2/projects/" + project, ""},
		{"PATCH", "/v2/projects/" + project, `{"displayName":"x"}`},
		{"DELETE", "/v2/projects/" + project, ""},
	} {
		e.do(t, req.method, req.path, req.body).wantError(t, http.StatusNotFound, msg)
	}
	e.do(t, "GET", "/v2/projects/"+project+"/dataconnectors", "").want(t, http.StatusOK, `{"dataConnectors":[],"nextPageToken":""}`)
}

func TestProjectRouting(t *testing.T) {
	t.Parallel()
	e, _ := newProjectEnv(t)
	tests := []struct {
		method, path string
		status       int
		msg, allow   string
	}{
		{"GET", "/v2/projects/Not_A_Project", 404, `project "Not_A_Project" not found`, ""},
		{"DELETE", "/v2/projects/-x", 404, `project "-x" not found`, ""},
		{"PATCH", "/v2/projects/x:undelete", 404, `project "x:undelete" not found`, ""},
		{"GET", "/v2/projects/" + project, 404, "project projects/" + project + " not found", ""},
		{"PUT", "/v2/projects", 405, "method PUT is not allowed on /v2/projects; allowed: GET, HEAD, POST", "GET, HEAD, POST"},
		{"POST", "/v2/projects/" + project, 405,
			"method POST is not allowed on /v2/projects/" + project + "; allowed: DELETE, GET, HEAD, PATCH", "DELETE, GET, HEAD, PATCH"},
	}
	for _, tt := range tests {
		res := e.do(t, tt.method, tt.path, "")
		res.wantError(t, tt.status, tt.msg)
		if got := res.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestProjectStoreErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		msg        string
		retryAfter string
	}{
		{"conflict", dcon.Errorf(dcon.ECONFLICT, "already exists"), 409, "already exists", ""},
		{"unavailable", dcon.WrapError(dcon.EUNAVAILABLE, errors.New("compaction stall"), "the store is unavailable"), 503, "the store is unavailable", "1"},
		{"plain error", errors.New("disk on fire"), 500, "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, fp := newProjectEnv(t)
			fp.fail(tt.err)
			const id = "c0md3pm0p7bet3vico8g"
			for _, req := range []struct{ method, path, body string }{
				{"GET", "/v2/projects", ""},
				{"POST", "/v2/projects", `{}`},
				{"GET", "/v2/projects/" + id, ""},
				{"PATCH", "/v2/projects/" + id, `{"displayName":"x"}`},
				{"DELETE", "/v2/projects/" + id, ""},
				{"GET", "/v2/projects/" + id + "/dataconnectors", ""},
			} {
				res := e.do(t, req.method, req.path, req.body)
				res.wantError(t, tt.status, tt.msg)
				if got := res.header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("%s %s: Retry-After %q, want %q", req.method, req.path, got, tt.retryAfter)
				}
			}
		})
	}
}
