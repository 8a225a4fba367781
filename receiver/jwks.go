package receiver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxJWKSBody bounds the discovery document and the JWKS read.
const maxJWKSBody = 1 << 20

// maxJWKSAge caps the Cache-Control max-age honoured, so that a key removed
// from the JWKS stops being trusted within a day whatever the server says.
const maxJWKSAge = 24 * time.Hour

// jwksCache holds the public keys of a JWKS, fetched on first use, again when
// the server's Cache-Control max-age runs out, and again when a token names a
// kid it does not know — but never more often than minRefresh.
type jwksCache struct {
	client     *http.Client
	issuer     string // for discovery when url is empty
	minRefresh time.Duration
	defaultAge time.Duration
	now        func() time.Time

	fetchMu sync.Mutex // held during a fetch: one at a time

	mu        sync.Mutex // guards what follows
	url       string     // the JWKS URL, configured or discovered
	keys      map[string]*ecdsa.PublicKey
	expires   time.Time // when keys go stale
	lastFetch time.Time // when the last fetch began; zero: never
}

// key returns the public key of kid.
func (c *jwksCache) key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	if k, ok := c.lookup(kid, true); ok {
		return k, nil
	}
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	if k, ok := c.lookup(kid, true); ok { // another request fetched meanwhile
		return k, nil
	}
	now := c.now()
	c.mu.Lock()
	canFetch := c.lastFetch.IsZero() || now.Sub(c.lastFetch) >= c.minRefresh
	if canFetch {
		c.lastFetch = now
	}
	c.mu.Unlock()
	var fetchErr error
	if canFetch {
		// A client hanging up must not cost every other request its keys
		// for minRefresh: the fetch runs to the client's own timeout.
		fetchErr = c.refresh(context.WithoutCancel(ctx), now)
	}
	if k, ok := c.lookup(kid, false); ok { // fresh, or stale if the fetch failed or was too soon
		return k, nil
	}
	if fetchErr != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFetch, fetchErr)
	}
	if !canFetch {
		return nil, fmt.Errorf("%w: kid %q (keys refetched less than %s ago)", ErrUnknownKey, clip(kid), c.minRefresh)
	}
	return nil, fmt.Errorf("%w: kid %q is not in the JWKS", ErrUnknownKey, clip(kid))
}

// lookup returns the cached key of kid, only while the cache is fresh if
// freshOnly.
func (c *jwksCache) lookup(kid string, freshOnly bool) (*ecdsa.PublicKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if freshOnly && !c.now().Before(c.expires) {
		return nil, false
	}
	k, ok := c.keys[kid]
	return k, ok
}

// refresh fetches the JWKS, discovering its URL first if need be, and
// replaces the cached keys. On failure the old keys stay.
func (c *jwksCache) refresh(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	url := c.url
	c.mu.Unlock()
	if url == "" {
		var err error
		if url, err = c.discover(ctx); err != nil {
			return err
		}
		c.mu.Lock()
		c.url = url
		c.mu.Unlock()
	}
	body, header, err := c.get(ctx, url)
	if err != nil {
		return err
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", url, err)
	}
	age := maxAge(header.Get("Cache-Control"), c.defaultAge)
	c.mu.Lock()
	c.keys, c.expires = keys, now.Add(age)
	c.mu.Unlock()
	return nil
}

// discover reads <issuer>/.well-known/openid-configuration for jwks_uri.
func (c *jwksCache) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(c.issuer, "/") + "/.well-known/openid-configuration"
	body, _, err := c.get(ctx, u)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery %s: no jwks_uri", u)
	}
	if doc.Issuer != "" && strings.TrimSuffix(doc.Issuer, "/") != strings.TrimSuffix(c.issuer, "/") {
		return "", fmt.Errorf("discovery %s: issuer %q, want %q", u, doc.Issuer, c.issuer)
	}
	return doc.JWKSURI, nil
}

func (c *jwksCache) get(ctx context.Context, url string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, nil, err // *url.Error names the method and URL
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if len(body) > maxJWKSBody {
		return nil, nil, fmt.Errorf("GET %s: answer over %d bytes", url, maxJWKSBody)
	}
	return body, resp.Header, nil
}

// maxAge reads the max-age of a Cache-Control header: def without one, 0
// for no-store or no-cache, at most maxJWKSAge.
func maxAge(cc string, def time.Duration) time.Duration {
	age := def
	for d := range strings.SplitSeq(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64)
			if err == nil && n >= 0 {
				age = time.Duration(min(n, int64(maxJWKSAge/time.Second))) * time.Second
			}
		}
	}
	return min(age, maxJWKSAge)
}

// parseJWKS returns the ES256 P-256 keys of a JWKS by kid; keys of other
// types, curves, algorithms or uses are skipped.
func parseJWKS(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errors.New("not a JSON key set")
	}
	keys := make(map[string]*ecdsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Kid == "" || (k.Alg != "" && k.Alg != "ES256") || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("key %q: x and y must be 32 bytes of base64url", clip(k.Kid))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", clip(k.Kid), err)
		}
		keys[k.Kid] = pub
	}
	return keys, nil
}
