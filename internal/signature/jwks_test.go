package signature

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustGenerate(t testing.TB, now time.Time) *KeySet {
	t.Helper()
	ks, err := Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// published returns the kids of the JWKS at now, parsed back with ParseJWKS.
func published(t *testing.T, ks *KeySet, now time.Time) map[string]*ecdsa.PublicKey {
	t.Helper()
	data, err := ks.JWKS(now)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		t.Fatalf("ParseJWKS(%s): %v", data, err)
	}
	return keys
}

func TestKeySetJWKSForm(t *testing.T) {
	t.Parallel()
	ks := mustGenerate(t, t0)
	data, err := ks.JWKS(t0)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys, want 1: %s", len(set.Keys), data)
	}
	k := set.Keys[0]
	kid, _ := ks.Active()
	for name, want := range map[string]string{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid} {
		if k[name] != want {
			t.Errorf("%s = %q, want %q", name, k[name], want)
		}
	}
	if len(k) != 7 {
		t.Errorf("members %v, want exactly kty crv x y kid use alg", k)
	}
	if !bytes.HasPrefix(data, []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"`)) {
		t.Errorf("JWKS %s: members out of order", data)
	}
	for _, c := range []string{"x", "y"} {
		b, err := base64.RawURLEncoding.DecodeString(k[c])
		if err != nil || len(b) != 32 {
			t.Errorf("%s = %q: want 32 bytes of unpadded base64url", c, k[c])
		}
	}
}

// The kid is the RFC 7638 thumbprint: the SHA-256 of the required members in
// lexicographic order, computed here independently with encoding/json, which
// sorts map keys.
func TestThumbprintIsRFC7638(t *testing.T) {
	t.Parallel()
	ks := mustGenerate(t, t0)
	kid, key := ks.Active()
	raw, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := json.Marshal(map[string]string{
		"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(raw[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(raw[33:]),
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canonical)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); kid != want {
		t.Fatalf("kid %s, want thumbprint %s of %s", kid, want, canonical)
	}
}

