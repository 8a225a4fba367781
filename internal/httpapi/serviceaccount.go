package httpapi

import (
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/rs/xid"

	"dcon"
)

// KeyMaker makes service-account keys and their secrets; internal/auth
// implements it.
type KeyMaker interface {
	NewKey(a *dcon.ServiceAccount) (*dcon.Key, string, error)
}

// serviceAccountResource is a service account as the API shows it.
type serviceAccountResource struct {
	Name        string    `json:"name"`
	Email       string    `json:"email"`
	DisplayName string    `json:"displayName"`
	Role        dcon.Role `json:"role"`
	Owner       bool      `json:"owner"`
	CreateTime  string    `json:"createTime"`
}

func newServiceAccountResource(a *dcon.ServiceAccount) serviceAccountResource {
	return serviceAccountResource{Name: a.Name(), Email: a.Email, DisplayName: a.DisplayName, Role: a.Role,
		Owner: a.Owner, CreateTime: dcon.FormatTime(a.CreateTime)}
}

// keyResource is a key as the API shows it: never its secret.
type keyResource struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Revoked    bool   `json:"revoked"`
	CreateTime string `json:"createTime"`
	RevokeTime string `json:"revokeTime"` // "" while the key is valid
}

func newKeyResource(k *dcon.Key) keyResource {
	r := keyResource{Name: k.Name(), ID: k.ID, Revoked: k.Revoked(), CreateTime: dcon.FormatTime(k.CreateTime)}
	if k.Revoked() {
		r.RevokeTime = dcon.FormatTime(k.RevokeTime)
	}
	return r
}

// newKeyAnswer is the answer of a key's creation: the only time its secret
// is shown.
type newKeyAnswer struct {
	Key    keyResource `json:"key"`
	Secret string      `json:"secret"`
}

// serviceAccountFields is a service account as a client sends it.
type serviceAccountFields struct {
	DisplayName string    `json:"displayName"`
	Role        dcon.Role `json:"role"`
}

// maxAccountDisplayName bounds a service account's display name, in bytes.
const maxAccountDisplayName = 256

// serviceAccountRoutes adds the service-account API: an admin of the
// project manages its accounts and their keys.
func (a *api) serviceAccountRoutes() {
	const accounts = "/v2/projects/{p}/serviceaccounts"
	a.handle("GET "+accounts, a.listServiceAccounts)
	a.handle("POST "+accounts, a.createServiceAccount)
	a.handle("GET "+accounts+"/{sa}", a.getServiceAccount)
	a.handle("DELETE "+accounts+"/{sa}", a.deleteServiceAccount)
	a.handle("GET "+accounts+"/{sa}/keys", a.listKeys)
	a.handle("POST "+accounts+"/{sa}/keys", a.createKey)
	a.handle("GET "+accounts+"/{sa}/keys/{k}", a.getKey)
	a.handle("DELETE "+accounts+"/{sa}/keys/{k}", a.deleteKey)
	a.handle("POST "+accounts+"/{sa}/keys/{k}", a.postKey) // {k}:revoke
}

// accessStore is the store of accounts, or 404 when the server has none
// (development mode: no authentication).
func (a *api) accessStore() (dcon.AccessStore, error) {
	if a.access == nil || a.keyMaker == nil {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "service accounts are not enabled on this server (development mode)")
	}
	return a.access, nil
}

// pathAccount reads the account of the path. Only an owner may act on an
// owner account.
func (a *api) pathAccount(r *http.Request) (*dcon.ServiceAccount, error) {
	s, err := a.accessStore()
	if err != nil {
		return nil, err
	}
	p, err := a.projectID(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("sa")
	if !dcon.ValidID(id) {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "service account %q not found", id)
	}
	acc, err := s.ServiceAccount(r.Context(), p, id)
	if err != nil {
		return nil, err
	}
	if caller := PrincipalFrom(r.Context()); acc.Owner && caller != nil && !caller.Account.Owner {
		return nil, dcon.Errorf(dcon.EFORBIDDEN, "only an owner account may manage an owner account")
	}
	return acc, nil
}

func (a *api) listServiceAccounts(w http.ResponseWriter, r *http.Request) error {
	s, err := a.accessStore()
	if err != nil {
		return err
	}
	return listPage(a, w, r, "serviceAccounts", s.ListServiceAccounts, newServiceAccountResource)
}

func (a *api) createServiceAccount(w http.ResponseWriter, r *http.Request) error {
	s, err := a.accessStore()
	if err != nil {
		return err
	}
	p, err := a.projectID(r)
	if err != nil {
		return err
	}
	body, err := a.readBody(w, r)
	if err != nil {
		return err
	}
	var f serviceAccountFields
	if err := decodeObject(body, &f); err != nil {
		return err
	}
	if !dcon.ValidRole(f.Role) {
		return dcon.Errorf(dcon.EINVALID, "role %q: use reader, developer or admin", f.Role)
	}
	if len(f.DisplayName) > maxAccountDisplayName || !utf8.ValidString(f.DisplayName) {
		return dcon.Errorf(dcon.EINVALID, "displayName must be valid UTF-8 of at most %d bytes", maxAccountDisplayName)
	}
	id := xid.New().String()
	acc := &dcon.ServiceAccount{ID: id, Project: p, Email: dcon.ServiceAccountEmail(p, id), DisplayName: f.DisplayName,
		Role: f.Role, CreateTime: a.now().UTC()}
	if err := s.CreateServiceAccount(r.Context(), acc); err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newServiceAccountResource(acc))
}

