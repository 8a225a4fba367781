// Package storetest is the conformance suite of dcon's config stores: the
// connector, device, project, access and latest-event stores of the root
// package. Every implementation (internal/pebble, internal/jetstream) runs it
// from its tests:
//
//	func TestStoreConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store { return openStore(t) })
//	}
//
// Each test opens a fresh, empty store and may run in parallel with the
// others.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"dcon"
)

// Store is what the suite tests.
type Store interface {
	dcon.ConnectorStore
	dcon.DeviceStore
	dcon.ProjectStore
	dcon.AccessStore
	dcon.LatestEventStore
}

// Opener returns a fresh, empty store that is closed when t ends.
type Opener func(t *testing.T) Store

// base is the time the test values are made at.
var base = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// Run runs every test of the suite against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, s Store)
	}{
		{"ConnectorCRUD", testConnectorCRUD},
		{"DeviceCRUD", testDeviceCRUD},
		{"ListPagination", testListPagination},
		{"ProjectCRUD", testProjectCRUD},
		{"ListProjectsPagination", testListProjectsPagination},
		{"DeleteProjectInUse", testDeleteProjectInUse},
		{"DeleteProjectRacesCreate", testDeleteProjectRacesCreate},
		{"DeleteProjectDeletesAccounts", testDeleteProjectDeletesAccounts},
		{"AccessStore", testAccessStore},
		{"LatestEvents", testLatestEvents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.f(t, open(t))
		})
	}
}

// StatsStore is internal/stats's Store.
type StatsStore interface {
	SaveStats(ctx context.Context, states map[string][]byte) error
	LoadStats(ctx context.Context) (map[string][]byte, error)
	DeleteStats(ctx context.Context, connectorID string) error
}

