package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// routePaths are paths around the publish route's shape, for
// TestPublishRouteAgreesWithServeMux and FuzzPublishRoute.
var routePaths = []string{
	"/v2/projects/" + project + "/devices/emu0123456789abcdefghij:publish",
	"/v2/projects/" + project + "/devices/emu0123456789abcdefghij",
	"/v2/projects/" + project + "/devices/emu0123456789abcdefghij:PUBLISH",
	"/v2/projects/" + project + "/devices/emu0123456789abcdefghij/",
	"/v2/projects/" + project + "/devices/emu0123456789abcdefghij/x",
	"/v2/projects/" + project + "/devices/emu0123456789abcdefghij%3Apublish",
	"/v2/projects/" + project + "/devices/emu%30123456789abcdefghij:publish",
	"/v2/projects/" + project + "/devices/./emu0123456789abcdefghij:publish",
	"/v2/projects/" + project + "/devices/../devices/emu0123456789abcdefghij:publish",
	"/v2/projects/" + project + "/devices//emu0123456789abcdefghij:publish",
	"/v2/projects/" + project + "/devices/",
	"/v2/projects/" + project + "/devices/:publish",
	"/v2/projects/" + project + "/devices:batchPublish",
	"/v2/projects/" + project + "/devices/devices/x",
	"/v2/projects/" + project + "/dataconnectors/c0000000000000000000:sync",
	"/v2/projects/" + project + "/serviceaccounts/a/devices/b",
	"/v2/projects//devices/emu0123456789abcdefghij:publish",
	"/v2/projects/P-1_x/devices/A-b_c:d",
	"/v2/projects/a/devices/b/devices/c",
	"/v2//projects/a/devices/b",
	"/v2/projects/a%2Fb/devices/c",
	"/v2/projects/a%20b/devices/c",
	"/v2/projects/a/devices/..",
	"/v2/projects/../devices/b",
}

// TestPublishRouteAgreesWithServeMux checks the fast path of routing: every
// request it takes, the ServeMux routes to the publish pattern with the same
// path values.
func TestPublishRouteAgreesWithServeMux(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"POST", "GET", "PATCH", "HEAD", "CONNECT", "post"} {
		for i, path := range routePaths {
			r := httptest.NewRequest(method, "http://127.0.0.1"+path, nil)
			if taken := checkPublishRoute(t, r); i == 0 && method == "POST" && !taken {
				t.Errorf("POST %s: the fast path declined it", path)
			}
		}
	}
}

// FuzzPublishRoute checks the fast path of routing against the ServeMux on
// arbitrary methods and paths.
func FuzzPublishRoute(f *testing.F) {
	for _, p := range routePaths {
		f.Add("POST", p)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := http.NewRequest(method, "http://127.0.0.1"+path, nil)
		if err != nil || r.URL.Host != "127.0.0.1" {
			return
		}
		r.RequestURI = r.URL.RequestURI()
		checkPublishRoute(t, r)
	})
}

// checkPublishRoute reports whether the fast path takes r, and fails t when
// the ServeMux of the API would route it elsewhere or read other path values.
func checkPublishRoute(t *testing.T, r *http.Request) bool {
	t.Helper()
	p, d, ok := publishRoute(r)
	if !ok {
		return false
	}
	a := newEnvAPI()
	if _, pattern := a.mux.Handler(r); pattern != publishPattern {
		t.Errorf("%s %s: the fast path takes it, the ServeMux routes it to %q", r.Method, r.URL, pattern)
		return true
	}
	var gotP, gotD string
	mux := http.NewServeMux()
	mux.HandleFunc(publishPattern, func(_ http.ResponseWriter, r *http.Request) {
		gotP, gotD = r.PathValue("p"), r.PathValue("d")
	})
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if gotP != p || gotD != d {
		t.Errorf("%s %s: the fast path reads p=%q d=%q, the ServeMux p=%q d=%q", r.Method, r.URL, p, d, gotP, gotD)
	}
	return true
}

// newEnvAPI returns the api of a Server with every optional route.
func newEnvAPI() *api {
	return (&Server{Connectors: newFakeConnectors(), Devices: newFakeDevices(), Ingest: &fakeIngester{}}).Handler().(*api)
}
