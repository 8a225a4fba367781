// Package auth authenticates the callers of dcon's API: service accounts with
// a key id and a secret, as the contract's section 4 says.
//
//   - HTTP Basic: "Authorization: Basic base64(<key id>:<secret>)".
//   - OAuth2 JWT bearer (RFC 7523): the client signs an HS256 assertion with
//     its secret (header kid = key id; claims iss = the account's email,
//     aud = the token endpoint's URL, iat, exp ≤ iat + 1 h) and exchanges it
//     at POST /oauth2/token for an access token, which it then sends as
//     "Authorization: Bearer <token>".
//
// # Secrets
//
// A key's secret is derived, never stored: secret = hex(HMAC-SHA256(server
// key, "dcon key secret" ‖ key id ‖ salt)), with a random 32-byte salt per
// key. The store (Pebble) keeps the salt and the SHA-256 of the secret; the
// server key is a file of its own in the data directory (owner-only). Basic
// checks the hash; an HS256 assertion needs the secret itself, which the server
// re-derives. So a copy of the store alone reveals no secret; the store and
// the server key together do — keep both owner-only (dcon does).
//
// # Access tokens
//
// Access tokens are HS256 JWTs signed with a key derived from the same server
// key (claims sub = key id, iat, exp = iat + 1 h, jti), so they survive a
// restart. Every request re-reads the key and its account from the store (two
// point reads): a revoked or deleted key, or a deleted account, fails its next
// request, tokens included. There is no cache to wait for.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/xid"

	"dcon"
)

// ServerKeyFile is the name of the server key in the data directory.
const ServerKeyFile = "auth.key"

// TokenPath is the path of the token endpoint.
const TokenPath = "/oauth2/token"

// DefaultTokenTTL is the lifetime of an access token, and the longest an
// assertion may live (exp − iat).
const DefaultTokenTTL = time.Hour

// leeway tolerates clocks that differ by this much between client and server.
const leeway = time.Minute

// accessKid marks dcon's own access tokens.
const accessKid = "dcon-access"

// Config configures an Authenticator.
type Config struct {
	// Store keeps accounts and keys. Required.
	Store dcon.AccessStore
	// ServerKey is the secret all key secrets and access tokens derive from;
	// at least 32 bytes (LoadServerKey). Required.
	ServerKey []byte
	// TokenTTL is the lifetime of access tokens. Default DefaultTokenTTL.
	TokenTTL time.Duration
	// Now tells the time. Default time.Now.
	Now func() time.Time
}

// Authenticator checks credentials and issues access tokens and keys.
type Authenticator struct {
	store     dcon.AccessStore
	serverKey []byte
	tokenKey  []byte
	ttl       time.Duration
	now       func() time.Time
}

// New returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: Config.Store is required")
	}
	if len(cfg.ServerKey) < 32 {
		return nil, errors.New("auth: Config.ServerKey must be at least 32 bytes")
	}
	a := &Authenticator{store: cfg.Store, serverKey: cfg.ServerKey, ttl: cfg.TokenTTL, now: cfg.Now}
	if a.ttl <= 0 {
		a.ttl = DefaultTokenTTL
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.tokenKey = a.derive("dcon access token")
	return a, nil
}

// derive returns HMAC-SHA256(server key, label ‖ 0 ‖ parts joined by 0).
func (a *Authenticator) derive(label string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, a.serverKey)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write(p)
	}
	return m.Sum(nil)
}

// secret is the secret of a key.
func (a *Authenticator) secret(k *dcon.Key) string {
	return hex.EncodeToString(a.derive("dcon key secret", []byte(k.ID), k.Salt))
}

// NewKey makes a new key for an account, and returns it and its secret, which
// nothing keeps: show it once.
func (a *Authenticator) NewKey(account *dcon.ServiceAccount) (*dcon.Key, string, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, "", fmt.Errorf("new key: %w", err)
	}
	k := &dcon.Key{ID: xid.New().String(), Account: account.ID, Project: account.Project, Salt: salt, CreateTime: a.now().UTC()}
	secret := a.secret(k)
	k.SecretHash = dcon.HashSecret(secret)
	return k, secret, nil
}

// unauthorized is the error of every failed authentication. Its message never
// says whether a key exists.
func unauthorized(msg string, cause error) error {
	return dcon.WrapError(dcon.EUNAUTHORIZED, cause, "%s", msg)
}

// Authenticate checks the Authorization header of a request: Basic with a
// key id and secret, or Bearer with an access token. Errors are *dcon.Error:
// EUNAUTHORIZED for missing or bad credentials, EUNAVAILABLE when the store
// cannot answer.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (*dcon.Principal, error) {
	scheme, value, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	value = strings.TrimSpace(value)
	switch {
	case authorization == "":
		return nil, unauthorized("missing credentials: use HTTP Basic with a key id and secret, or a bearer token from "+TokenPath, nil)
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, unauthorized("invalid credentials", err)
		}
		id, secret, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, unauthorized("invalid credentials", nil)
		}
		return a.basic(ctx, id, secret)
	case strings.EqualFold(scheme, "Bearer"):
		return a.bearer(ctx, value)
	}
	return nil, unauthorized("unsupported authorization scheme: use Basic or Bearer", nil)
}

