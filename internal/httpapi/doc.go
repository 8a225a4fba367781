// Package httpapi serves dcon's /v2 HTTP API: the data connector API (contract
// section 4) and the sensor emulator API (contract section 6).
//
// It works over the seams of the root package — [dcon.ProjectStore],
// [dcon.ConnectorStore], [dcon.DeviceStore] — and over [Ingester] and [MetricsReader], which internal/ingest implements; it
// never imports a store package. cmd/dcon builds a [Server] and mounts its
// [Server.Handler]:
//
//	api := &httpapi.Server{
//		Connectors: connectors, // the routing-aware connector store
//		Devices:    devices,
//		Ingest:     ingester,
//		Rules:      dcon.ConnectorRules{AllowHTTP: insecure},
//		Logger:     logger,
//	}
//	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: api.Handler()}
//
// # Routes
//
//	GET    /v2/projects                                  list (projects, nextPageToken)
//	POST   /v2/projects                                  create
//	GET    /v2/projects/{p}                              read
//	PATCH  /v2/projects/{p}                              update displayName
//	DELETE /v2/projects/{p}                              delete an empty project (409 otherwise)
//	GET    /v2/projects/{p}/dataconnectors               list (dataConnectors, nextPageToken)
//	POST   /v2/projects/{p}/dataconnectors               create
//	GET    /v2/projects/{p}/dataconnectors/{d}           read
//	PATCH  /v2/projects/{p}/dataconnectors/{d}           update (optional update_mask)
//	DELETE /v2/projects/{p}/dataconnectors/{d}           delete, answers {}
//	GET    /v2/projects/{p}/dataconnectors/{d}:metrics   success and error counts, p99, last 3 hours
//	POST   /v2/projects/{p}/dataconnectors/{d}:sync      re-send the latest events, answers {}
//	GET    /v2/projects/{p}/dataconnectors/{d}/deadletters  expired deliveries
//	GET    /v2/projects/{p}/devices                      list (devices, nextPageToken)
//	POST   /v2/projects/{p}/devices                      create an emulated device
//	GET    /v2/projects/{p}/devices/{d}                  read
//	PATCH  /v2/projects/{p}/devices/{d}                  replace labels (labelsChanged event)
//	DELETE /v2/projects/{p}/devices/{d}                  delete, answers {}
//	POST   /v2/projects/{p}/devices/{d}:publish          publish one event, answers its envelope
//	POST   /v2/projects/{p}/devices:batchPublish         publish up to 1000 events
//
//	GET    /v2/projects/{p}/serviceaccounts[/{sa}[/keys[/{k}]]]  service accounts and keys (admin)
//	POST   /oauth2/token                                 OAuth2 JWT-bearer token exchange
//
// [Guard] stands in front of everything: it authenticates (HTTP Basic with a
// key id and secret, or a Bearer token from /oauth2/token) and checks each route
// against the permission it needs on the project in its path; another
// project's resources answer 404. With --dev there is no Guard.
//
// [KeyServer] adds the signing-key documents in front of the API:
// /.well-known/openid-configuration, /.well-known/jwks.json, GET /v2/keys and
// POST /v2/keys:rotate. Every path under a project answers 404 unless the
// project exists (when the Server has a ProjectStore).
//
// Custom methods such as ":publish" are part of the last path segment; the
// handler of the resource splits them off.
//
// # Errors
//
// Every error answer, unknown paths (404) and wrong methods (405, with Allow)
// included, is the contract's JSON body
//
//	{"error":"<message>","code":<HTTP status>,"help":"docs/api.md#errors"}
//
// written by one function from a [*dcon.Error] whose code is mapped to a status
// by one table (statusFor). Internal errors answer "internal error"; their cause
// is logged, never shown.
//
// # Requests
//
// Bodies are JSON (a Content-Type other than application/json answers 415; a
// missing one is accepted), at most Server.MaxBodyBytes (413), one value with no
// trailing data, and no unknown fields. Nothing is stored when a request is
// rejected. Lists take page_size (1–100, default 100, larger values are clamped)
// (or pageSize) and page_token (or pageToken) and answer nextPageToken, "" on
// the last page.
package httpapi
