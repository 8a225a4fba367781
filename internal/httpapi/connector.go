package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/xid"

	"dcon"
)

// connectorResource is a data connector as the API shows it (contract section
// 4): every member always present, empty ones included.
type connectorResource struct {
	Name        string               `json:"name"`
	DisplayName string               `json:"displayName"`
	Type        dcon.ConnectorType   `json:"type"`
	Status      dcon.ConnectorStatus `json:"status"`
	// StatusReason (additive) says why dcon disabled the connector.
	StatusReason string             `json:"statusReason,omitempty"`
	Events       []dcon.EventType   `json:"events"`
	Labels       []string           `json:"labels"`
	HTTPConfig   httpConfigResource `json:"httpConfig"`
	CreateTime   string             `json:"createTime"`
	UpdateTime   string             `json:"updateTime"`
	// FlowControl (additive, read-only) is the delivery engine's flow
	// control state of the connector, in GET and list answers.
	FlowControl *flowControlResource `json:"flowControl,omitempty"`
}

// FlowReader tells a connector's flow control state; the delivery engine
// implements it.
type FlowReader interface {
	Flow(connectorID string) dcon.FlowState
}

// durationJSON writes d as a JSON Duration, in seconds to the microsecond:
// "0.000412s".
func durationJSON(d time.Duration) string {
	return strconv.FormatFloat(d.Round(time.Microsecond).Seconds(), 'f', -1, 64) + "s"
}

// flowControlResource is dcon.FlowState as the API shows it.
type flowControlResource struct {
	State               dcon.FlowMode    `json:"state"`
	Window              int              `json:"window"`
	DrainWindow         int              `json:"drainWindow"`
	InFlight            int              `json:"inFlight"`
	Backlog             dcon.FlowBacklog `json:"backlog"`
	PausedUntil         string           `json:"pausedUntil,omitempty"`
	ConsecutiveFailures int              `json:"consecutiveFailures"`
	// RoundTrip and LeastRoundTrip are durations ("0.004s"), absent before
	// the first success.
	RoundTrip      string `json:"roundTrip,omitempty"`
	LeastRoundTrip string `json:"leastRoundTrip,omitempty"`
}

type httpConfigResource struct {
	URL string `json:"url"`
	// SignatureSecret is write-only: always "" in answers, but present, since
	// the original client reads it unchecked. SignatureSecretSet (additive)
	// says whether the connector has one.
	SignatureSecret    string            `json:"signatureSecret"`
	SignatureSecretSet bool              `json:"signatureSecretSet"`
	Headers            map[string]string `json:"headers"`
	// AsymmetricSignature (additive) says whether requests carry
	// DT-Asymmetric-Signature; true unless turned off.
	AsymmetricSignature bool `json:"asymmetricSignature"`
	// StandardWebhookSecrets (additive) are the whsec_ secrets of the
	// Standard Webhooks signature, masked (see maskWhsec); [] when it is off.
	StandardWebhookSecrets []string `json:"standardWebhookSecrets"`
}

// whsecMaskPrefix starts a masked Standard Webhooks secret: "whsec_****" and
// the first 8 hex digits of the SHA-256 of the whole secret. "*" is not
// base64, so a mask is never a valid secret and can be told from one.
const whsecMaskPrefix = "whsec_****"

// maskWhsec is how answers show a Standard Webhooks secret: enough to tell
// which of a receiver's secrets it is, nothing to sign with.
func maskWhsec(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return whsecMaskPrefix + hex.EncodeToString(sum[:4])
}

// unmaskWhsecs replaces, in secrets, each mask by the secret of old it
// stands for, so that a client can send back the list it read, with a secret
// added or removed. A mask that matches none of old is refused.
func unmaskWhsecs(secrets, old []string) error {
	for i, s := range secrets {
		if !strings.HasPrefix(s, whsecMaskPrefix) {
			continue
		}
		found := false
		for _, o := range old {
			if maskWhsec(o) == s {
				secrets[i], found = o, true
				break
			}
		}
		if !found {
			return dcon.Errorf(dcon.EINVALID, "%s[%d]: a masked secret this data connector does not have; send the secret itself", pathStandardSecrets, i)
		}
	}
	return nil
}

