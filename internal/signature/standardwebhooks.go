package signature

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a Standard Webhooks request (Standard Webhooks v1.0.0).
const (
	StandardIDHeader        = "webhook-id"        // the same on every attempt: the receiver's idempotency key
	StandardTimestampHeader = "webhook-timestamp" // Unix seconds of this attempt
	StandardSignatureHeader = "webhook-signature" // space-separated "v1,<base64>" signatures
)

// StandardTolerance is how far a webhook-timestamp may lie from the
// receiver's clock, in the past or the future.
const StandardTolerance = 5 * time.Minute

// whsecPrefix marks a symmetric Standard Webhooks secret; the rest is base64.
const whsecPrefix = "whsec_"

// Bounds of a symmetric secret, in bytes, per the specification.
const (
	minWhsecLen = 24
	maxWhsecLen = 64
)

// maxStandardHeader bounds the webhook-signature headers VerifyStandard reads.
const maxStandardHeader = 4096

// NewWhsec returns a fresh symmetric secret, "whsec_" and the base64 of 32
// random bytes.
func NewWhsec() string {
	var key [32]byte
	_, _ = rand.Read(key[:]) // never fails (crypto/rand, Go 1.24+)
	return whsecPrefix + base64.StdEncoding.EncodeToString(key[:])
}

// ParseWhsec returns the key of a symmetric secret: the base64-decoded part
// after "whsec_" (the prefix may be left out), which must be 24 to 64 bytes.
func ParseWhsec(s string) ([]byte, error) {
	b64 := strings.TrimPrefix(s, whsecPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: secret is not whsec_ and base64", ErrMalformed)
	}
	if len(key) < minWhsecLen || len(key) > maxWhsecLen {
		return nil, fmt.Errorf("%w: secret is %d bytes, want %d to %d", ErrMalformed, len(key), minWhsecLen, maxWhsecLen)
	}
	return key, nil
}

// StandardSign returns the webhook-signature of one message, "v1," and the
// base64 HMAC-SHA256, under key, of "<id>.<timestamp>.<body>", where timestamp
// is ts in Unix seconds. key is the decoded secret (see ParseWhsec).
func StandardSign(key []byte, id string, ts time.Time, body []byte) string {
	return string(appendStandard(nil, key, id, ts.Unix(), body))
}

// StandardSignAll returns the webhook-signature header of one message signed
// with each of keys, space-separated, so that a secret can be rotated: the
// receiver accepts the message if any one signature is valid under a secret
// it has.
func StandardSignAll(keys [][]byte, id string, ts time.Time, body []byte) string {
	var dst []byte
	for i, key := range keys {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = appendStandard(dst, key, id, ts.Unix(), body)
	}
	return string(dst)
}

func appendStandard(dst, key []byte, id string, ts int64, body []byte) []byte {
	mac := standardMAC(key, id, ts, body)
	dst = append(dst, "v1,"...)
	return base64.StdEncoding.AppendEncode(dst, mac)
}

