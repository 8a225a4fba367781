package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dcon/internal/auth"
	"dcon/internal/httpapi"
)

// authNode is a whole dcon with authentication, as `dcon serve` runs without
// --dev, and the owner credentials its first start made.
type authNode struct {
	*node
	base  string
	data  string
	creds *auth.Credentials
	stop  func() // stops the server and the node, once
}

// startAuthNode runs a dcon with authentication on a fresh data directory.
// The API's URL is known before the node starts, so that the credentials
// name it.
func startAuthNode(t *testing.T, cfg serveConfig) *authNode {
	t.Helper()
	if cfg.Data == "" {
		cfg.Data = t.TempDir()
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg.Addr = srv.Listener.Addr().String()
	n, err := openNode(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = n.Handler()
	srv.Start()
	stop := sync.OnceFunc(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	t.Cleanup(stop)
	if n.credentials == nil {
		t.Fatal("the first start made no credentials")
	}
	return &authNode{node: n, base: srv.URL, data: cfg.Data, creds: n.credentials, stop: stop}
}

// client returns an API client that sends the Authorization header h ("" for none).
func (a *authNode) client(t *testing.T, h string) *apiClient {
	return &apiClient{t: t, base: a.base, http: &http.Client{Transport: authTransport{h}}}
}

// basic is the Authorization header of HTTP Basic.
func basic(keyID, secret string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(keyID, secret)
	return r.Header.Get("Authorization")
}

// authTransport adds an Authorization header to every request.
type authTransport struct{ header string }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if a.header != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", a.header)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// account is a service account made through the API, with one key.
type account struct {
	name, email, keyName, keyID, secret string
}

// newAccount makes a service account with a role in a project, and a key.
func newAccount(t *testing.T, admin *apiClient, project, role string) account {
	t.Helper()
	var sa struct{ Name, Email string }
	admin.mustCall("POST", "/v2/projects/"+project+"/serviceaccounts", map[string]any{"displayName": role, "role": role}, &sa)
	var k struct {
		Key struct {
			Name string `json:"name"`
			ID   string `json:"id"`
		} `json:"key"`
		Secret string `json:"secret"`
	}
	admin.mustCall("POST", "/"+"v2/"+sa.Name+"/keys", nil, &k)
	if k.Secret == "" || k.Key.ID == "" {
		t.Fatalf("key answer without id or secret: %+v", k)
	}
	return account{name: sa.Name, email: sa.Email, keyName: k.Key.Name, keyID: k.Key.ID, secret: k.Secret}
}

// TestBootstrapCredentials: the first start writes the owner's credentials,
// owner-only, in the original product's format; the second start makes none.
func TestBootstrapCredentials(t *testing.T) {
	t.Parallel()
	a := startAuthNode(t, serveConfig{})
	path := filepath.Join(a.data, auth.CredentialsFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credentials.json mode %v, want 0600", st.Mode().Perm())
	}
	for _, f := range []string{auth.ServerKeyFile} {
		if st, err := os.Stat(filepath.Join(a.data, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, st, err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		ServiceAccount map[string]string `json:"serviceAccount"`
		Project        string            `json:"project"`
		APIURL         string            `json:"apiUrl"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	sa := file.ServiceAccount
	for _, k := range []string{"keyId", "secret", "email", "algorithm", "tokenEndpoint"} {
		if sa[k] == "" {
			t.Errorf("serviceAccount.%s is missing: %s", k, raw)
		}
	}
	if sa["algorithm"] != "HS256" || sa["tokenEndpoint"] != a.base+"/oauth2/token" || file.APIURL != a.base+"/v2" || file.Project == "" {
		t.Errorf("credentials file %s", raw)
	}
	// The key works, and sees its project.
	owner := a.client(t, basic(sa["keyId"], sa["secret"]))
	owner.mustCall("GET", "/v2/projects/"+file.Project, nil, nil)
	// A second start on the same data makes no new account.
	a.stop()
	n, err := openNode(context.Background(), serveConfig{Data: a.data}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if n.credentials != nil {
		t.Error("the second start made credentials again")
	}
}

// TestAuthorizationMatrix calls every endpoint as every role, in its own
// project and in another, and checks each answer's status: a role's
// permission → the endpoint's own answer; missing permission → 403; another
// project → 404 as if it did not exist; server-wide calls → 403 but for the
// owner. Then every endpoint with no, bad, expired and revoked credentials
// → 401.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	a := startAuthNode(t, serveConfig{Dev: false})
	owner := a.client(t, basic(a.creds.ServiceAccount.KeyID, a.creds.ServiceAccount.Secret))
	own := a.creds.Project
	other := createProject(owner)

	// Each project has a connector, a device, an account and a key to name.
	type fixtures struct{ connector, device, account, key string }
	fix := map[string]fixtures{}
	for _, p := range []string{own, other} {
		owner.project = p
		c := createConnector(owner, map[string]any{"type": "HTTP_PUSH", "status": "USER_DISABLED", "httpConfig": map[string]any{"url": "https://example.com/"}})
		d := createDevice(owner, "temperature", nil)
		acc := newAccount(t, owner, p, "reader")
		fix[p] = fixtures{connector: resourceID(c.Name), device: d.id(), account: resourceID(acc.name), key: acc.keyID}
	}
	roles := map[string]*apiClient{"owner": owner}
	for _, role := range []string{"reader", "developer", "admin"} {
		acc := newAccount(t, owner, own, role)
		roles[role] = a.client(t, basic(acc.keyID, acc.secret))
	}
	// The answers of an allowed call: the endpoint's own, chosen to differ
	// from 401, 403 and a project's 404 (a missing resource names itself).
	type endpoint struct {
		method, path string // {p}, {c}, {d}, {sa}, {k} are filled in
		body         any
		perm         string // read, write, admin, owner, any
		want         int
	}
	const nope = "dc0000000000000000a0" // a valid id that names nothing
	endpoints := []endpoint{
		{"GET", "/v2/projects", nil, "any", 200},
		{"POST", "/v2/projects", map[string]any{"displayName": "m"}, "owner", 200},
		{"GET", "/v2/keys", nil, "owner", 200},
		{"POST", "/v2/keys:rotate", nil, "owner", 200},
		{"GET", "/v2/projects/{p}", nil, "read", 200},
		{"PATCH", "/v2/projects/{p}", map[string]any{"displayName": "x"}, "admin", 200},
		{"DELETE", "/v2/projects/{p}", nil, "admin", 409}, // not empty
		{"GET", "/v2/projects/{p}/dataconnectors", nil, "read", 200},
		{"POST", "/v2/projects/{p}/dataconnectors", map[string]any{}, "write", 400},
		{"GET", "/v2/projects/{p}/dataconnectors/{c}", nil, "read", 200},
		{"GET", "/v2/projects/{p}/dataconnectors/{c}:metrics", nil, "read", 200},
		{"GET", "/v2/projects/{p}/dataconnectors/{c}/deadletters", nil, "read", 200},
		{"GET", "/v2/projects/{p}/dataconnectors/{c}/deliveries", nil, "read", 200},
		{"POST", "/v2/projects/{p}/dataconnectors/{c}/deadletters:replay", map[string]any{"all": true}, "write", 409}, // USER_DISABLED
		{"PATCH", "/v2/projects/{p}/dataconnectors/{c}", map[string]any{"displayName": "m"}, "write", 200},
		{"POST", "/v2/projects/{p}/dataconnectors/{c}:sync", nil, "write", 400}, // USER_DISABLED
		{"DELETE", "/v2/projects/{p}/dataconnectors/" + nope, nil, "write", 404},
		{"GET", "/v2/projects/{p}/devices", nil, "read", 200},
		{"POST", "/v2/projects/{p}/devices", map[string]any{}, "write", 400},
		{"GET", "/v2/projects/{p}/devices/{d}", nil, "read", 200},
		{"PATCH", "/v2/projects/{p}/devices/{d}", map[string]any{"labels": map[string]string{"a": "b"}}, "write", 200},
		{"POST", "/v2/projects/{p}/devices/{d}:publish", map[string]any{"temperature": map[string]any{"value": 1}}, "write", 200},
		{"POST", "/v2/projects/{p}/devices:batchPublish", map[string]any{"x": 1}, "write", 400},
		{"DELETE", "/v2/projects/{p}/devices/emu" + nope, nil, "write", 404},
		{"GET", "/v2/projects/{p}/serviceaccounts", nil, "admin", 200},
		{"POST", "/v2/projects/{p}/serviceaccounts", map[string]any{"role": "boss"}, "admin", 400},
		{"GET", "/v2/projects/{p}/serviceaccounts/{sa}", nil, "admin", 200},
		{"GET", "/v2/projects/{p}/serviceaccounts/{sa}/keys", nil, "admin", 200},
		{"GET", "/v2/projects/{p}/serviceaccounts/{sa}/keys/{k}", nil, "admin", 200},
		{"POST", "/v2/projects/{p}/serviceaccounts/" + nope + "/keys", nil, "admin", 404},
		{"POST", "/v2/projects/{p}/serviceaccounts/{sa}/keys/" + nope + ":revoke", nil, "admin", 404},
		{"DELETE", "/v2/projects/{p}/serviceaccounts/{sa}/keys/" + nope, nil, "admin", 404},
		{"DELETE", "/v2/projects/{p}/serviceaccounts/" + nope, nil, "admin", 404},
		// A method no route has: only an admin learns that it is not allowed.
		{"PUT", "/v2/projects/{p}/dataconnectors", map[string]any{}, "admin", 405},
		{"GET", "/v2/nothing", nil, "owner", 404},
		{"GET", "/metrics", nil, "owner", 200}, // names every connector of every project
	}
	allows := map[string][]string{
		"any": {"reader", "developer", "admin"}, "read": {"reader", "developer", "admin"},
		"write": {"developer", "admin"}, "admin": {"admin"}, "owner": {},
	}
	fill := func(path, p string) string {
		f := fix[p]
		return strings.NewReplacer("{p}", p, "{c}", f.connector, "{d}", f.device, "{sa}", f.account, "{k}", f.key).Replace(path)
	}
	for _, e := range endpoints {
		for _, role := range []string{"owner", "admin", "developer", "reader"} {
			for _, where := range []string{"own", "other"} {
				p := own
				if where == "other" {
					p = other
				}
				path := fill(e.path, p)
				want, wantMsg := e.want, ""
				hasPerm := role == "owner" || strings.Contains(strings.Join(allows[e.perm], " "), role)
				noProject := e.perm == "any" || e.perm == "owner"
				allowed := hasPerm && (where == "own" || role == "owner" || noProject)
				switch {
				case allowed:
				case noProject:
					want = 403
				case where == "other":
					want, wantMsg = 404, `"error":"project projects/`+p+` not found"`
				default:
					want = 403
				}
				status, raw := roles[role].call(e.method, path, e.body, nil)
				if status != want || (wantMsg != "" && !strings.Contains(string(raw), wantMsg)) {
					t.Errorf("%s %s as %s (%s project): %d %s; want %d %s", e.method, e.path, role, where, status, raw, want, wantMsg)
				}
				if allowed && status == 404 && strings.Contains(string(raw), `"error":"project `) {
					t.Errorf("%s %s as %s: the allowed call hit a project 404: %s", e.method, e.path, role, raw)
				}
			}
		}
	}

	// A project account lists only its own project; the owner, all.
	var list struct {
		Projects []struct{ Name string } `json:"projects"`
	}
	roles["reader"].mustCall("GET", "/v2/projects", nil, &list)
	if len(list.Projects) != 1 || list.Projects[0].Name != "projects/"+own {
		t.Errorf("the reader lists %v, want only its project", list.Projects)
	}

	// Credentials that are missing, wrong, expired or revoked: 401 everywhere.
	dev := newAccount(t, owner, own, "developer")
	devToken := exchange(t, a.base, dev, time.Now())
	revoked := newAccount(t, owner, own, "developer")
	revokedToken := exchange(t, a.base, revoked, time.Now())
	owner.mustCall("POST", "/v2/"+revoked.keyName+":revoke", nil, nil)
	expired := expiredToken(t, a, dev)
	bad := map[string]string{
		"none":               "",
		"bad secret":         basic(dev.keyID, otherFirstChar(dev.secret)),
		"unknown key":        basic(nope, dev.secret),
		"not basic":          "Digest x",
		"malformed bearer":   "Bearer not.a.jwt",
		"assertion as token": "Bearer " + assertion(t, a.base, dev, time.Now()),
		"expired token":      "Bearer " + expired,
		"revoked key":        basic(revoked.keyID, revoked.secret),
		"revoked key token":  "Bearer " + revokedToken,
	}
	for name, h := range bad {
		c := a.client(t, h)
		for _, e := range endpoints {
			if status, raw := c.call(e.method, fill(e.path, own), e.body, nil); status != 401 {
				t.Errorf("%s %s with %s credentials: %d %s; want 401", e.method, e.path, name, status, raw)
			}
		}
	}
	// The developer's bearer token works as its Basic credentials do.
	a.client(t, "Bearer "+devToken).mustCall("GET", "/v2/projects/"+own+"/dataconnectors", nil, nil)
	// Public: the key documents.
	if status, _ := a.client(t, "").call("GET", "/.well-known/jwks.json", nil, nil); status != 200 {
		t.Errorf("jwks.json: %d, want 200 without credentials", status)
	}
}

// assertion signs a JWT-bearer assertion as the original Python client does:
// HS256 with the key's secret, kid = key id, iat, exp = iat + 3600, aud =
// the token endpoint, iss = the account's email.
func assertion(t *testing.T, base string, acc account, now time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iat": now.Unix(), "exp": now.Unix() + 3600, "aud": base + "/oauth2/token", "iss": acc.email,
	})
	tok.Header["kid"] = acc.keyID
	s, err := tok.SignedString([]byte(acc.secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exchange gets an access token at the token endpoint.
func exchange(t *testing.T, base string, acc account, now time.Time) string {
	t.Helper()
	status, out := postToken(t, base, url.Values{"grant_type": {jwtBearer}, "assertion": {assertion(t, base, acc, now)}})
	if status != 200 {
		t.Fatalf("token endpoint: %d %v", status, out)
	}
	return out["access_token"].(string)
}

const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// postToken posts a form to the token endpoint.
func postToken(t *testing.T, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(base+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("token endpoint answer %q: %v", raw, err)
	}
	return resp.StatusCode, out
}

// expiredToken is an access token of acc that expired a minute and a bit
// ago: issued by an authenticator with the node's server key and an earlier
// clock.
func expiredToken(t *testing.T, a *authNode, acc account) string {
	t.Helper()
	key, err := auth.LoadServerKey(a.data)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour - 2*time.Minute)
	old, err := auth.New(auth.Config{Store: a.db, ServerKey: key, Now: func() time.Time { return past }})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := old.Exchange(context.Background(), assertion(t, a.base, acc, past), []string{a.base + "/oauth2/token"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenEndpoint: the JWT-bearer exchange and the assertions it refuses.
func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	a := startAuthNode(t, serveConfig{})
	owner := a.client(t, basic(a.creds.ServiceAccount.KeyID, a.creds.ServiceAccount.Secret))
	acc := newAccount(t, owner, a.creds.Project, "reader")
	now := time.Now()

	status, out := postToken(t, a.base, url.Values{"grant_type": {jwtBearer}, "assertion": {assertion(t, a.base, acc, now)}})
	if status != 200 || out["token_type"] != "bearer" || out["expires_in"] != float64(3600) || out["access_token"] == "" {
		t.Fatalf("token answer %d %v", status, out)
	}
	sign := func(claims jwt.MapClaims, kid, secret string, method jwt.SigningMethod) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iat": now.Unix(), "exp": now.Unix() + 3600, "aud": a.base + "/oauth2/token", "iss": acc.email}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	tests := []struct {
		name string
		form url.Values
		want int
	}{
		{"no grant_type", url.Values{"assertion": {"x"}}, 400},
		{"other grant_type", url.Values{"grant_type": {"client_credentials"}, "assertion": {"x"}}, 400},
		{"no assertion", url.Values{"grant_type": {jwtBearer}}, 400},
		{"garbage", url.Values{"grant_type": {jwtBearer}, "assertion": {"a.b.c"}}, 401},
		{"wrong secret", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(good(), acc.keyID, "nope", jwt.SigningMethodHS256)}}, 401},
		{"HS512", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(good(), acc.keyID, acc.secret, jwt.SigningMethodHS512)}}, 401},
		{"unknown kid", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(good(), "dc0000000000000000a0", acc.secret, jwt.SigningMethodHS256)}}, 401},
		{"wrong aud", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(with("aud", "https://identity.example.com/oauth2/token"), acc.keyID, acc.secret, jwt.SigningMethodHS256)}}, 401},
		{"wrong iss", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(with("iss", "x@y"), acc.keyID, acc.secret, jwt.SigningMethodHS256)}}, 401},
		{"no exp", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(without("exp"), acc.keyID, acc.secret, jwt.SigningMethodHS256)}}, 401},
		{"exp 2 h after iat", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(with("exp", now.Unix()+7200), acc.keyID, acc.secret, jwt.SigningMethodHS256)}}, 401},
		{"exp 2 h away, no iat", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(func() jwt.MapClaims { c := with("exp", now.Unix()+7200); delete(c, "iat"); return c }(), acc.keyID, acc.secret, jwt.SigningMethodHS256)}}, 401},
		{"expired", url.Values{"grant_type": {jwtBearer}, "assertion": {sign(with("exp", now.Unix()-3600), acc.keyID, acc.secret, jwt.SigningMethodHS256)}}, 401},
	}
	for _, tt := range tests {
		if status, out := postToken(t, a.base, tt.form); status != tt.want {
			t.Errorf("%s: %d %v; want %d", tt.name, status, out, tt.want)
		}
	}
	if resp, err := http.Get(a.base + "/oauth2/token"); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET /oauth2/token: %v %v; want 405", resp, err)
	}
	big := bytes.Repeat([]byte("a"), 32<<10)
	if status, _ := postToken(t, a.base, url.Values{"grant_type": {jwtBearer}, "assertion": {string(big)}}); status != 413 {
		t.Errorf("a 32 KiB form: %d, want 413", status)
	}
}

