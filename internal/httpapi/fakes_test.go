package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/xid"

	"dcon"
)

// fakeConnectors is an in-memory dcon.ConnectorStore. When err is set, every
// call fails with it.
type fakeConnectors struct {
	mu     sync.Mutex
	m      map[string]*dcon.Connector // by project/id
	err    error
	writes int // successful creates, updates and deletes
}

func newFakeConnectors() *fakeConnectors { return &fakeConnectors{m: map[string]*dcon.Connector{}} }

func (f *fakeConnectors) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeConnectors) CreateConnector(_ context.Context, c *dcon.Connector) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := c.ProjectID + "/" + c.ID
	if _, ok := f.m[k]; ok {
		return dcon.Errorf(dcon.ECONFLICT, "already exists")
	}
	f.m[k] = c.Clone()
	f.writes++
	return nil
}

func (f *fakeConnectors) Connector(_ context.Context, projectID, id string) (*dcon.Connector, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	c, ok := f.m[projectID+"/"+id]
	if !ok {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "data connector not found")
	}
	return c.Clone(), nil
}

func (f *fakeConnectors) ListConnectors(_ context.Context, projectID string, p dcon.Page) ([]*dcon.Connector, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, "", f.err
	}
	var all []*dcon.Connector
	for _, c := range f.m {
		if c.ProjectID == projectID {
			all = append(all, c.Clone())
		}
	}
	slices.SortFunc(all, func(a, b *dcon.Connector) int { return cmpString(a.ID, b.ID) })
	return paginate(all, p, func(c *dcon.Connector) string { return c.ID })
}

func (f *fakeConnectors) UpdateConnector(_ context.Context, c *dcon.Connector) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := c.ProjectID + "/" + c.ID
	if _, ok := f.m[k]; !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "data connector not found")
	}
	f.m[k] = c.Clone()
	f.writes++
	return nil
}

func (f *fakeConnectors) DeleteConnector(_ context.Context, projectID, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := projectID + "/" + id
	if _, ok := f.m[k]; !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "data connector not found")
	}
	delete(f.m, k)
	f.writes++
	return nil
}

func (f *fakeConnectors) AllConnectors(context.Context) ([]*dcon.Connector, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []*dcon.Connector
	for _, c := range f.m {
		all = append(all, c.Clone())
	}
	return all, f.err
}

// get returns a stored connector, nil when there is none.
func (f *fakeConnectors) get(projectID, id string) *dcon.Connector {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.m[projectID+"/"+id]; ok {
		return c.Clone()
	}
	return nil
}

func (f *fakeConnectors) writeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// fakeDevices is an in-memory dcon.DeviceStore. When err is set, every call
// fails with it.
type fakeDevices struct {
	mu     sync.Mutex
	m      map[string]*dcon.Device // by project/id
	err    error
	writes int
}

func newFakeDevices() *fakeDevices { return &fakeDevices{m: map[string]*dcon.Device{}} }

func (f *fakeDevices) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func cloneDevice(d *dcon.Device) *dcon.Device {
	n := *d
	n.Labels = maps.Clone(d.Labels)
	return &n
}

func (f *fakeDevices) CreateDevice(_ context.Context, d *dcon.Device) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := d.ProjectID + "/" + d.ID
	if _, ok := f.m[k]; ok {
		return dcon.Errorf(dcon.ECONFLICT, "already exists")
	}
	f.m[k] = cloneDevice(d)
	f.writes++
	return nil
}

func (f *fakeDevices) Device(_ context.Context, projectID, id string) (*dcon.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	d, ok := f.m[projectID+"/"+id]
	if !ok {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "device not found")
	}
	return cloneDevice(d), nil
}

func (f *fakeDevices) ListDevices(_ context.Context, projectID string, p dcon.Page) ([]*dcon.Device, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, "", f.err
	}
	var all []*dcon.Device
	for _, d := range f.m {
		if d.ProjectID == projectID {
			all = append(all, cloneDevice(d))
		}
	}
	slices.SortFunc(all, func(a, b *dcon.Device) int { return cmpString(a.ID, b.ID) })
	return paginate(all, p, func(d *dcon.Device) string { return d.ID })
}

