package pebble

import (
	"reflect"
	"testing"

	"dcon"
	"dcon/internal/storetest"
)

func TestStatsRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := t.Context()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.LoadStats(ctx); err != nil || len(got) != 0 {
		t.Fatalf("LoadStats of an empty store = %v, %v; want none", got, err)
	}
	want := map[string][]byte{
		"c00000000000000000001": {1, 2, 3},
		"c00000000000000000002": {4},
		"c00000000000000000003": {},
	}
	if err := db.SaveStats(ctx, want); err != nil {
		t.Fatal(err)
	}
	// A second flush replaces one value and leaves the others.
	if err := db.SaveStats(ctx, map[string][]byte{"c00000000000000000002": {5, 6}}); err != nil {
		t.Fatal(err)
	}
	want["c00000000000000000002"] = []byte{5, 6}
	if err := db.DeleteStats(ctx, "c00000000000000000003"); err != nil {
		t.Fatal(err)
	}
	delete(want, "c00000000000000000003")
	if err := db.DeleteStats(ctx, "c00000000000000000009"); err != nil {
		t.Errorf("DeleteStats of an absent id: %v", err)
	}
	// A connector's config key does not show up as stats, nor the reverse.
	if err := db.CreateConnector(ctx, storetest.Connector("p1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir, Options{})
	got, err := db.LoadStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadStats after reopen = %v, want %v", got, want)
	}
	if all, err := db.AllConnectors(ctx); err != nil || len(all) != 1 {
		t.Errorf("AllConnectors = %d, %v; want 1", len(all), err)
	}
}

func TestStatsInvalidID(t *testing.T) {
	t.Parallel()
	db := openDB(t, t.TempDir(), Options{})
	ctx := t.Context()
	for _, id := range []string{"", "a/b"} {
		wantCode(t, "SaveStats "+id, db.SaveStats(ctx, map[string][]byte{id: {1}}), dcon.EINVALID)
		wantCode(t, "DeleteStats "+id, db.DeleteStats(ctx, id), dcon.EINVALID)
	}
	if got, err := db.LoadStats(ctx); err != nil || len(got) != 0 {
		t.Errorf("LoadStats after refused writes = %v, %v; want none", got, err)
	}
}
