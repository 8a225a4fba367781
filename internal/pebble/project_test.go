package pebble

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
)

func testProject(n int) *dcon.Project {
	return &dcon.Project{
		ID:           fmt.Sprintf("p%019d", n),
		DisplayName:  fmt.Sprintf("project %d", n),
		Organization: dcon.DefaultOrganization,
		CreateTime:   base,
		UpdateTime:   base,
	}
}

func TestProjectCRUD(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	p := testProject(1)

	_, err := db.Project(ctx, p.ID)
	wantCode(t, "Project before Create", err, dcon.ENOTFOUND)
	wantCode(t, "Update before Create", db.UpdateProject(ctx, p), dcon.ENOTFOUND)
	wantCode(t, "Delete before Create", db.DeleteProject(ctx, p.ID), dcon.ENOTFOUND)

	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	wantCode(t, "second Create", db.CreateProject(ctx, p), dcon.ECONFLICT)
	got, err := db.Project(ctx, p.ID)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Project = %+v, %v; want %+v", got, err, p)
	}

	p.DisplayName = "renamed"
	p.UpdateTime = base.Add(time.Minute)
	if err := db.UpdateProject(ctx, p); err != nil {
		t.Fatalf("UpdateProject: %v", err)
	}
	if got, _ := db.Project(ctx, p.ID); got == nil || got.DisplayName != "renamed" || !got.UpdateTime.Equal(p.UpdateTime) {
		t.Errorf("after Update: %+v", got)
	}
	if err := db.DeleteProject(ctx, p.ID); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	_, err = db.Project(ctx, p.ID)
	wantCode(t, "Project after Delete", err, dcon.ENOTFOUND)
	wantCode(t, "second Delete", db.DeleteProject(ctx, p.ID), dcon.ENOTFOUND)

	for _, id := range []string{"", "a/b"} {
		wantCode(t, fmt.Sprintf("Create with id %q", id), db.CreateProject(ctx, &dcon.Project{ID: id}), dcon.EINVALID)
		_, err := db.Project(ctx, id)
		wantCode(t, fmt.Sprintf("Project(%q)", id), err, dcon.EINVALID)
		wantCode(t, fmt.Sprintf("Delete(%q)", id), db.DeleteProject(ctx, id), dcon.EINVALID)
	}
}

// TestProjectKeysAreTheirOwn: projects, connectors and devices of the same
// project id do not see one another.
func TestProjectKeysAreTheirOwn(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	p := testProject(1)
	if err := db.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateConnector(ctx, testConnector("p", 1)); err != nil {
		t.Fatal(err)
	}
	if cs, _, err := db.ListConnectors(ctx, p.ID, dcon.Page{}); err != nil || len(cs) != 0 {
		t.Errorf("ListConnectors of a new project = %d, %v; want 0", len(cs), err)
	}
	ps, _, err := db.ListProjects(ctx, dcon.Page{})
	if err != nil || len(ps) != 1 || ps[0].ID != p.ID {
		t.Errorf("ListProjects = %+v, %v; want only %s", ps, err, p.ID)
	}
	all, err := db.AllConnectors(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("AllConnectors = %d, %v; want 1", len(all), err)
	}
}

