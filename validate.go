package dcon

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ConnectorRules are the server-wide rules a connector must follow.
type ConnectorRules struct {
	// AllowHTTP lets connector URLs use http:// (development mode only). It
	// also allows every destination, loopback and private addresses included:
	// in development, receivers run on this machine.
	AllowHTTP bool
	// Destinations says which addresses connector URLs may point to. The zero
	// value is strict: the host of a URL must be a DNS name or a public IP
	// address; Destinations.Allow adds ranges for receivers on premises (dcon
	// serve --allow-destination). See [DestinationPolicy].
	Destinations DestinationPolicy
	// LookupIP, when set, resolves the host of a URL that is a DNS name at
	// creation and update (see [CheckConnectorDestination]); internal/webhook
	// checks it again at every attempt. Nil: names are checked at dial time
	// only.
	LookupIP LookupFunc
}

// destinations is the policy the rules stand for.
func (r ConnectorRules) destinations() DestinationPolicy {
	p := r.Destinations
	p.AllowAll = p.AllowAll || r.AllowHTTP
	return p
}

// Limits on a connector's settings.
const (
	MaxDisplayNameLen     = 256
	MaxConnectorURLLen    = 2048
	MaxSignatureSecretLen = 1024
	MaxConnectorHeaders   = 32
	MaxHeaderNameLen      = 256
	MaxHeaderValueLen     = 8 << 10
	// MaxHeadersBytes bounds a connector's custom headers together: the sum
	// of their names' and values' lengths.
	MaxHeadersBytes = 16 << 10
	// MaxStandardWebhookSecrets is how many Standard Webhooks secrets a
	// connector may have at once: enough for a rotation or two.
	MaxStandardWebhookSecrets = 5
)

// Bounds of the key of a Standard Webhooks secret, in bytes (Standard
// Webhooks v1.0.0); internal/signature.ParseWhsec applies the same.
const (
	minWhsecKeyLen = 24
	maxWhsecKeyLen = 64
)

// ValidateConnector checks a connector before it is stored; the API calls it on
// create and after applying a patch. It returns the first problem found as an
// *Error with code EINVALID whose message names the field, for example
// `httpConfig.headers["X Y"]: not a valid header name`:
//
//   - type is HTTP_PUSH; status is ACTIVE, USER_DISABLED or SYSTEM_DISABLED
//     (whether a user may set SYSTEM_DISABLED is the API's concern);
//   - displayName is valid UTF-8 of at most 256 bytes;
//   - events are known event types, without duplicates;
//   - labels are valid label keys (see [ValidateLabels]), at most [MaxLabels],
//     without duplicates;
//   - httpConfig.url is an absolute https:// URL (http:// too when
//     rules.AllowHTTP) of at most 2048 bytes, with a host and without user
//     information or fragment, whose host is a DNS name other than localhost
//     or a canonical IP address that the rules' [DestinationPolicy] allows
//     (any host when rules.AllowHTTP);
//   - httpConfig.signatureSecret is at most 1024 bytes;
//   - httpConfig.headers are at most 32, their names HTTP tokens (RFC 9110)
//     of at most 256 bytes, distinct case-insensitively and none that the
//     protocol or the signature owns (see [ReservedHeader]); their values at
//     most 8 KiB without control characters other than tab (so no CR or LF);
//     names and values at most 16 KiB together;
//   - httpConfig.standardWebhookSecrets are at most 5, distinct, each "whsec_"
//     followed by the standard base64 of a 24- to 64-byte key.
func ValidateConnector(c *Connector, rules ConnectorRules) error {
	if c == nil {
		return Errorf(EINVALID, "connector: required")
	}
	if c.Type != ConnectorHTTPPush {
		return Errorf(EINVALID, "type: must be %s", ConnectorHTTPPush)
	}
	switch c.Status {
	case StatusActive, StatusUserDisabled, StatusSystemDisabled:
	default:
		return Errorf(EINVALID, "status: must be one of %s, %s, %s", StatusActive, StatusUserDisabled, StatusSystemDisabled)
	}
	if len(c.DisplayName) > MaxDisplayNameLen {
		return Errorf(EINVALID, "displayName: over %d bytes", MaxDisplayNameLen)
	}
	if !utf8.ValidString(c.DisplayName) {
		return Errorf(EINVALID, "displayName: not valid UTF-8")
	}
	for i, t := range c.Events {
		if !t.Valid() {
			return Errorf(EINVALID, "events[%d]: unknown event type %s", i, quoteName(string(t)))
		}
		if slices.Contains(c.Events[:i], t) {
			return Errorf(EINVALID, "events[%d]: duplicate event type %q", i, t)
		}
	}
	if len(c.Labels) > MaxLabels {
		return Errorf(EINVALID, "labels: at most %d label keys", MaxLabels)
	}
	for i, k := range c.Labels {
		if msg := labelKeyProblem(k); msg != "" {
			return Errorf(EINVALID, "labels[%d]: %s", i, msg)
		}
		if slices.Contains(c.Labels[:i], k) {
			return Errorf(EINVALID, "labels[%d]: duplicate label key %s", i, quoteName(k))
		}
	}
	return validateHTTPConfig(&c.HTTP, rules)
}

