package pebble

import (
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
	"dcon/internal/storetest"
)

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

func TestConfigPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c, d := storetest.Connector("p1", 1), storetest.Device("p1", 1)
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
	c := storetest.Connector("p1", 1)
	if err := db.CreateConnector(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	db = memHarness{}.Crash(t, db).(*DB)
	if _, err := db.Connector(t.Context(), "p1", c.ID); err != nil {
		t.Errorf("Connector after a crash: %v", err)
	}
}
