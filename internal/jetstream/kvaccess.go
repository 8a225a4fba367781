package jetstream

import (
	"context"
	"errors"
	"fmt"

	"dcon"
)

// accessKey returns <kind>.<parts joined by '.'>, or an EINVALID error naming
// what if a part cannot be a token of a key.
func accessKey(kind, what string, parts ...string) (string, error) {
	k := kind
	for _, p := range parts {
		if !validKeyPart(p) {
			return "", dcon.Errorf(dcon.EINVALID, "invalid %s id %q", what, p)
		}
		k += "." + p
	}
	return k, nil
}

// CreateOrganization stores a new organization, or fails with ECONFLICT.
func (s *Store) CreateOrganization(ctx context.Context, o *dcon.Organization) error {
	k, err := accessKey("o", "organization", o.ID)
	if err != nil {
		return err
	}
	return s.create(ctx, k, o, "organization", "organizations/"+o.ID)
}

// Organization returns an organization, or fails with ENOTFOUND.
func (s *Store) Organization(ctx context.Context, id string) (*dcon.Organization, error) {
	k, err := accessKey("o", "organization", id)
	if err != nil {
		return nil, err
	}
	o := new(dcon.Organization)
	if err := s.get(ctx, k, o, "organization", "organizations/"+id); err != nil {
		return nil, err
	}
	return o, nil
}

// CreateServiceAccount stores a new account and its first keys, or fails
// with ECONFLICT if the account or a key exists. The keys are written first
// and the account last: a key is usable only once its account exists (auth
// reads both), and a failure removes the keys written.
func (s *Store) CreateServiceAccount(ctx context.Context, a *dcon.ServiceAccount, keys ...*dcon.Key) error {
	k, err := accessKey("s", "service account", a.Project, a.ID)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if key.Account != a.ID || key.Project != a.Project {
			return dcon.Errorf(dcon.EINVALID, "key %s is not of service account %s", key.ID, a.ID)
		}
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if _, ok, err := s.read(ctx, k); err != nil {
		return err
	} else if ok {
		return dcon.Errorf(dcon.ECONFLICT, "service account %s already exists", a.Name())
	}
	var added []*dcon.Key
	undo := func(err error) error {
		for _, key := range added {
			err = errors.Join(err, s.removeKey(ctx, key.Account, key.ID))
		}
		return err
	}
	for _, key := range keys {
		if err := s.addKey(ctx, key); err != nil {
			return undo(err)
		}
		added = append(added, key)
	}
	if err := s.create(ctx, k, a, "service account", a.Name()); err != nil {
		return undo(err)
	}
	return nil
}

// ServiceAccount returns an account, or fails with ENOTFOUND.
func (s *Store) ServiceAccount(ctx context.Context, projectID, id string) (*dcon.ServiceAccount, error) {
	k, err := accessKey("s", "service account", projectID, id)
	if err != nil {
		return nil, err
	}
	a := new(dcon.ServiceAccount)
	if err := s.get(ctx, k, a, "service account", "projects/"+projectID+"/serviceaccounts/"+id); err != nil {
		return nil, err
	}
	return a, nil
}

// ListServiceAccounts returns a page of a project's accounts, ordered by id.
func (s *Store) ListServiceAccounts(ctx context.Context, projectID string, p dcon.Page) ([]*dcon.ServiceAccount, string, error) {
	if !validKeyPart(projectID) {
		return nil, "", dcon.Errorf(dcon.EINVALID, "invalid project id %q", projectID)
	}
	return page[dcon.ServiceAccount](s, "s."+projectID, p)
}

// DeleteServiceAccount deletes an account and every key of it, or fails with
// ENOTFOUND.
func (s *Store) DeleteServiceAccount(ctx context.Context, projectID, id string) error {
	k, err := accessKey("s", "service account", projectID, id)
	if err != nil {
		return err
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if _, ok, err := s.read(ctx, k); err != nil {
		return err
	} else if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "service account projects/%s/serviceaccounts/%s not found", projectID, id)
	}
	return s.deleteAccount(ctx, projectID, id)
}

