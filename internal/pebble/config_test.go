package pebble

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
	"dcon/internal/storetest"
)

func testConnector(project string, n int) *dcon.Connector {
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

func testDevice(project string, n int) *dcon.Device {
	return &dcon.Device{
		ProjectID: project, ID: fmt.Sprintf("emud%019d", n), Type: dcon.DeviceTemperature,
		Labels: map[string]string{"virtual-sensor": ""}, CreateTime: base, UpdateTime: base,
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := dcon.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

// TestStoreConformance runs the config stores' conformance suite, shared with internal/jetstream.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openDB(t, "/db", Options{FS: vfs.NewMem()}) })
}

func TestConnectorCRUD(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	c := testConnector("p1", 1)

	_, err := db.Connector(ctx, "p1", c.ID)
	wantCode(t, "Connector before Create", err, dcon.ENOTFOUND)
	wantCode(t, "Update before Create", db.UpdateConnector(ctx, c), dcon.ENOTFOUND)
	wantCode(t, "Delete before Create", db.DeleteConnector(ctx, "p1", c.ID), dcon.ENOTFOUND)

	if err := db.CreateConnector(ctx, c); err != nil {
		t.Fatalf("CreateConnector: %v", err)
	}
	wantCode(t, "second Create", db.CreateConnector(ctx, c), dcon.ECONFLICT)
	got, err := db.Connector(ctx, "p1", c.ID)
	if err != nil {
		t.Fatalf("Connector: %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Connector = %+v, want %+v", got, c)
	}
	_, err = db.Connector(ctx, "p2", c.ID)
	wantCode(t, "Connector of another project", err, dcon.ENOTFOUND)

	c.DisplayName = "renamed"
	c.UpdateTime = base.Add(time.Minute)
	if err := db.UpdateConnector(ctx, c); err != nil {
		t.Fatalf("UpdateConnector: %v", err)
	}
	if got, _ := db.Connector(ctx, "p1", c.ID); got == nil || got.DisplayName != "renamed" || !got.UpdateTime.Equal(c.UpdateTime) {
		t.Errorf("after Update: %+v", got)
	}
	if err := db.DeleteConnector(ctx, "p1", c.ID); err != nil {
		t.Fatalf("DeleteConnector: %v", err)
	}
	_, err = db.Connector(ctx, "p1", c.ID)
	wantCode(t, "Connector after Delete", err, dcon.ENOTFOUND)
	wantCode(t, "Create with a bad id", db.CreateConnector(ctx, &dcon.Connector{ProjectID: "p1", ID: "a/b"}), dcon.EINVALID)
}

func TestDeviceCRUD(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	d := testDevice("p1", 1)
	_, err := db.Device(ctx, "p1", d.ID)
	wantCode(t, "Device before Create", err, dcon.ENOTFOUND)
	wantCode(t, "Update before Create", db.UpdateDevice(ctx, d), dcon.ENOTFOUND)
	wantCode(t, "Delete before Create", db.DeleteDevice(ctx, "p1", d.ID), dcon.ENOTFOUND)
	if err := db.CreateDevice(ctx, d); err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	wantCode(t, "second Create", db.CreateDevice(ctx, d), dcon.ECONFLICT)
	got, err := db.Device(ctx, "p1", d.ID)
	if err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("Device = %+v, %v; want %+v", got, err, d)
	}
	d.Labels["room"] = "kitchen"
	if err := db.UpdateDevice(ctx, d); err != nil {
		t.Fatalf("UpdateDevice: %v", err)
	}
	if got, _ := db.Device(ctx, "p1", d.ID); got == nil || got.Labels["room"] != "kitchen" {
		t.Errorf("after Update: %+v", got)
	}
	if err := db.DeleteDevice(ctx, "p1", d.ID); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	_, err = db.Device(ctx, "p1", d.ID)
	wantCode(t, "Device after Delete", err, dcon.ENOTFOUND)
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()
	// Created out of order, with neighbours in other projects.
	for i := 0; i < 250; i++ {
		n := (i * 97) % 250
		for _, p := range []string{"p1", "p0", "p10"} {
			if p != "p1" && n%50 != 0 {
				continue
			}
			if err := db.CreateConnector(ctx, testConnector(p, n)); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateDevice(ctx, testDevice(p, n)); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, size := range []int{100, 0, 1000} {
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
			if len(cs) != 100 {
				t.Errorf("page %d has %d items and a next token", pages, len(cs))
			}
			token = next
		}
		if pages != 3 || len(ids) != 250 {
			t.Errorf("size %d: %d pages, %d connectors; want 3, 250", size, pages, len(ids))
		}
		for i, id := range ids {
			if want := testConnector("p1", i).ID; id != want {
				t.Fatalf("size %d: connector %d is %s, want %s", size, i, id, want)
			}
		}
	}

	// Exactly one page: no next token.
	ds, next, err := db.ListDevices(ctx, "p0", dcon.Page{Size: 5})
	if err != nil || len(ds) != 5 || next != "" {
		t.Errorf("ListDevices(p0, 5) = %d devices, next %q, %v; want 5, \"\"", len(ds), next, err)
	}
	ds, next, err = db.ListDevices(ctx, "p10", dcon.Page{Size: 2})
	if err != nil || len(ds) != 2 || next == "" {
		t.Fatalf("ListDevices(p10, 2) = %d devices, next %q, %v", len(ds), next, err)
	}
	ds, next, err = db.ListDevices(ctx, "p10", dcon.Page{Size: 2, Token: next})
	if err != nil || len(ds) != 2 || next == "" || ds[0].ID != testDevice("p10", 100).ID {
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
	if err != nil || len(all) != 260 {
		t.Errorf("AllConnectors = %d, %v; want 260", len(all), err)
	}
}

func TestConfigPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c, d := testConnector("p1", 1), testDevice("p1", 1)
	if err := db.CreateConnector(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir, Options{})
	if got, err := db.Connector(ctx, "p1", c.ID); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("Connector after reopen = %+v, %v", got, err)
	}
	if got, err := db.Device(ctx, "p1", d.ID); err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("Device after reopen = %+v, %v", got, err)
	}
}

// TestConfigSurvivesCrash: config writes are synced, so a crash keeps them.
func TestConfigSurvivesCrash(t *testing.T) {
	t.Parallel()
	db := memHarness{}.Open(t).(*DB)
	c := testConnector("p1", 1)
	if err := db.CreateConnector(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	db = memHarness{}.Crash(t, db).(*DB)
	if _, err := db.Connector(t.Context(), "p1", c.ID); err != nil {
		t.Errorf("Connector after a crash: %v", err)
	}
}
