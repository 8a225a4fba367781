package signature

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultOverlap is how long a retired key stays published after a rotation,
// so that receivers holding a token it signed, or a cached JWKS, keep working.
const DefaultOverlap = 24 * time.Hour

// keySetVersion is the version of the stored form written by Marshal.
const keySetVersion = 1

// KeySet is dcon's set of ES256 signing keys: one active P-256 key that signs,
// and the keys it replaced, each still published until its overlap ends.
//
// A key's id (kid) is its RFC 7638 JWK thumbprint: the base64url SHA-256 of
// {"crv":"P-256","kty":"EC","x":"…","y":"…"}. It is derived from the public key
// alone, so anyone can recompute it, a stored set can be checked for damage on
// load, and no two keys share an id.
//
// A KeySet is safe for concurrent use: deliveries sign while an operator
// rotates.
type KeySet struct {
	mu      sync.RWMutex
	overlap time.Duration
	keys    []setKey // keys[0] is active; the rest are retired, newest first
}

type setKey struct {
	id       string
	priv     *ecdsa.PrivateKey
	created  time.Time
	retireAt time.Time // zero for the active key; else when it stops being published
}

// Generate returns a new KeySet holding one fresh active key, created at now,
// with the DefaultOverlap.
func Generate(now time.Time) (*KeySet, error) {
	k, err := newSetKey(now)
	if err != nil {
		return nil, err
	}
	return &KeySet{overlap: DefaultOverlap, keys: []setKey{k}}, nil
}

func newSetKey(now time.Time) (setKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return setKey{}, fmt.Errorf("signature: generate P-256 key: %w", err)
	}
	id, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return setKey{}, err
	}
	return setKey{id: id, priv: priv, created: now.UTC().Truncate(time.Second)}, nil
}

// SetOverlap sets how long keys retired by later rotations stay published; d
// <= 0 means DefaultOverlap. Keys already retired keep their end.
func (ks *KeySet) SetOverlap(d time.Duration) {
	if d <= 0 {
		d = DefaultOverlap
	}
	ks.mu.Lock()
	ks.overlap = d
	ks.mu.Unlock()
}

// Overlap returns how long a retired key stays published.
func (ks *KeySet) Overlap() time.Duration {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.overlap
}

// Active returns the id and the private key that sign now.
func (ks *KeySet) Active() (kid string, key *ecdsa.PrivateKey) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[0].id, ks.keys[0].priv
}

// Sign appends to dst the DT-Asymmetric-Signature token of body made with the
// active key; see AppendES256.
func (ks *KeySet) Sign(dst, body []byte, iat time.Time, issuer, subject string) ([]byte, error) {
	kid, key := ks.Active()
	return AppendES256(dst, key, kid, body, iat, issuer, subject)
}

// Rotate makes a fresh key the active one and returns its id. The key it
// replaces stays published, and so verifiable, until now + the overlap; keys
// whose overlap ended by now are dropped.
func (ks *KeySet) Rotate(now time.Time) (string, error) {
	k, err := newSetKey(now)
	if err != nil {
		return "", err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old := ks.keys[0]
	old.retireAt = now.UTC().Add(ks.overlap).Truncate(time.Second)
	keys := []setKey{k, old}
	for _, r := range ks.keys[1:] {
		if r.retireAt.After(now) {
			keys = append(keys, r)
		}
	}
	ks.keys = keys
	return k.id, nil
}

// Replace makes ks hold other's keys: other's active key signs from now on,
// and ks publishes what other publishes. ks keeps its own overlap. A fleet's
// nodes use it to follow a rotation made on another node.
func (ks *KeySet) Replace(other *KeySet) {
	other.mu.RLock()
	keys := slices.Clone(other.keys)
	other.mu.RUnlock()
	ks.mu.Lock()
	ks.keys = keys
	ks.mu.Unlock()
}

// PublicKey returns the public key of kid if the set publishes it at now: the
// active key, or a retired one within its overlap. Otherwise the error wraps
// ErrUnknownKey. With a fixed now it fits VerifyES256's keyFor.
func (ks *KeySet) PublicKey(kid string, now time.Time) (*ecdsa.PublicKey, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.id == kid && k.published(now) {
			return &k.priv.PublicKey, nil
		}
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, clip(kid))
}

func (k *setKey) published(now time.Time) bool {
	return k.retireAt.IsZero() || now.Before(k.retireAt)
}

// JWK is one public key of a JWKS (RFC 7517), as KeySet.JWKS writes it.
type JWK struct {
	Kty string `json:"kty"` // "EC"
	Crv string `json:"crv"` // "P-256"
	X   string `json:"x"`   // base64url, 32 bytes
	Y   string `json:"y"`   // base64url, 32 bytes
	Kid string `json:"kid"` // the RFC 7638 thumbprint
	Use string `json:"use"` // "sig"
	Alg string `json:"alg"` // "ES256"
}