func (a *Authenticator) basic(ctx context.Context, keyID, secret string) (*dcon.Principal, error) {
	k, err := a.key(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if !k.CheckSecret(secret) {
		return nil, unauthorized("invalid credentials", nil)
	}
	return a.principal(ctx, k)
}

// key reads a key; a missing one is an authentication failure.
func (a *Authenticator) key(ctx context.Context, id string) (*dcon.Key, error) {
	k, err := a.store.Key(ctx, id)
	if dcon.ErrorCode(err) == dcon.ENOTFOUND || dcon.ErrorCode(err) == dcon.EINVALID {
		return nil, unauthorized("invalid credentials", err)
	}
	return k, err
}

// principal checks that a key, whose secret the caller proved, still holds,
// and returns its account.
func (a *Authenticator) principal(ctx context.Context, k *dcon.Key) (*dcon.Principal, error) {
	if k.Revoked() {
		return nil, unauthorized("the key was revoked", nil)
	}
	acc, err := a.store.ServiceAccount(ctx, k.Project, k.Account)
	if dcon.ErrorCode(err) == dcon.ENOTFOUND {
		return nil, unauthorized("invalid credentials", err)
	}
	if err != nil {
		return nil, err
	}
	return &dcon.Principal{Account: acc, KeyID: k.ID}, nil
}

// accessClaims are the claims of dcon's access tokens.
type accessClaims struct {
	jwt.RegisteredClaims
}

func (a *Authenticator) bearer(ctx context.Context, token string) (*dcon.Principal, error) {
	var c accessClaims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != accessKid {
			return nil, errors.New("not a dcon access token")
		}
		return a.tokenKey, nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(accessKid),
		jwt.WithTimeFunc(a.now), jwt.WithLeeway(leeway))
	if errors.Is(err, jwt.ErrTokenExpired) {
		return nil, unauthorized("the access token expired; get a new one from "+TokenPath, err)
	}
	if err != nil {
		return nil, unauthorized("invalid access token", err)
	}
	k, err := a.key(ctx, c.Subject)
	if err != nil {
		return nil, err
	}
	return a.principal(ctx, k)
}

// Exchange checks a JWT-bearer assertion (RFC 7523) and returns an access
// token for its key and the token's lifetime. The assertion must be HS256,
// signed with the secret of the key its kid names, with iss the key's account
// email, aud one of audiences (the token endpoint's URL), and an exp at most
// one hour after its iat and after now. Errors are *dcon.Error: EUNAUTHORIZED
// for a bad assertion, EUNAVAILABLE when the store cannot answer.
func (a *Authenticator) Exchange(ctx context.Context, assertion string, audiences []string) (string, time.Duration, error) {
	var k *dcon.Key
	var c jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(assertion, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		var err error
		if k, err = a.key(ctx, kid); err != nil {
			return nil, err
		}
		return []byte(a.secret(k)), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithAudience(audiences...), jwt.WithTimeFunc(a.now), jwt.WithLeeway(leeway))
	if err != nil {
		var de *dcon.Error
		if errors.As(err, &de) && de.Code == dcon.EUNAVAILABLE {
			return "", 0, de
		}
		return "", 0, unauthorized("invalid assertion: "+assertionProblem(err), err)
	}
	now := a.now()
	if c.IssuedAt != nil && c.ExpiresAt.Sub(c.IssuedAt.Time) > DefaultTokenTTL {
		return "", 0, unauthorized("invalid assertion: exp is more than 1 hour after iat", nil)
	}
	if c.ExpiresAt.Sub(now) > DefaultTokenTTL+leeway {
		return "", 0, unauthorized("invalid assertion: exp is more than 1 hour away", nil)
	}
	p, err := a.principal(ctx, k)
	if err != nil {
		return "", 0, err
	}
	if c.Issuer != p.Account.Email {
		return "", 0, unauthorized("invalid assertion: iss is not the service account's email", nil)
	}
	token, err := a.accessToken(k, now)
	if err != nil {
		return "", 0, err
	}
	return token, a.ttl, nil
}

// assertionProblem says, safely, what is wrong with an assertion.
func assertionProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "aud is not this token endpoint"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "exp is missing"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad signature or key"
	}
	return "malformed"
}

// accessToken signs an access token for k.
func (a *Authenticator) accessToken(k *dcon.Key, now time.Time) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, accessClaims{jwt.RegisteredClaims{
		Issuer:    accessKid,
		Subject:   k.ID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(a.ttl)),
		ID:        xid.New().String(),
	}})
	t.Header["kid"] = accessKid
	s, err := t.SignedString(a.tokenKey)
	if err != nil {
		return "", dcon.WrapError(dcon.EINTERNAL, err, "internal error")
	}
	return s, nil
}

// LoadServerKey reads the server key from <dir>/auth.key, or makes one (32
// random bytes, written owner-only) if there is none.
func LoadServerKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, ServerKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("server key %s: too short (%d bytes)", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("server key: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	if err := writeFileAtomic(path, b); err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	return b, nil
}

// writeFileAtomic writes data to path, owner-only, through a synced temporary
// file renamed into place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
