package pebble

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

// configKey returns <prefix><projectID>/<id>, or an EINVALID error if either id
// cannot be part of a key.
func configKey(prefix, what, projectID, id string) ([]byte, error) {
	if !validKeyPart(projectID) || !validKeyPart(id) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid %s name projects/%s/%s", what, projectID, id)
	}
	return []byte(prefix + projectID + "/" + id), nil
}

// exists reports whether key is set.
func (db *DB) exists(key []byte) (bool, error) {
	e, err := db.engine()
	if err != nil {
		return false, err
	}
	defer e.done()
	_, closer, err := e.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(err, "read %s", key)
	}
	closer.Close()
	return true, nil
}

// put writes v as JSON at key, synced. With mustExist it fails with ENOTFOUND
// if key is not set, otherwise with ECONFLICT if it is.
func (db *DB) put(key []byte, v any, mustExist bool, what, id string) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", what, id, err)
	}
	db.cmu.Lock()
	defer db.cmu.Unlock()
	defer db.cache.drop(key)
	ok, err := db.exists(key)
	switch {
	case err != nil:
		return err
	case mustExist && !ok:
		return dcon.Errorf(dcon.ENOTFOUND, "%s %s not found", what, id)
	case !mustExist && ok:
		return dcon.Errorf(dcon.ECONFLICT, "%s %s already exists", what, id)
	}
	return db.writeSync(fmt.Sprintf("write %s", key), func(_ *engine, b *pebble.Batch) error {
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		return nil
	})
}

// writeSync fills a batch of the current engine with fill and commits it,
// synced, through the engine's guarded commit (a failed Pebble commit answers
// EUNAVAILABLE instead of panicking or wedging the caller). what names the
// write in its error.
func (db *DB) writeSync(what string, fill func(e *engine, b *pebble.Batch) error) error {
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if err := fill(e, b); err != nil {
		return err
	}
	if err := e.commit(b, pebble.Sync); err != nil {
		return unavailable(err, "%s", what)
	}
	return nil
}

// get reads the JSON at key into v, or fails with ENOTFOUND.
func (db *DB) get(key []byte, v any, what, id string) error {
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	val, closer, err := e.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return dcon.Errorf(dcon.ENOTFOUND, "%s %s not found", what, id)
	}
	if err != nil {
		return unavailable(err, "read %s", key)
	}
	defer closer.Close()
	if err := json.Unmarshal(val, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// remove deletes key, synced, or fails with ENOTFOUND naming what and name. If
// connectorID is set, it also deletes that connector's queue and dead letters.
func (db *DB) remove(key []byte, what, name, connectorID string) error {
	db.cmu.Lock()
	defer db.cmu.Unlock()
	defer db.cache.drop(key)
	ok, err := db.exists(key)
	if err != nil {
		return err
	}
	if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "%s %s not found", what, name)
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if err := b.Delete(key, nil); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if connectorID != "" {
		if err := deleteQueue(b, connectorID, true); err != nil {
			return err
		}
		db.qmu.Lock()
		defer db.qmu.Unlock()
	}
	if err := e.commit(b, pebble.Sync); err != nil {
		return unavailable(err, "delete %s", key)
	}
	return nil
}

// list returns one page of the JSON values under <prefix><projectID>/, ordered
// by id, and the next page's token.
func list[T any](ctx context.Context, db *DB, prefix, projectID string, p dcon.Page) ([]*T, string, error) {
	if !validKeyPart(projectID) {
		return nil, "", dcon.Errorf(dcon.EINVALID, "invalid project id %q", projectID)
	}
	size := p.Size
	if size <= 0 || size > dcon.MaxPageSize {
		size = dcon.MaxPageSize
	}
	start := []byte(prefix + projectID + "/")
	lower := start
	if p.Token != "" {
		after, err := base64.RawURLEncoding.DecodeString(p.Token)
		// Every id dcon lists (project, connector, device) has the form of a
		// project id; anything else is not a token dcon made.
		if err != nil || !dcon.ValidProjectID(string(after)) {
			return nil, "", dcon.Errorf(dcon.EINVALID, "invalid page token")
		}
		lower = append(append(append([]byte(nil), start...), after...), 0)
	}
	e, err := db.engine()
	if err != nil {
		return nil, "", err
	}
	defer e.done()
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(start)})
	if err != nil {
		return nil, "", unavailable(err, "list %s", start)
	}
	defer it.Close()
	var out []*T
	var next string
	var lastID []byte
	for valid := it.First(); valid; valid = it.Next() {
		if len(out) == size {
			// There is one more: the page ends at the last one taken.
			next = base64.RawURLEncoding.EncodeToString(lastID)
			break
		}
		v := new(T)
		if err := json.Unmarshal(it.Value(), v); err != nil {
			return nil, "", fmt.Errorf("decode %s: %w", it.Key(), err)
		}
		out = append(out, v)
		lastID = append(lastID[:0], it.Key()[len(start):]...)
	}
	if err := it.Error(); err != nil {
		return nil, "", unavailable(err, "list %s", start)
	}
	return out, next, nil
}