// connectorResource returns c as the API shows it, with its flow control
// state when the server knows it.
func (a *api) connectorResource(c *dcon.Connector) connectorResource {
	r := newConnectorResource(c)
	if a.flow != nil {
		s := a.flow.Flow(c.ID)
		r.FlowControl = &flowControlResource{State: s.Mode, Window: s.Window, DrainWindow: s.DrainWindow,
			InFlight: s.InFlight, Backlog: s.Backlog, ConsecutiveFailures: s.ConsecutiveFailures}
		if s.RoundTrip > 0 {
			r.FlowControl.RoundTrip, r.FlowControl.LeastRoundTrip = durationJSON(s.RoundTrip), durationJSON(s.LeastRoundTrip)
		}
		if !s.PausedUntil.IsZero() {
			r.FlowControl.PausedUntil = dcon.FormatTime(s.PausedUntil)
		}
	}
	return r
}

func newConnectorResource(c *dcon.Connector) connectorResource {
	r := connectorResource{
		Name:         c.Name(),
		DisplayName:  c.DisplayName,
		Type:         c.Type,
		Status:       c.Status,
		StatusReason: c.StatusReason,
		Events:       c.Events,
		Labels:       c.Labels,
		HTTPConfig: httpConfigResource{
			URL:                    c.HTTP.URL,
			SignatureSecretSet:     c.HTTP.SignatureSecret != "",
			Headers:                c.HTTP.Headers,
			AsymmetricSignature:    !c.HTTP.AsymmetricSignatureOff,
			StandardWebhookSecrets: make([]string, len(c.HTTP.StandardWebhookSecrets)),
		},
		CreateTime: dcon.FormatTime(c.CreateTime),
		UpdateTime: dcon.FormatTime(c.UpdateTime),
	}
	if r.Events == nil {
		r.Events = []dcon.EventType{}
	}
	if r.Labels == nil {
		r.Labels = []string{}
	}
	if r.HTTPConfig.Headers == nil {
		r.HTTPConfig.Headers = map[string]string{}
	}
	for i, s := range c.HTTP.StandardWebhookSecrets {
		r.HTTPConfig.StandardWebhookSecrets[i] = maskWhsec(s)
	}
	return r
}

// connectorFields is a data connector as a client sends it. Members are kept
// raw so that a present member (null included) can be told from an absent one.
// name, createTime and updateTime are output only: accepted and ignored.
type connectorFields struct {
	Name        json.RawMessage `json:"name"`
	DisplayName json.RawMessage `json:"displayName"`
	Type        json.RawMessage `json:"type"`
	Status      json.RawMessage `json:"status"`
	Events      json.RawMessage `json:"events"`
	Labels      json.RawMessage `json:"labels"`
	HTTPConfig  json.RawMessage `json:"httpConfig"`
	CreateTime  json.RawMessage `json:"createTime"`
	UpdateTime  json.RawMessage `json:"updateTime"`
	// StatusReason is output only, accepted and ignored like name, so that a
	// client can send back a disabled connector as it read it.
	StatusReason json.RawMessage `json:"statusReason"`
}

type httpConfigFields struct {
	URL                    json.RawMessage `json:"url"`
	SignatureSecret        json.RawMessage `json:"signatureSecret"`
	Headers                json.RawMessage `json:"headers"`
	AsymmetricSignature    json.RawMessage `json:"asymmetricSignature"`
	StandardWebhookSecrets json.RawMessage `json:"standardWebhookSecrets"`
	// SignatureSecretSet is output only: accepted and ignored, so that a
	// client can send back a connector as it read it.
	SignatureSecretSet json.RawMessage `json:"signatureSecretSet"`
}

