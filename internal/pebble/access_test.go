package pebble

import (
	"dcon"
)

func testAccount(project, id string, role dcon.Role) *dcon.ServiceAccount {
	return &dcon.ServiceAccount{ID: id, Project: project, Email: dcon.ServiceAccountEmail(project, id),
		DisplayName: id, Role: role, CreateTime: base}
}

func testKey(a *dcon.ServiceAccount, id, secret string) *dcon.Key {
	return &dcon.Key{ID: id, Account: a.ID, Project: a.Project, SecretHash: dcon.HashSecret(secret), CreateTime: base}
}