func (a *api) getServiceAccount(w http.ResponseWriter, r *http.Request) error {
	acc, err := a.pathAccount(r)
	if err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newServiceAccountResource(acc))
}

func (a *api) deleteServiceAccount(w http.ResponseWriter, r *http.Request) error {
	acc, err := a.pathAccount(r)
	if err != nil {
		return err
	}
	if err := a.access.DeleteServiceAccount(r.Context(), acc.Project, acc.ID); err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, struct{}{})
}

func (a *api) listKeys(w http.ResponseWriter, r *http.Request) error {
	acc, err := a.pathAccount(r)
	if err != nil {
		return err
	}
	page, err := pageOf(r)
	if err != nil {
		return err
	}
	keys, next, err := a.access.ListKeys(r.Context(), acc.ID, page)
	if err != nil {
		return err
	}
	out := make([]keyResource, 0, len(keys))
	for _, k := range keys {
		out = append(out, newKeyResource(k))
	}
	return a.respond(w, http.StatusOK, map[string]any{"keys": out, "nextPageToken": next})
}

func (a *api) createKey(w http.ResponseWriter, r *http.Request) error {
	acc, err := a.pathAccount(r)
	if err != nil {
		return err
	}
	// No parameters: a body, if any, must be a JSON object and is ignored.
	if r.ContentLength != 0 {
		body, err := a.readBody(w, r)
		if err != nil {
			return err
		}
		var ignored map[string]json.RawMessage
		if err := json.Unmarshal(body, &ignored); err != nil {
			return dcon.WrapError(dcon.EINVALID, err, "the request body must be a JSON object")
		}
	}
	k, secret, err := a.keyMaker.NewKey(acc)
	if err != nil {
		return dcon.WrapError(dcon.EINTERNAL, err, "internal error")
	}
	if err := a.access.CreateKey(r.Context(), k); err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "service account key created", "account", acc.Name(), "key", k.ID)
	return a.respond(w, http.StatusOK, newKeyAnswer{Key: newKeyResource(k), Secret: secret})
}

// pathKey reads the key of the path, which must be the path account's.
func (a *api) pathKey(r *http.Request) (*dcon.Key, string, error) {
	acc, err := a.pathAccount(r)
	if err != nil {
		return nil, "", err
	}
	id, verb := splitVerb(r.PathValue("k"))
	if !dcon.ValidID(id) {
		return nil, "", dcon.Errorf(dcon.ENOTFOUND, "key %q not found", id)
	}
	k, err := a.access.Key(r.Context(), id)
	if err != nil {
		return nil, "", err
	}
	if k.Account != acc.ID {
		return nil, "", dcon.Errorf(dcon.ENOTFOUND, "key %s not found", id)
	}
	return k, verb, nil
}

func (a *api) getKey(w http.ResponseWriter, r *http.Request) error {
	k, verb, err := a.pathKey(r)
	if err != nil {
		return err
	}
	if verb != "" {
		return a.keyVerb(w, r, verb)
	}
	return a.respond(w, http.StatusOK, newKeyResource(k))
}

func (a *api) deleteKey(w http.ResponseWriter, r *http.Request) error {
	k, verb, err := a.pathKey(r)
	if err != nil {
		return err
	}
	if verb != "" {
		return a.keyVerb(w, r, verb)
	}
	if err := a.access.DeleteKey(r.Context(), k.Account, k.ID); err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "service account key deleted", "key", k.ID)
	return a.respond(w, http.StatusOK, struct{}{})
}

// postKey serves POST …/keys/{k}:revoke: the key stops working at once, its
// access tokens too; it stays listed as revoked.
func (a *api) postKey(w http.ResponseWriter, r *http.Request) error {
	k, verb, err := a.pathKey(r)
	if err != nil {
		return err
	}
	switch verb {
	case "":
		a.methodNotAllowed(w, r, "GET, HEAD, DELETE")
		return nil
	case "revoke":
	default:
		return noVerb(verb)
	}
	if !k.Revoked() {
		k.RevokeTime = a.now().UTC()
		if err := a.access.UpdateKey(r.Context(), k); err != nil {
			return err
		}
		a.log.InfoContext(r.Context(), "service account key revoked", "key", k.ID)
	}
	return a.respond(w, http.StatusOK, newKeyResource(k))
}

// keyVerb answers a custom method that the request's HTTP method does not
// serve: :revoke with 405, others with 404.
func (a *api) keyVerb(w http.ResponseWriter, r *http.Request, verb string) error {
	if verb == "revoke" {
		a.methodNotAllowed(w, r, http.MethodPost)
		return nil
	}
	return noVerb(verb)
}
