package pebble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"dcon"
)

// The keys of access control, under a/:
//
//	a/o/<org>                 an organization (JSON)
//	a/s/<project>/<account>   a service account (JSON)
//	a/k/<account>/<key>       a key of an account (JSON, the secret's hash only)
//	a/i/<key>                 the account of a key, to find a key by its id alone
//
// Deleting an account deletes its keys; deleting a project (DeleteProject)
// deletes its accounts and their keys, in the same synced batch.
const (
	prefixOrg      = "a/o/"
	prefixAccount  = "a/s/"
	prefixKey      = "a/k/"
	prefixKeyIndex = "a/i/"
)

var _ dcon.AccessStore = (*DB)(nil)

// accessKey returns <prefix><parts joined by />, or an EINVALID error naming
// what if a part cannot be part of a key.
func accessKey(prefix, what string, parts ...string) ([]byte, error) {
	key := prefix
	for i, p := range parts {
		if !validKeyPart(p) {
			return nil, dcon.Errorf(dcon.EINVALID, "invalid %s id %q", what, p)
		}
		if i > 0 {
			key += "/"
		}
		key += p
	}
	return []byte(key), nil
}

// CreateOrganization stores a new organization, or fails with ECONFLICT.
func (db *DB) CreateOrganization(ctx context.Context, o *dcon.Organization) error {
	key, err := accessKey(prefixOrg, "organization", o.ID)
	if err != nil {
		return err
	}
	return db.put(key, o, false, "organization", "organizations/"+o.ID)
}

// Organization returns an organization, or fails with ENOTFOUND.
func (db *DB) Organization(ctx context.Context, id string) (*dcon.Organization, error) {
	key, err := accessKey(prefixOrg, "organization", id)
	if err != nil {
		return nil, err
	}
	o := new(dcon.Organization)
	if err := db.get(key, o, "organization", "organizations/"+id); err != nil {
		return nil, err
	}
	return o, nil
}

// CreateServiceAccount stores a new account and its first keys in one synced
// batch, or fails with ECONFLICT if the account or a key exists.
func (db *DB) CreateServiceAccount(ctx context.Context, a *dcon.ServiceAccount, keys ...*dcon.Key) error {
	key, err := accessKey(prefixAccount, "service account", a.Project, a.ID)
	if err != nil {
		return err
	}
	val, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode service account %s: %w", a.ID, err)
	}
	db.cmu.Lock()
	defer db.cmu.Unlock()
	if ok, err := db.exists(key); err != nil {
		return err
	} else if ok {
		return dcon.Errorf(dcon.ECONFLICT, "service account %s already exists", a.Name())
	}
	return db.writeSync(fmt.Sprintf("write %s", key), func(_ *engine, b *pebble.Batch) error {
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		for _, k := range keys {
			if k.Account != a.ID || k.Project != a.Project {
				return dcon.Errorf(dcon.EINVALID, "key %s is not of service account %s", k.ID, a.ID)
			}
			if err := db.addKey(b, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// ServiceAccount returns an account, or fails with ENOTFOUND.
func (db *DB) ServiceAccount(ctx context.Context, projectID, id string) (*dcon.ServiceAccount, error) {
	key, err := accessKey(prefixAccount, "service account", projectID, id)
	if err != nil {
		return nil, err
	}
	a := new(dcon.ServiceAccount)
	if err := db.get(key, a, "service account", "projects/"+projectID+"/serviceaccounts/"+id); err != nil {
		return nil, err
	}
	return a, nil
}

// ListServiceAccounts returns a page of a project's accounts, ordered by id.
func (db *DB) ListServiceAccounts(ctx context.Context, projectID string, p dcon.Page) ([]*dcon.ServiceAccount, string, error) {
	return list[dcon.ServiceAccount](ctx, db, prefixAccount, projectID, p)
}

// DeleteServiceAccount deletes an account and every key of it in one synced
// batch, or fails with ENOTFOUND.
func (db *DB) DeleteServiceAccount(ctx context.Context, projectID, id string) error {
	key, err := accessKey(prefixAccount, "service account", projectID, id)
	if err != nil {
		return err
	}
	db.cmu.Lock()
	defer db.cmu.Unlock()
	if ok, err := db.exists(key); err != nil {
		return err
	} else if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "service account projects/%s/serviceaccounts/%s not found", projectID, id)
	}
	return db.writeSync(fmt.Sprintf("delete %s", key), func(e *engine, b *pebble.Batch) error {
		return deleteAccount(ctx, e, b, key, id)
	})
}

// deleteAccount adds to b the deletion of the account stored at key, whose
// id is id, of every key of it and of their index entries. The caller holds
// cmu.
func deleteAccount(ctx context.Context, e *engine, b *pebble.Batch, key []byte, id string) error {
	if err := b.Delete(key, nil); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	keysPrefix := []byte(prefixKey + id + "/")
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: keysPrefix, UpperBound: prefixEnd(keysPrefix)})
	if err != nil {
		return unavailable(err, "list %s", keysPrefix)
	}
	for valid := it.First(); valid; valid = it.Next() {
		keyID := string(it.Key()[len(keysPrefix):])
		if err := errors.Join(b.Delete(it.Key(), nil), b.Delete([]byte(prefixKeyIndex+keyID), nil)); err != nil {
			it.Close()
			return fmt.Errorf("delete key %s: %w", keyID, err)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return unavailable(err, "list %s", keysPrefix)
	}
	return nil
}

// deleteProjectAccounts adds to b the deletion of every service account of a
// project, with their keys (deleteAccount), and returns how many there are.
// It fails with ECONFLICT, adding nothing that matters (the caller drops b),
// if one of them is an owner account: the server's owners are not deleted
// with a project. The caller holds cmu.
func deleteProjectAccounts(ctx context.Context, e *engine, b *pebble.Batch, projectID string) (int, error) {
	prefix := []byte(prefixAccount + projectID + "/")
	it, err := e.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, unavailable(err, "list %s", prefix)
	}
	type found struct {
		key []byte
		id  string
	}
	var accounts []found
	for valid := it.First(); valid; valid = it.Next() {
		var a dcon.ServiceAccount
		if err := json.Unmarshal(it.Value(), &a); err != nil {
			it.Close()
			return 0, fmt.Errorf("decode %s: %w", it.Key(), err)
		}
		if a.Owner {
			it.Close()
			return 0, dcon.Errorf(dcon.ECONFLICT, "project projects/%s holds the server's owner account %s, which is not deleted with it", projectID, a.Name())
		}
		accounts = append(accounts, found{key: slices.Clone(it.Key()), id: string(it.Key()[len(prefix):])})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, unavailable(err, "list %s", prefix)
	}
	for _, a := range accounts {
		if err := deleteAccount(ctx, e, b, a.key, a.id); err != nil {
			return 0, err
		}
	}
	return len(accounts), nil
}

