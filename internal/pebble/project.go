package pebble

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

// prefixProject starts the key of every project: p/<projectID>, its value the
// project as JSON. A project's connectors and devices stay under their own
// prefixes (c/<projectID>/, v/<projectID>/).
const prefixProject = "p/"

var _ dcon.ProjectStore = (*DB)(nil)

// projectKey returns p/<id>, or an EINVALID error if id cannot be part of a key.
func projectKey(id string) ([]byte, error) {
	if !validKeyPart(id) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid project name projects/%s", id)
	}
	return []byte(prefixProject + id), nil
}

// CreateProject stores a new project, or fails with ECONFLICT.
func (db *DB) CreateProject(ctx context.Context, p *dcon.Project) error {
	key, err := projectKey(p.ID)
	if err != nil {
		return err
	}
	return db.put(key, p, false, "project", p.Name())
}

// Project returns a project, or fails with ENOTFOUND.
func (db *DB) Project(ctx context.Context, id string) (*dcon.Project, error) {
	key, err := projectKey(id)
	if err != nil {
		return nil, err
	}
	v, gen, ok := db.cache.lookup(key)
	if ok {
		p := *v.(*dcon.Project)
		return &p, nil
	}
	p := new(dcon.Project)
	if err := db.get(key, p, "project", "projects/"+id); err != nil {
		return nil, err
	}
	cached := *p
	db.cache.fill(key, &cached, gen)
	return p, nil
}

// ListProjects returns a page of projects, ordered by id, with the same page
// tokens as the other lists (the base64url form of the last id).
func (db *DB) ListProjects(ctx context.Context, p dcon.Page) ([]*dcon.Project, string, error) {
	// list pages the keys under <prefix><projectID>/: with no prefix and the
	// "project" "p", that is exactly p/.
	return list[dcon.Project](ctx, db, "", strings.TrimSuffix(prefixProject, "/"), p)
}

// UpdateProject replaces a project, or fails with ENOTFOUND.
func (db *DB) UpdateProject(ctx context.Context, p *dcon.Project) error {
	key, err := projectKey(p.ID)
	if err != nil {
		return err
	}
	return db.put(key, p, true, "project", p.Name())
}

// DeleteProject deletes a project together with its service accounts, their
// keys and the keys' index entries, in one synced batch, so that the keys
// (and the access tokens they obtained) stop authenticating at once. It fails
// with ENOTFOUND, or with ECONFLICT while the project still has data
// connectors or devices, or holds an owner account (the bootstrap project).
// It holds the config lock from the check to the delete, so a connector or
// device created concurrently is either counted or created after the project
// is gone, and a key made concurrently is either deleted or refused (its
// account is gone).
func (db *DB) DeleteProject(ctx context.Context, id string) error {
	key, err := projectKey(id)
	if err != nil {
		return err
	}
	db.cmu.Lock()
	defer db.cmu.Unlock()
	defer db.cache.drop(key)
	ok, err := db.exists(key)
	if err != nil {
		return err
	}
	if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "project projects/%s not found", id)
	}
	connectors, err := db.count(ctx, []byte(prefixConnector+id+"/"))
	if err != nil {
		return err
	}
	devices, err := db.count(ctx, []byte(prefixDevice+id+"/"))
	if err != nil {
		return err
	}
	if connectors+devices > 0 {
		return dcon.ProjectInUseError(connectors, devices)
	}
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	if _, err := deleteProjectAccounts(ctx, e, b, id); err != nil {
		return err
	}
	if err := b.Delete(key, nil); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := e.commit(b, pebble.Sync); err != nil {
		return unavailable(err, "delete %s", key)
	}
	return nil
}

// CreateMissingProjects creates a project, in dcon.DefaultOrganization and
// created at now, for every project id that has data connectors or devices but
// no project: the namespaces of a store written before projects were kept. It
// returns the ids of the projects it created, in order. It is meant to run at
// start, before the API serves.
func (db *DB) CreateMissingProjects(ctx context.Context, now time.Time) ([]string, error) {
	db.cmu.Lock()
	defer db.cmu.Unlock()
	ids := map[string]bool{}
	for _, prefix := range []string{prefixConnector, prefixDevice} {
		if err := db.projectIDsUnder(ctx, []byte(prefix), ids); err != nil {
			return nil, err
		}
	}
	var created []string
	e, err := db.engine()
	if err != nil {
		return nil, err
	}
	defer e.done()
	b := e.pdb.NewBatch()
	defer e.closeBatch(b)
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		key := []byte(prefixProject + id)
		ok, err := db.exists(key)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		p := &dcon.Project{ID: id, Organization: dcon.DefaultOrganization, CreateTime: now, UpdateTime: now}
		val, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode project %s: %w", id, err)
		}
		if err := b.Set(key, val, nil); err != nil {
			return nil, fmt.Errorf("set %s: %w", key, err)
		}
		created = append(created, id)
	}
	if len(created) == 0 {
		return nil, nil
	}
	if err := e.commit(b, pebble.Sync); err != nil {
		return nil, unavailable(err, "create missing projects")
	}
	return created, nil
}

// projectIDsUnder adds to ids the project id of every key under prefix
// (<prefix><projectID>/…), visiting one key per project.
func (db *DB) projectIDsUnder(ctx context.Context, prefix []byte, ids map[string]bool) error {
	e, err := db.engine()
	if err != nil {
		return err
	}
	defer e.done()
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return unavailable(err, "list projects under %s", prefix)
	}
	defer it.Close()
	for valid := it.First(); valid; {
		rest := it.Key()[len(prefix):]
		sep := bytes.IndexByte(rest, '/')
		if sep <= 0 {
			valid = it.Next()
			continue
		}
		ids[string(rest[:sep])] = true
		// Skip the rest of this project: <prefix><projectID>/ ends before <prefix><projectID>0.
		valid = it.SeekGE(prefixEnd(it.Key()[:len(prefix)+sep+1]))
	}
	if err := it.Error(); err != nil {
		return unavailable(err, "list projects under %s", prefix)
	}
	return nil
}
