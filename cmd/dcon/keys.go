package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"dcon"
	"dcon/internal/signature"
)

// keysFile is the file of the data directory that holds the ES256 signing
// keys, private keys included (mode 0600).
const keysFile = "signing-keys.json"

// signingKeys is the node's ES256 key set and the file it is kept in. It
// implements httpapi.SigningKeys.
type signingKeys struct {
	set  *signature.KeySet
	path string

	mu sync.Mutex // one rotation at a time, so that the file matches memory
}

// loadKeySet reads the signing keys of the data directory, or generates and
// stores a first key when there are none. overlap (0: 24 h) is how long a key
// replaced by a rotation stays published.
func loadKeySet(dataDir string, overlap time.Duration, now time.Time, log *slog.Logger) (*signingKeys, error) {
	k := &signingKeys{path: filepath.Join(dataDir, keysFile)}
	data, err := os.ReadFile(k.path)
	switch {
	case err == nil:
		if k.set, err = signature.UnmarshalKeySet(data); err != nil {
			return nil, fmt.Errorf("signing keys %s: %w", k.path, err)
		}
		k.set.SetOverlap(overlap)
		if fi, err := os.Stat(k.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the signing keys file is readable by others; make it 0600", "path", k.path, "mode", fi.Mode().Perm().String())
		}
		return k, nil
	case errors.Is(err, fs.ErrNotExist):
		if k.set, err = signature.Generate(now); err != nil {
			return nil, err
		}
		k.set.SetOverlap(overlap)
		if err := k.save(); err != nil {
			return nil, err
		}
		log.Info("generated a signing key for DT-Asymmetric-Signature", "kid", k.ActiveKeyID(), "path", k.path)
		return k, nil
	default:
		return nil, fmt.Errorf("signing keys: %w", err)
	}
}

// ActiveKeyID returns the kid that signs now.
func (k *signingKeys) ActiveKeyID() string {
	kid, _ := k.set.Active()
	return kid
}

// JWKS returns the keys published at now.
func (k *signingKeys) JWKS(now time.Time) ([]byte, error) { return k.set.JWKS(now) }

// Rotate makes a fresh key active and saves the set. If the save fails, the
// new key signs all the same until the process stops (the old one stays
// published); the error says so, and the next rotation saves both.
func (k *signingKeys) Rotate(_ context.Context, now time.Time) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	kid, err := k.set.Rotate(now)
	if err != nil {
		return "", dcon.WrapError(dcon.EINTERNAL, err, "generate a signing key")
	}
	if err := k.save(); err != nil {
		return "", dcon.WrapError(dcon.EUNAVAILABLE, err, "the key rotated but could not be saved; rotate again")
	}
	return kid, nil
}

// save writes the set atomically: a temporary file, synced, renamed over the
// old one, and the directory synced.
func (k *signingKeys) save() error {
	data, err := k.set.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(k.path)
	tmp, err := os.CreateTemp(dir, keysFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("save signing keys: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save signing keys: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save signing keys: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save signing keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save signing keys: %w", err)
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		return fmt.Errorf("save signing keys: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("save signing keys: sync %s: %w", dir, err)
		}
	}
	return nil
}

// resolveIssuer returns the issuer URL of the ES256 tokens: --issuer, else
// http://<addr> (fine on one machine; production sets the public https URL
// under which /.well-known/ reaches this server).
func resolveIssuer(issuer, addr string) (string, error) {
	if issuer == "" {
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		return "http://" + addr, nil
	}
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.Contains(issuer, "#") {
		return "", usagef("--issuer %q: want an absolute https:// URL without query or fragment, such as https://dcon.example.com", issuer)
	}
	return strings.TrimSuffix(issuer, "/"), nil
}

// orgTTL is how long organizations trusts what it read of a project: a
// project moved to another organization signs with the new one within it.
const orgTTL = time.Minute

// organizations answers the organization of a project, the sub claim of
// every attempt, from memory: what the store says is kept for orgTTL.
type organizations struct {
	store dcon.ProjectStore
	log   *slog.Logger
	now   func() time.Time

	mu sync.RWMutex
	m  map[string]orgEntry // by project id
}

type orgEntry struct {
	org  string
	read time.Time
}

func newOrganizations(store dcon.ProjectStore, log *slog.Logger) *organizations {
	return &organizations{store: store, log: log, now: time.Now, m: map[string]orgEntry{}}
}

// Of returns the organization that owns the project, or "" (the default
// organization) when the project cannot be read.
func (o *organizations) Of(projectID string) string {
	now := o.now()
	o.mu.RLock()
	e, ok := o.m[projectID]
	o.mu.RUnlock()
	if ok && now.Sub(e.read) < orgTTL {
		return e.org
	}
	p, err := o.store.Project(context.Background(), projectID)
	if err != nil {
		if dcon.ErrorCode(err) != dcon.ENOTFOUND {
			o.log.Warn("read a project's organization; signing with the last known", "project", projectID, "err", err)
		}
		return e.org // "" if never read
	}
	o.mu.Lock()
	o.m[projectID] = orgEntry{org: p.Organization, read: now}
	o.mu.Unlock()
	return p.Organization
}

// defaultKeyOverlap is the default of --key-overlap.
const defaultKeyOverlap = signature.DefaultOverlap