// deleteAccount deletes an account's keys, then the account. The caller
// holds cmu.
func (s *Store) deleteAccount(ctx context.Context, projectID, id string) error {
	keys, err := all[dcon.Key](s, "k."+id)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if key.Account != id {
			continue // an account whose id extends id
		}
		if err := s.removeKey(ctx, id, key.ID); err != nil && dcon.ErrorCode(err) != dcon.ENOTFOUND {
			return err
		}
	}
	err = s.remove(ctx, "s."+projectID+"."+id, "service account", "projects/"+projectID+"/serviceaccounts/"+id)
	if dcon.ErrorCode(err) == dcon.ENOTFOUND {
		return nil // deleted meanwhile
	}
	return err
}

// HasServiceAccounts reports whether any service account exists.
func (s *Store) HasServiceAccounts(ctx context.Context) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, g := range s.groups {
		if len(name) > 2 && name[:2] == "s." && len(g) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// CreateKey stores a new key of an existing account, or fails with ENOTFOUND
// (no such account) or ECONFLICT (the key exists).
func (s *Store) CreateKey(ctx context.Context, k *dcon.Key) error {
	account, err := accessKey("s", "service account", k.Project, k.Account)
	if err != nil {
		return err
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if _, ok, err := s.read(ctx, account); err != nil {
		return err
	} else if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "service account projects/%s/serviceaccounts/%s not found", k.Project, k.Account)
	}
	return s.addKey(ctx, k)
}

// addKey stores a key and its index entry, or fails with ECONFLICT if a key
// with its id exists. The index entry goes first: it is what makes the id
// unique.
func (s *Store) addKey(ctx context.Context, k *dcon.Key) error {
	key, err := accessKey("k", "key", k.Account, k.ID)
	if err != nil {
		return err
	}
	if err := s.createRaw(ctx, "i."+k.ID, []byte(k.Account), "key", k.ID); err != nil {
		return err
	}
	if err := s.create(ctx, key, k, "key", k.ID); err != nil {
		_ = s.remove(ctx, "i."+k.ID, "key", k.ID)
		return err
	}
	return nil
}

// Key returns a key by its id, or fails with ENOTFOUND.
func (s *Store) Key(ctx context.Context, id string) (*dcon.Key, error) {
	if !validKeyPart(id) {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "key %q not found", id)
	}
	it, ok, err := s.read(ctx, "i."+id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "key %s not found", id)
	}
	key, err := accessKey("k", "key", string(it.val), id)
	if err != nil {
		return nil, err
	}
	k := new(dcon.Key)
	if err := s.get(ctx, key, k, "key", id); err != nil {
		return nil, err
	}
	return k, nil
}

// ListKeys returns a page of an account's keys, ordered by id.
func (s *Store) ListKeys(ctx context.Context, accountID string, p dcon.Page) ([]*dcon.Key, string, error) {
	if !validKeyPart(accountID) {
		return nil, "", dcon.Errorf(dcon.EINVALID, "invalid service account id %q", accountID)
	}
	return page[dcon.Key](s, "k."+accountID, p)
}

// UpdateKey replaces a key, or fails with ENOTFOUND.
func (s *Store) UpdateKey(ctx context.Context, k *dcon.Key) error {
	key, err := accessKey("k", "key", k.Account, k.ID)
	if err != nil {
		return err
	}
	return s.update(ctx, key, k, "key", k.ID)
}

// DeleteKey deletes a key and its index entry, or fails with ENOTFOUND.
func (s *Store) DeleteKey(ctx context.Context, accountID, id string) error {
	if _, err := accessKey("k", "key", accountID, id); err != nil {
		return err
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.removeKey(ctx, accountID, id)
}

// removeKey deletes a key's index entry (it stops authenticating), then the
// key.
func (s *Store) removeKey(ctx context.Context, accountID, id string) error {
	key := "k." + accountID + "." + id
	if _, ok, err := s.read(ctx, key); err != nil {
		return err
	} else if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "key %s not found", id)
	}
	if err := s.remove(ctx, "i."+id, "key", id); err != nil && dcon.ErrorCode(err) != dcon.ENOTFOUND {
		return fmt.Errorf("delete the index of key %s: %w", id, err)
	}
	return s.remove(ctx, key, "key", id)
}
