package signature

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DTHeader is the name of the HTTP header that carries the HS256 token.
const DTHeader = "X-Dt-Signature"

// DTLifetime is how long a token is valid after it was issued: exp = iat + 3600.
const DTLifetime = time.Hour

// dtJOSE is the base64url form of the JOSE header {"alg":"HS256","typ":"JWT"}.
// It never changes, so it is encoded once, here.
const dtJOSE = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// maxTokenLen bounds the tokens VerifyDT looks at. A dcon token is about 330
// bytes; anything far longer is not one.
const maxTokenLen = 4096

// The errors VerifyDT returns wrap one of these, so callers can tell with
// errors.Is what failed; the wrapping message gives the detail.
var (
	ErrMalformed     = errors.New("signature: malformed token")
	ErrAlgorithm     = errors.New("signature: unexpected algorithm")
	ErrSignature     = errors.New("signature: invalid signature")
	ErrExpired       = errors.New("signature: token expired")
	ErrNotYetValid   = errors.New("signature: token issued in the future")
	ErrChecksum      = errors.New("signature: body checksum mismatch")
	ErrNoSecret      = errors.New("signature: no secret to verify with")
	ErrMissingClaims = errors.New("signature: required claim missing")
)

// DTClaims are the claims of an X-Dt-Signature token.
type DTClaims struct {
	Checksum       string `json:"checksum"`        // lowercase hex SHA-1 of the body
	ChecksumSHA256 string `json:"checksum_sha256"` // lowercase hex SHA-256 of the body
	Exp            int64  `json:"exp"`             // Unix seconds, IssuedAt + 3600
	Iat            int64  `json:"iat"`             // Unix seconds at signing
	JTI            string `json:"jti"`             // a fresh xid per token
}

// AppendDT appends to dst the X-Dt-Signature token for body: an HS256 JWT keyed
// with secret (the UTF-8 bytes of the connector's signature secret), issued at
// iat (truncated to the second), expiring an hour later, with the given jti.
// Its bytes are exactly those of the contract: the JOSE header
// {"alg":"HS256","typ":"JWT"} and compact claims in alphabetical order, all
// base64url without padding.
//
// AppendDT allocates nothing when dst has room for the token (about 330 bytes
// with a 20-character jti).
func AppendDT(dst, secret, body []byte, iat time.Time, jti string) []byte {
	var claims [256]byte
	c := appendDTClaims(claims[:0], body, iat.Unix(), jti)

	start := len(dst)
	dst = append(dst, dtJOSE...)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, c)
	mac := hmacSHA256(secret, dst[start:])
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, mac[:])
}