// Tokens signed before and after a rotation verify through the published JWKS
// until the old key's overlap ends; then only the new key's do.
func TestKeySetRotation(t *testing.T) {
	t.Parallel()
	body := []byte(vectorBody)
	ks := mustGenerate(t, t0)
	oldKid, _ := ks.Active()
	rotatedAt := t0.Add(time.Hour)

	before, err := ks.Sign(nil, body, rotatedAt.Add(-time.Second), testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	newKid, err := ks.Rotate(rotatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid {
		t.Fatal("rotation kept the kid")
	}
	if kid, _ := ks.Active(); kid != newKid {
		t.Fatalf("active %s, want the new %s", kid, newKid)
	}
	after, err := ks.Sign(nil, body, rotatedAt.Add(time.Second), testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		jwksAt       time.Time
		beforeValid  bool
		wantKidCount int
	}{
		{"at the rotation", rotatedAt, true, 2},
		{"an hour later", rotatedAt.Add(time.Hour), true, 2},
		{"last second of the overlap", rotatedAt.Add(DefaultOverlap - time.Second), true, 2},
		{"overlap over", rotatedAt.Add(DefaultOverlap), false, 1},
		{"a week later", rotatedAt.Add(7 * DefaultOverlap), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys := published(t, ks, tt.jwksAt)
			if len(keys) != tt.wantKidCount {
				t.Fatalf("JWKS holds %d keys, want %d", len(keys), tt.wantKidCount)
			}
			// Each token is checked at its own time; what varies is the JWKS
			// the receiver holds.
			_, err := VerifyES256(string(before), body, keyring(keys), rotatedAt, 0)
			if tt.beforeValid && err != nil {
				t.Errorf("token signed before the rotation: %v", err)
			}
			if !tt.beforeValid && !errors.Is(err, ErrUnknownKey) {
				t.Errorf("token of the retired key: err = %v, want ErrUnknownKey", err)
			}
			if _, err := VerifyES256(string(after), body, keyring(keys), rotatedAt.Add(time.Second), 0); err != nil {
				t.Errorf("token signed after the rotation: %v", err)
			}
			_, err = ks.PublicKey(oldKid, tt.jwksAt)
			if tt.beforeValid != (err == nil) {
				t.Errorf("PublicKey(old) err = %v, want published=%v", err, tt.beforeValid)
			}
		})
	}
}

// Deliveries sign while an operator rotates: every token made during the
// rotations verifies against the keys published right after.
func TestKeySetSignDuringRotation(t *testing.T) {
	t.Parallel()
	body := []byte("{}")
	ks := mustGenerate(t, t0)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []string
	)
	for range 4 {
		wg.Go(func() {
			for range 20 {
				tok, err := ks.Sign(nil, body, t0, testIssuer, testSubject)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				tokens = append(tokens, string(tok))
				mu.Unlock()
			}
		})
	}
	for i := range 3 {
		if _, err := ks.Rotate(t0.Add(time.Duration(i) * time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	keys := published(t, ks, t0.Add(5*time.Minute))
	if len(keys) != 4 {
		t.Fatalf("%d keys published, want 4 (the active and three in overlap)", len(keys))
	}
	for _, tok := range tokens {
		if _, err := VerifyES256(tok, body, keyring(keys), t0, 0); err != nil {
			t.Fatalf("token made during rotation: %v", err)
		}
	}
}

func TestKeySetRotatePrunes(t *testing.T) {
	t.Parallel()
	ks := mustGenerate(t, t0)
	ks.SetOverlap(time.Hour)
	first, _ := ks.Active()
	if _, err := ks.Rotate(t0); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(t0.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.PublicKey(first, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a key whose overlap ended is still held: %v", err)
	}
	if got := len(ks.keys); got != 2 {
		t.Fatalf("%d keys held, want 2", got)
	}
}

func TestKeySetMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	body := []byte(vectorBody)
	ks := mustGenerate(t, t0)
	ks.SetOverlap(2 * time.Hour)
	old, err := ks.Sign(nil, body, t0, testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	data, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := UnmarshalKeySet(data)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Overlap() != 2*time.Hour {
		t.Errorf("overlap %v, want 2h", loaded.Overlap())
	}
	wantKid, _ := ks.Active()
	if kid, _ := loaded.Active(); kid != wantKid {
		t.Errorf("active %s, want %s", kid, wantKid)
	}
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(3 * time.Hour)} {
		a, _ := ks.JWKS(at)
		b, _ := loaded.JWKS(at)
		if !bytes.Equal(a, b) {
			t.Errorf("JWKS at %v differs after a round trip:\n%s\n%s", at, a, b)
		}
	}
	if _, err := VerifyES256(string(old), body, func(kid string) (*ecdsa.PublicKey, error) { return loaded.PublicKey(kid, t0.Add(time.Hour)) }, t0, 0); err != nil {
		t.Errorf("token of the retired key after reload: %v", err)
	}
	again, err := loaded.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("Marshal is not stable:\n%s\n%s", data, again)
	}
}

func TestUnmarshalKeySetRejects(t *testing.T) {
	t.Parallel()
	ks := mustGenerate(t, t0)
	if _, err := ks.Rotate(t0); err != nil {
		t.Fatal(err)
	}
	data, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var stored storedKeySet
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(s *storedKeySet)) string {
		s := stored
		s.Keys = append([]storedKey(nil), stored.Keys...)
		f(&s)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name, data, inMsg string
	}{
		{"not JSON", "nope", "read key set"},
		{"version 2", edit(func(s *storedKeySet) { s.Version = 2 }), "version"},
		{"no key", edit(func(s *storedKeySet) { s.Keys = nil }), "no key"},
		{"kid not the thumbprint", edit(func(s *storedKeySet) { s.Keys[0].Kid = "x" }), "does not match"},
		{"two active", edit(func(s *storedKeySet) { s.Keys[1].RetireAt = nil }), "only the first"},
		{"active retired", edit(func(s *storedKeySet) { s.Keys[0].RetireAt = s.Keys[1].RetireAt }), "only the first"},
		{"key not PKCS#8", edit(func(s *storedKeySet) { s.Keys[0].PKCS8 = []byte("junk") }), "key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := UnmarshalKeySet([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("err = %v, want one saying %q", err, tt.inMsg)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	ks := mustGenerate(t, t0)
	data, err := ks.JWKS(t0)
	if err != nil {
		t.Fatal(err)
	}
	kid, key := ks.Active()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	good := set.Keys[0]
	with := func(edits map[string]string) string {
		k := map[string]string{}
		for n, v := range good {
			k[n] = v
		}
		for n, v := range edits {
			k[n] = v
		}
		b, _ := json.Marshal(map[string]any{"keys": []any{k}})
		return string(b)
	}
	tests := []struct {
		name    string
		data    string
		wantKid bool
		wantErr bool
	}{
		{"dcon's", string(data), true, false},
		{"no alg nor use", with(map[string]string{"alg": "", "use": ""}), true, false},
		{"RSA key skipped", `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`, false, false},
		{"P-384 skipped", with(map[string]string{"crv": "P-384"}), false, false},
		{"encryption key skipped", with(map[string]string{"use": "enc"}), false, false},
		{"other alg skipped", with(map[string]string{"alg": "ES384"}), false, false},
		{"point off the curve", with(map[string]string{"y": good["x"]}), false, true},
		{"short x", with(map[string]string{"x": "AQAB"}), false, true},
		{"not JSON", "{", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParseJWKS([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			got, ok := keys[kid]
			if ok != tt.wantKid {
				t.Fatalf("kid found %v, want %v", ok, tt.wantKid)
			}
			if ok && !got.Equal(&key.PublicKey) {
				t.Fatal("parsed key differs")
			}
		})
	}
}