// CreateConnector stores a new connector, or fails with ECONFLICT.
func (db *DB) CreateConnector(ctx context.Context, c *dcon.Connector) error {
	key, err := configKey(prefixConnector, "data connector", c.ProjectID, c.ID)
	if err != nil {
		return err
	}
	return db.put(key, c, false, "data connector", c.Name())
}

// Connector returns a connector, or fails with ENOTFOUND.
func (db *DB) Connector(ctx context.Context, projectID, id string) (*dcon.Connector, error) {
	key, err := configKey(prefixConnector, "data connector", projectID, id)
	if err != nil {
		return nil, err
	}
	c := new(dcon.Connector)
	if err := db.get(key, c, "data connector", "projects/"+projectID+"/dataconnectors/"+id); err != nil {
		return nil, err
	}
	return c, nil
}

// ListConnectors returns a page of a project's connectors, ordered by id.
func (db *DB) ListConnectors(ctx context.Context, projectID string, p dcon.Page) ([]*dcon.Connector, string, error) {
	return list[dcon.Connector](ctx, db, prefixConnector, projectID, p)
}

// UpdateConnector replaces a connector, or fails with ENOTFOUND.
func (db *DB) UpdateConnector(ctx context.Context, c *dcon.Connector) error {
	key, err := configKey(prefixConnector, "data connector", c.ProjectID, c.ID)
	if err != nil {
		return err
	}
	return db.put(key, c, true, "data connector", c.Name())
}

// DeleteConnector deletes a connector with its queue and dead letters, or
// fails with ENOTFOUND.
func (db *DB) DeleteConnector(ctx context.Context, projectID, id string) error {
	key, err := configKey(prefixConnector, "data connector", projectID, id)
	if err != nil {
		return err
	}
	return db.remove(key, "data connector", "projects/"+projectID+"/dataconnectors/"+id, id)
}

// AllConnectors returns every connector of every project.
func (db *DB) AllConnectors(ctx context.Context) ([]*dcon.Connector, error) {
	e, err := db.engine()
	if err != nil {
		return nil, err
	}
	defer e.done()
	start := []byte(prefixConnector)
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: start, UpperBound: prefixEnd(start)})
	if err != nil {
		return nil, unavailable(err, "list connectors")
	}
	defer it.Close()
	var out []*dcon.Connector
	for valid := it.First(); valid; valid = it.Next() {
		c := new(dcon.Connector)
		if err := json.Unmarshal(it.Value(), c); err != nil {
			return nil, fmt.Errorf("decode %s: %w", it.Key(), err)
		}
		out = append(out, c)
	}
	if err := it.Error(); err != nil {
		return nil, unavailable(err, "list connectors")
	}
	return out, nil
}

// CreateDevice stores a new device, or fails with ECONFLICT.
func (db *DB) CreateDevice(ctx context.Context, d *dcon.Device) error {
	key, err := configKey(prefixDevice, "device", d.ProjectID, d.ID)
	if err != nil {
		return err
	}
	return db.put(key, d, false, "device", d.Name())
}

// Device returns a device, or fails with ENOTFOUND.
func (db *DB) Device(ctx context.Context, projectID, id string) (*dcon.Device, error) {
	key, err := configKey(prefixDevice, "device", projectID, id)
	if err != nil {
		return nil, err
	}
	v, gen, ok := db.cache.lookup(key)
	if ok {
		return cloneDevice(v.(*dcon.Device)), nil
	}
	d := new(dcon.Device)
	if err := db.get(key, d, "device", "projects/"+projectID+"/devices/"+id); err != nil {
		return nil, err
	}
	db.cache.fill(key, cloneDevice(d), gen)
	return d, nil
}

// ListDevices returns a page of a project's devices, ordered by id.
func (db *DB) ListDevices(ctx context.Context, projectID string, p dcon.Page) ([]*dcon.Device, string, error) {
	return list[dcon.Device](ctx, db, prefixDevice, projectID, p)
}

// UpdateDevice replaces a device, or fails with ENOTFOUND.
func (db *DB) UpdateDevice(ctx context.Context, d *dcon.Device) error {
	key, err := configKey(prefixDevice, "device", d.ProjectID, d.ID)
	if err != nil {
		return err
	}
	return db.put(key, d, true, "device", d.Name())
}

// DeleteDevice deletes a device, or fails with ENOTFOUND.
func (db *DB) DeleteDevice(ctx context.Context, projectID, id string) error {
	key, err := configKey(prefixDevice, "device", projectID, id)
	if err != nil {
		return err
	}
	if err := db.remove(key, "device", "projects/"+projectID+"/devices/"+id, ""); err != nil {
		return err
	}
	// Its latest events go too. A crash in between leaves them orphaned, which
	// is harmless: :sync walks devices, not latest events.
	return db.DeleteLatest(ctx, projectID, id)
}