// The paths of a connector that a request can set, as in update_mask.
const (
	pathDisplayName     = "displayName"
	pathType            = "type"
	pathStatus          = "status"
	pathEvents          = "events"
	pathLabels          = "labels"
	pathHTTPConfig      = "httpConfig"
	pathURL             = "httpConfig.url"
	pathSignatureSecret = "httpConfig.signatureSecret"
	pathHeaders         = "httpConfig.headers"
	pathAsymmetric      = "httpConfig.asymmetricSignature"
	pathStandardSecrets = "httpConfig.standardWebhookSecrets"
)

// presentPaths lists the paths whose members are present in f and hc.
func presentPaths(f *connectorFields, hc *httpConfigFields) []string {
	var paths []string
	add := func(raw json.RawMessage, path string) {
		if raw != nil {
			paths = append(paths, path)
		}
	}
	add(f.DisplayName, pathDisplayName)
	add(f.Type, pathType)
	add(f.Status, pathStatus)
	add(f.Events, pathEvents)
	add(f.Labels, pathLabels)
	add(hc.URL, pathURL)
	add(hc.SignatureSecret, pathSignatureSecret)
	add(hc.Headers, pathHeaders)
	add(hc.AsymmetricSignature, pathAsymmetric)
	add(hc.StandardWebhookSecrets, pathStandardSecrets)
	return paths
}

// updateMask reads the update_mask (or updateMask) query parameter: nil when
// there is none, else its paths, "httpConfig" expanded to its members.
func updateMask(r *http.Request) ([]string, error) {
	q := r.URL.Query()
	values := q["update_mask"]
	if len(values) == 0 {
		values = q["updateMask"]
	}
	var paths []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			switch p = strings.TrimSpace(p); p {
			case "":
			case pathHTTPConfig:
				paths = append(paths, pathURL, pathSignatureSecret, pathHeaders, pathAsymmetric, pathStandardSecrets)
			case pathDisplayName, pathType, pathStatus, pathEvents, pathLabels, pathURL, pathSignatureSecret, pathHeaders,
				pathAsymmetric, pathStandardSecrets:
				paths = append(paths, p)
			default:
				return nil, dcon.Errorf(dcon.EINVALID, "unknown update_mask path %q", p)
			}
		}
	}
	return paths, nil
}

// decodeConnector reads a connector request body.
func (a *api) decodeConnector(w http.ResponseWriter, r *http.Request) (*connectorFields, *httpConfigFields, error) {
	body, err := a.readBody(w, r)
	if err != nil {
		return nil, nil, err
	}
	var f connectorFields
	if err := decodeObject(body, &f); err != nil {
		return nil, nil, err
	}
	var hc httpConfigFields
	if err := setField(pathHTTPConfig, f.HTTPConfig, &hc); err != nil {
		return nil, nil, err
	}
	return &f, &hc, nil
}

