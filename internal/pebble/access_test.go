package pebble

import (
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"dcon"
)

func testAccount(project, id string, role dcon.Role) *dcon.ServiceAccount {
	return &dcon.ServiceAccount{ID: id, Project: project, Email: dcon.ServiceAccountEmail(project, id),
		DisplayName: id, Role: role, CreateTime: base}
}

func testKey(a *dcon.ServiceAccount, id, secret string) *dcon.Key {
	return &dcon.Key{ID: id, Account: a.ID, Project: a.Project, SecretHash: dcon.HashSecret(secret), CreateTime: base}
}

func TestAccessStore(t *testing.T) {
	t.Parallel()
	db := openDB(t, "/db", Options{FS: vfs.NewMem()})
	ctx := t.Context()

	if has, err := db.HasServiceAccounts(ctx); err != nil || has {
		t.Fatalf("HasServiceAccounts on an empty store = %v, %v", has, err)
	}
	org := &dcon.Organization{ID: dcon.DefaultOrganization, DisplayName: "acme", CreateTime: base}
	if err := db.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "second CreateOrganization", db.CreateOrganization(ctx, org), dcon.ECONFLICT)
	if got, err := db.Organization(ctx, org.ID); err != nil || !reflect.DeepEqual(got, org) {
		t.Fatalf("Organization = %+v, %v; want %+v", got, err, org)
	}

	a := testAccount("p1", "sa1", dcon.RoleAdmin)
	k1 := testKey(a, "k1", "secret-1")
	if err := db.CreateServiceAccount(ctx, a, k1); err != nil {
		t.Fatal(err)
	}
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
	if err := db.CreateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
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
	if err := db.UpdateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Key(ctx, "k2"); err != nil || !got.Revoked() {
		t.Fatalf("Key after revoke = %+v, %v", got, err)
	}
	if err := db.DeleteKey(ctx, "sa1", "k2"); err != nil {
		t.Fatal(err)
	}
	_, err = db.Key(ctx, "k2")
	wantCode(t, "Key after delete", err, dcon.ENOTFOUND)
	wantCode(t, "DeleteKey twice", db.DeleteKey(ctx, "sa1", "k2"), dcon.ENOTFOUND)

	b := testAccount("p1", "sa2", dcon.RoleReader)
	if err := db.CreateServiceAccount(ctx, b); err != nil {
		t.Fatal(err)
	}
	accounts, _, err := db.ListServiceAccounts(ctx, "p1", dcon.Page{})
	if err != nil || len(accounts) != 2 || accounts[0].ID != "sa1" || accounts[1].ID != "sa2" {
		t.Fatalf("ListServiceAccounts = %v, %v", accounts, err)
	}

	if err := db.DeleteServiceAccount(ctx, "p1", "sa1"); err != nil {
		t.Fatal(err)
	}
	_, err = db.Key(ctx, "k1")
	wantCode(t, "a deleted account's key", err, dcon.ENOTFOUND)
	wantCode(t, "DeleteServiceAccount twice", db.DeleteServiceAccount(ctx, "p1", "sa1"), dcon.ENOTFOUND)
	_, err = db.Key(ctx, "no/such")
	wantCode(t, "Key with a slash", err, dcon.ENOTFOUND)
}
