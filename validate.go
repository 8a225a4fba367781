package dcon

// ConnectorRules are the server-wide rules a connector must follow.
type ConnectorRules struct {
	// AllowHTTP lets connector URLs use http:// (development mode only).
	AllowHTTP bool
}

// ValidateConnector checks a connector before it is stored.
//
// PLACEHOLDER: being written.
func ValidateConnector(c *Connector, rules ConnectorRules) error { return nil }

// ValidateLabels checks a device's labels.
//
// PLACEHOLDER: being written.
func ValidateLabels(labels map[string]string) error { return nil }
