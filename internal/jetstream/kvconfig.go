package jetstream

import (
	"context"

	"dcon"
)

// configKey returns <kind>.<projectID>.<id>, or an EINVALID error if either id
// cannot be a token of a key.
func configKey(kind, what, projectID, id string) (string, error) {
	if !validKeyPart(projectID) || !validKeyPart(id) {
		return "", dcon.Errorf(dcon.EINVALID, "invalid %s name projects/%s/%s", what, projectID, id)
	}
	return kind + "." + projectID + "." + id, nil
}

// CreateProject stores a new project, or fails with ECONFLICT.
func (s *Store) CreateProject(ctx context.Context, p *dcon.Project) error {
	if !validKeyPart(p.ID) {
		return dcon.Errorf(dcon.EINVALID, "invalid project name projects/%s", p.ID)
	}
	return s.create(ctx, "p."+p.ID, p, "project", p.Name())
}

// Project returns a project, or fails with ENOTFOUND.
func (s *Store) Project(ctx context.Context, id string) (*dcon.Project, error) {
	if !validKeyPart(id) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid project name projects/%s", id)
	}
	p := new(dcon.Project)
	if err := s.get(ctx, "p."+id, p, "project", "projects/"+id); err != nil {
		return nil, err
	}
	return p, nil
}

// ListProjects returns a page of projects, ordered by id.
func (s *Store) ListProjects(ctx context.Context, p dcon.Page) ([]*dcon.Project, string, error) {
	return page[dcon.Project](s, "p", p)
}

// UpdateProject replaces a project, or fails with ENOTFOUND.
func (s *Store) UpdateProject(ctx context.Context, p *dcon.Project) error {
	if !validKeyPart(p.ID) {
		return dcon.Errorf(dcon.EINVALID, "invalid project name projects/%s", p.ID)
	}
	return s.update(ctx, "p."+p.ID, p, "project", p.Name())
}

// DeleteProject deletes a project with its service accounts and their keys,
// or fails with ENOTFOUND, or with ECONFLICT while the project has data
// connectors or devices, or holds an owner account.
//
// The keys go first (their index entries, so they stop authenticating at
// once), then the accounts, then the project: KV has no multi-key
// transaction, so a failure half way leaves a project with fewer accounts,
// never a key without its account. On one node, a connector or device
// created concurrently is either counted or created after the project is
// gone (cmu); across nodes, the check reads this node's mirror.
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	if !validKeyPart(id) {
		return dcon.Errorf(dcon.EINVALID, "invalid project name projects/%s", id)
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if _, ok, err := s.read(ctx, "p."+id); err != nil {
		return err
	} else if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "project projects/%s not found", id)
	}
	connectors, devices := s.count("c."+id), s.count("v."+id)
	if connectors+devices > 0 {
		return dcon.ProjectInUseError(connectors, devices)
	}
	accounts, err := all[dcon.ServiceAccount](s, "s."+id)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if a.Owner && a.Project == id {
			return dcon.Errorf(dcon.ECONFLICT, "project projects/%s holds the server's owner account %s, which is not deleted with it", id, a.Name())
		}
	}
	for _, a := range accounts {
		if a.Project != id {
			continue
		}
		if err := s.deleteAccount(ctx, a.Project, a.ID); err != nil {
			return err
		}
	}
	return s.remove(ctx, "p."+id, "project", "projects/"+id)
}

// CreateConnector stores a new connector, or fails with ECONFLICT.
func (s *Store) CreateConnector(ctx context.Context, c *dcon.Connector) error {
	k, err := configKey("c", "data connector", c.ProjectID, c.ID)
	if err != nil {
		return err
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.create(ctx, k, c, "data connector", c.Name())
}

// Connector returns a connector, or fails with ENOTFOUND.
func (s *Store) Connector(ctx context.Context, projectID, id string) (*dcon.Connector, error) {
	k, err := configKey("c", "data connector", projectID, id)
	if err != nil {
		return nil, err
	}
	c := new(dcon.Connector)
	if err := s.get(ctx, k, c, "data connector", "projects/"+projectID+"/dataconnectors/"+id); err != nil {
		return nil, err
	}
	return c, nil
}

// ListConnectors returns a page of a project's connectors, ordered by id.
func (s *Store) ListConnectors(ctx context.Context, projectID string, p dcon.Page) ([]*dcon.Connector, string, error) {
	if !validKeyPart(projectID) {
		return nil, "", dcon.Errorf(dcon.EINVALID, "invalid project id %q", projectID)
	}
	return page[dcon.Connector](s, "c."+projectID, p)
}

// UpdateConnector replaces a connector, or fails with ENOTFOUND.
func (s *Store) UpdateConnector(ctx context.Context, c *dcon.Connector) error {
	k, err := configKey("c", "data connector", c.ProjectID, c.ID)
	if err != nil {
		return err
	}
	return s.update(ctx, k, c, "data connector", c.Name())
}

// DeleteConnector deletes a connector, or fails with ENOTFOUND. Its queue is
// the queue's: the caller (ingest.Router) drops it.
func (s *Store) DeleteConnector(ctx context.Context, projectID, id string) error {
	k, err := configKey("c", "data connector", projectID, id)
	if err != nil {
		return err
	}
	return s.remove(ctx, k, "data connector", "projects/"+projectID+"/dataconnectors/"+id)
}

// AllConnectors returns every connector of every project.
func (s *Store) AllConnectors(ctx context.Context) ([]*dcon.Connector, error) {
	return all[dcon.Connector](s, "c.")
}

// CreateDevice stores a new device, or fails with ECONFLICT.
func (s *Store) CreateDevice(ctx context.Context, d *dcon.Device) error {
	k, err := configKey("v", "device", d.ProjectID, d.ID)
	if err != nil {
		return err
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.create(ctx, k, d, "device", d.Name())
}

// Device returns a device, or fails with ENOTFOUND.
func (s *Store) Device(ctx context.Context, projectID, id string) (*dcon.Device, error) {
	k, err := configKey("v", "device", projectID, id)
	if err != nil {
		return nil, err
	}
	d := new(dcon.Device)
	if err := s.get(ctx, k, d, "device", "projects/"+projectID+"/devices/"+id); err != nil {
		return nil, err
	}
	return d, nil
}

// ListDevices returns a page of a project's devices, ordered by id.
func (s *Store) ListDevices(ctx context.Context, projectID string, p dcon.Page) ([]*dcon.Device, string, error) {
	if !validKeyPart(projectID) {
		return nil, "", dcon.Errorf(dcon.EINVALID, "invalid project id %q", projectID)
	}
	return page[dcon.Device](s, "v."+projectID, p)
}

// UpdateDevice replaces a device, or fails with ENOTFOUND.
func (s *Store) UpdateDevice(ctx context.Context, d *dcon.Device) error {
	k, err := configKey("v", "device", d.ProjectID, d.ID)
	if err != nil {
		return err
	}
	return s.update(ctx, k, d, "device", d.Name())
}

// DeleteDevice deletes a device and its latest events, or fails with
// ENOTFOUND.
func (s *Store) DeleteDevice(ctx context.Context, projectID, id string) error {
	k, err := configKey("v", "device", projectID, id)
	if err != nil {
		return err
	}
	if err := s.remove(ctx, k, "device", "projects/"+projectID+"/devices/"+id); err != nil {
		return err
	}
	return s.DeleteLatest(ctx, projectID, id)
}
