package signature

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test vectors of the Standard Webhooks specification.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTimestamp = 1614265330
	swBody      = `{"test": 2432232314}`
	swSig       = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	swSeed      = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
	swSigV1a    = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)

func mustWhsec(t testing.TB, s string) []byte {
	t.Helper()
	key, err := ParseWhsec(s)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestStandardSignReproducesTestVector(t *testing.T) {
	t.Parallel()
	got := StandardSign(mustWhsec(t, swSecret), swID, time.Unix(swTimestamp, 0), []byte(swBody))
	if got != swSig {
		t.Fatalf("got %s, want %s", got, swSig)
	}
}

func TestStandardSignEd25519ReproducesTestVector(t *testing.T) {
	t.Parallel()
	seed, err := base64.StdEncoding.DecodeString(swSeed)
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	got := StandardSignEd25519(key, swID, time.Unix(swTimestamp, 0), []byte(swBody))
	if got != swSigV1a {
		t.Fatalf("got %s, want %s", got, swSigV1a)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := VerifyStandardEd25519(swID, strconv.Itoa(swTimestamp), "v1a,bad "+swSigV1a, []byte(swBody), []ed25519.PublicKey{pub}, time.Unix(swTimestamp, 0), 0); err != nil {
		t.Fatalf("v1a vector rejected: %v", err)
	}
	if err := VerifyStandardEd25519(swID, strconv.Itoa(swTimestamp), swSigV1a, []byte(swBody+" "), []ed25519.PublicKey{pub}, time.Unix(swTimestamp, 0), 0); !errors.Is(err, ErrSignature) {
		t.Fatalf("v1a with a tampered body: err = %v", err)
	}
}

func TestStandardSignAllRotates(t *testing.T) {
	t.Parallel()
	oldKey, newKey := mustWhsec(t, swSecret), mustWhsec(t, NewWhsec())
	header := StandardSignAll([][]byte{newKey, oldKey}, swID, time.Unix(swTimestamp, 0), []byte(swBody))
	sigs := strings.Split(header, " ")
	if len(sigs) != 2 || sigs[1] != swSig {
		t.Fatalf("header %q: want two signatures, the old key's second", header)
	}
	for name, keys := range map[string][][]byte{"old receiver": {oldKey}, "new receiver": {newKey}} {
		if err := VerifyStandard(swID, strconv.Itoa(swTimestamp), header, []byte(swBody), keys, time.Unix(swTimestamp, 0), 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewWhsec(t *testing.T) {
	t.Parallel()
	a, b := NewWhsec(), NewWhsec()
	if a == b {
		t.Fatal("two secrets alike")
	}
	if !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("secret %q lacks the whsec_ prefix", a)
	}
	if key := mustWhsec(t, a); len(key) != 32 {
		t.Fatalf("key is %d bytes, want 32", len(key))
	}
}

func TestParseWhsec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantLen int // 0: an error
	}{
		{swSecret, 24},
		{strings.TrimPrefix(swSecret, "whsec_"), 24},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 64)), 64},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)), 0},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), 0},
		{"whsec_not base64!", 0},
		{"", 0},
	}
	for _, tt := range tests {
		key, err := ParseWhsec(tt.in)
		if tt.wantLen == 0 {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseWhsec(%q) err = %v, want ErrMalformed", tt.in, err)
			}
			continue
		}
		if err != nil || len(key) != tt.wantLen {
			t.Errorf("ParseWhsec(%q) = %d bytes, %v; want %d bytes", tt.in, len(key), err, tt.wantLen)
		}
	}
}

