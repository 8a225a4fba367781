package signature

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The parts of verifying a token that X-Dt-Signature and
// DT-Asymmetric-Signature share.

// splitToken splits a compact JWS into its header, claims and signature, and
// returns the signed part (header.claims).
func splitToken(token string) (header, claims, signed, sig string, err error) {
	if len(token) > maxTokenLen {
		return "", "", "", "", fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxTokenLen)
	}
	dot1 := strings.IndexByte(token, '.')
	dot2 := strings.LastIndexByte(token, '.')
	if dot1 < 0 || dot1 == dot2 || strings.IndexByte(token[dot1+1:dot2], '.') >= 0 {
		return "", "", "", "", fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	}
	return token[:dot1], token[dot1+1 : dot2], token[:dot2], token[dot2+1:], nil
}

// tokenClaims are the claims every dcon token must carry.
type tokenClaims struct {
	ChecksumSHA256 *string `json:"checksum_sha256"`
	Exp            *int64  `json:"exp"`
	Iat            *int64  `json:"iat"`
}

// decodeClaims decodes a token's claims part into v, a struct that embeds
// common, and checks that the claims every token needs are there.
func decodeClaims(part string, v any, common *tokenClaims) error {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return fmt.Errorf("%w: claims are not base64url", ErrMalformed)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrMalformed)
	}
	switch {
	case common.Exp == nil:
		return fmt.Errorf("%w: exp", ErrMissingClaims)
	case common.Iat == nil:
		return fmt.Errorf("%w: iat", ErrMissingClaims)
	case common.ChecksumSHA256 == nil:
		return fmt.Errorf("%w: checksum_sha256", ErrMissingClaims)
	}
	return nil
}

// checkTimes checks exp and iat against now, with leeway either way.
func checkTimes(exp, iat int64, now time.Time, leeway time.Duration) error {
	if t := time.Unix(exp, 0); now.After(t.Add(leeway)) {
		return fmt.Errorf("%w: exp %s is before now %s", ErrExpired, t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if t := time.Unix(iat, 0); t.After(now.Add(leeway)) {
		return fmt.Errorf("%w: iat %s is after now %s", ErrNotYetValid, t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkSHA256 compares, in constant time, a checksum_sha256 claim with the
// body's SHA-256.
func checkSHA256(claim string, body []byte) error {
	sum := sha256.Sum256(body)
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], sum[:])
	if subtle.ConstantTimeCompare([]byte(claim), want[:]) != 1 {
		return fmt.Errorf("%w: checksum_sha256 does not match the body", ErrChecksum)
	}
	return nil
}