func standardMAC(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	var buf [24]byte
	m.Write([]byte(id))
	m.Write(strconv.AppendInt(append(buf[:0], '.'), ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(buf[:0])
}

// standardContent returns "<id>.<ts>.<body>", the message of an ed25519 signature.
func standardContent(id string, ts int64, body []byte) []byte {
	msg := make([]byte, 0, len(id)+len(body)+24)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = strconv.AppendInt(msg, ts, 10)
	msg = append(msg, '.')
	return append(msg, body...)
}

// StandardSignEd25519 returns the asymmetric signature of one message,
// "v1a," and the base64 ed25519 signature of "<id>.<timestamp>.<body>".
func StandardSignEd25519(key ed25519.PrivateKey, id string, ts time.Time, body []byte) string {
	sig := ed25519.Sign(key, standardContent(id, ts.Unix(), body))
	return "v1a," + base64.StdEncoding.EncodeToString(sig)
}

// VerifyStandardRequest checks the Standard Webhooks headers of a request
// (webhook-id, webhook-timestamp, webhook-signature) against its raw body; see
// VerifyStandard.
func VerifyStandardRequest(h http.Header, body []byte, keys [][]byte, now time.Time, tolerance time.Duration) error {
	return VerifyStandard(h.Get(StandardIDHeader), h.Get(StandardTimestampHeader), h.Get(StandardSignatureHeader), body, keys, now, tolerance)
}

// VerifyStandard checks a symmetric Standard Webhooks signature the way a
// receiver must: id, timestamp and signature header are present; timestamp is
// Unix seconds no further than tolerance from now in either direction
// (tolerance <= 0 means StandardTolerance); and one of the space-separated
// "v1,<base64>" signatures of sigHeader is the HMAC-SHA256 of
// "<id>.<timestamp>.<body>" under one of keys, compared in constant time.
// Signatures of other versions are skipped.
//
// Every error wraps one of the Err* values of this package and says what failed.
func VerifyStandard(id, timestamp, sigHeader string, body []byte, keys [][]byte, now time.Time, tolerance time.Duration) error {
	if len(keys) == 0 {
		return ErrNoSecret
	}
	ts, err := checkStandardEnvelope(id, timestamp, sigHeader, now, tolerance)
	if err != nil {
		return err
	}
	macs := make([][]byte, len(keys))
	for i, key := range keys {
		macs[i] = standardMAC(key, id, ts, body)
	}
	var got [sha256.Size + 1]byte // room for what a 44-character string decodes to
	for sig := range strings.FieldsSeq(sigHeader) {
		b64, ok := strings.CutPrefix(sig, "v1,")
		if !ok || len(b64) != base64.StdEncoding.EncodedLen(sha256.Size) {
			continue
		}
		if n, err := base64.StdEncoding.Decode(got[:], []byte(b64)); err != nil || n != sha256.Size {
			continue
		}
		for _, mac := range macs {
			if hmac.Equal(got[:sha256.Size], mac) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}

// VerifyStandardEd25519 is VerifyStandard for asymmetric "v1a,<base64>"
// signatures, checked against each of the ed25519 public keys.
func VerifyStandardEd25519(id, timestamp, sigHeader string, body []byte, keys []ed25519.PublicKey, now time.Time, tolerance time.Duration) error {
	if len(keys) == 0 {
		return ErrNoSecret
	}
	ts, err := checkStandardEnvelope(id, timestamp, sigHeader, now, tolerance)
	if err != nil {
		return err
	}
	msg := standardContent(id, ts, body)
	var got [ed25519.SignatureSize + 2]byte // room for what an 88-character string decodes to
	for sig := range strings.FieldsSeq(sigHeader) {
		b64, ok := strings.CutPrefix(sig, "v1a,")
		if !ok || len(b64) != base64.StdEncoding.EncodedLen(ed25519.SignatureSize) {
			continue
		}
		if n, err := base64.StdEncoding.Decode(got[:], []byte(b64)); err != nil || n != ed25519.SignatureSize {
			continue
		}
		for _, key := range keys {
			if len(key) == ed25519.PublicKeySize && ed25519.Verify(key, msg, got[:ed25519.SignatureSize]) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no v1a signature matches", ErrSignature)
}

// checkStandardEnvelope checks what every Standard Webhooks signature needs
// and returns the timestamp.
func checkStandardEnvelope(id, timestamp, sigHeader string, now time.Time, tolerance time.Duration) (int64, error) {
	switch {
	case id == "":
		return 0, fmt.Errorf("%w: %s", ErrMissingClaims, StandardIDHeader)
	case timestamp == "":
		return 0, fmt.Errorf("%w: %s", ErrMissingClaims, StandardTimestampHeader)
	case strings.TrimSpace(sigHeader) == "":
		return 0, fmt.Errorf("%w: %s", ErrMissingClaims, StandardSignatureHeader)
	case len(sigHeader) > maxStandardHeader || len(id) > maxStandardHeader:
		return 0, fmt.Errorf("%w: header longer than %d bytes", ErrMalformed, maxStandardHeader)
	}
	if tolerance <= 0 {
		tolerance = StandardTolerance
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts < 0 || timestamp[0] == '+' {
		return 0, fmt.Errorf("%w: %s %q is not Unix seconds", ErrMalformed, StandardTimestampHeader, clip(timestamp))
	}
	t := time.Unix(ts, 0)
	if now.Sub(t) > tolerance {
		return 0, fmt.Errorf("%w: %s %s is more than %s before now %s", ErrExpired, StandardTimestampHeader, t.UTC().Format(time.RFC3339), tolerance, now.UTC().Format(time.RFC3339))
	}
	if t.Sub(now) > tolerance {
		return 0, fmt.Errorf("%w: %s %s is more than %s after now %s", ErrNotYetValid, StandardTimestampHeader, t.UTC().Format(time.RFC3339), tolerance, now.UTC().Format(time.RFC3339))
	}
	return ts, nil
}
