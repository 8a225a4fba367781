package signature

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// ES256Header is the name of the HTTP header that carries the ES256 token.
const ES256Header = "DT-Asymmetric-Signature"

// ES256Lifetime is how long an ES256 token is valid after it was issued:
// exp = iat + 300.
const ES256Lifetime = 5 * time.Minute

// ErrUnknownKey is wrapped by the errors of VerifyES256 when the token names a
// key id that the caller's key lookup does not know.
var ErrUnknownKey = errors.New("signature: unknown key id")

// es256SigLen is the length of a JWS ES256 signature: r and s, 32 bytes each,
// big-endian (RFC 7518, section 3.4).
const es256SigLen = 64

// ES256Claims are the claims of a DT-Asymmetric-Signature token.
type ES256Claims struct {
	ChecksumSHA256 string `json:"checksum_sha256"` // lowercase hex SHA-256 of the body
	Exp            int64  `json:"exp"`             // Unix seconds, Iat + 300
	Iat            int64  `json:"iat"`             // Unix seconds at signing
	Iss            string `json:"iss"`             // the issuer URL of the service
	Sub            string `json:"sub"`             // the organization that owns the project
}

// AppendES256 appends to dst the DT-Asymmetric-Signature token for body: an
// ES256 JWT signed with key (a P-256 key) whose JOSE header is
// {"alg":"ES256","kid":"<kid>","typ":"JWT"} and whose claims are, compact and
// in alphabetical order, {"checksum_sha256","exp","iat","iss","sub"}, with
// iat truncated to the second and exp 300 seconds later. The signature is in
// the JWS form, r||s, 32 bytes each. Every part is base64url without padding.
//
// ECDSA signatures are randomized, so two tokens for the same input differ in
// their last part. AppendES256 fails only if key is not a usable P-256 key.
func AppendES256(dst []byte, key *ecdsa.PrivateKey, kid string, body []byte, iat time.Time, issuer, subject string) ([]byte, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return dst, errors.New("signature: ES256 needs a P-256 private key")
	}
	var buf [512]byte
	header := appendES256Header(buf[:0], kid)
	start := len(dst)
	dst = base64.RawURLEncoding.AppendEncode(dst, header)
	dst = append(dst, '.')
	claims := appendES256Claims(buf[:0], body, iat.Unix(), issuer, subject)
	dst = base64.RawURLEncoding.AppendEncode(dst, claims)

	digest := sha256.Sum256(dst[start:])
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return dst[:start], fmt.Errorf("signature: sign ES256: %w", err)
	}
	var sig [es256SigLen]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, sig[:]), nil
}

func appendES256Header(dst []byte, kid string) []byte {
	dst = append(dst, `{"alg":"ES256","kid":`...)
	dst = appendJSONString(dst, kid)
	return append(dst, `,"typ":"JWT"}`...)
}

func appendES256Claims(dst, body []byte, iat int64, issuer, subject string) []byte {
	sum := sha256.Sum256(body)
	dst = append(dst, `{"checksum_sha256":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, `","exp":`...)
	dst = strconv.AppendInt(dst, iat+int64(ES256Lifetime/time.Second), 10)
	dst = append(dst, `,"iat":`...)
	dst = strconv.AppendInt(dst, iat, 10)
	dst = append(dst, `,"iss":`...)
	dst = appendJSONString(dst, issuer)
	dst = append(dst, `,"sub":`...)
	dst = appendJSONString(dst, subject)
	return append(dst, '}')
}

// VerifyES256 checks a DT-Asymmetric-Signature token against the raw body it
// came with, the way a receiver must: the JOSE header names ES256 — anything
// else, "none" and HS256 included, is refused before any key is looked up, so
// a public key can never be used as an HMAC secret — and a kid; keyFor returns
// the P-256 public key of that kid (an error, or a nil key, means the kid is
// unknown); the r||s signature verifies under it; exp has not passed and iat
// is not in the future, both give or take leeway; checksum_sha256 is the
// SHA-256 of body. Only then are the claims returned. The caller checks iss
// and sub if it cares who signed.
//
// Every error wraps one of the Err* values of this package and says what failed.
func VerifyES256(token string, body []byte, keyFor func(kid string) (*ecdsa.PublicKey, error), now time.Time, leeway time.Duration) (*ES256Claims, error) {
	header, claimsPart, signed, sigPart, err := splitToken(token)
	if err != nil {
		return nil, err
	}
	kid, err := checkES256Header(header)
	if err != nil {
		return nil, err
	}
	var sig [es256SigLen]byte
	if base64.RawURLEncoding.DecodedLen(len(sigPart)) != len(sig) {
		return nil, fmt.Errorf("%w: signature is not %d bytes", ErrSignature, len(sig))
	}
	if _, err := base64.RawURLEncoding.Decode(sig[:], []byte(sigPart)); err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	key, err := keyFor(kid)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: kid %q: %w", ErrUnknownKey, clip(kid), err)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, clip(kid))
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key %q is not a P-256 key", ErrAlgorithm, clip(kid))
	}
	if !verifyES256Sig(key, signed, &sig) {
		return nil, fmt.Errorf("%w: ES256 signature does not verify under key %q", ErrSignature, clip(kid))
	}
	claims, err := parseES256Claims(claimsPart)
	if err != nil {
		return nil, err
	}
	if err := checkTimes(claims.Exp, claims.Iat, now, leeway); err != nil {
		return nil, err
	}
	if err := checkSHA256(claims.ChecksumSHA256, body); err != nil {
		return nil, err
	}
	return claims, nil
}

func verifyES256Sig(key *ecdsa.PublicKey, signed string, sig *[es256SigLen]byte) bool {
	digest := sha256.Sum256([]byte(signed))
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(key, digest[:], r, s)
}

func checkES256Header(part string) (kid string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return "", fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if h.Alg != "ES256" {
		return "", fmt.Errorf("%w: alg %q, want ES256", ErrAlgorithm, clip(h.Alg))
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return "", fmt.Errorf("%w: typ %q, want JWT", ErrMalformed, clip(h.Typ))
	}
	if h.Kid == "" {
		return "", fmt.Errorf("%w: kid", ErrMissingClaims)
	}
	return h.Kid, nil
}

func parseES256Claims(part string) (*ES256Claims, error) {
	var c struct {
		tokenClaims
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if err := decodeClaims(part, &c, &c.tokenClaims); err != nil {
		return nil, err
	}
	return &ES256Claims{ChecksumSHA256: *c.ChecksumSHA256, Exp: *c.Exp, Iat: *c.Iat, Iss: c.Iss, Sub: c.Sub}, nil
}