// TestRevokeIsImmediate: a revoked key and its access token fail the very
// next request; deleting the account does the same for its other keys.
func TestRevokeIsImmediate(t *testing.T) {
	t.Parallel()
	a := startAuthNode(t, serveConfig{})
	owner := a.client(t, basic(a.creds.ServiceAccount.KeyID, a.creds.ServiceAccount.Secret))
	acc := newAccount(t, owner, a.creds.Project, "developer")
	path := "/v2/projects/" + a.creds.Project + "/dataconnectors"
	viaBasic := a.client(t, basic(acc.keyID, acc.secret))
	viaToken := a.client(t, "Bearer "+exchange(t, a.base, acc, time.Now()))
	viaBasic.mustCall("GET", path, nil, nil)
	viaToken.mustCall("GET", path, nil, nil)

	var k struct {
		Revoked    bool   `json:"revoked"`
		RevokeTime string `json:"revokeTime"`
	}
	owner.mustCall("POST", "/v2/"+acc.keyName+":revoke", nil, &k)
	if !k.Revoked || k.RevokeTime == "" {
		t.Errorf("revoked key answer %+v", k)
	}
	for name, c := range map[string]*apiClient{"basic": viaBasic, "token": viaToken} {
		if status, raw := c.call("GET", path, nil, nil); status != 401 {
			t.Errorf("%s after revoke: %d %s; want 401", name, status, raw)
		}
	}
	// Keys never show their secret.
	raw := owner.mustCall("GET", "/v2/"+acc.name+"/keys", nil, nil)
	if strings.Contains(string(raw), acc.secret) || strings.Contains(string(raw), "secret") {
		t.Errorf("key list shows a secret: %s", raw)
	}
	// A second key dies with its account.
	second := newAccount(t, owner, a.creds.Project, "reader")
	owner.mustCall("DELETE", "/v2/"+second.name, nil, nil)
	if status, _ := a.client(t, basic(second.keyID, second.secret)).call("GET", path, nil, nil); status != 401 {
		t.Errorf("a deleted account's key: %d, want 401", status)
	}
	// A project admin may not touch the owner account.
	admin := newAccount(t, owner, a.creds.Project, "admin")
	ownerAccount := "/v2/projects/" + a.creds.Project + "/serviceaccounts/" + ownerAccountID(t, owner, a.creds.Project)
	if status, raw := a.client(t, basic(admin.keyID, admin.secret)).call("POST", ownerAccount+"/keys", nil, nil); status != 403 {
		t.Errorf("an admin making a key for the owner: %d %s; want 403", status, raw)
	}
}