// JWKS returns the JSON Web Key Set that receivers fetch:
// {"keys":[{"kty":"EC","crv":"P-256","x":…,"y":…,"kid":…,"use":"sig","alg":"ES256"}]},
// the active key first, then every retired key still in its overlap at now.
func (ks *KeySet) JWKS(now time.Time) ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: make([]JWK, 0, len(ks.keys))}
	for _, k := range ks.keys {
		if !k.published(now) {
			continue
		}
		x, y, err := coordinates(&k.priv.PublicKey)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, JWK{
			Kty: "EC", Crv: "P-256", Kid: k.id, Use: "sig", Alg: "ES256",
			X: base64.RawURLEncoding.EncodeToString(x),
			Y: base64.RawURLEncoding.EncodeToString(y),
		})
	}
	return json.Marshal(set)
}

// coordinates returns the 32-byte big-endian x and y of a P-256 public key.
func coordinates(pub *ecdsa.PublicKey) (x, y []byte, err error) {
	if pub.Curve != elliptic.P256() {
		return nil, nil, errors.New("signature: not a P-256 key")
	}
	b, err := pub.Bytes() // 0x04 || x || y
	if err != nil {
		return nil, nil, fmt.Errorf("signature: encode public key: %w", err)
	}
	return b[1:33], b[33:65], nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of a P-256 public key: the
// base64url (unpadded) SHA-256 of its required members in lexicographic
// order, {"crv":"P-256","kty":"EC","x":"…","y":"…"}.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	x, y, err := coordinates(pub)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"crv":"P-256","kty":"EC","x":"`)
	buf.WriteString(base64.RawURLEncoding.EncodeToString(x))
	buf.WriteString(`","y":"`)
	buf.WriteString(base64.RawURLEncoding.EncodeToString(y))
	buf.WriteString(`"}`)
	sum := sha256.Sum256(buf.Bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// ParseJWKS reads a JWKS and returns its ES256 P-256 keys by kid. Keys of any
// other type, curve or algorithm, and keys meant for encryption, are skipped;
// a P-256 key whose point is not on the curve is an error.
func ParseJWKS(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var set struct {
		Keys []JWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS is not JSON: %v", ErrMalformed, err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Kid == "" || (k.Alg != "" && k.Alg != "ES256") || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("%w: JWKS key %q: x and y must be 32 bytes of base64url", ErrMalformed, clip(k.Kid))
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, fmt.Errorf("%w: JWKS key %q: %v", ErrMalformed, clip(k.Kid), err)
		}
		keys[k.Kid] = pub
	}
	return keys, nil
}

// storedKeySet is the versioned JSON form of a KeySet. Private keys are
// PKCS#8 DER, base64; times are RFC 3339.
type storedKeySet struct {
	Version        int         `json:"version"`
	OverlapSeconds int64       `json:"overlapSeconds"`
	Keys           []storedKey `json:"keys"` // active first
}

type storedKey struct {
	Kid      string     `json:"kid"`
	PKCS8    []byte     `json:"pkcs8"`
	Created  time.Time  `json:"created"`
	RetireAt *time.Time `json:"retireAt,omitempty"`
}

// Marshal returns the set, private keys included, as versioned JSON for
// storage. Keep it as secret as any private key.
func (ks *KeySet) Marshal() ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	s := storedKeySet{Version: keySetVersion, OverlapSeconds: int64(ks.overlap / time.Second)}
	for _, k := range ks.keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			return nil, fmt.Errorf("signature: marshal key %s: %w", k.id, err)
		}
		sk := storedKey{Kid: k.id, PKCS8: der, Created: k.created}
		if !k.retireAt.IsZero() {
			t := k.retireAt
			sk.RetireAt = &t
		}
		s.Keys = append(s.Keys, sk)
	}
	return json.Marshal(s)
}

// UnmarshalKeySet reads a set written by Marshal. It checks the version, that
// every key is a P-256 key whose kid is its thumbprint, and that exactly the
// first key is active.
func UnmarshalKeySet(data []byte) (*KeySet, error) {
	var s storedKeySet
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("signature: read key set: %w", err)
	}
	if s.Version != keySetVersion {
		return nil, fmt.Errorf("signature: key set version %d, want %d", s.Version, keySetVersion)
	}
	if len(s.Keys) == 0 {
		return nil, errors.New("signature: key set has no key")
	}
	ks := &KeySet{overlap: time.Duration(s.OverlapSeconds) * time.Second}
	if ks.overlap <= 0 {
		ks.overlap = DefaultOverlap
	}
	for i, sk := range s.Keys {
		if (i == 0) != (sk.RetireAt == nil) {
			return nil, fmt.Errorf("signature: key set: key %d (%s): only the first key is active", i, sk.Kid)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(sk.PKCS8)
		if err != nil {
			return nil, fmt.Errorf("signature: key set: key %s: %w", sk.Kid, err)
		}
		priv, ok := parsed.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signature: key set: key %s is not a P-256 ECDSA key", sk.Kid)
		}
		id, err := Thumbprint(&priv.PublicKey)
		if err != nil {
			return nil, err
		}
		if id != sk.Kid {
			return nil, fmt.Errorf("signature: key set: kid %s does not match its key (thumbprint %s)", sk.Kid, id)
		}
		k := setKey{id: id, priv: priv, created: sk.Created}
		if sk.RetireAt != nil {
			k.retireAt = *sk.RetireAt
		}
		ks.keys = append(ks.keys, k)
	}
	return ks, nil
}