// HasServiceAccounts reports whether any service account exists.
func (db *DB) HasServiceAccounts(ctx context.Context) (bool, error) {
	lower := []byte(prefixAccount)
	it, err := db.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return false, unavailable(err, "list %s", lower)
	}
	found := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, unavailable(err, "list %s", lower)
	}
	return found, nil
}

// CreateKey stores a new key of an existing account, or fails with ENOTFOUND
// (no such account) or ECONFLICT (the key exists).
func (db *DB) CreateKey(ctx context.Context, k *dcon.Key) error {
	account, err := accessKey(prefixAccount, "service account", k.Project, k.Account)
	if err != nil {
		return err
	}
	db.cmu.Lock()
	defer db.cmu.Unlock()
	if ok, err := db.exists(account); err != nil {
		return err
	} else if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "service account projects/%s/serviceaccounts/%s not found", k.Project, k.Account)
	}
	return db.writeSync("write key "+k.ID, func(_ *engine, b *pebble.Batch) error {
		return db.addKey(b, k)
	})
}

// addKey adds a new key and its index entry to b, or fails with ECONFLICT if
// a key with its id exists. The caller holds cmu.
func (db *DB) addKey(b *pebble.Batch, k *dcon.Key) error {
	key, err := accessKey(prefixKey, "key", k.Account, k.ID)
	if err != nil {
		return err
	}
	index := []byte(prefixKeyIndex + k.ID)
	if ok, err := db.exists(index); err != nil {
		return err
	} else if ok {
		return dcon.Errorf(dcon.ECONFLICT, "key %s already exists", k.ID)
	}
	val, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode key %s: %w", k.ID, err)
	}
	if err := errors.Join(b.Set(key, val, nil), b.Set(index, []byte(k.Account), nil)); err != nil {
		return fmt.Errorf("write key %s: %w", k.ID, err)
	}
	return nil
}

// Key returns a key by its id, or fails with ENOTFOUND.
func (db *DB) Key(ctx context.Context, id string) (*dcon.Key, error) {
	index, err := accessKey(prefixKeyIndex, "key", id)
	if err != nil {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "key %q not found", id)
	}
	val, closer, err := db.db.Get(index)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "key %s not found", id)
	}
	if err != nil {
		return nil, unavailable(err, "read %s", index)
	}
	account := string(val)
	closer.Close()
	key, err := accessKey(prefixKey, "key", account, id)
	if err != nil {
		return nil, err
	}
	k := new(dcon.Key)
	if err := db.get(key, k, "key", id); err != nil {
		return nil, err
	}
	return k, nil
}

// ListKeys returns a page of an account's keys, ordered by id.
func (db *DB) ListKeys(ctx context.Context, accountID string, p dcon.Page) ([]*dcon.Key, string, error) {
	return list[dcon.Key](ctx, db, prefixKey, accountID, p)
}

// UpdateKey replaces a key, or fails with ENOTFOUND.
func (db *DB) UpdateKey(ctx context.Context, k *dcon.Key) error {
	key, err := accessKey(prefixKey, "key", k.Account, k.ID)
	if err != nil {
		return err
	}
	return db.put(key, k, true, "key", k.ID)
}

// DeleteKey deletes a key and its index entry, or fails with ENOTFOUND.
func (db *DB) DeleteKey(ctx context.Context, accountID, id string) error {
	key, err := accessKey(prefixKey, "key", accountID, id)
	if err != nil {
		return err
	}
	db.cmu.Lock()
	defer db.cmu.Unlock()
	if ok, err := db.exists(key); err != nil {
		return err
	} else if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "key %s not found", id)
	}
	return db.writeSync("delete key "+id, func(_ *engine, b *pebble.Batch) error {
		if err := errors.Join(b.Delete(key, nil), b.Delete([]byte(prefixKeyIndex+id), nil)); err != nil {
			return fmt.Errorf("delete key %s: %w", id, err)
		}
		return nil
	})
}
