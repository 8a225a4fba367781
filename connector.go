package dcon

import "time"

// ConnectorType is the kind of a data connector. Only HTTP_PUSH exists.
type ConnectorType string

// ConnectorHTTPPush POSTs every event to an HTTPS endpoint.
const ConnectorHTTPPush ConnectorType = "HTTP_PUSH"

// ConnectorStatus says whether a connector receives events.
type ConnectorStatus string

const (
	// StatusActive connectors receive every matching event.
	StatusActive ConnectorStatus = "ACTIVE"
	// StatusUserDisabled connectors were disabled by a user: they receive nothing
	// and their queued events were dropped.
	StatusUserDisabled ConnectorStatus = "USER_DISABLED"
	// StatusSystemDisabled connectors failed continuously for too long and were
	// disabled by dcon. Users cannot set this status.
	StatusSystemDisabled ConnectorStatus = "SYSTEM_DISABLED"
)

// HTTPConfig says where and how a connector sends its events.
type HTTPConfig struct {
	URL             string            `json:"url"`
	SignatureSecret string            `json:"signatureSecret"`
	Headers         map[string]string `json:"headers"`
	// AsymmetricSignatureOff turns off DT-Asymmetric-Signature, the ES256 JWT
	// sent on every request by default (the API shows it as
	// httpConfig.asymmetricSignature, true unless turned off). It is the
	// costliest part of an attempt; connectors whose receivers check only
	// X-Dt-Signature may save it.
	AsymmetricSignatureOff bool `json:"asymmetricSignatureOff,omitempty"`
	// StandardWebhookSecrets are Standard Webhooks secrets ("whsec_" and
	// base64). When any is set, every request carries webhook-id,
	// webhook-timestamp and webhook-signature, one signature per secret, so a
	// secret can be rotated. At most MaxStandardWebhookSecrets.
	StandardWebhookSecrets []string `json:"standardWebhookSecrets,omitempty"`
}

// Connector is a data connector: a subscription of one endpoint to some of a
// project's events.
type Connector struct {
	ProjectID   string          `json:"projectId"`
	ID          string          `json:"id"`
	DisplayName string          `json:"displayName"`
	Type        ConnectorType   `json:"type"`
	Status      ConnectorStatus `json:"status"`
	// StatusReason says why dcon set the status (SYSTEM_DISABLED); "" otherwise.
	StatusReason string      `json:"statusReason,omitempty"`
	Events       []EventType `json:"events"` // empty: every event type
	Labels       []string    `json:"labels"` // device label keys copied into each body
	HTTP         HTTPConfig  `json:"httpConfig"`
	CreateTime   time.Time   `json:"createTime"`
	UpdateTime   time.Time   `json:"updateTime"`
}

// Name is the connector's resource name, "projects/{p}/dataconnectors/{d}".
func (c *Connector) Name() string { return "projects/" + c.ProjectID + "/dataconnectors/" + c.ID }

// Wants reports whether the connector's event filter takes events of type t.
func (c *Connector) Wants(t EventType) bool {
	if len(c.Events) == 0 {
		return true
	}
	for _, e := range c.Events {
		if e == t {
			return true
		}
	}
	return false
}

// Clone returns a deep copy of c.
func (c *Connector) Clone() *Connector {
	n := *c
	n.Events = append([]EventType(nil), c.Events...)
	n.Labels = append([]string(nil), c.Labels...)
	n.HTTP.Headers = make(map[string]string, len(c.HTTP.Headers))
	for k, v := range c.HTTP.Headers {
		n.HTTP.Headers[k] = v
	}
	n.HTTP.StandardWebhookSecrets = append([]string(nil), c.HTTP.StandardWebhookSecrets...)
	return &n
}
