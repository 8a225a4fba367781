package dcon

import "context"

// MaxPageSize is the largest page a list call returns; it is also the default.
const MaxPageSize = 100

// Page asks for one page of a list: at most Size items (0 means MaxPageSize)
// after the position that Token, from the previous page's NextToken, names.
type Page struct {
	Size  int
	Token string
}

// ConnectorStore keeps data connectors. Errors carry ENOTFOUND for a missing
// connector and ECONFLICT for an existing one.
type ConnectorStore interface {
	CreateConnector(ctx context.Context, c *Connector) error
	Connector(ctx context.Context, projectID, id string) (*Connector, error)
	// ListConnectors returns a project's connectors ordered by id, and the token
	// of the next page ("" on the last).
	ListConnectors(ctx context.Context, projectID string, p Page) ([]*Connector, string, error)
	UpdateConnector(ctx context.Context, c *Connector) error
	DeleteConnector(ctx context.Context, projectID, id string) error
	// AllConnectors returns every connector of every project, for routing.
	AllConnectors(ctx context.Context) ([]*Connector, error)
}

// DeviceStore keeps devices. Errors carry ENOTFOUND for a missing device and
// ECONFLICT for an existing one.
type DeviceStore interface {
	CreateDevice(ctx context.Context, d *Device) error
	Device(ctx context.Context, projectID, id string) (*Device, error)
	// ListDevices returns a project's devices ordered by id, and the token of the
	// next page ("" on the last).
	ListDevices(ctx context.Context, projectID string, p Page) ([]*Device, string, error)
	UpdateDevice(ctx context.Context, d *Device) error
	DeleteDevice(ctx context.Context, projectID, id string) error
}
