package pebble

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
	"dcon/internal/storetest"
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
	if err := db.CreateConnector(ctx, storetest.Connector("p", 1)); err != nil {
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

func TestListProjectsEmpty(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ps, next, err := db.ListProjects(t.Context(), dcon.Page{})
	if err != nil || len(ps) != 0 || next != "" {
		t.Errorf("ListProjects of an empty store = %d, %q, %v", len(ps), next, err)
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
			if err := db.CreateConnector(ctx, storetest.Connector(p, i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{"demo", "devices-only", "demo-2"} {
			if err := db.CreateDevice(ctx, storetest.Device(p, i)); err != nil {
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