func validateHTTPConfig(h *HTTPConfig, rules ConnectorRules) error {
	if msg := connectorURLProblem(h.URL, rules); msg != "" {
		return Errorf(EINVALID, "httpConfig.url: %s", msg)
	}
	if len(h.SignatureSecret) > MaxSignatureSecretLen {
		return Errorf(EINVALID, "httpConfig.signatureSecret: over %d bytes", MaxSignatureSecretLen)
	}
	if len(h.Headers) > MaxConnectorHeaders {
		return Errorf(EINVALID, "httpConfig.headers: at most %d headers", MaxConnectorHeaders)
	}
	names := make([]string, 0, len(h.Headers))
	size := 0
	for name, value := range h.Headers {
		names = append(names, name)
		size += len(name) + len(value)
	}
	slices.Sort(names) // the same error for the same headers
	for i, name := range names {
		if msg := headerProblem(name, h.Headers[name]); msg != "" {
			return Errorf(EINVALID, "httpConfig.headers[%s]: %s", quoteName(name), msg)
		}
		for _, prev := range names[:i] {
			if strings.EqualFold(prev, name) {
				return Errorf(EINVALID, "httpConfig.headers[%s]: same header as %s", quoteName(name), quoteName(prev))
			}
		}
	}
	if size > MaxHeadersBytes {
		return Errorf(EINVALID, "httpConfig.headers: over %d bytes of names and values together", MaxHeadersBytes)
	}
	return validateStandardWebhookSecrets(h.StandardWebhookSecrets)
}

// validateStandardWebhookSecrets checks a connector's Standard Webhooks
// secrets. Messages never repeat a secret.
func validateStandardWebhookSecrets(secrets []string) error {
	if len(secrets) > MaxStandardWebhookSecrets {
		return Errorf(EINVALID, "httpConfig.standardWebhookSecrets: at most %d secrets", MaxStandardWebhookSecrets)
	}
	for i, s := range secrets {
		if msg := whsecProblem(s); msg != "" {
			return Errorf(EINVALID, "httpConfig.standardWebhookSecrets[%d]: %s", i, msg)
		}
		if slices.Contains(secrets[:i], s) {
			return Errorf(EINVALID, "httpConfig.standardWebhookSecrets[%d]: duplicate secret", i)
		}
	}
	return nil
}

// whsecProblem says what is wrong with a Standard Webhooks secret, or "".
func whsecProblem(s string) string {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return `must start with "whsec_"`
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return `must be "whsec_" followed by standard base64`
	}
	if len(key) < minWhsecKeyLen || len(key) > maxWhsecKeyLen {
		return "key must be " + strconv.Itoa(minWhsecKeyLen) + " to " + strconv.Itoa(maxWhsecKeyLen) + " bytes, is " + strconv.Itoa(len(key))
	}
	return ""
}