func TestListProjectsPagination(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	// Created out of order, among connectors and devices whose keys sort
	// around p/.
	for i := 0; i < 250; i++ {
		n := (i * 97) % 250
		if err := db.CreateProject(ctx, testProject(n)); err != nil {
			t.Fatal(err)
		}
		if n%50 == 0 {
			if err := db.CreateConnector(ctx, testConnector(testProject(n).ID, n)); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateDevice(ctx, testDevice(testProject(n).ID, n)); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, size := range []int{100, 0, 1000} {
		var ids []string
		token := ""
		pages := 0
		for {
			ps, next, err := db.ListProjects(ctx, dcon.Page{Size: size, Token: token})
			if err != nil {
				t.Fatalf("ListProjects(size %d, page %d): %v", size, pages, err)
			}
			pages++
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			if next == "" {
				break
			}
			if len(ps) != 100 {
				t.Errorf("page %d has %d items and a next token", pages, len(ps))
			}
			token = next
		}
		if pages != 3 || len(ids) != 250 {
			t.Errorf("size %d: %d pages, %d projects; want 3, 250", size, pages, len(ids))
		}
		for i, id := range ids {
			if want := testProject(i).ID; id != want {
				t.Fatalf("size %d: project %d is %s, want %s", size, i, id, want)
			}
		}
	}

	ps, next, err := db.ListProjects(ctx, dcon.Page{Size: 2})
	if err != nil || len(ps) != 2 || next == "" {
		t.Fatalf("ListProjects(2) = %d projects, next %q, %v", len(ps), next, err)
	}
	ps, _, err = db.ListProjects(ctx, dcon.Page{Size: 2, Token: next})
	if err != nil || len(ps) != 2 || ps[0].ID != testProject(2).ID {
		t.Errorf("second page of 2: %+v, %v; want it to start at %s", ps, err, testProject(2).ID)
	}
	for _, token := range []string{"!!", "YS9i" /* a/b */} {
		_, _, err := db.ListProjects(ctx, dcon.Page{Token: token})
		wantCode(t, "ListProjects with token "+token, err, dcon.EINVALID)
	}
}

func TestListProjectsEmpty(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ps, next, err := db.ListProjects(t.Context(), dcon.Page{})
	if err != nil || len(ps) != 0 || next != "" {
		t.Errorf("ListProjects of an empty store = %d, %q, %v", len(ps), next, err)
	}
}

func TestDeleteProjectInUse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		connectors, devices int
		msg                 string
	}{
		{"connectors and devices", 2, 5, "project has 2 data connectors and 5 devices; delete them first"},
		{"one connector", 1, 0, "project has 1 data connector; delete it first"},
		{"one device", 0, 1, "project has 1 device; delete it first"},
		{"devices", 0, 3, "project has 3 devices; delete them first"},
		{"one of each", 1, 1, "project has 1 data connector and 1 device; delete them first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, "/db", Options{FS: vfs.NewMem()})
			ctx := t.Context()
			p := testProject(7)
			if err := db.CreateProject(ctx, p); err != nil {
				t.Fatal(err)
			}
			// A neighbour whose id extends p's must not count.
			if err := db.CreateConnector(ctx, testConnector(p.ID+"0", 1)); err != nil {
				t.Fatal(err)
			}
			for i := range tt.connectors {
				if err := db.CreateConnector(ctx, testConnector(p.ID, i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tt.devices {
				if err := db.CreateDevice(ctx, testDevice(p.ID, i)); err != nil {
					t.Fatal(err)
				}
			}

			err := db.DeleteProject(ctx, p.ID)
			wantCode(t, "DeleteProject", err, dcon.ECONFLICT)
			if got := dcon.ErrorMessage(err); got != tt.msg {
				t.Errorf("message %q, want %q", got, tt.msg)
			}
			if _, err := db.Project(ctx, p.ID); err != nil {
				t.Errorf("Project after a refused delete: %v", err)
			}

			for i := range tt.connectors {
				if err := db.DeleteConnector(ctx, p.ID, testConnector(p.ID, i).ID); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tt.devices {
				if err := db.DeleteDevice(ctx, p.ID, testDevice(p.ID, i).ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.DeleteProject(ctx, p.ID); err != nil {
				t.Errorf("DeleteProject once empty: %v", err)
			}
		})
	}
}

// TestDeleteProjectRacesCreate: a connector created while its project is
// deleted is either counted (the delete is refused) or created after the
// project is gone; a delete never succeeds with it already stored.
func TestDeleteProjectRacesCreate(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	for i := range 20 {
		p := testProject(i)
		if err := db.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var delErr error
		wg.Go(func() {
			delErr = db.DeleteProject(ctx, p.ID)
		})
		wg.Go(func() {
			if err := db.CreateConnector(ctx, testConnector(p.ID, 1)); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		_, projErr := db.Project(ctx, p.ID)
		switch code := dcon.ErrorCode(delErr); code {
		case dcon.ECONFLICT:
			if projErr != nil {
				t.Errorf("round %d: delete refused, yet the project is gone: %v", i, projErr)
			}
		case "":
			wantCode(t, fmt.Sprintf("round %d: Project after delete", i), projErr, dcon.ENOTFOUND)
		default:
			t.Errorf("round %d: DeleteProject: %v", i, delErr)
		}
	}
}

func TestProjectPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	p, gone := testProject(1), testProject(2)
	for _, x := range []*dcon.Project{p, gone} {
		if err := db.CreateProject(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteProject(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir, Options{})
	if got, err := db.Project(ctx, p.ID); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Project after reopen = %+v, %v; want %+v", got, err, p)
	}
	_, err = db.Project(ctx, gone.ID)
	wantCode(t, "deleted Project after reopen", err, dcon.ENOTFOUND)
}

// TestProjectSurvivesCrash: project writes are synced, so a crash keeps them.
func TestProjectSurvivesCrash(t *testing.T) {
	t.Parallel()
	db := memHarness{}.Open(t).(*DB)
	p := testProject(1)
	if err := db.CreateProject(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	db = memHarness{}.Crash(t, db).(*DB)
	if _, err := db.Project(t.Context(), p.ID); err != nil {
		t.Errorf("Project after a crash: %v", err)
	}
}

// TestCreateMissingProjects: a store written before projects were kept gets a
// project for every namespace in use, once.
func TestCreateMissingProjects(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	kept := testProject(1)
	kept.Organization = "acme"
	if err := db.CreateProject(ctx, kept); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		for _, p := range []string{"demo", kept.ID} {
			if err := db.CreateConnector(ctx, testConnector(p, i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{"demo", "devices-only", "demo-2"} {
			if err := db.CreateDevice(ctx, testDevice(p, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := base.Add(time.Hour)
	created, err := db.CreateMissingProjects(ctx, now)
	if want := []string{"demo", "demo-2", "devices-only"}; err != nil || !reflect.DeepEqual(created, want) {
		t.Fatalf("CreateMissingProjects = %q, %v; want %q", created, err, want)
	}
	for _, id := range created {
		got, err := db.Project(ctx, id)
		want := &dcon.Project{ID: id, Organization: dcon.DefaultOrganization, CreateTime: now, UpdateTime: now}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Project(%s) = %+v, %v; want %+v", id, got, err, want)
		}
	}
	if got, err := db.Project(ctx, kept.ID); err != nil || !reflect.DeepEqual(got, kept) {
		t.Errorf("an existing project changed: %+v, %v", got, err)
	}
	if created, err := db.CreateMissingProjects(ctx, now); err != nil || len(created) != 0 {
		t.Errorf("second CreateMissingProjects = %q, %v; want none", created, err)
	}
}

// TestDeleteProjectDeletesAccounts: deleting a project deletes its service
// accounts, their keys and the keys' index entries, and nothing of a
// neighbour whose id extends it; a project that holds an owner account is
// not deleted, and keeps everything.
func TestDeleteProjectDeletesAccounts(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	p, neighbour, home := testProject(1), testProject(1), testProject(2)
	neighbour.ID += "0"
	for _, pr := range []*dcon.Project{p, neighbour, home} {
		if err := db.CreateProject(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	type acc struct {
		a    *dcon.ServiceAccount
		keys []string
	}
	accounts := []acc{
		{testAccount(p.ID, "sa1", dcon.RoleAdmin), []string{"k1", "k2"}},
		{testAccount(p.ID, "sa2", dcon.RoleReader), []string{"k3"}},
		{testAccount(p.ID, "sa3", dcon.RoleDeveloper), nil},
		{testAccount(neighbour.ID, "sa4", dcon.RoleAdmin), []string{"k4"}},
		{testAccount(home.ID, "owner", dcon.RoleAdmin), []string{"k5"}},
	}
	accounts[4].a.Owner = true
	for _, x := range accounts {
		var keys []*dcon.Key
		for _, k := range x.keys {
			keys = append(keys, testKey(x.a, k, "secret-"+k))
		}
		if err := db.CreateServiceAccount(ctx, x.a, keys...); err != nil {
			t.Fatal(err)
		}
	}
	// A revoked key goes too.
	k2, err := db.Key(ctx, "k2")
	if err != nil {
		t.Fatal(err)
	}
	k2.RevokeTime = base
	if err := db.UpdateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}

	if err := db.DeleteProject(ctx, p.ID); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	for _, id := range []string{"sa1", "sa2", "sa3"} {
		_, err := db.ServiceAccount(ctx, p.ID, id)
		wantCode(t, "ServiceAccount "+id+" after DeleteProject", err, dcon.ENOTFOUND)
	}
	for _, id := range []string{"k1", "k2", "k3"} {
		_, err := db.Key(ctx, id)
		wantCode(t, "Key "+id+" after DeleteProject", err, dcon.ENOTFOUND)
	}
	var left []string
	it, err := db.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte("a/"), UpperBound: []byte("a0")})
	if err != nil {
		t.Fatal(err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		left = append(left, string(it.Key()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/i/k4", "a/i/k5", "a/k/owner/k5", "a/k/sa4/k4", "a/s/" + neighbour.ID + "/sa4", "a/s/" + home.ID + "/owner"}
	if !reflect.DeepEqual(left, want) {
		t.Errorf("access keys left %q, want %q", left, want)
	}
	if has, err := db.HasServiceAccounts(ctx); err != nil || !has {
		t.Errorf("HasServiceAccounts = %v, %v", has, err)
	}

	// The owner's project stays, with its owner and key.
	err = db.DeleteProject(ctx, home.ID)
	wantCode(t, "DeleteProject of the owner's project", err, dcon.ECONFLICT)
	if _, err := db.Project(ctx, home.ID); err != nil {
		t.Errorf("Project after a refused delete: %v", err)
	}
	if _, err := db.Key(ctx, "k5"); err != nil {
		t.Errorf("the owner's key after a refused delete: %v", err)
	}
}
