package dcon

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

// Role is what a service account may do in a project. Each role includes the
// one before it.
type Role string

// The roles of a service account in its project.
const (
	RoleReader    Role = "reader"    // read projects, connectors, metrics, dead letters, devices
	RoleDeveloper Role = "developer" // also create, update, delete and sync connectors; manage devices; publish
	RoleAdmin     Role = "admin"     // also update and delete the project and manage its service accounts
)

// ValidRole reports whether r is one of the three roles.
func ValidRole(r Role) bool { return r == RoleReader || r == RoleDeveloper || r == RoleAdmin }

// Permission is what one API call needs on the project in its path.
type Permission int

// The permissions, from the least to the most.
const (
	PermRead  Permission = iota + 1 // any role
	PermWrite                       // developer or admin
	PermAdmin                       // admin
	PermOwner                       // an owner account: server-wide calls (create projects, signing keys)
)

func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermWrite:
		return "write"
	case PermAdmin:
		return "admin"
	case PermOwner:
		return "owner"
	}
	return "none"
}

// Allows reports whether the role grants the permission. No role grants
// PermOwner: only owner accounts have it.
func (r Role) Allows(p Permission) bool {
	switch p {
	case PermRead:
		return ValidRole(r)
	case PermWrite:
		return r == RoleDeveloper || r == RoleAdmin
	case PermAdmin:
		return r == RoleAdmin
	}
	return false
}

// Organization owns projects (Project.Organization is its id). The first
// start of a server without --dev creates one, with the id
// DefaultOrganization, so that the projects made without naming an
// organization, and those of older data, belong to it.
type Organization struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"displayName"`
	CreateTime  time.Time `json:"createTime"`
}

// ServiceAccount is a caller of the API: it authenticates with one of its keys
// and has one role in one project. An owner account (Owner) is an
// administrator of every project of the server and may also create projects
// and rotate the signing keys; only the first start of a server makes one. It
// lives in the project made at that start, like any account.
type ServiceAccount struct {
	ID          string    `json:"id"`
	Project     string    `json:"project"` // the project's id
	Email       string    `json:"email"`   // the iss of its JWT-bearer assertions
	DisplayName string    `json:"displayName"`
	Role        Role      `json:"role"`
	Owner       bool      `json:"owner,omitempty"`
	CreateTime  time.Time `json:"createTime"`
}

// Name is the account's resource name, "projects/{p}/serviceaccounts/{sa}".
func (a *ServiceAccount) Name() string {
	return "projects/" + a.Project + "/serviceaccounts/" + a.ID
}

// RoleOn is the account's role on a project: its own role on its own
// project, admin on every project for an owner, and "" (none) otherwise.
func (a *ServiceAccount) RoleOn(projectID string) Role {
	switch {
	case a.Owner:
		return RoleAdmin
	case a.Project == projectID:
		return a.Role
	}
	return ""
}

// ServiceAccountEmail is the email of an account: the iss that its JWT-bearer
// assertions carry, in the form of the original product's
// "<id>@<project>.serviceaccount.d21s.com".
func ServiceAccountEmail(projectID, accountID string) string {
	return accountID + "@" + projectID + ".serviceaccount.dcon"
}

// Key is a credential of a service account: a key id and a secret. The
// secret is shown once, when the key is made; the store keeps only its hash
// (HashSecret) and a random salt. The server re-derives the secret from the
// salt and a server key kept outside the store when it must verify an HS256
// assertion (internal/auth). A revoked key authenticates nothing, and the access tokens it
// obtained stop working at once.
type Key struct {
	ID         string    `json:"id"`
	Account    string    `json:"account"` // the service account's id
	Project    string    `json:"project"` // the service account's project
	SecretHash []byte    `json:"secretHash"`
	Salt       []byte    `json:"salt"`
	CreateTime time.Time `json:"createTime"`
	RevokeTime time.Time `json:"revokeTime,omitzero"` // zero while the key is valid
}

// Revoked reports whether the key was revoked.
func (k *Key) Revoked() bool { return !k.RevokeTime.IsZero() }

// Name is the key's resource name.
func (k *Key) Name() string {
	return "projects/" + k.Project + "/serviceaccounts/" + k.Account + "/keys/" + k.ID
}

// HashSecret is what the store keeps of a key secret: its SHA-256. A fast
// hash is enough here, unlike for passwords, because every secret is 256
// bits that no one chose: no dictionary helps guess one, and checking
// it costs microseconds on every request.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// CheckSecret reports, in constant time, whether secret is the key's.
func (k *Key) CheckSecret(secret string) bool {
	return subtle.ConstantTimeCompare(HashSecret(secret), k.SecretHash) == 1
}

// Principal is an authenticated caller: a service account and the key it
// authenticated with.
type Principal struct {
	Account *ServiceAccount
	KeyID   string
}

// AccessStore keeps organizations, service accounts and their keys. Errors
// carry ENOTFOUND for a missing one and ECONFLICT for an existing one.
type AccessStore interface {
	CreateOrganization(ctx context.Context, o *Organization) error
	Organization(ctx context.Context, id string) (*Organization, error)

	// CreateServiceAccount stores a new account together with its first keys,
	// in one write.
	CreateServiceAccount(ctx context.Context, a *ServiceAccount, keys ...*Key) error
	ServiceAccount(ctx context.Context, projectID, id string) (*ServiceAccount, error)
	// ListServiceAccounts returns a project's accounts ordered by id, and the
	// token of the next page ("" on the last).
	ListServiceAccounts(ctx context.Context, projectID string, p Page) ([]*ServiceAccount, string, error)
	// DeleteServiceAccount deletes an account and all its keys.
	DeleteServiceAccount(ctx context.Context, projectID, id string) error
	// HasServiceAccounts reports whether any account exists.
	HasServiceAccounts(ctx context.Context) (bool, error)

	// CreateKey stores a new key of an existing account (ENOTFOUND otherwise).
	CreateKey(ctx context.Context, k *Key) error
	// Key returns a key by its id alone, as a caller presents it.
	Key(ctx context.Context, id string) (*Key, error)
	// ListKeys returns an account's keys ordered by id, and the token of the
	// next page ("" on the last).
	ListKeys(ctx context.Context, accountID string, p Page) ([]*Key, string, error)
	// UpdateKey replaces a key (to revoke it).
	UpdateKey(ctx context.Context, k *Key) error
	DeleteKey(ctx context.Context, accountID, id string) error
}
