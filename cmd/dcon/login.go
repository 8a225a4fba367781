package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"dcon/internal/auth"
)

// The environment variables that give the CLI a key, before any credentials
// file. The secret is DCON_KEY_SECRET, not DCON_SECRET: every flag reads
// DCON_<FLAG>, and DCON_SECRET would set the --secret of 'connectors create'
// and 'listen' (a connector's signature secret) to the API key's secret.
const (
	envKeyID     = "DCON_KEY_ID"
	envKeySecret = "DCON_KEY_SECRET"
)

// defaultLoginFile is where 'dcon login' keeps the CLI's credentials:
// <user config dir>/dcon/credentials.json ("" if there is no such dir).
func defaultLoginFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "dcon", auth.CredentialsFile)
}

// cliCredentials finds the key the CLI uses: DCON_KEY_ID and DCON_KEY_SECRET,
// else the credentials file named by --credentials, else the file 'dcon login'
// wrote, else none (nil: a server in --dev mode needs none).
func cliCredentials(file string) (*auth.Credentials, error) {
	id, secret := os.Getenv(envKeyID), os.Getenv(envKeySecret)
	switch {
	case id != "" && secret != "":
		return &auth.Credentials{ServiceAccount: auth.CredentialsAccount{KeyID: id, Secret: secret}}, nil
	case id != "" || secret != "":
		return nil, usagef("set both %s and %s, or neither", envKeyID, envKeySecret)
	case file != "":
		return auth.ReadCredentials(file)
	}
	file = defaultLoginFile()
	if file == "" {
		return nil, nil
	}
	c, err := auth.ReadCredentials(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return c, err
}

// runLogin is `dcon login`: it checks a key against the server and keeps it
// for the other commands.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := verbFlags("login",
		"Check a service account key against the server and keep it (owner-only) for the other commands.\n"+
			"The key comes from a credentials file (the one 'dcon serve' writes on its first start, or the\n"+
			"original product's) or from --key-id and --key-secret. The other commands then authenticate\n"+
			"with it, and talk to the server it names unless --server says otherwise. DCON_KEY_ID and\n"+
			"DCON_KEY_SECRET, or --credentials on any command, override it.",
		`  dcon login --credentials ./dcon-data/credentials.json
  dcon login --server https://dcon.example.com --key-id c1ha… --key-secret …
`, stderr)
	server := fs.String("server", "", "`URL` of the dcon server (default: the credentials file's, else http://127.0.0.1:8080)")
	from := fs.String("credentials", "", "credentials `file` to log in with")
	keyID := fs.String("key-id", "", "the key `id`, instead of a credentials file")
	keySecret := fs.String("key-secret", "", "the key's `secret`, with --key-id")
	to := fs.String("login-file", defaultLoginFile(), "where to keep the credentials")
	rest, err := parseCLI(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest); err != nil {
		return err
	}
	var c *auth.Credentials
	switch {
	case *from != "" && (*keyID != "" || *keySecret != ""):
		return usagef("use --credentials or --key-id and --key-secret, not both")
	case *from != "":
		if c, err = auth.ReadCredentials(*from); err != nil {
			return err
		}
	case *keyID != "" && *keySecret != "":
		c = &auth.Credentials{ServiceAccount: auth.CredentialsAccount{KeyID: *keyID, Secret: *keySecret, Algorithm: "HS256"}}
	default:
		return usagef("give --credentials FILE, or --key-id and --key-secret")
	}
	if *to == "" {
		return usagef("--login-file is required: this system has no user config directory")
	}
	base := *server
	if base == "" {
		base = c.Server()
	}
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	client, err := newCLIClient(base)
	if err != nil {
		return err
	}
	client.keyID, client.secret = c.ServiceAccount.KeyID, c.ServiceAccount.Secret
	ctx, cancel := context.WithTimeout(ctx, authTimeout)
	defer cancel()
	if _, err := client.get(ctx, "/v2/projects", nil); err != nil {
		return fmt.Errorf("the server refused the key: %w", err)
	}
	c.APIURL = client.base + "/v2"
	if c.ServiceAccount.TokenEndpoint == "" {
		c.ServiceAccount.TokenEndpoint = client.base + auth.TokenPath
	}
	if err := os.MkdirAll(filepath.Dir(*to), 0o700); err != nil {
		return fmt.Errorf("keep the credentials: %w", err)
	}
	if err := auth.WriteCredentials(*to, c); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "Logged in to %s with key %s; the credentials are in %s\n", client.base, c.ServiceAccount.KeyID, *to)
	return err
}
