package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"dcon"
)

// SessionTTL is how long a dashboard login lasts.
const SessionTTL = 12 * time.Hour

// sessionCookie is the name of the session cookie.
const sessionCookie = "dcon_session"

// csrfField is the form field that carries a POST's token.
const csrfField = "csrf"

// mac returns HMAC-SHA256(session key, label ‖ 0 ‖ value), base64url.
func (d *Dashboard) mac(label, value string) string {
	m := hmac.New(sha256.New, d.cfg.SessionKey)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession returns the value of a session cookie for a key, valid until
// exp: "<key id>.<exp, Unix seconds>.<mac>".
func (d *Dashboard) newSession(keyID string, exp time.Time) string {
	v := keyID + "." + strconv.FormatInt(exp.Unix(), 10)
	return v + "." + d.mac("dcon dashboard session", v)
}

// checkSession returns the key id of a session cookie's value whose
// signature holds and that has not expired at now.
func (d *Dashboard) checkSession(value string, now time.Time) (string, bool) {
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return "", false
	}
	v, sig := value[:i], value[i+1:]
	if !hmac.Equal([]byte(sig), []byte(d.mac("dcon dashboard session", v))) {
		return "", false
	}
	keyID, exp, ok := strings.Cut(v, ".")
	if !ok {
		return "", false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(sec, 0)) {
		return "", false
	}
	return keyID, true
}

// csrfToken is the token of a session's forms.
func (d *Dashboard) csrfToken(session string) string {
	if session == "" {
		return ""
	}
	return d.mac("dcon dashboard csrf", session)
}

// unauthorized is the error of a request without a valid session.
func unauthorized(msg string) error { return dcon.Errorf(dcon.EUNAUTHORIZED, "%s", msg) }

// sessionPrincipal returns the caller of a request from its session cookie,
// after checking that the key is still valid and its account exists.
func (d *Dashboard) sessionPrincipal(r *http.Request) (*dcon.Principal, string, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, "", unauthorized("please log in")
	}
	keyID, ok := d.checkSession(c.Value, d.cfg.SessionNow())
	if !ok {
		return nil, "", unauthorized("your session ended: please log in again")
	}
	p, err := d.principalOf(r.Context(), keyID)
	if err != nil {
		return nil, "", err
	}
	return p, c.Value, nil
}

// principalOf returns the account of a key that is still valid.
func (d *Dashboard) principalOf(ctx context.Context, keyID string) (*dcon.Principal, error) {
	k, err := d.cfg.Keys.Key(ctx, keyID)
	switch code := dcon.ErrorCode(err); {
	case code == dcon.ENOTFOUND || code == dcon.EINVALID:
		return nil, unauthorized("your key no longer exists: please log in again")
	case err != nil:
		return nil, err
	case k.Revoked():
		return nil, unauthorized("your key was revoked: please log in with another")
	}
	acc, err := d.cfg.Keys.ServiceAccount(ctx, k.Project, k.Account)
	switch {
	case dcon.ErrorCode(err) == dcon.ENOTFOUND:
		return nil, unauthorized("your service account no longer exists")
	case err != nil:
		return nil, err
	}
	return &dcon.Principal{Account: acc, KeyID: k.ID}, nil
}

// setSession sets the session cookie.
func (d *Dashboard) setSession(w http.ResponseWriter, r *http.Request, value string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: Prefix, Expires: exp, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// clearSession removes the session cookie.
func (d *Dashboard) clearSession(w http.ResponseWriter, r *http.Request) {
	if d.cfg.Auth == nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// checkPost refuses a POST that does not come from the dashboard itself: its
// Origin (or, without one, its Referer) must be this host, and with a session
// its form must carry the session's token.
func (d *Dashboard) checkPost(r *http.Request, session string) error {
	if !sameOrigin(r) {
		return dcon.Errorf(dcon.EFORBIDDEN, "this form must be sent from the dashboard's own pages")
	}
	if session == "" {
		return nil
	}
	if !hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(d.csrfToken(session))) {
		return dcon.Errorf(dcon.EFORBIDDEN, "this form expired: reload the page and try again")
	}
	return nil
}

// sameOrigin reports whether a request's Origin, or Referer when it has no
// Origin, names the host it was sent to.
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return false
	}
	u, err := url.Parse(from)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Host == r.Host && u.Scheme == scheme
}

// loginPage shows the login form; in development mode, the projects.
func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if d.cfg.Auth == nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	d.showLogin(w, r, http.StatusOK, "")
}

// loginForm is what the login page shows.
type loginForm struct {
	Next, KeyID, Problem string
}

func (d *Dashboard) showLogin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	v := d.newView(r, nil, "Log in")
	v.Page = loginForm{Next: safeNext(r.FormValue("next")), KeyID: r.PostFormValue("keyId"), Problem: problem}
	d.render(w, r, status, "login", v)
}

// safeNext returns a dashboard path to go to after login: next if it is one,
// Prefix otherwise (never another site).
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

// login checks a key id and secret with the Authenticator, as HTTP Basic,
// and starts a session.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if d.cfg.Auth == nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		d.showLogin(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if !sameOrigin(r) {
		d.showLogin(w, r, http.StatusForbidden, "Log in from the dashboard's own page.")
		return
	}
	keyID, secret := strings.TrimSpace(r.PostFormValue("keyId")), strings.TrimSpace(r.PostFormValue("secret"))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(keyID+":"+secret))
	p, err := d.cfg.Auth.Authenticate(r.Context(), basic)
	switch code := dcon.ErrorCode(err); {
	case code == dcon.EUNAUTHORIZED:
		d.showLogin(w, r, http.StatusUnauthorized, "That key id and secret are not a valid key.")
		return
	case err != nil:
		d.cfg.Logger.Error("dashboard login", "err", err)
		d.showLogin(w, r, statusOf(err), "dcon cannot check keys right now; try again in a moment.")
		return
	}
	exp := d.cfg.SessionNow().Add(SessionTTL)
	d.setSession(w, r, d.newSession(p.KeyID, exp), exp)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// logout ends the session.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "log out from the dashboard's own pages", http.StatusForbidden)
		return
	}
	d.clearSession(w, r)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
