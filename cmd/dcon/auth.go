package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"dcon"
	"dcon/internal/auth"
	"dcon/internal/httpapi"
)

// openAuth sets up authentication, unless the node runs without it (--dev,
// or NoAuth for tests): the server key, the authenticator, and what the API
// needs to manage service accounts.
func (n *node) openAuth(cfg serveConfig) (dcon.AccessStore, httpapi.KeyMaker, error) {
	if cfg.Dev || cfg.NoAuth {
		return nil, nil, nil
	}
	key, err := auth.LoadServerKey(cfg.Data)
	if err != nil {
		return nil, nil, err
	}
	n.authn, err = auth.New(auth.Config{Store: n.db, ServerKey: key})
	if err != nil {
		return nil, nil, err
	}
	return n.db, n.authn, nil
}

// guard puts authentication in front of the API, and makes the owner
// account on the first start (no service account in the store yet), its
// credentials written to <data>/credentials.json.
func (n *node) guard(ctx context.Context, cfg serveConfig, issuer string, log *slog.Logger) error {
	path := filepath.Join(cfg.Data, auth.CredentialsFile)
	creds, err := n.authn.Bootstrap(ctx, auth.Bootstrap{
		Projects: n.db,
		Server:   issuer,
		Save:     func(c *auth.Credentials) error { return auth.WriteCredentials(path, c) },
	})
	if err != nil {
		return err
	}
	if creds != nil {
		n.credentials = creds
		log.Info("first start: made an owner account; its credentials are in "+path,
			"project", creds.Project, "keyId", creds.ServiceAccount.KeyID)
	}
	n.api = (&httpapi.Guard{
		Auth:     n.authn,
		Projects: n.db,
		TokenURL: issuer + auth.TokenPath,
		Logger:   log.With("component", "auth"),
	}).Handler(n.api)
	return nil
}

// printCredentials shows the owner account made by the first start, once.
func printCredentials(w io.Writer, c *auth.Credentials, path string) {
	fmt.Fprintf(w, `
First start: dcon made an organization, a project and an owner service account.
Its secret is shown this once; it is also in %s (owner-only).

  project   %s
  key id    %s
  secret    %s
  email     %s
  token URL %s

Use it with the CLI:     dcon login --credentials %s
or with HTTP Basic:      curl -u %s:<secret> %s/projects

`, path, c.Project, c.ServiceAccount.KeyID, c.ServiceAccount.Secret, c.ServiceAccount.Email,
		c.ServiceAccount.TokenEndpoint, path, c.ServiceAccount.KeyID, c.APIURL)
}

// authTimeout bounds dcon login's check of the credentials.
const authTimeout = 30 * time.Second