// connectorURLProblem says what is wrong with a connector's URL, or "".
// Messages never repeat the URL, which may hold secrets in its query.
func connectorURLProblem(raw string, rules ConnectorRules) string {
	schemes := "https://"
	if rules.AllowHTTP {
		schemes = "https:// or http://"
	}
	switch {
	case raw == "":
		return "required"
	case len(raw) > MaxConnectorURLLen:
		return "over " + strconv.Itoa(MaxConnectorURLLen) + " bytes"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "not a valid URL"
	case u.Scheme == "":
		return "must be an absolute " + schemes + " URL"
	case u.Scheme != "https" && !(u.Scheme == "http" && rules.AllowHTTP):
		return "must be " + schemes
	case u.Opaque != "" || u.Hostname() == "":
		return "must have a host"
	case u.User != nil:
		return "must not contain user information"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not contain a fragment"
	}
	return rules.destinations().hostProblem(u.Hostname())
}

// urlHost returns the host of a connector URL as a resolver takes it (no
// brackets, no port), or "" when raw does not parse.
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// headerProblem says what is wrong with a custom header, or "".
func headerProblem(name, value string) string {
	switch {
	case !IsHTTPToken(name):
		return "not a valid header name"
	case len(name) > MaxHeaderNameLen:
		return "name over " + strconv.Itoa(MaxHeaderNameLen) + " bytes"
	case ReservedHeader(name):
		return "reserved header: dcon sets it"
	case len(value) > MaxHeaderValueLen:
		return "value over " + strconv.Itoa(MaxHeaderValueLen) + " bytes"
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "value contains a control character"
		}
	}
	return ""
}

// ReservedHeader reports whether a connector may not set header name
// (case-insensitively) because the protocol or dcon's signatures own it.
func ReservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "content-type", "transfer-encoding", "user-agent",
		"connection", "keep-alive", "upgrade", "te", "trailer",
		"x-dt-signature", "dt-asymmetric-signature",
		"webhook-id", "webhook-timestamp", "webhook-signature":
		return true
	}
	return len(name) >= len("proxy-") && strings.EqualFold(name[:len("proxy-")], "proxy-")
}

// IsHTTPToken reports whether s is an HTTP token (RFC 9110, section 5.6.2):
// what a header's name must be.
func IsHTTPToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidateLabels checks a device's labels: at most [MaxLabels]; keys of 1 to
// [MaxLabelKeyLen] bytes, values of at most [MaxLabelValueLen] bytes, both valid
// UTF-8 without control characters. The first problem, in key order, is an
// *Error with code EINVALID naming the label, e.g. `labels["a\n"]: key contains
// a control character`.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return Errorf(EINVALID, "labels: at most %d labels", MaxLabels)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same error for the same labels
	for _, k := range keys {
		if msg := labelKeyProblem(k); msg != "" {
			return Errorf(EINVALID, "labels[%s]: %s", quoteName(k), msg)
		}
		if msg := labelValueProblem(labels[k]); msg != "" {
			return Errorf(EINVALID, "labels[%s]: %s", quoteName(k), msg)
		}
	}
	return nil
}

// labelKeyProblem says what is wrong with a label key, or "".
func labelKeyProblem(k string) string {
	switch {
	case k == "":
		return "key must not be empty"
	case len(k) > MaxLabelKeyLen:
		return "key over " + strconv.Itoa(MaxLabelKeyLen) + " bytes"
	}
	if msg := textProblem(k); msg != "" {
		return "key " + msg
	}
	return ""
}

// labelValueProblem says what is wrong with a label value, or "".
func labelValueProblem(v string) string {
	if len(v) > MaxLabelValueLen {
		return "value over " + strconv.Itoa(MaxLabelValueLen) + " bytes"
	}
	if msg := textProblem(v); msg != "" {
		return "value " + msg
	}
	return ""
}

// textProblem says whether s is not valid UTF-8 or holds a control character.
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
	}
	return ""
}