// RunStats checks a statistics store: what SaveStats writes LoadStats
// returns, a later save replaces it, DeleteStats forgets one connector.
func RunStats(t *testing.T, s StatsStore) {
	ctx := t.Context()
	if got, err := s.LoadStats(ctx); err != nil || len(got) != 0 {
		t.Fatalf("LoadStats of an empty store = %v, %v", got, err)
	}
	if err := s.SaveStats(ctx, map[string][]byte{"c1": []byte("one"), "c2": []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStats(ctx, map[string][]byte{"c1": []byte("uno")}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"c1": []byte("uno"), "c2": []byte("two")}
	if got, err := s.LoadStats(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadStats = %q, %v; want %q", got, err, want)
	}
	if err := s.DeleteStats(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStats(ctx, "none"); err != nil {
		t.Errorf("DeleteStats of no stats: %v", err)
	}
	want = map[string][]byte{"c1": []byte("uno")}
	if got, err := s.LoadStats(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadStats after delete = %q, %v; want %q", got, err, want)
	}
}

// Connector returns the n-th test connector of a project, with every field set.
func Connector(project string, n int) *dcon.Connector {
	return &dcon.Connector{
		ProjectID:   project,
		ID:          fmt.Sprintf("c%019d", n),
		DisplayName: fmt.Sprintf("connector %d", n),
		Type:        dcon.ConnectorHTTPPush,
		Status:      dcon.StatusActive,
		Events:      []dcon.EventType{dcon.EventTouch},
		Labels:      []string{"room"},
		HTTP: dcon.HTTPConfig{
			URL: "https://example.com/hook", SignatureSecret: "s3cret",
			Headers: map[string]string{"X-Key": "v"},
		},
		CreateTime: base,
		UpdateTime: base,
	}
}

// Device returns the n-th test device of a project.
func Device(project string, n int) *dcon.Device {
	return &dcon.Device{
		ProjectID: project, ID: fmt.Sprintf("emud%019d", n), Type: dcon.DeviceTemperature,
		Labels: map[string]string{"virtual-sensor": ""}, CreateTime: base, UpdateTime: base,
	}
}

func testProject(n int) *dcon.Project {
	return &dcon.Project{ID: fmt.Sprintf("p%019d", n), DisplayName: fmt.Sprintf("project %d", n),
		Organization: dcon.DefaultOrganization, CreateTime: base, UpdateTime: base}
}

func testAccount(project, id string, role dcon.Role) *dcon.ServiceAccount {
	return &dcon.ServiceAccount{ID: id, Project: project, Email: dcon.ServiceAccountEmail(project, id),
		DisplayName: id, Role: role, CreateTime: base}
}

func testKey(a *dcon.ServiceAccount, id, secret string) *dcon.Key {
	return &dcon.Key{ID: id, Account: a.ID, Project: a.Project, SecretHash: dcon.HashSecret(secret), CreateTime: base}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := dcon.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testConnectorCRUD(t *testing.T, db Store) {
	ctx := t.Context()
	c := Connector("p1", 1)
	_, err := db.Connector(ctx, "p1", c.ID)
	wantCode(t, "Connector before Create", err, dcon.ENOTFOUND)
	wantCode(t, "Update before Create", db.UpdateConnector(ctx, c), dcon.ENOTFOUND)
	wantCode(t, "Delete before Create", db.DeleteConnector(ctx, "p1", c.ID), dcon.ENOTFOUND)
	must(t, db.CreateConnector(ctx, c))
	wantCode(t, "second Create", db.CreateConnector(ctx, c), dcon.ECONFLICT)
	got, err := db.Connector(ctx, "p1", c.ID)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("Connector = %+v, %v; want %+v", got, err, c)
	}
	_, err = db.Connector(ctx, "p2", c.ID)
	wantCode(t, "Connector of another project", err, dcon.ENOTFOUND)
	c.DisplayName = "renamed"
	c.UpdateTime = base.Add(time.Minute)
	must(t, db.UpdateConnector(ctx, c))
	if got, _ := db.Connector(ctx, "p1", c.ID); got == nil || got.DisplayName != "renamed" || !got.UpdateTime.Equal(c.UpdateTime) {
		t.Errorf("after Update: %+v", got)
	}
	must(t, db.DeleteConnector(ctx, "p1", c.ID))
	_, err = db.Connector(ctx, "p1", c.ID)
	wantCode(t, "Connector after Delete", err, dcon.ENOTFOUND)
	wantCode(t, "Update after Delete", db.UpdateConnector(ctx, c), dcon.ENOTFOUND)
	wantCode(t, "Create with a bad id", db.CreateConnector(ctx, &dcon.Connector{ProjectID: "p1", ID: "a/b"}), dcon.EINVALID)
	must(t, db.CreateConnector(ctx, c)) // again, after its deletion
}

func testDeviceCRUD(t *testing.T, db Store) {
	ctx := t.Context()
	d := Device("p1", 1)
	_, err := db.Device(ctx, "p1", d.ID)
	wantCode(t, "Device before Create", err, dcon.ENOTFOUND)
	wantCode(t, "Update before Create", db.UpdateDevice(ctx, d), dcon.ENOTFOUND)
	wantCode(t, "Delete before Create", db.DeleteDevice(ctx, "p1", d.ID), dcon.ENOTFOUND)
	must(t, db.CreateDevice(ctx, d))
	wantCode(t, "second Create", db.CreateDevice(ctx, d), dcon.ECONFLICT)
	got, err := db.Device(ctx, "p1", d.ID)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("Device = %+v, %v; want %+v", got, err, d)
	}
	d.Labels["room"] = "kitchen"
	must(t, db.UpdateDevice(ctx, d))
	if got, _ := db.Device(ctx, "p1", d.ID); got == nil || got.Labels["room"] != "kitchen" {
		t.Errorf("after Update: %+v", got)
	}
	must(t, db.DeleteDevice(ctx, "p1", d.ID))
	_, err = db.Device(ctx, "p1", d.ID)
	wantCode(t, "Device after Delete", err, dcon.ENOTFOUND)
}

func testListPagination(t *testing.T, db Store) {
	ctx := t.Context()
	const n = 150
	// Created out of order, with neighbours in other projects.
	for i := range n {
		k := (i * 97) % n
		for _, p := range []string{"p1", "p0", "p10"} {
			if p != "p1" && k%50 != 0 {
				continue
			}
			must(t, db.CreateConnector(ctx, Connector(p, k)))
			must(t, db.CreateDevice(ctx, Device(p, k)))
		}
	}
	for _, size := range []int{100, 0, 1000, 7} {
		var ids []string
		token := ""
		pages := 0
		for {
			cs, next, err := db.ListConnectors(ctx, "p1", dcon.Page{Size: size, Token: token})
			if err != nil {
				t.Fatalf("ListConnectors(size %d, page %d): %v", size, pages, err)
			}
			pages++
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			if next == "" {
				break
			}
			token = next
		}
		wantPages := 2
		if size == 7 {
			wantPages = (n + 6) / 7
		}
		if pages != wantPages || len(ids) != n {
			t.Errorf("size %d: %d pages, %d connectors; want %d, %d", size, pages, len(ids), wantPages, n)
		}
		for i, id := range ids {
			if want := Connector("p1", i).ID; id != want {
				t.Fatalf("size %d: connector %d is %s, want %s", size, i, id, want)
			}
		}
	}
	ds, next, err := db.ListDevices(ctx, "p0", dcon.Page{Size: 3})
	if err != nil || len(ds) != 3 || next != "" {
		t.Errorf("ListDevices(p0, 3) = %d devices, next %q, %v; want 3, \"\"", len(ds), next, err)
	}
	ds, next, err = db.ListDevices(ctx, "p10", dcon.Page{Size: 2})
	if err != nil || len(ds) != 2 || next == "" {
		t.Fatalf("ListDevices(p10, 2) = %d devices, next %q, %v", len(ds), next, err)
	}
	ds, next, err = db.ListDevices(ctx, "p10", dcon.Page{Size: 2, Token: next})
	if err != nil || len(ds) != 1 || next != "" || ds[0].ID != Device("p10", 100).ID {
		t.Errorf("second page of p10: %d devices, next %q, %v", len(ds), next, err)
	}
	if cs, next, err := db.ListConnectors(ctx, "empty", dcon.Page{}); err != nil || len(cs) != 0 || next != "" {
		t.Errorf("ListConnectors of an empty project = %d, %q, %v", len(cs), next, err)
	}
	for _, token := range []string{"!!", "YS9i" /* a/b */, "zz" /* one byte, not an id */} {
		_, _, err := db.ListConnectors(ctx, "p1", dcon.Page{Token: token})
		wantCode(t, "ListConnectors with token "+token, err, dcon.EINVALID)
	}
	all, err := db.AllConnectors(ctx)
	if err != nil || len(all) != n+6 {
		t.Errorf("AllConnectors = %d, %v; want %d", len(all), err, n+6)
	}
}

func testProjectCRUD(t *testing.T, db Store) {
	ctx := t.Context()
	p := testProject(1)
	_, err := db.Project(ctx, p.ID)
	wantCode(t, "Project before Create", err, dcon.ENOTFOUND)
	wantCode(t, "Update before Create", db.UpdateProject(ctx, p), dcon.ENOTFOUND)
	wantCode(t, "Delete before Create", db.DeleteProject(ctx, p.ID), dcon.ENOTFOUND)
	must(t, db.CreateProject(ctx, p))
	wantCode(t, "second Create", db.CreateProject(ctx, p), dcon.ECONFLICT)
	if got, err := db.Project(ctx, p.ID); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Project = %+v, %v; want %+v", got, err, p)
	}
	p.DisplayName = "renamed"
	must(t, db.UpdateProject(ctx, p))
	if got, _ := db.Project(ctx, p.ID); got == nil || got.DisplayName != "renamed" {
		t.Errorf("after Update: %+v", got)
	}
	must(t, db.DeleteProject(ctx, p.ID))
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

func testListProjectsPagination(t *testing.T, db Store) {
	ctx := t.Context()
	const n = 120
	for i := range n {
		k := (i * 97) % n
		must(t, db.CreateProject(ctx, testProject(k)))
		if k%50 == 0 {
			must(t, db.CreateConnector(ctx, Connector(testProject(k).ID, k)))
			must(t, db.CreateDevice(ctx, Device(testProject(k).ID, k)))
		}
	}
	var ids []string
	token := ""
	for {
		ps, next, err := db.ListProjects(ctx, dcon.Page{Size: 50, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		if next == "" {
			break
		}
		token = next
	}
	if len(ids) != n {
		t.Fatalf("listed %d projects, want %d", len(ids), n)
	}
	for i, id := range ids {
		if want := testProject(i).ID; id != want {
			t.Fatalf("project %d is %s, want %s", i, id, want)
		}
	}
	for _, token := range []string{"!!", "YS9i"} {
		_, _, err := db.ListProjects(ctx, dcon.Page{Token: token})
		wantCode(t, "ListProjects with token "+token, err, dcon.EINVALID)
	}
}

func testDeleteProjectInUse(t *testing.T, db Store) {
	ctx := t.Context()
	p := testProject(7)
	must(t, db.CreateProject(ctx, p))
	// A neighbour whose id extends p's must not count.
	must(t, db.CreateConnector(ctx, Connector(p.ID+"0", 1)))
	for i := range 2 {
		must(t, db.CreateConnector(ctx, Connector(p.ID, i)))
	}
	for i := range 5 {
		must(t, db.CreateDevice(ctx, Device(p.ID, i)))
	}
	err := db.DeleteProject(ctx, p.ID)
	wantCode(t, "DeleteProject", err, dcon.ECONFLICT)
	if got, want := dcon.ErrorMessage(err), "project has 2 data connectors and 5 devices; delete them first"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	for i := range 2 {
		must(t, db.DeleteConnector(ctx, p.ID, Connector(p.ID, i).ID))
	}
	for i := range 5 {
		must(t, db.DeleteDevice(ctx, p.ID, Device(p.ID, i).ID))
	}
	if err := db.DeleteProject(ctx, p.ID); err != nil {
		t.Errorf("DeleteProject once empty: %v", err)
	}
}

// testDeleteProjectRacesCreate: a connector created while its project is
// deleted is either counted (the delete is refused) or created after the
// project is gone.
func testDeleteProjectRacesCreate(t *testing.T, db Store) {
	ctx := t.Context()
	for i := range 10 {
		p := testProject(i)
		must(t, db.CreateProject(ctx, p))
		var wg sync.WaitGroup
		var delErr error
		wg.Go(func() { delErr = db.DeleteProject(ctx, p.ID) })
		wg.Go(func() {
			if err := db.CreateConnector(ctx, Connector(p.ID, 1)); err != nil {
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

func testDeleteProjectDeletesAccounts(t *testing.T, db Store) {
	ctx := t.Context()
	p, neighbour, home := testProject(1), testProject(1), testProject(2)
	neighbour.ID += "0"
	for _, pr := range []*dcon.Project{p, neighbour, home} {
		must(t, db.CreateProject(ctx, pr))
	}
	accounts := []struct {
		a    *dcon.ServiceAccount
		keys []string
	}{
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
		must(t, db.CreateServiceAccount(ctx, x.a, keys...))
	}
	must(t, db.DeleteProject(ctx, p.ID))
	for _, id := range []string{"sa1", "sa2", "sa3"} {
		_, err := db.ServiceAccount(ctx, p.ID, id)
		wantCode(t, "ServiceAccount "+id+" after DeleteProject", err, dcon.ENOTFOUND)
	}
	for _, id := range []string{"k1", "k2", "k3"} {
		_, err := db.Key(ctx, id)
		wantCode(t, "Key "+id+" after DeleteProject", err, dcon.ENOTFOUND)
	}
	for _, id := range []string{"k4", "k5"} {
		if _, err := db.Key(ctx, id); err != nil {
			t.Errorf("Key %s of another project after DeleteProject: %v", id, err)
		}
	}
	wantCode(t, "DeleteProject of the owner's project", db.DeleteProject(ctx, home.ID), dcon.ECONFLICT)
	if _, err := db.Project(ctx, home.ID); err != nil {
		t.Errorf("Project after a refused delete: %v", err)
	}
}

func testAccessStore(t *testing.T, db Store) {
	ctx := t.Context()
	if has, err := db.HasServiceAccounts(ctx); err != nil || has {
		t.Fatalf("HasServiceAccounts on an empty store = %v, %v", has, err)
	}
	org := &dcon.Organization{ID: dcon.DefaultOrganization, DisplayName: "acme", CreateTime: base}
	must(t, db.CreateOrganization(ctx, org))
	wantCode(t, "second CreateOrganization", db.CreateOrganization(ctx, org), dcon.ECONFLICT)
	if got, err := db.Organization(ctx, org.ID); err != nil || !reflect.DeepEqual(got, org) {
		t.Fatalf("Organization = %+v, %v; want %+v", got, err, org)
	}
	a := testAccount("p1", "sa1", dcon.RoleAdmin)
	must(t, db.CreateServiceAccount(ctx, a, testKey(a, "k1", "secret-1")))
	wantCode(t, "second CreateServiceAccount", db.CreateServiceAccount(ctx, a), dcon.ECONFLICT)
	if has, err := db.HasServiceAccounts(ctx); err != nil || !has {
		t.Fatalf("HasServiceAccounts = %v, %v; want true", has, err)
	}
	if got, err := db.ServiceAccount(ctx, "p1", "sa1"); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("ServiceAccount = %+v, %v", got, err)
	}
	_, err := db.ServiceAccount(ctx, "p2", "sa1")
	wantCode(t, "ServiceAccount in another project", err, dcon.ENOTFOUND)
	got, err := db.Key(ctx, "k1")
	if err != nil || !got.CheckSecret("secret-1") || got.CheckSecret("secret-2") || got.Account != "sa1" {
		t.Fatalf("Key = %+v, %v", got, err)
	}
	k2 := testKey(a, "k2", "secret-2")
	must(t, db.CreateKey(ctx, k2))
	wantCode(t, "CreateKey twice", db.CreateKey(ctx, k2), dcon.ECONFLICT)
	wantCode(t, "CreateKey of no account", db.CreateKey(ctx, &dcon.Key{ID: "k3", Account: "nope", Project: "p1"}), dcon.ENOTFOUND)
	keys, next, err := db.ListKeys(ctx, "sa1", dcon.Page{Size: 1})
	if err != nil || len(keys) != 1 || keys[0].ID != "k1" || next == "" {
		t.Fatalf("ListKeys page 1 = %v, %q, %v", keys, next, err)
	}
	keys, next, err = db.ListKeys(ctx, "sa1", dcon.Page{Token: next})
	if err != nil || len(keys) != 1 || keys[0].ID != "k2" || next != "" {
		t.Fatalf("ListKeys page 2 = %v, %q, %v", keys, next, err)
	}
	k2.RevokeTime = base
	must(t, db.UpdateKey(ctx, k2))
	if got, err := db.Key(ctx, "k2"); err != nil || !got.Revoked() {
		t.Fatalf("Key after revoke = %+v, %v", got, err)
	}
	must(t, db.DeleteKey(ctx, "sa1", "k2"))
	_, err = db.Key(ctx, "k2")
	wantCode(t, "Key after delete", err, dcon.ENOTFOUND)
	wantCode(t, "DeleteKey twice", db.DeleteKey(ctx, "sa1", "k2"), dcon.ENOTFOUND)
	must(t, db.CreateServiceAccount(ctx, testAccount("p1", "sa2", dcon.RoleReader)))
	accounts, _, err := db.ListServiceAccounts(ctx, "p1", dcon.Page{})
	if err != nil || len(accounts) != 2 || accounts[0].ID != "sa1" || accounts[1].ID != "sa2" {
		t.Fatalf("ListServiceAccounts = %v, %v", accounts, err)
	}
	must(t, db.DeleteServiceAccount(ctx, "p1", "sa1"))
	_, err = db.Key(ctx, "k1")
	wantCode(t, "a deleted account's key", err, dcon.ENOTFOUND)
	wantCode(t, "DeleteServiceAccount twice", db.DeleteServiceAccount(ctx, "p1", "sa1"), dcon.ENOTFOUND)
	_, err = db.Key(ctx, "no/such")
	wantCode(t, "Key with a slash", err, dcon.ENOTFOUND)
}

func testLatestEvents(t *testing.T, db Store) {
	ctx := t.Context()
	ev := func(id string, typ dcon.EventType, data string, ts time.Time) *dcon.Event {
		return &dcon.Event{ID: id, TargetName: "projects/p1/devices/d1", Type: typ, Data: []byte(data), Timestamp: ts}
	}
	if evs, err := db.LatestEvents(ctx, "p1", "d1"); err != nil || len(evs) != 0 {
		t.Fatalf("LatestEvents of no device = %v, %v", evs, err)
	}
	must(t, db.PutLatest(ctx, "p1", []dcon.DeviceEvent{
		{DeviceID: "d1", Event: ev("e1", dcon.EventTouch, `{"updateTime":"a"}`, base)},
		{DeviceID: "d1", Event: ev("e2", dcon.EventTemperature, `{"value":1}`, base.Add(time.Second))},
		{DeviceID: "d1", Event: ev("e3", dcon.EventTemperature, `{"value":2}`, base.Add(2*time.Second))},
		{DeviceID: "d2", Event: ev("e4", dcon.EventTouch, `{}`, base)},
	}))
	got, err := db.LatestEvents(ctx, "p1", "d1")
	if err != nil || len(got) != 2 {
		t.Fatalf("LatestEvents = %v, %v; want 2", got, err)
	}
	if got[0].ID != "e3" || got[0].Type != dcon.EventTemperature || string(got[0].Data) != `{"value":2}` ||
		!got[0].Timestamp.Equal(base.Add(2*time.Second)) || got[0].TargetName != "projects/p1/devices/d1" {
		t.Errorf("latest temperature = %+v", got[0])
	}
	if got[1].ID != "e1" || got[1].Type != dcon.EventTouch {
		t.Errorf("latest touch = %+v", got[1])
	}
	must(t, db.DeleteLatest(ctx, "p1", "d1"))
	if evs, err := db.LatestEvents(ctx, "p1", "d1"); err != nil || len(evs) != 0 {
		t.Errorf("LatestEvents after DeleteLatest = %v, %v", evs, err)
	}
	if evs, err := db.LatestEvents(ctx, "p1", "d2"); err != nil || len(evs) != 1 {
		t.Errorf("LatestEvents of another device = %v, %v", evs, err)
	}
	_, err = db.LatestEvents(ctx, "p1", "a/b")
	wantCode(t, "LatestEvents of a bad name", err, dcon.EINVALID)
}
