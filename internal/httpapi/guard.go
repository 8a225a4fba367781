package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dcon"
)

// Authenticator checks credentials and exchanges JWT-bearer assertions for
// access tokens; internal/auth implements it.
type Authenticator interface {
	// Authenticate checks an Authorization header (Basic or Bearer). Errors
	// are *dcon.Error: EUNAUTHORIZED, or EUNAVAILABLE.
	Authenticate(ctx context.Context, authorization string) (*dcon.Principal, error)
	// Exchange checks an assertion whose aud must be one of audiences and
	// returns an access token and its lifetime.
	Exchange(ctx context.Context, assertion string, audiences []string) (string, time.Duration, error)
}

// TokenPath is the path of the OAuth2 token endpoint.
const TokenPath = "/oauth2/token"

// Guard authenticates and authorizes every request before the API sees it:
//
//   - /.well-known/*, /v2/openapi.json and POST /oauth2/token (which it
//     serves) are public;
//   - every other request needs credentials (HTTP Basic with a key id and
//     secret, or a bearer access token): 401 without valid ones;
//   - each route needs a permission (routePermissions) on the project in its
//     path. A caller with no role on that project gets 404, exactly as if the
//     project did not exist; one whose role lacks the permission gets 403.
//     Server-wide calls (creating projects, signing keys) need an owner
//     account: 403 otherwise.
//   - GET /v2/projects lists only the projects the caller has a role on.
//
// The caller is in the request's context for the API ([PrincipalFrom]).
type Guard struct {
	// Auth checks credentials. Required.
	Auth Authenticator
	// Projects keeps projects, to list a project account's own. Required.
	Projects dcon.ProjectStore
	// TokenURL is the token endpoint's public URL ("https://dcon.example.com/oauth2/token"),
	// an aud that assertions may name; the URL the request reached
	// (scheme, Host, path) is accepted too.
	TokenURL string
	// Logger, Now: as in Server.
	Logger *slog.Logger
	Now    func() time.Time
}

// guard is a Guard ready to serve.
type guard struct {
	*api
	auth     Authenticator
	projects dcon.ProjectStore
	tokenURL string
	next     http.Handler
}

// principalKey is the context key of the authenticated caller.
type principalKey struct{}

// PrincipalFrom returns the caller that the Guard authenticated, or nil when
// there is none (no Guard: development mode).
func PrincipalFrom(ctx context.Context) *dcon.Principal {
	p, _ := ctx.Value(principalKey{}).(*dcon.Principal)
	return p
}

// withPrincipal returns ctx carrying p.
func withPrincipal(ctx context.Context, p *dcon.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// routePermissions returns the permission every route of the API needs on
// the project in its path ({p}); PermOwner routes have no project. A route
// that is not listed needs an owner: a new route is closed until it is added
// here.
func routePermissions() map[string]dcon.Permission {
	return map[string]dcon.Permission{
		"POST /v2/projects":                          dcon.PermOwner,
		"GET /v2/projects/{p}":                       dcon.PermRead,
		"PATCH /v2/projects/{p}":                     dcon.PermAdmin,
		"DELETE /v2/projects/{p}":                    dcon.PermAdmin,
		"GET /v2/keys":                               dcon.PermOwner,
		"POST /v2/keys:rotate":                       dcon.PermOwner,
		"GET " + connectorsPath:                      dcon.PermRead,
		"POST " + connectorsPath:                     dcon.PermWrite,
		"GET " + connectorsPath + "/{d}":             dcon.PermRead, // and {d}:metrics
		"PATCH " + connectorsPath + "/{d}":           dcon.PermWrite,
		"DELETE " + connectorsPath + "/{d}":          dcon.PermWrite,
		"POST " + connectorsPath + "/{d}":            dcon.PermWrite, // {d}:sync
		"GET " + connectorsPath + "/{d}/deadletters": dcon.PermRead,

		// The delivery log and dead-letter replay (additive).
		"GET " + connectorsPath + "/{d}/deliveries":          dcon.PermRead,
		"POST " + connectorsPath + "/{d}/deadletters:replay": dcon.PermWrite,

		"GET " + devicesPath:                         dcon.PermRead,
		"POST " + devicesPath:                        dcon.PermWrite,
		"GET " + devicesPath + "/{d}":                dcon.PermRead,
		"PATCH " + devicesPath + "/{d}":              dcon.PermWrite,
		"DELETE " + devicesPath + "/{d}":             dcon.PermWrite,
		"POST " + devicesPath + "/{d}":               dcon.PermWrite, // {d}:publish
		"POST " + devicesPath + ":batchPublish":      dcon.PermWrite,
		"/v2/projects/{p}/serviceaccounts":           dcon.PermAdmin,
		"/v2/projects/{p}/serviceaccounts/{rest...}": dcon.PermAdmin,
		// Other methods and paths in a project (the API answers 404 or 405):
		// admin, so that a route missing above is never open to less.
		"/v2/projects/{p}":           dcon.PermAdmin,
		"/v2/projects/{p}/{rest...}": dcon.PermAdmin,
	}
}

// The collections under a project, as in the routes.
const (
	connectorsPath = "/v2/projects/{p}/dataconnectors"
	devicesPath    = "/v2/projects/{p}/devices"
)

// Handler returns a handler that guards next (the API and the key endpoints)
// and serves the token endpoint.
func (g *Guard) Handler(next http.Handler) http.Handler {
	gd := &guard{
		api:      &api{log: g.Logger, now: g.Now, mux: http.NewServeMux()},
		auth:     g.Auth,
		projects: g.Projects,
		tokenURL: g.TokenURL,
		next:     next,
	}
	if gd.log == nil {
		gd.log = slog.New(slog.DiscardHandler)
	}
	if gd.now == nil {
		gd.now = time.Now
	}
	gd.handle("GET /v2/projects", gd.listProjects)
	for pattern, perm := range routePermissions() {
		gd.handle(pattern, gd.check(perm))
	}
	// Anything else: authenticated callers reach the API, which answers 404
	// or 405, unless it is a route that routePermissions forgot: owner only.
	gd.handle("/", gd.check(dcon.PermOwner))
	return gd
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/.well-known/"):
		g.next.ServeHTTP(w, r)
		return
	case p == TokenPath:
		g.token(w, r)
		return
	case p == OpenAPIPath: // documentation: public
		g.next.ServeHTTP(w, r)
		return
	}
	p, err := g.auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		if dcon.ErrorCode(err) == dcon.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", `Basic realm="dcon", Bearer realm="dcon"`)
		}
		g.writeError(w, r, err)
		return
	}
	g.mux.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
}

