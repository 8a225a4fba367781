package receiver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// maxTokenLen bounds the tokens looked at; dcon's are under 600 bytes.
const maxTokenLen = 4096

// token is a compact JWS split into its parts, its header decoded.
type token struct {
	alg, kid string
	signed   string // header.claims, the signing input
	claims   string // the base64url claims
	sig      string // the base64url signature
}

// splitToken splits a JWT and checks that its header names want. The
// algorithm is fixed by the header the token came in, never taken from the
// token: that is what stops "none" and HS256-keyed-with-the-public-key.
func splitToken(s, want string) (*token, error) {
	if len(s) > maxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxTokenLen)
	}
	dot1 := strings.IndexByte(s, '.')
	dot2 := strings.LastIndexByte(s, '.')
	if dot1 < 0 || dot1 == dot2 || strings.IndexByte(s[dot1+1:dot2], '.') >= 0 {
		return nil, fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s[:dot1])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if h.Alg != want {
		return nil, fmt.Errorf("%w: alg %q, want %s", ErrAlgorithm, clip(h.Alg), want)
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return nil, fmt.Errorf("%w: typ %q, want JWT", ErrMalformed, clip(h.Typ))
	}
	return &token{alg: h.Alg, kid: h.Kid, signed: s[:dot2], claims: s[dot1+1 : dot2], sig: s[dot2+1:]}, nil
}

// decodeSig decodes the signature part into exactly n bytes.
func (t *token) decodeSig(n int) ([]byte, error) {
	if base64.RawURLEncoding.DecodedLen(len(t.sig)) != n {
		return nil, fmt.Errorf("%w: signature is not %d bytes", ErrSignature, n)
	}
	b, err := base64.RawURLEncoding.DecodeString(t.sig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	return b, nil
}

// checkHS256 checks the HMAC of an X-Dt-Signature token under any of secrets.
func (t *token) checkHS256(secrets [][]byte) error {
	got, err := t.decodeSig(sha256.Size)
	if err != nil {
		return err
	}
	for _, secret := range secrets {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(t.signed))
		if hmac.Equal(got, m.Sum(nil)) {
			return nil
		}
	}
	return fmt.Errorf("%w: HMAC matches none of the %d secret(s)", ErrSignature, len(secrets))
}

// checkES256 checks the r||s signature of a DT-Asymmetric-Signature token.
func (t *token) checkES256(key *ecdsa.PublicKey) error {
	if key.Curve != elliptic.P256() {
		return fmt.Errorf("%w: key %q is not a P-256 key", ErrAlgorithm, clip(t.kid))
	}
	sig, err := t.decodeSig(64)
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(t.signed))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key, digest[:], r, s) {
		return fmt.Errorf("%w: ES256 signature does not verify under key %q", ErrSignature, clip(t.kid))
	}
	return nil
}

// Claims are the claims of a verified token that a receiver may want to see.
type claims struct {
	Checksum       *string `json:"checksum"`        // hex SHA-1 of the body (HS256 only)
	ChecksumSHA256 *string `json:"checksum_sha256"` // hex SHA-256 of the body
	Exp            *int64  `json:"exp"`
	Iat            *int64  `json:"iat"`
	Iss            string  `json:"iss"`
	Sub            string  `json:"sub"`
}

// checkClaims decodes the claims of a token whose signature verified and
// checks its times (give or take leeway) and the body's checksums.
func (t *token) checkClaims(body []byte, now time.Time, leeway time.Duration) (*claims, error) {
	raw, err := base64.RawURLEncoding.DecodeString(t.claims)
	if err != nil {
		return nil, fmt.Errorf("%w: claims are not base64url", ErrMalformed)
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrMalformed)
	}
	switch {
	case c.Exp == nil:
		return nil, fmt.Errorf("%w: claim exp missing", ErrMalformed)
	case c.Iat == nil:
		return nil, fmt.Errorf("%w: claim iat missing", ErrMalformed)
	case c.ChecksumSHA256 == nil:
		return nil, fmt.Errorf("%w: claim checksum_sha256 missing", ErrMalformed)
	}
	if exp := time.Unix(*c.Exp, 0); now.After(exp.Add(leeway)) {
		return nil, fmt.Errorf("%w: exp %s is before now %s", ErrExpired, exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if iat := time.Unix(*c.Iat, 0); iat.After(now.Add(leeway)) {
		return nil, fmt.Errorf("%w: iat %s is after now %s", ErrNotYetValid, iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	sum256 := sha256.Sum256(body)
	if !hexEqual(*c.ChecksumSHA256, sum256[:]) {
		return nil, fmt.Errorf("%w: checksum_sha256 does not match the body", ErrChecksum)
	}
	if c.Checksum != nil && *c.Checksum != "" {
		sum1 := sha1.Sum(body)
		if !hexEqual(*c.Checksum, sum1[:]) {
			return nil, fmt.Errorf("%w: checksum (SHA-1) does not match the body", ErrChecksum)
		}
	}
	return &c, nil
}

// hexEqual reports, in constant time, whether s is the lowercase hex of sum.
func hexEqual(s string, sum []byte) bool {
	want := hex.EncodeToString(sum)
	return subtle.ConstantTimeCompare([]byte(s), []byte(want)) == 1
}

// clip shortens attacker-supplied text before it goes into an error message.
func clip(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
