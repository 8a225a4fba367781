package auth_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dcon"
	"dcon/internal/auth"
	"dcon/internal/pebble"
)

// fixture is an Authenticator over a real store, with one account and key.
type fixture struct {
	a      *auth.Authenticator
	db     *pebble.DB
	acc    *dcon.ServiceAccount
	key    *dcon.Key
	secret string
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.a, err = auth.New(auth.Config{Store: db, ServerKey: bytes.Repeat([]byte{7}, 32), Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.acc = &dcon.ServiceAccount{ID: "dc0000000000000000s0", Project: "p1", Role: dcon.RoleReader,
		Email: dcon.ServiceAccountEmail("p1", "dc0000000000000000s0")}
	f.key, f.secret, err = f.a.NewKey(f.acc)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateServiceAccount(t.Context(), f.acc, f.key); err != nil {
		t.Fatal(err)
	}
	return f
}

// assertion is a JWT-bearer assertion as the original client makes it.
func (f *fixture) assertion(t *testing.T, now time.Time) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iat": now.Unix(), "exp": now.Unix() + 3600, "aud": "https://dcon.test/oauth2/token", "iss": f.acc.Email})
	tok.Header["kid"] = f.key.ID
	s, err := tok.SignedString([]byte(f.secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	token, ttl, err := f.a.Exchange(ctx, f.assertion(t, f.now), []string{"https://dcon.test/oauth2/token"})
	if err != nil || ttl != time.Hour {
		t.Fatalf("Exchange: %v, %v", ttl, err)
	}
	if bytes.Contains(f.key.SecretHash, []byte(f.secret)) || len(f.key.Salt) != 32 {
		t.Fatalf("the key keeps its secret, or has no salt: %+v", f.key)
	}
	tests := []struct {
		name, header string
		ok           bool
	}{
		{"basic", basic(f.key.ID, f.secret), true},
		{"basic, lower-case scheme", "basic " + basic(f.key.ID, f.secret)[6:], true},
		{"bearer", "Bearer " + token, true},
		{"none", "", false},
		{"wrong secret", basic(f.key.ID, f.secret+"x"), false},
		{"unknown key", basic("dc0000000000000000k9", f.secret), false},
		{"key id with a slash", basic("a/b", f.secret), false},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte(f.key.ID)), false},
		{"not base64", "Basic !!!", false},
		{"other scheme", "Digest x", false},
		{"assertion as a token", "Bearer " + f.assertion(t, f.now), false},
		{"token with another signature", "Bearer " + token[:len(token)-2] + "xx", false},
	}
	for _, tt := range tests {
		p, err := f.a.Authenticate(ctx, tt.header)
		switch {
		case tt.ok && (err != nil || p.Account.ID != f.acc.ID || p.KeyID != f.key.ID):
			t.Errorf("%s: %+v, %v; want the account", tt.name, p, err)
		case !tt.ok && dcon.ErrorCode(err) != dcon.EUNAUTHORIZED:
			t.Errorf("%s: %+v, %v; want EUNAUTHORIZED", tt.name, p, err)
		}
	}

	// The token expires after an hour (and a minute's leeway).
	f.now = f.now.Add(time.Hour + 2*time.Minute)
	if _, err := f.a.Authenticate(ctx, "Bearer "+token); dcon.ErrorCode(err) != dcon.EUNAUTHORIZED {
		t.Errorf("an expired token: %v", err)
	}
	// Revoked: Basic and fresh tokens alike fail at once.
	token, _, err = f.a.Exchange(ctx, f.assertion(t, f.now), []string{"https://dcon.test/oauth2/token"})
	if err != nil {
		t.Fatal(err)
	}
	f.key.RevokeTime = f.now
	if err := f.db.UpdateKey(ctx, f.key); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{basic(f.key.ID, f.secret), "Bearer " + token} {
		if _, err := f.a.Authenticate(ctx, h); dcon.ErrorCode(err) != dcon.EUNAUTHORIZED {
			t.Errorf("revoked key, %.10s…: %v", h, err)
		}
	}
	if _, _, err := f.a.Exchange(ctx, f.assertion(t, f.now), []string{"https://dcon.test/oauth2/token"}); dcon.ErrorCode(err) != dcon.EUNAUTHORIZED {
		t.Errorf("Exchange with a revoked key: %v", err)
	}
}

func TestBootstrapOnce(t *testing.T) {
	t.Parallel()
	db, err := pebble.Open(t.TempDir(), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := auth.New(auth.Config{Store: db, ServerKey: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), auth.CredentialsFile)
	b := auth.Bootstrap{Projects: db, Server: "https://dcon.test", Save: func(c *auth.Credentials) error { return auth.WriteCredentials(path, c) }}
	c, err := a.Bootstrap(t.Context(), b)
	if err != nil || c == nil {
		t.Fatalf("first Bootstrap: %v, %v", c, err)
	}
	read, err := auth.ReadCredentials(path)
	if err != nil || *read != *c {
		t.Fatalf("ReadCredentials = %+v, %v; want %+v", read, err, c)
	}
	if c.ServiceAccount.TokenEndpoint != "https://dcon.test/oauth2/token" || c.APIURL != "https://dcon.test/v2" || c.Server() != "https://dcon.test" {
		t.Errorf("credentials URLs: %+v", c)
	}
	p, err := a.Authenticate(t.Context(), basic(c.ServiceAccount.KeyID, c.ServiceAccount.Secret))
	if err != nil || !p.Account.Owner || p.Account.Project != c.Project {
		t.Fatalf("the bootstrap key: %+v, %v", p, err)
	}
	if _, err := db.Project(t.Context(), c.Project); err != nil {
		t.Errorf("the bootstrap project: %v", err)
	}
	if again, err := a.Bootstrap(t.Context(), b); err != nil || again != nil {
		t.Errorf("second Bootstrap = %v, %v; want nothing", again, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, %v", st, err)
	}
}

func TestLoadServerKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := auth.LoadServerKey(dir)
	if err != nil || len(k1) != 32 {
		t.Fatalf("LoadServerKey: %d bytes, %v", len(k1), err)
	}
	k2, err := auth.LoadServerKey(dir)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("the second LoadServerKey differs: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, auth.ServerKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("server key file: %v, %v", st, err)
	}
}