func (f *fakeDevices) UpdateDevice(_ context.Context, d *dcon.Device) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := d.ProjectID + "/" + d.ID
	if _, ok := f.m[k]; !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "device not found")
	}
	f.m[k] = cloneDevice(d)
	f.writes++
	return nil
}

func (f *fakeDevices) DeleteDevice(_ context.Context, projectID, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	k := projectID + "/" + id
	if _, ok := f.m[k]; !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "device not found")
	}
	delete(f.m, k)
	f.writes++
	return nil
}

func (f *fakeDevices) get(projectID, id string) *dcon.Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.m[projectID+"/"+id]; ok {
		return cloneDevice(d)
	}
	return nil
}

func (f *fakeDevices) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// paginate returns the page p of items, sorted by key; the token is the key of
// the last item of the previous page.
func paginate[T any](items []T, p dcon.Page, key func(T) string) ([]T, string, error) {
	if p.Token != "" && !dcon.ValidID(p.Token) && !dcon.ValidDeviceID(p.Token) {
		return nil, "", dcon.Errorf(dcon.EINVALID, "invalid page token")
	}
	size := p.Size
	if size == 0 {
		size = dcon.MaxPageSize
	}
	start := 0
	for start < len(items) && p.Token != "" && key(items[start]) <= p.Token {
		start++
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = key(items[end-1])
	}
	return items[start:end], next, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// published is one call of fakeIngester.Publish.
type published struct {
	ProjectID, DeviceID string
	Type                dcon.EventType
	Data                string
}

// fakeIngester publishes into a list and changes labels in a fakeDevices. When
// err is set, every call fails with it.
type fakeIngester struct {
	devices *fakeDevices
	now     time.Time

	mu        sync.Mutex
	published []published
	labels    []map[string]string // every SetDeviceLabels call
	err       error
}

func (f *fakeIngester) Publish(ctx context.Context, projectID, deviceID string, t dcon.EventType, data json.RawMessage) (*dcon.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	d, err := f.devices.Device(ctx, projectID, deviceID)
	if err != nil {
		return nil, err
	}
	if !d.Type.Emits(t) {
		return nil, dcon.Errorf(dcon.EINVALID, "a %s device does not send %s events", d.Type, t)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return nil, dcon.Errorf(dcon.EINVALID, "bad data")
	}
	f.published = append(f.published, published{projectID, deviceID, t, compact.String()})
	return &dcon.Event{
		ID:         xid.New().String(),
		TargetName: d.Name(),
		Type:       t,
		Data:       []byte(`{"` + string(t) + `":` + compact.String() + `}`),
		Timestamp:  f.now,
	}, nil
}

func (f *fakeIngester) SetDeviceLabels(ctx context.Context, projectID, deviceID string, labels map[string]string) (*dcon.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	d, err := f.devices.Device(ctx, projectID, deviceID)
	if err != nil {
		return nil, err
	}
	d.Labels = maps.Clone(labels)
	d.UpdateTime = f.now
	if err := f.devices.UpdateDevice(ctx, d); err != nil {
		return nil, err
	}
	f.labels = append(f.labels, maps.Clone(labels))
	return d, nil
}

func (f *fakeIngester) publishes() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.published)
}

func (f *fakeIngester) labelCalls() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.labels)
}

// PublishBatch publishes each request as Publish does, each on its own.
func (f *fakeIngester) PublishBatch(ctx context.Context, projectID string, reqs []dcon.PublishRequest) []dcon.PublishResult {
	results := make([]dcon.PublishResult, len(reqs))
	for i, r := range reqs {
		results[i].Event, results[i].Err = f.Publish(ctx, projectID, r.DeviceID, r.Type, r.Data)
	}
	return results
}

// Sync re-sends nothing; it fails with err when set.
func (f *fakeIngester) Sync(ctx context.Context, projectID, connectorID string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 0, f.err
}
