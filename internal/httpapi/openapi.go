package httpapi

import (
	_ "embed"
	"net/http"
)

// OpenAPIPath is where the API serves its OpenAPI 3.1 document. It is public,
// like /.well-known/*: it is documentation, and tells nothing about any
// project.
const OpenAPIPath = "/v2/openapi.json"

// openAPIDocument describes every route of the /v2 API, the token endpoint
// and the key documents. openapi_test.go checks it against the routes the
// server registers, both ways.
//
//go:embed openapi.json
var openAPIDocument []byte

// routeRegistered is the message of the debug log line that api.handle writes
// for each pattern it registers; its attribute "pattern" holds the pattern.
// It tells an operator which routes a server serves, and lets the OpenAPI test
// read the route list from the servers themselves.
const routeRegistered = "route registered"

// openAPI serves GET /v2/openapi.json: the embedded document, as it is.
func (a *api) openAPI(w http.ResponseWriter, r *http.Request) error {
	a.write(w, http.StatusOK, openAPIDocument)
	return nil
}