// ownerAccountID finds the owner account among a project's accounts.
func ownerAccountID(t *testing.T, c *apiClient, project string) string {
	var list struct {
		ServiceAccounts []struct {
			Name  string `json:"name"`
			Owner bool   `json:"owner"`
		} `json:"serviceAccounts"`
	}
	c.mustCall("GET", "/v2/projects/"+project+"/serviceaccounts", nil, &list)
	for _, sa := range list.ServiceAccounts {
		if sa.Owner {
			return resourceID(sa.Name)
		}
	}
	t.Fatal("no owner account")
	return ""
}

// TestCLILogin: dcon login with the server's credentials file, then CLI
// commands authenticate against a server that requires it.
func TestCLILogin(t *testing.T) {
	t.Parallel()
	a := startAuthNode(t, serveConfig{})
	loginFile := filepath.Join(t.TempDir(), "cli", "credentials.json")
	serverFile := filepath.Join(a.data, auth.CredentialsFile)

	// Without credentials the server refuses the CLI.
	if r := runCLI(t, a.base, "projects", "list", "--credentials", filepath.Join(t.TempDir(), "none.json")); r.code == exitOK {
		t.Fatalf("projects list with a missing credentials file: exit 0")
	}
	r := runCLI(t, "", "login", "--credentials", serverFile, "--login-file", loginFile)
	if r.code != exitOK || !strings.Contains(r.stdout, "Logged in to "+a.base) {
		t.Fatalf("dcon login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st, err := os.Stat(loginFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("login file: %v %v; want mode 0600", st, err)
	}
	// The server comes from the login file: no --server.
	r = runCLI(t, "", "projects", "list", "--credentials", loginFile)
	if r.code != exitOK || !strings.Contains(r.stdout, a.creds.Project) {
		t.Fatalf("projects list after login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustCLI(t, a.base, "devices", "create", "--project", a.creds.Project, "--type", "touch", "--credentials", loginFile)

	// A wrong key is refused at login.
	r = runCLI(t, a.base, "login", "--key-id", a.creds.ServiceAccount.KeyID, "--key-secret", "wrong", "--login-file", loginFile+".2")
	if r.code != exitError || !strings.Contains(r.stderr, "(401)") {
		t.Errorf("login with a wrong secret: exit %d, stderr %q", r.code, r.stderr)
	}
}

// otherFirstChar returns s with its first character changed, so that it is
// certainly not s (prefixing "0" is not when s starts with "0").
func otherFirstChar(s string) string {
	if s[0] == '0' {
		return "1" + s[1:]
	}
	return "0" + s[1:]
}

// TestDeleteProjectDeletesItsAccounts: deleting a project deletes its
// service accounts and their keys; their Basic credentials and the access
// tokens they obtained fail the very next request. The project that holds
// the owner account is not deleted.
func TestDeleteProjectDeletesItsAccounts(t *testing.T) {
	t.Parallel()
	a := startAuthNode(t, serveConfig{})
	owner := a.client(t, basic(a.creds.ServiceAccount.KeyID, a.creds.ServiceAccount.Secret))
	p := createProject(owner)
	admin := newAccount(t, owner, p, "admin")
	dev := newAccount(t, owner, p, "developer")
	path := "/v2/projects/" + p + "/dataconnectors"
	clients := map[string]*apiClient{
		"admin basic":     a.client(t, basic(admin.keyID, admin.secret)),
		"admin token":     a.client(t, "Bearer "+exchange(t, a.base, admin, time.Now())),
		"developer basic": a.client(t, basic(dev.keyID, dev.secret)),
		"developer token": a.client(t, "Bearer "+exchange(t, a.base, dev, time.Now())),
	}
	for _, c := range clients {
		c.mustCall("GET", path, nil, nil)
	}
	// The project's own admin deletes it.
	clients["admin token"].mustCall("DELETE", "/v2/projects/"+p, nil, nil)
	for name, c := range clients {
		if status, raw := c.call("GET", "/v2/projects", nil, nil); status != 401 {
			t.Errorf("%s after its project was deleted: %d %s; want 401", name, status, raw)
		}
	}
	if status, out := postToken(t, a.base, url.Values{"grant_type": {jwtBearer}, "assertion": {assertion(t, a.base, dev, time.Now())}}); status != 401 {
		t.Errorf("token endpoint for a deleted project's key: %d %v; want 401", status, out)
	}
	// The keys are gone from the store, not only refused.
	for _, id := range []string{admin.keyID, dev.keyID} {
		if _, err := a.db.Key(context.Background(), id); err == nil {
			t.Errorf("key %s is still stored", id)
		}
	}
	// The owner's project stays, and so does the owner.
	if status, raw := owner.call("DELETE", "/v2/projects/"+a.creds.Project, nil, nil); status != 409 || !strings.Contains(string(raw), "owner account") {
		t.Errorf("deleting the owner's project: %d %s; want 409", status, raw)
	}
	owner.mustCall("GET", "/v2/projects/"+a.creds.Project, nil, nil)
}

// TestRateLimitPerServiceAccount: on a node with authentication, the
// management limit is each service account's, not its address's: two
// accounts calling from one address each get the whole budget; the token
// endpoint is limited per address; both answer 429 with Retry-After.
func TestRateLimitPerServiceAccount(t *testing.T) {
	t.Parallel()
	const budget = 10
	cfg := serveConfig{}
	cfg.Security.RateLimit = httpapi.RateLimit{Requests: budget, Window: time.Hour} // no refill during the test
	a := startAuthNode(t, cfg)
	owner := a.client(t, basic(a.creds.ServiceAccount.KeyID, a.creds.ServiceAccount.Secret))
	accounts := []account{newAccount(t, owner, a.creds.Project, "reader"), newAccount(t, owner, a.creds.Project, "reader")}
	path := "/v2/projects/" + a.creds.Project + "/dataconnectors"
	for i, acc := range accounts {
		c := a.client(t, basic(acc.keyID, acc.secret))
		for n := range budget {
			if status, raw := c.call("GET", path, nil, nil); status != 200 {
				t.Fatalf("account %d, request %d: %d %s", i, n+1, status, raw)
			}
		}
		resp := rawGet(t, a.base+path, basic(acc.keyID, acc.secret))
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("account %d, request %d: %d, Retry-After %q; want 429 with Retry-After", i, budget+1, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	// The token endpoint: per address, whatever the assertion.
	form := url.Values{"grant_type": {jwtBearer}, "assertion": {assertion(t, a.base, accounts[0], time.Now())}}
	for n := range budget {
		if status, out := postToken(t, a.base, form); status != 200 {
			t.Fatalf("token request %d: %d %v", n+1, status, out)
		}
	}
	form.Set("assertion", assertion(t, a.base, accounts[1], time.Now()))
	if status, out := postToken(t, a.base, form); status != 429 {
		t.Errorf("token request %d, another account, same address: %d %v; want 429", budget+1, status, out)
	}
}

// rawGet sends a GET with an Authorization header and returns the answer,
// its body read and closed.
func rawGet(t *testing.T, u, authorization string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