// check returns the handler of a route that needs perm: it passes the
// request on to the API when the caller may make it.
func (g *guard) check(perm dcon.Permission) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := authorize(PrincipalFrom(r.Context()).Account, perm, r.PathValue("p")); err != nil {
			return err
		}
		g.next.ServeHTTP(w, r)
		return nil
	}
}

// authorize decides whether an account may do what needs perm on project
// (the {p} of the path; "" for server-wide calls). A project the account has
// no role on is not found, as if it did not exist.
func authorize(acc *dcon.ServiceAccount, perm dcon.Permission, project string) error {
	if acc.Owner {
		return nil
	}
	if perm == dcon.PermOwner || project == "" {
		return dcon.Errorf(dcon.EFORBIDDEN, "only an owner account may do this")
	}
	role := acc.RoleOn(project)
	switch {
	case role == "" && dcon.ValidProjectID(project):
		return dcon.Errorf(dcon.ENOTFOUND, "project projects/%s not found", project)
	case role == "":
		return dcon.Errorf(dcon.ENOTFOUND, "project %q not found", project)
	case !role.Allows(perm):
		return dcon.Errorf(dcon.EFORBIDDEN, "the role %s on projects/%s does not allow this (%s permission needed)", role, project, perm)
	}
	return nil
}

// listProjects serves GET /v2/projects: an owner sees every project (the
// API's list); any other account, its own project only.
func (g *guard) listProjects(w http.ResponseWriter, r *http.Request) error {
	acc := PrincipalFrom(r.Context()).Account
	if acc.Owner {
		g.next.ServeHTTP(w, r)
		return nil
	}
	if _, err := pageOf(r); err != nil {
		return err
	}
	out := projectList{Projects: []projectResource{}}
	p, err := g.projects.Project(r.Context(), acc.Project)
	switch {
	case err == nil:
		out.Projects = append(out.Projects, newProjectResource(p))
	case dcon.ErrorCode(err) != dcon.ENOTFOUND:
		return err
	}
	return g.respond(w, http.StatusOK, out)
}

// maxTokenRequestBytes bounds a token request: an assertion is well under 1 KiB.
const maxTokenRequestBytes = 16 << 10

// jwtBearerGrant is the grant_type of RFC 7523.
const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// tokenAnswer is the token endpoint's answer (RFC 6749 section 5.1).
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// token serves POST /oauth2/token: a form with grant_type (the JWT-bearer
// grant) and assertion, answered with an access token.
func (g *guard) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		g.methodNotAllowed(w, r, http.MethodPost)
		return
	}
	if err := g.exchange(w, r); err != nil {
		g.writeError(w, r, err)
	}
}

func (g *guard) exchange(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		if strings.Contains(err.Error(), "too large") {
			return dcon.Errorf(dcon.ETOOLARGE, "request body is larger than %d bytes", maxTokenRequestBytes)
		}
		return dcon.WrapError(dcon.EINVALID, err, "cannot read the form: send grant_type and assertion as application/x-www-form-urlencoded")
	}
	if gt := r.PostForm.Get("grant_type"); gt != jwtBearerGrant {
		return dcon.Errorf(dcon.EINVALID, "unsupported grant_type %q: use %s", gt, jwtBearerGrant)
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		return dcon.Errorf(dcon.EINVALID, "assertion is required")
	}
	token, ttl, err := g.auth.Exchange(r.Context(), assertion, g.audiences(r))
	if err != nil {
		return err
	}
	return g.respond(w, http.StatusOK, tokenAnswer{AccessToken: token, TokenType: "bearer", ExpiresIn: int(ttl / time.Second)})
}

// audiences are the URLs an assertion's aud may name: the configured token
// URL and the URL this request reached.
func (g *guard) audiences(r *http.Request) []string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	self := (&url.URL{Scheme: scheme, Host: r.Host, Path: TokenPath}).String()
	if g.tokenURL == "" || g.tokenURL == self {
		return []string{self}
	}
	return []string{g.tokenURL, self}
}
