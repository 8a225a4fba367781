package httpapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"dcon"
)

func TestStatusFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   string
		status int
	}{
		{dcon.EINVALID, 400},
		{dcon.EUNAUTHORIZED, 401},
		{dcon.EFORBIDDEN, 403},
		{dcon.ENOTFOUND, 404},
		{eMethodNotAllowed, 405},
		{dcon.ECONFLICT, 409},
		{dcon.ETOOLARGE, 413},
		{dcon.EUNSUPPORTED, 415},
		{dcon.ERATELIMITED, 429},
		{dcon.EINTERNAL, 500},
		{dcon.EUNAVAILABLE, 503},
		{"no-such-code", 500},
	}
	for _, tt := range tests {
		if got := statusFor(tt.code); got != tt.status {
			t.Errorf("statusFor(%q) = %d, want %d", tt.code, got, tt.status)
		}
	}
}

// slowDown is a rate-limit error that knows when to come back.
type slowDown struct{ after time.Duration }

func (e slowDown) Error() string             { return "slow down" }
func (e slowDown) RetryAfter() time.Duration { return e.after }

// TestStoreErrors checks that every error of a store answers the contract's
// body with its status, and that internal causes are logged, never shown.
func TestStoreErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		msg        string
		retryAfter string
	}{
		{"invalid", dcon.Errorf(dcon.EINVALID, "bad token"), 400, "bad token", ""},
		{"unauthorized", dcon.Errorf(dcon.EUNAUTHORIZED, "who are you"), 401, "who are you", ""},
		{"forbidden", dcon.Errorf(dcon.EFORBIDDEN, "readers cannot write"), 403, "readers cannot write", ""},
		{"not found", dcon.Errorf(dcon.ENOTFOUND, "gone"), 404, "gone", ""},
		{"conflict", dcon.Errorf(dcon.ECONFLICT, "already exists"), 409, "already exists", ""},
		{"rate limited", dcon.WrapError(dcon.ERATELIMITED, slowDown{2500 * time.Millisecond}, "too many requests"), 429, "too many requests", "3"},
		{"rate limited without a time", dcon.Errorf(dcon.ERATELIMITED, "too many requests"), 429, "too many requests", "1"},
		{"unavailable", dcon.WrapError(dcon.EUNAVAILABLE, errors.New("compaction stall"), "store busy"), 503, "store busy", "1"},
		{"internal", dcon.WrapError(dcon.EINTERNAL, errors.New("disk on fire"), "pebble: disk on fire"), 500, "internal error", ""},
		{"plain error", fmt.Errorf("list: %w", errors.New("disk on fire")), 500, "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.conns.fail(tt.err)
			e.devs.fail(tt.err)
			for _, req := range []struct{ method, path, body string }{
				{"GET", "/v2/projects/" + project + "/dataconnectors", ""},
				{"POST", "/v2/projects/" + project + "/dataconnectors", `{"type":"HTTP_PUSH","httpConfig":{"url":"https://x.com"}}`},
				{"PATCH", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg", `{"displayName":"x"}`},
				{"GET", "/v2/projects/" + project + "/devices/" + emuID, ""},
			} {
				res := e.do(t, req.method, req.path, req.body)
				res.wantError(t, tt.status, tt.msg)
				if got := res.header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("%s %s: Retry-After %q, want %q", req.method, req.path, got, tt.retryAfter)
				}
			}
			logs := e.logs.String()
			if tt.status == 500 && (!strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "disk on fire")) {
				t.Errorf("internal error not logged with its cause:\n%s", logs)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		method, path string
		status       int
		msg, allow   string
	}{
		{"GET", "/", 404, "no resource at /", ""},
		{"GET", "/v2/projects/" + project + "/things", 404, "no resource at /v2/projects/" + project + "/things", ""},
		{"GET", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg/extra", 404,
			"no resource at /v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg/extra", ""},
		{"PUT", "/v2/projects/" + project + "/dataconnectors", 405,
			"method PUT is not allowed on /v2/projects/" + project + "/dataconnectors; allowed: GET, HEAD, POST", "GET, HEAD, POST"},
		{"POST", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg", 405,
			"method POST is not allowed on /v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg; allowed: DELETE, GET, HEAD, PATCH",
			"DELETE, GET, HEAD, PATCH"},
		{"GET", "/v2/projects/Not_A_Project/dataconnectors", 404, `project "Not_A_Project" not found`, ""},
		{"POST", "/v2/projects/-x/devices", 404, `project "-x" not found`, ""},
		{"GET", "/v2/projects/" + project + "/dataconnectors/nope", 404, `data connector "nope" not found`, ""},
		{"DELETE", "/v2/projects/" + project + "/devices/emu123", 404, `device "emu123" not found`, ""},
		{"GET", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg:metrics", 404, "data connector not found", ""},
		{"GET", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg:frobnicate", 404, `unknown custom method ":frobnicate"`, ""},
		{"PATCH", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg:sync", 405,
			"method PATCH is not allowed on /v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg:sync; allowed: POST", "POST"},
		{"DELETE", "/v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg:metrics", 405,
			"method DELETE is not allowed on /v2/projects/" + project + "/dataconnectors/c16pegipidie7lltrefg:metrics; allowed: GET, HEAD", "GET, HEAD"},
	}
	for _, tt := range tests {
		res := e.do(t, tt.method, tt.path, "")
		res.wantError(t, tt.status, tt.msg)
		if got := res.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestHostileBodies(t *testing.T) {
	t.Parallel()
	const create = "/v2/projects/" + project + "/dataconnectors"
	const valid = `{"type":"HTTP_PUSH","httpConfig":{"url":"https://x.com"}}`
	tests := []struct {
		name    string
		maxBody int64
		body    string
		header  []string
		status  int
		msg     string
	}{
		{"over a small limit", 64, valid + strings.Repeat(" ", 64), nil, 413, "request body is larger than 64 bytes"},
		{"at a small limit", int64(len(valid)), valid, nil, 200, ""},
		{"over the default limit", 0, `{"displayName":"` + strings.Repeat("x", 1<<20) + `"}`, nil, 413, "request body is larger than 1048576 bytes"},
		{"text/plain", 0, valid, []string{"Content-Type", "text/plain"}, 415, `unsupported Content-Type "text/plain": send application/json`},
		{"form", 0, valid, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415,
			`unsupported Content-Type "application/x-www-form-urlencoded": send application/json`},
		{"broken media type", 0, valid, []string{"Content-Type", "application/json; ="}, 415,
			`unsupported Content-Type "application/json; =": send application/json`},
		{"charset", 0, valid, []string{"Content-Type", "application/json; charset=utf-8"}, 200, ""},
		{"upper case", 0, valid, []string{"Content-Type", "Application/JSON"}, 200, ""},
		{"no Content-Type", 0, valid, []string{"Content-Type", ""}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(s *Server) { s.MaxBodyBytes = tt.maxBody })
			res := e.do(t, "POST", create, tt.body, tt.header...)
			if tt.status != 200 {
				res.wantError(t, tt.status, tt.msg)
				if n := e.conns.writeCount(); n != 0 {
					t.Errorf("%d writes after a rejected request", n)
				}
				return
			}
			res.want(t, 200, "")
		})
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.do(t, "GET", "/v2/projects/"+project+"/devices", "").want(t, 200, "")
	e.do(t, "GET", "/nowhere", "").want(t, 404, "")
	logs := e.logs.String()
	for _, want := range []string{
		"level=DEBUG msg=\"http request\" method=GET path=/v2/projects/" + project + "/devices status=200",
		"level=DEBUG msg=\"http request\" method=GET path=/nowhere status=404",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	a := (&Server{}).Handler().(*api)
	if a.maxBody != DefaultMaxBodyBytes || a.now == nil || a.log == nil {
		t.Errorf("defaults not set: maxBody %d, now %v, log %v", a.maxBody, a.now != nil, a.log != nil)
	}
}