// The accept and must-reject lists of the reference.
func TestVerifyStandard(t *testing.T) {
	t.Parallel()
	key := mustWhsec(t, swSecret)
	ts := strconv.Itoa(swTimestamp)
	now := time.Unix(swTimestamp, 0)
	other := StandardSign(mustWhsec(t, NewWhsec()), swID, now, []byte(swBody))
	tests := []struct {
		name              string
		id, ts, sig, body string
		now               time.Time
		want              error // nil: accepted
	}{
		{name: "test vector", id: swID, ts: ts, sig: swSig, body: swBody},
		{name: "one valid of several", id: swID, ts: ts, sig: other + " v1,AAAA " + swSig + " v1a,xyz", body: swBody},
		{name: "extra spaces", id: swID, ts: ts, sig: "  " + swSig + "  ", body: swBody},
		{name: "5 minutes old", id: swID, ts: ts, sig: swSig, body: swBody, now: now.Add(5 * time.Minute)},
		{name: "5 minutes ahead", id: swID, ts: ts, sig: swSig, body: swBody, now: now.Add(-5 * time.Minute)},
		{name: "missing id", ts: ts, sig: swSig, body: swBody, want: ErrMissingClaims},
		{name: "missing timestamp", id: swID, sig: swSig, body: swBody, want: ErrMissingClaims},
		{name: "missing signature", id: swID, ts: ts, body: swBody, want: ErrMissingClaims},
		{name: "blank signature", id: swID, ts: ts, sig: "   ", body: swBody, want: ErrMissingClaims},
		{name: "wrong signature", id: swID, ts: ts, sig: other, body: swBody, want: ErrSignature},
		{name: "v1, with nothing after it", id: swID, ts: ts, sig: "v1,", body: swBody, want: ErrSignature},
		{name: "no version", id: swID, ts: ts, sig: strings.TrimPrefix(swSig, "v1,"), body: swBody, want: ErrSignature},
		{name: "v2", id: swID, ts: ts, sig: "v2," + strings.TrimPrefix(swSig, "v1,"), body: swBody, want: ErrSignature},
		{name: "unpadded", id: swID, ts: ts, sig: strings.TrimSuffix(swSig, "="), body: swBody, want: ErrSignature},
		{name: "44 characters without padding", id: swID, ts: ts, sig: "v1," + strings.Repeat("A", 44), body: swBody, want: ErrSignature},
		{name: "tampered body", id: swID, ts: ts, sig: swSig, body: swBody + " ", want: ErrSignature},
		{name: "other id", id: swID + "x", ts: ts, sig: swSig, body: swBody, want: ErrSignature},
		{name: "5 minutes and 1 s old", id: swID, ts: ts, sig: swSig, body: swBody, now: now.Add(5*time.Minute + time.Second), want: ErrExpired},
		{name: "5 minutes and 1 s ahead", id: swID, ts: ts, sig: swSig, body: swBody, now: now.Add(-5*time.Minute - time.Second), want: ErrNotYetValid},
		{name: "timestamp not a number", id: swID, ts: "soon", sig: swSig, body: swBody, want: ErrMalformed},
		{name: "timestamp with a sign", id: swID, ts: "+" + ts, sig: swSig, body: swBody, want: ErrMalformed},
		{name: "timestamp in milliseconds", id: swID, ts: ts + "000", sig: swSig, body: swBody, want: ErrNotYetValid},
		{name: "header too long", id: swID, ts: ts, sig: strings.Repeat(swSig+" ", 100), body: swBody, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := now
			if !tt.now.IsZero() {
				n = tt.now
			}
			err := VerifyStandard(tt.id, tt.ts, tt.sig, []byte(tt.body), [][]byte{key}, n, 0)
			if tt.want == nil && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyStandardRequest(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Webhook-Id", swID)
	h.Set("WEBHOOK-TIMESTAMP", strconv.Itoa(swTimestamp))
	h.Set(StandardSignatureHeader, swSig)
	keys := [][]byte{mustWhsec(t, swSecret)}
	if err := VerifyStandardRequest(h, []byte(swBody), keys, time.Unix(swTimestamp, 0), 0); err != nil {
		t.Fatal(err)
	}
	if err := VerifyStandardRequest(h, []byte(swBody), nil, time.Unix(swTimestamp, 0), 0); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("no keys: err = %v", err)
	}
	if err := VerifyStandardRequest(h, []byte(swBody), keys, time.Unix(swTimestamp, 0).Add(time.Hour), time.Hour+time.Second); err != nil {
		t.Fatalf("a wider tolerance: %v", err)
	}
}

// FuzzVerifyStandard feeds VerifyStandard arbitrary headers and bodies. It must
// never panic, must accept only what its own signer signs for the same
// message, and must accept that.
func FuzzVerifyStandard(f *testing.F) {
	f.Add(swID, strconv.Itoa(swTimestamp), swSig, []byte(swBody))
	f.Add(swID, strconv.Itoa(swTimestamp), "v1,", []byte(swBody))
	f.Add(swID, strconv.Itoa(swTimestamp), "v1,"+strings.Repeat("A", 44)+" "+swSig, []byte(swBody))
	f.Add("", "", "", []byte(nil))
	f.Add("x", "-1", "v1a,"+strings.Repeat("/", 88), []byte("{}"))
	f.Add("x", "99999999999999999999", swSig, []byte("{}"))
	key := mustWhsec(f, swSecret)
	keys := [][]byte{key}
	now := time.Unix(swTimestamp, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		err := VerifyStandard(id, ts, sig, body, keys, now, 0)
		if err == nil {
			n, _ := strconv.ParseInt(ts, 10, 64)
			if !strings.Contains(sig, StandardSign(key, id, time.Unix(n, 0), body)) {
				t.Fatalf("accepted %q without its own signature", sig)
			}
		}
		if id == "" {
			return
		}
		own := StandardSign(key, id, now, body)
		if err := VerifyStandard(id, strconv.FormatInt(now.Unix(), 10), sig+" "+own, body, keys, now, 0); err != nil && len(sig)+len(own) < maxStandardHeader && len(id) <= maxStandardHeader {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}

func BenchmarkStandardSign(b *testing.B) {
	key := mustWhsec(b, swSecret)
	body := []byte(vectorBody)
	ts := time.Unix(swTimestamp, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = StandardSign(key, swID, ts, body)
	}
}

func BenchmarkVerifyStandard(b *testing.B) {
	keys := [][]byte{mustWhsec(b, swSecret)}
	body := []byte(vectorBody)
	now := time.Unix(swTimestamp, 0)
	sig := StandardSign(keys[0], swID, now, body)
	ts := strconv.Itoa(swTimestamp)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyStandard(swID, ts, sig, body, keys, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}