// applyConnector sets the given paths of c from f and hc; a path whose member
// is absent is cleared. type cannot change; status cannot become
// SYSTEM_DISABLED, and cleared it is ACTIVE; asymmetricSignature cleared (or
// null) is true.
func applyConnector(c *dcon.Connector, f *connectorFields, hc *httpConfigFields, paths []string) error {
	for _, p := range paths {
		var err error
		switch p {
		case pathDisplayName:
			err = setField(p, f.DisplayName, &c.DisplayName)
		case pathType:
			var t dcon.ConnectorType
			if err = setField(p, f.Type, &t); err == nil && t != c.Type {
				err = dcon.Errorf(dcon.EINVALID, "type cannot be changed (it is %s)", c.Type)
			}
		case pathStatus:
			err = applyStatus(c, f.Status)
		case pathEvents:
			err = setField(p, f.Events, &c.Events)
		case pathLabels:
			err = setField(p, f.Labels, &c.Labels)
		case pathURL:
			err = setField(p, hc.URL, &c.HTTP.URL)
		case pathSignatureSecret:
			err = setField(p, hc.SignatureSecret, &c.HTTP.SignatureSecret)
		case pathHeaders:
			err = setField(p, hc.Headers, &c.HTTP.Headers)
		case pathAsymmetric:
			var on *bool
			if err = setField(p, hc.AsymmetricSignature, &on); err == nil {
				c.HTTP.AsymmetricSignatureOff = on != nil && !*on
			}
		case pathStandardSecrets:
			old := c.HTTP.StandardWebhookSecrets
			if err = setField(p, hc.StandardWebhookSecrets, &c.HTTP.StandardWebhookSecrets); err == nil {
				err = unmaskWhsecs(c.HTTP.StandardWebhookSecrets, old)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyStatus sets c's status from raw: users may set ACTIVE or USER_DISABLED;
// SYSTEM_DISABLED only stays as it is.
func applyStatus(c *dcon.Connector, raw json.RawMessage) error {
	var s dcon.ConnectorStatus
	if err := setField(pathStatus, raw, &s); err != nil {
		return err
	}
	switch s {
	case "":
		s = dcon.StatusActive
	case dcon.StatusActive, dcon.StatusUserDisabled:
	case dcon.StatusSystemDisabled:
		if c.Status != dcon.StatusSystemDisabled {
			return dcon.Errorf(dcon.EINVALID, "status SYSTEM_DISABLED is set by dcon only: use ACTIVE or USER_DISABLED")
		}
	default:
		return dcon.Errorf(dcon.EINVALID, "unknown status %q: use ACTIVE or USER_DISABLED", s)
	}
	c.Status = s
	if s != dcon.StatusSystemDisabled {
		c.StatusReason = "" // dcon's reason for SYSTEM_DISABLED; gone once a user sets the status
	}
	return nil
}

// validate checks c against the server's rules, its URL's host resolved when
// the rules say how. A failure is the client's.
func (a *api) validate(ctx context.Context, c *dcon.Connector) error {
	err := dcon.ValidateConnector(c, a.rules)
	if err == nil {
		err = dcon.CheckConnectorDestination(ctx, c, a.rules)
	}
	var e *dcon.Error
	if err != nil && !errors.As(err, &e) {
		return dcon.WrapError(dcon.EINVALID, err, "invalid data connector: %v", err)
	}
	return err
}

// keepSecretOnEcho drops httpConfig.signatureSecret from the paths of a PATCH
// without update_mask when the body sends it as "" or null: answers show the
// secret as "", so a client sending back what it read would otherwise clear
// it. Clearing takes update_mask=httpConfig.signatureSecret.
func keepSecretOnEcho(paths []string, hc *httpConfigFields) []string {
	var s *string
	if err := setField(pathSignatureSecret, hc.SignatureSecret, &s); err != nil || s != nil && *s != "" {
		return paths
	}
	return slices.DeleteFunc(paths, func(p string) bool { return p == pathSignatureSecret })
}

// connectorIDs reads and checks the project and connector ids of the path. An
// id that cannot exist is not found. verb is the custom method, if any.
func (a *api) connectorIDs(r *http.Request) (projectID, id, verb string, err error) {
	if projectID, err = a.projectID(r); err != nil {
		return "", "", "", err
	}
	id, verb = splitVerb(r.PathValue("d"))
	if !dcon.ValidID(id) {
		return "", "", "", dcon.Errorf(dcon.ENOTFOUND, "data connector %q not found", id)
	}
	return projectID, id, verb, nil
}

// projectID reads the project id of the path and checks that the project
// exists (when the server has a project store).
func (a *api) projectID(r *http.Request) (string, error) {
	return a.checkProjectID(r, r.PathValue("p"))
}

// checkProjectID is projectID for p, the value of the path's {p}.
func (a *api) checkProjectID(r *http.Request, p string) (string, error) {
	if !dcon.ValidProjectID(p) {
		return "", dcon.Errorf(dcon.ENOTFOUND, "project %q not found", p)
	}
	if a.projects != nil {
		if _, err := a.projects.Project(r.Context(), p); err != nil {
			return "", err
		}
	}
	return p, nil
}

// connectorVerb answers a custom method that the request's HTTP method does
// not serve: a known one with 405 (:metrics is GET, :sync is POST), others
// with 404. It reports whether it answered.
func (a *api) connectorVerb(w http.ResponseWriter, r *http.Request, verb string) (handled bool) {
	switch verb {
	case "":
		return false
	case "sync":
		a.methodNotAllowed(w, r, http.MethodPost)
	case "metrics":
		a.methodNotAllowed(w, r, "GET, HEAD")
	default:
		a.writeError(w, r, noVerb(verb))
	}
	return true
}

// noVerb refuses a custom method on a route that has none.
func noVerb(verb string) error {
	if verb != "" {
		return dcon.Errorf(dcon.ENOTFOUND, "unknown custom method %q", ":"+verb)
	}
	return nil
}

func (a *api) listConnectors(w http.ResponseWriter, r *http.Request) error {
	return listPage(a, w, r, "dataConnectors", a.connectors.ListConnectors, a.connectorResource)
}

func (a *api) createConnector(w http.ResponseWriter, r *http.Request) error {
	p, err := a.projectID(r)
	if err != nil {
		return err
	}
	f, hc, err := a.decodeConnector(w, r)
	if err != nil {
		return err
	}
	now := a.now()
	c := &dcon.Connector{
		ProjectID:  p,
		ID:         xid.New().String(),
		Status:     dcon.StatusActive,
		CreateTime: now,
		UpdateTime: now,
	}
	if err := setField(pathType, f.Type, &c.Type); err != nil {
		return err
	}
	if c.Type == "" {
		return dcon.Errorf(dcon.EINVALID, "field %q is required: use %s", pathType, dcon.ConnectorHTTPPush)
	}
	if err := applyConnector(c, f, hc, presentPaths(f, hc)); err != nil {
		return err
	}
	if err := a.validate(r.Context(), c); err != nil {
		return err
	}
	if err := a.connectors.CreateConnector(r.Context(), c); err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newConnectorResource(c))
}

func (a *api) getConnector(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.connectorIDs(r)
	if err != nil {
		return err
	}
	if verb == "metrics" {
		return a.connectorMetrics(w, r, p, id)
	}
	if a.connectorVerb(w, r, verb) {
		return nil
	}
	c, err := a.connectors.Connector(r.Context(), p, id)
	if err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, a.connectorResource(c))
}

func (a *api) patchConnector(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.connectorIDs(r)
	if err != nil {
		return err
	}
	if a.connectorVerb(w, r, verb) {
		return nil
	}
	mask, err := updateMask(r)
	if err != nil {
		return err
	}
	f, hc, err := a.decodeConnector(w, r)
	if err != nil {
		return err
	}
	if mask == nil {
		mask = keepSecretOnEcho(presentPaths(f, hc), hc)
	}
	old, err := a.connectors.Connector(r.Context(), p, id)
	if err != nil {
		return err
	}
	c := old.Clone()
	if err := applyConnector(c, f, hc, mask); err != nil {
		return err
	}
	if err := a.validate(r.Context(), c); err != nil {
		return err
	}
	c.UpdateTime = a.now()
	if err := a.connectors.UpdateConnector(r.Context(), c); err != nil {
		return err
	}
	return a.respond(w, http.StatusOK, newConnectorResource(c))
}

func (a *api) deleteConnector(w http.ResponseWriter, r *http.Request) error {
	p, id, verb, err := a.connectorIDs(r)
	if err != nil {
		return err
	}
	if a.connectorVerb(w, r, verb) {
		return nil
	}
	if err := a.connectors.DeleteConnector(r.Context(), p, id); err != nil {
		return err
	}
	a.write(w, http.StatusOK, []byte("{}"))
	return nil
}
