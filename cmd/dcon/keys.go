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

// signingKeysSecret is the name of the fleet's key set in the secrets bucket
// (--nats).
const signingKeysSecret = "signing-keys"

// signingKeys is the node's ES256 key set and the file it is kept in. It
// implements httpapi.SigningKeys.
//
// On a fleet (--nats, see share) the set is the fleet's, kept in the secrets
// bucket: a rotation through any node replaces the bucket's set, and every
// node, watching the bucket, takes it — signs with the new active key and
// publishes the new JWKS — within the watch's latency (milliseconds).
type signingKeys struct {
	set  *signature.KeySet
	path string

	mu     sync.Mutex // one rotation or change at a time, so that the file matches memory
	shared sharedKeys // the fleet's bucket; nil on one node
	rev    uint64     // the bucket revision of set, with shared
	log    *slog.Logger
}

// sharedKeys is where a fleet keeps the key set every node signs with: the
// secrets bucket (*jetstream.Store).
type sharedKeys interface {
	SecretRevision(ctx context.Context, name string) ([]byte, uint64, error)
	UpdateSecret(ctx context.Context, name string, val []byte, rev uint64) (uint64, error)
	WatchSecret(ctx context.Context, name string, f func(val []byte, rev uint64)) error
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

// share makes k the fleet's key set: from now on k follows the set in the
// secrets bucket (which shareSecrets made the data directory's at start), and
// Rotate replaces the bucket's.
func (k *signingKeys) share(ctx context.Context, s sharedKeys, log *slog.Logger) error {
	k.mu.Lock()
	k.shared, k.log = s, log
	k.mu.Unlock()
	return s.WatchSecret(ctx, signingKeysSecret, func(val []byte, rev uint64) {
		if err := k.take(val, rev); err != nil {
			log.Error("take the fleet's signing keys; this node signs with its previous key", "revision", rev, "err", err)
		}
	})
}

// take makes the stored set val, at bucket revision rev, k's keys and saves
// them, unless k has that revision or a later one already.
func (k *signingKeys) take(val []byte, rev uint64) error {
	set, err := signature.UnmarshalKeySet(val)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.install(set, rev)
}

// install replaces k's keys by set's, at bucket revision rev, and saves them.
// k.mu must be held.
func (k *signingKeys) install(set *signature.KeySet, rev uint64) error {
	if rev <= k.rev {
		return nil
	}
	k.set.Replace(set)
	k.rev = rev
	if k.log != nil {
		k.log.Info("signing with the fleet's key", "kid", k.ActiveKeyID(), "revision", rev)
	}
	return k.save()
}

// maxRotateTries bounds how often a fleet rotation reads the bucket again
// after another node's rotation came first.
const maxRotateTries = 5

// Rotate makes a fresh key active and saves the set. If the save fails, the
// new key signs all the same until the process stops (the old one stays
// published); the error says so, and the next rotation saves both.
//
// On a fleet it rotates the bucket's set and writes it back over the
// revision it read — so that two nodes rotating at once both rotate, one
// after the other, and neither loses the other's key — then takes it at once;
// the other nodes take it from their watch.
func (k *signingKeys) Rotate(ctx context.Context, now time.Time) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.shared != nil {
		return k.rotateShared(ctx, now)
	}
	kid, err := k.set.Rotate(now)
	if err != nil {
		return "", dcon.WrapError(dcon.EINTERNAL, err, "generate a signing key")
	}
	if err := k.save(); err != nil {
		return "", dcon.WrapError(dcon.EUNAVAILABLE, err, "the key rotated but could not be saved; rotate again")
	}
	return kid, nil
}

// rotateShared rotates the fleet's set in the secrets bucket. k.mu must be
// held.
func (k *signingKeys) rotateShared(ctx context.Context, now time.Time) (string, error) {
	for range maxRotateTries {
		val, rev, err := k.shared.SecretRevision(ctx, signingKeysSecret)
		if err != nil {
			return "", err
		}
		set, err := signature.UnmarshalKeySet(val)
		if err != nil {
			return "", dcon.WrapError(dcon.EINTERNAL, err, "read the fleet's signing keys")
		}
		set.SetOverlap(k.set.Overlap())
		kid, err := set.Rotate(now)
		if err != nil {
			return "", dcon.WrapError(dcon.EINTERNAL, err, "generate a signing key")
		}
		data, err := set.Marshal()
		if err != nil {
			return "", dcon.WrapError(dcon.EINTERNAL, err, "generate a signing key")
		}
		newRev, err := k.shared.UpdateSecret(ctx, signingKeysSecret, data, rev)
		if dcon.ErrorCode(err) == dcon.ECONFLICT {
			continue // another node rotated meanwhile: rotate its set
		}
		if err != nil {
			return "", err
		}
		if err := k.install(set, newRev); err != nil {
			// Stored: every node, this one included, signs with it once its
			// watch delivers it.
			return "", dcon.WrapError(dcon.EUNAVAILABLE, err, "the key rotated for the fleet but this node could not take it yet")
		}
		return kid, nil
	}
	return "", dcon.Errorf(dcon.ECONFLICT, "the signing keys kept changing on other nodes; rotate again")
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
