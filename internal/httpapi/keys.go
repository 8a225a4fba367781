package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"dcon"
)

// The paths of the public key documents, under the issuer URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks.json"
)

// keysCacheControl lets receivers and proxies keep the key documents for 5
// minutes; a receiver meeting an unknown kid refetches sooner.
const keysCacheControl = "public, max-age=300"

// SigningKeys are the ES256 keys that sign DT-Asymmetric-Signature, as the
// key endpoints need them. cmd/dcon implements it over a signature.KeySet kept
// in the data directory.
type SigningKeys interface {
	// ActiveKeyID returns the id (kid) of the key that signs now.
	ActiveKeyID() string
	// JWKS returns the public keys published at now, as a JSON Web Key Set:
	// {"keys":[{"kty":"EC","crv":"P-256",…,"kid":…}]}.
	JWKS(now time.Time) ([]byte, error)
	// Rotate makes a fresh key the active one, keeps the set durable, and
	// returns the new kid. The key it replaces stays published for the
	// overlap. Errors are *dcon.Error.
	Rotate(ctx context.Context, now time.Time) (string, error)
}

// KeyServer serves the public keys of DT-Asymmetric-Signature, so that any
// receiver can verify it, and their administration:
//
//	GET  /.well-known/openid-configuration  {"issuer":…,"jwks_uri":…}
//	GET  /.well-known/jwks.json             the JWKS
//	GET  /v2/keys                           {"activeKeyId":…,"keys":[…]}
//	POST /v2/keys:rotate                    rotate; answers as GET /v2/keys
//
// The two documents are public and cacheable (Cache-Control: public,
// max-age=300, with an ETag). The /v2/keys endpoints are for operators.
// Keys is required; Issuer is the issuer URL that the ES256 tokens carry in
// iss, under which the documents must be reachable.
type KeyServer struct {
	Keys   SigningKeys
	Issuer string
	// Logger, Now: as in Server.
	Logger *slog.Logger
	Now    func() time.Time
}

// keysAPI serves the key endpoints.
type keysAPI struct {
	*api
	keys   SigningKeys
	issuer string
}

// Handler returns a handler that serves the key endpoints and passes every
// other request to next (the /v2 API).
func (s *KeyServer) Handler(next http.Handler) http.Handler {
	k := &keysAPI{
		api:    &api{log: s.Logger, now: s.Now, mux: http.NewServeMux()},
		keys:   s.Keys,
		issuer: strings.TrimSuffix(s.Issuer, "/"),
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	k.handle("GET "+DiscoveryPath, k.discovery)
	k.handle("GET "+JWKSPath, k.jwks)
	k.handle("GET /v2/keys", k.list)
	k.handle("POST /v2/keys:rotate", k.rotate)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/.well-known/") || p == "/v2/keys" || strings.HasPrefix(p, "/v2/keys:") {
			k.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (k *keysAPI) discovery(w http.ResponseWriter, r *http.Request) error {
	doc, err := json.Marshal(struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}{k.issuer, k.issuer + JWKSPath})
	if err != nil {
		return dcon.WrapError(dcon.EINTERNAL, err, "internal error")
	}
	k.writeCacheable(w, r, doc)
	return nil
}

func (k *keysAPI) jwks(w http.ResponseWriter, r *http.Request) error {
	set, err := k.keys.JWKS(k.now())
	if err != nil {
		return dcon.WrapError(dcon.EINTERNAL, err, "internal error")
	}
	k.writeCacheable(w, r, set)
	return nil
}

// writeCacheable answers a public document with its cache headers, or 304
// when the client holds it already.
func (k *keysAPI) writeCacheable(w http.ResponseWriter, r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("Cache-Control", keysCacheControl)
	h.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	k.write(w, http.StatusOK, body)
}

// etagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// keysResource is the answer of GET /v2/keys and POST /v2/keys:rotate.
type keysResource struct {
	ActiveKeyID string            `json:"activeKeyId"`
	Keys        []json.RawMessage `json:"keys"` // the JWKS's keys, the active one first
}

func (k *keysAPI) list(w http.ResponseWriter, r *http.Request) error {
	return k.answerKeys(w)
}

func (k *keysAPI) rotate(w http.ResponseWriter, r *http.Request) error {
	// No parameters: a body, if any, is ignored.
	kid, err := k.keys.Rotate(r.Context(), k.now())
	if err != nil {
		return err
	}
	k.log.LogAttrs(r.Context(), slog.LevelInfo, "signing key rotated", slog.String("kid", kid))
	return k.answerKeys(w)
}

func (k *keysAPI) answerKeys(w http.ResponseWriter) error {
	active := k.keys.ActiveKeyID()
	set, err := k.keys.JWKS(k.now())
	if err != nil {
		return dcon.WrapError(dcon.EINTERNAL, err, "internal error")
	}
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(set, &jwks); err != nil {
		return dcon.WrapError(dcon.EINTERNAL, err, "internal error")
	}
	if jwks.Keys == nil {
		jwks.Keys = []json.RawMessage{}
	}
	return k.respond(w, http.StatusOK, keysResource{ActiveKeyID: active, Keys: jwks.Keys})
}
