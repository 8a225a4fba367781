package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/rs/xid"

	"dcon"
)

// CredentialsFile is the name of the file the first start writes in the data
// directory.
const CredentialsFile = "credentials.json"

// Credentials are a service account key as the original product's credentials
// file holds it, so that its client library can use a dcon server:
//
//	{"serviceAccount": {"keyId", "secret", "email", "algorithm": "HS256", "tokenEndpoint"}}
//
// dcon adds, beside serviceAccount, the project and organization of the
// account and the API's base URL.
type Credentials struct {
	ServiceAccount CredentialsAccount `json:"serviceAccount"`
	Project        string             `json:"project,omitempty"`
	Organization   string             `json:"organization,omitempty"`
	APIURL         string             `json:"apiUrl,omitempty"` // <server>/v2
}

// CredentialsAccount is the serviceAccount member of a credentials file.
type CredentialsAccount struct {
	KeyID         string `json:"keyId"`
	Secret        string `json:"secret"`
	Email         string `json:"email"`
	Algorithm     string `json:"algorithm"` // always HS256
	TokenEndpoint string `json:"tokenEndpoint"`
}

// Server is the server's base URL: apiUrl without its /v2, else the token
// endpoint's origin, else "".
func (c *Credentials) Server() string {
	if c.APIURL != "" {
		return strings.TrimSuffix(strings.TrimSuffix(c.APIURL, "/"), "/v2")
	}
	return strings.TrimSuffix(c.ServiceAccount.TokenEndpoint, TokenPath)
}

// ReadCredentials reads a credentials file.
func ReadCredentials(path string) (*Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	if c.ServiceAccount.KeyID == "" || c.ServiceAccount.Secret == "" {
		return nil, fmt.Errorf("credentials %s: serviceAccount.keyId and serviceAccount.secret are required", path)
	}
	return &c, nil
}

// WriteCredentials writes a credentials file, owner-only (0600).
func WriteCredentials(path string, c *Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// Bootstrap describes the first start of a server.
type Bootstrap struct {
	Projects dcon.ProjectStore
	// Server is the server's base URL, as clients reach it
	// ("http://127.0.0.1:8080"): the credentials name <Server>/v2 and
	// <Server>/oauth2/token.
	Server string
	// Save keeps the credentials (in the data directory) before the account
	// exists, so that a crash never leaves an account whose secret is lost.
	Save func(*Credentials) error
}

// Bootstrap makes, when the store has no service account yet, the
// organization dcon.DefaultOrganization (if missing), a project in it, and an
// owner account in that project with one key, and returns its credentials.
// When accounts exist already it returns nil: the first start only.
func (a *Authenticator) Bootstrap(ctx context.Context, b Bootstrap) (*Credentials, error) {
	has, err := a.store.HasServiceAccounts(ctx)
	if err != nil || has {
		return nil, err
	}
	now := a.now().UTC()
	org := &dcon.Organization{ID: dcon.DefaultOrganization, DisplayName: dcon.DefaultOrganization, CreateTime: now}
	if err := a.store.CreateOrganization(ctx, org); err != nil && dcon.ErrorCode(err) != dcon.ECONFLICT {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	p := &dcon.Project{ID: xid.New().String(), DisplayName: "default", Organization: org.ID, CreateTime: now, UpdateTime: now}
	if err := b.Projects.CreateProject(ctx, p); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	id := xid.New().String()
	acc := &dcon.ServiceAccount{ID: id, Project: p.ID, Email: dcon.ServiceAccountEmail(p.ID, id),
		DisplayName: "owner", Role: dcon.RoleAdmin, Owner: true, CreateTime: now}
	k, secret, err := a.NewKey(acc)
	if err != nil {
		return nil, err
	}
	server := strings.TrimSuffix(b.Server, "/")
	c := &Credentials{
		ServiceAccount: CredentialsAccount{KeyID: k.ID, Secret: secret, Email: acc.Email, Algorithm: "HS256",
			TokenEndpoint: server + TokenPath},
		Project:      p.ID,
		Organization: org.ID,
		APIURL:       server + "/v2",
	}
	if b.Save != nil {
		if err := b.Save(c); err != nil {
			return nil, err
		}
	}
	if err := a.store.CreateServiceAccount(ctx, acc, k); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return c, nil
}