// appendDTClaims appends the compact claims JSON, keys in alphabetical order.
func appendDTClaims(dst, body []byte, iat int64, jti string) []byte {
	sum1 := sha1.Sum(body)
	sum256 := sha256.Sum256(body)
	dst = append(dst, `{"checksum":"`...)
	dst = hex.AppendEncode(dst, sum1[:])
	dst = append(dst, `","checksum_sha256":"`...)
	dst = hex.AppendEncode(dst, sum256[:])
	dst = append(dst, `","exp":`...)
	dst = strconv.AppendInt(dst, iat+int64(DTLifetime/time.Second), 10)
	dst = append(dst, `,"iat":`...)
	dst = strconv.AppendInt(dst, iat, 10)
	dst = append(dst, `,"jti":`...)
	dst = appendJSONString(dst, jti)
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string. An xid needs no escaping; the
// escapes only keep the claims valid JSON whatever jti a caller passes.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// hmacSHA256 returns HMAC-SHA256(key, msg) (RFC 2104). Tokens are short, so the
// usual case hashes from buffers on the stack and allocates nothing; longer
// messages go through crypto/hmac. The tests check both against crypto/hmac.
func hmacSHA256(key, msg []byte) [sha256.Size]byte {
	const block = sha256.BlockSize
	var buf [block + 512]byte
	if len(msg) > len(buf)-block {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		var out [sha256.Size]byte
		h.Sum(out[:0])
		return out
	}
	var k [block]byte
	if len(key) > block {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	for i, b := range k {
		buf[i] = b ^ 0x36
	}
	n := copy(buf[block:], msg)
	inner := sha256.Sum256(buf[:block+n])
	for i, b := range k {
		buf[i] = b ^ 0x5c
	}
	copy(buf[block:], inner[:])
	return sha256.Sum256(buf[:block+sha256.Size])
}

// VerifyDT checks an X-Dt-Signature token against the raw body it came with,
// the way a receiver must: the JOSE header names HS256 (anything else, "none"
// included, is refused); the HMAC matches under one of secrets (several, so a
// secret can be rotated), compared in constant time; exp has not passed and iat
// is not in the future, both give or take leeway; checksum_sha256 is the
// SHA-256 of body, and checksum, when present, its SHA-1. Only then are the
// claims returned.
//
// Every error wraps one of the Err* values of this package and says what failed.
func VerifyDT(token string, body []byte, secrets [][]byte, now time.Time, leeway time.Duration) (*DTClaims, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	header, claimsPart, signed, sig, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	if err := checkDTHeader(header); err != nil {
		return nil, err
	}
	if err := checkDTMAC(signed, sig, secrets); err != nil {
		return nil, err
	}
	claims, err := parseDTClaims(claimsPart)
	if err != nil {
		return nil, err
	}
	if err := checkTimes(claims.Exp, claims.Iat, now, leeway); err != nil {
		return nil, err
	}
	if err := checkDTChecksums(claims, body); err != nil {
		return nil, err
	}
	return claims, nil
}

func checkDTHeader(part string) error {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if h.Alg != "HS256" {
		return fmt.Errorf("%w: alg %q, want HS256", ErrAlgorithm, clip(h.Alg))
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return fmt.Errorf("%w: typ %q, want JWT", ErrMalformed, clip(h.Typ))
	}
	return nil
}

func checkDTMAC(signed, sig string, secrets [][]byte) error {
	var got [sha256.Size]byte
	if base64.RawURLEncoding.DecodedLen(len(sig)) != len(got) {
		return fmt.Errorf("%w: signature is not %d bytes", ErrSignature, len(got))
	}
	if _, err := base64.RawURLEncoding.Decode(got[:], []byte(sig)); err != nil {
		return fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	msg := []byte(signed)
	for _, secret := range secrets {
		want := hmacSHA256(secret, msg)
		if hmac.Equal(got[:], want[:]) {
			return nil
		}
	}
	if len(secrets) == 1 {
		return fmt.Errorf("%w: HMAC does not match the secret", ErrSignature)
	}
	return fmt.Errorf("%w: HMAC matches none of %d secrets", ErrSignature, len(secrets))
}

func parseDTClaims(part string) (*DTClaims, error) {
	var c struct {
		tokenClaims
		Checksum *string `json:"checksum"`
		JTI      string  `json:"jti"`
	}
	if err := decodeClaims(part, &c, &c.tokenClaims); err != nil {
		return nil, err
	}
	claims := &DTClaims{ChecksumSHA256: *c.ChecksumSHA256, Exp: *c.Exp, Iat: *c.Iat, JTI: c.JTI}
	if c.Checksum != nil {
		claims.Checksum = *c.Checksum
	}
	return claims, nil
}

func checkDTChecksums(c *DTClaims, body []byte) error {
	if err := checkSHA256(c.ChecksumSHA256, body); err != nil {
		return err
	}
	if c.Checksum == "" {
		return nil
	}
	sum1 := sha1.Sum(body)
	var want1 [2 * sha1.Size]byte
	hex.Encode(want1[:], sum1[:])
	if subtle.ConstantTimeCompare([]byte(c.Checksum), want1[:]) != 1 {
		return fmt.Errorf("%w: checksum (SHA-1) does not match the body", ErrChecksum)
	}
	return nil
}

// clip shortens attacker-supplied text before it goes into an error message.
func clip(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
