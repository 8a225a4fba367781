package receiver

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The names of the signature headers dcon sends.
const (
	DTHeader    = "X-Dt-Signature"          // HS256 JWT keyed with the connector's signatureSecret
	ES256Header = "DT-Asymmetric-Signature" // ES256 JWT, its key published in a JWKS
)

// Defaults of Config.
const (
	DefaultLeeway             = time.Minute
	DefaultStandardTolerance  = 5 * time.Minute
	DefaultJWKSMinRefresh     = 30 * time.Second
	DefaultJWKSMaxAge         = 5 * time.Minute
	defaultJWKSRequestTimeout = 10 * time.Second
)

// Every error of Verify wraps one of these, so that callers can tell with
// errors.Is what failed; the message says the detail. All but ErrKeyFetch mean
// the request is not to be trusted (answer 401); ErrKeyFetch means the keys
// could not be had to check it (answer 503, and dcon retries).
var (
	ErrMissingSignature = errors.New("signature missing")
	ErrMalformed        = errors.New("malformed signature")
	ErrAlgorithm        = errors.New("unexpected algorithm")
	ErrSignature        = errors.New("invalid signature")
	ErrExpired          = errors.New("signature expired")
	ErrNotYetValid      = errors.New("signature from the future")
	ErrChecksum         = errors.New("body does not match its signature")
	ErrUnknownKey       = errors.New("unknown signing key")
	ErrClaims           = errors.New("unexpected issuer or subject")
	ErrKeyFetch         = errors.New("cannot fetch the signing keys")
)

// Config says which signatures a Verifier requires. Set at least one of
// Secrets, JWKSURL (or Issuer) and StandardSecrets: each one set is required
// on every request.
type Config struct {
	// Secrets are the data connector's signatureSecret values. When set, every
	// request must carry an X-Dt-Signature (HS256) that verifies under one of
	// them; list the new and the old secret while rotating.
	Secrets []string

	// JWKSURL is where the public keys of DT-Asymmetric-Signature (ES256) are
	// published. When it or Issuer is set, every request must carry that
	// header, signed by a key of the JWKS.
	JWKSURL string
	// Issuer is the issuer URL of the sending service. When set, the iss
	// claim of DT-Asymmetric-Signature must equal it; when JWKSURL is empty,
	// the JWKS is found by OIDC discovery at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Subject, when set, is the sub claim (the organization that owns the
	// project) that DT-Asymmetric-Signature must carry.
	Subject string
	// HTTPClient fetches the JWKS. Default: a client of its own with a 10 s
	// timeout (never http.DefaultClient).
	HTTPClient *http.Client
	// JWKSMinRefresh is the least time between two fetches of the JWKS, so
	// that tokens with made-up kids cannot make the receiver hammer the
	// server. Default 30 s.
	JWKSMinRefresh time.Duration
	// JWKSMaxAge is how long fetched keys are used when the JWKS answer has no
	// Cache-Control max-age. Default 5 minutes. A max-age is honoured up to
	// 24 hours; a key unknown to the cache is refetched at once (within
	// JWKSMinRefresh), so rotation needs no wait.
	JWKSMaxAge time.Duration

	// StandardSecrets are Standard Webhooks secrets ("whsec_…"). When set,
	// every request must carry webhook-id, webhook-timestamp and a
	// webhook-signature valid under one of them.
	StandardSecrets []string
	// StandardTolerance is how far webhook-timestamp may be from now, either
	// way. Default 5 minutes.
	StandardTolerance time.Duration

	// Leeway is the clock skew allowed on the iat and exp of the JWTs.
	// Default 1 minute; a negative value allows none.
	Leeway time.Duration
	// Now returns the current time. Default time.Now; tests set a fixed clock.
	Now func() time.Time
}

// Verifier checks the signatures of requests from dcon. It is safe for
// concurrent use; make one and share it.
type Verifier struct {
	secrets  [][]byte
	standard [][]byte
	jwks     *jwksCache // nil unless ES256 is configured
	issuer   string
	subject  string
	leeway   time.Duration
	tol      time.Duration
	now      func() time.Time
}

// NewVerifier checks c and returns a Verifier.
func NewVerifier(c Config) (*Verifier, error) {
	if len(c.Secrets) == 0 && c.JWKSURL == "" && c.Issuer == "" && len(c.StandardSecrets) == 0 {
		return nil, errors.New("receiver: configure at least one of Secrets, JWKSURL or Issuer, StandardSecrets")
	}
	v := &Verifier{issuer: c.Issuer, subject: c.Subject, leeway: c.Leeway, tol: c.StandardTolerance, now: c.Now}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.tol <= 0 {
		v.tol = DefaultStandardTolerance
	}
	if v.now == nil {
		v.now = time.Now
	}
	for i, s := range c.Secrets {
		if s == "" {
			return nil, fmt.Errorf("receiver: Secrets[%d] is empty", i)
		}
		v.secrets = append(v.secrets, []byte(s))
	}
	for i, s := range c.StandardSecrets {
		key, err := ParseWhsec(s)
		if err != nil {
			return nil, fmt.Errorf("StandardSecrets[%d]: %w", i, err)
		}
		v.standard = append(v.standard, key)
	}
	if c.JWKSURL != "" || c.Issuer != "" {
		v.jwks = &jwksCache{
			client: c.HTTPClient, url: c.JWKSURL, issuer: c.Issuer,
			minRefresh: c.JWKSMinRefresh, defaultAge: c.JWKSMaxAge, now: v.now,
		}
		if v.jwks.client == nil {
			v.jwks.client = &http.Client{Timeout: defaultJWKSRequestTimeout}
		}
		if v.jwks.minRefresh <= 0 {
			v.jwks.minRefresh = DefaultJWKSMinRefresh
		}
		if v.jwks.defaultAge <= 0 {
			v.jwks.defaultAge = DefaultJWKSMaxAge
		}
	}
	return v, nil
}

// Verify checks every signature the Verifier is configured for against the
// request's headers and its raw body — the exact bytes received, before any
// parsing. A configured signature whose header is absent fails. It returns
// nil only if all of them verify. Headers are found case-insensitively.
//
// Verify may fetch the JWKS (see Config.JWKSMinRefresh), under the request's
// context values but not its cancellation.
func (v *Verifier) Verify(r *http.Request, body []byte) error {
	now := v.now()
	if len(v.secrets) > 0 {
		if err := v.verifyDT(r.Header.Get(DTHeader), body, now); err != nil {
			return fmt.Errorf("%s: %w", DTHeader, err)
		}
	}
	if len(v.standard) > 0 {
		h := r.Header
		if err := verifyStandard(h.Get(StandardIDHeader), h.Get(StandardTimestampHeader), h.Get(StandardSignatureHeader), body, v.standard, now, v.tol); err != nil {
			return fmt.Errorf("webhook-signature: %w", err)
		}
	}
	if v.jwks != nil {
		if err := v.verifyES256(r, body, now); err != nil {
			return fmt.Errorf("%s: %w", ES256Header, err)
		}
	}
	return nil
}

func (v *Verifier) verifyDT(header string, body []byte, now time.Time) error {
	if header == "" {
		return ErrMissingSignature
	}
	tok, err := splitToken(header, "HS256")
	if err != nil {
		return err
	}
	if err := tok.checkHS256(v.secrets); err != nil {
		return err
	}
	_, err = tok.checkClaims(body, now, v.leeway)
	return err
}

func (v *Verifier) verifyES256(r *http.Request, body []byte, now time.Time) error {
	header := r.Header.Get(ES256Header)
	if header == "" {
		return ErrMissingSignature
	}
	tok, err := splitToken(header, "ES256")
	if err != nil {
		return err
	}
	if tok.kid == "" {
		return fmt.Errorf("%w: no kid", ErrMalformed)
	}
	if _, err := tok.decodeSig(64); err != nil {
		return err // before any key is fetched
	}
	key, err := v.jwks.key(r.Context(), tok.kid)
	if err != nil {
		return err
	}
	if err := tok.checkES256(key); err != nil {
		return err
	}
	c, err := tok.checkClaims(body, now, v.leeway)
	if err != nil {
		return err
	}
	if v.issuer != "" && c.Iss != v.issuer {
		return fmt.Errorf("%w: iss %q, want %q", ErrClaims, clip(c.Iss), v.issuer)
	}
	if v.subject != "" && c.Sub != v.subject {
		return fmt.Errorf("%w: sub %q, want %q", ErrClaims, clip(c.Sub), v.subject)
	}
	return nil
}
