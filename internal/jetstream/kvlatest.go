package jetstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"dcon"
)

// The latest events bucket, <Prefix>_LATEST, has one key per device and
// event type, <project>.<device>.<type>; its value is
//
//	version byte (1)
//	uvarint len, event id
//	varint timestamp (Unix nanoseconds)
//	data (the rest)
//
// It is not mirrored: it changes with every publish and is read only by
// :sync.
const latestVersion = 1

// latestPrefix returns <project>.<device>, or EINVALID.
func latestPrefix(projectID, deviceID string) (string, error) {
	if !validKeyPart(projectID) || !validKeyPart(deviceID) {
		return "", dcon.Errorf(dcon.EINVALID, "invalid device name projects/%s/devices/%s", projectID, deviceID)
	}
	return projectID + "." + deviceID, nil
}

func appendLatest(dst []byte, ev *dcon.Event) []byte {
	dst = append(dst, latestVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ev.ID)))
	dst = append(dst, ev.ID...)
	dst = binary.AppendVarint(dst, unixNano(ev.Timestamp))
	return append(dst, ev.Data...)
}

func decodeLatest(b []byte, projectID, deviceID string, t dcon.EventType) (*dcon.Event, error) {
	r := reader{b: b}
	if r.byte() != latestVersion {
		return nil, errCorrupt
	}
	id := r.string()
	ts := r.varint()
	if r.err != nil {
		return nil, r.err
	}
	ev := &dcon.Event{ID: id, TargetName: "projects/" + projectID + "/devices/" + deviceID, Type: t,
		Data: append([]byte(nil), r.b...)}
	if ts != 0 {
		ev.Timestamp = time.Unix(0, ts).UTC()
	}
	return ev, nil
}

// publishAll writes every value to its key of kv at once and waits for every
// acknowledgement, retrying through a change of leader as the queue's
// writes do (publishRetrying), so that a publish never hangs on a dead one.
func (s *Store) publishAll(ctx context.Context, kv jetstream.KeyValue, keys []string, vals [][]byte) error {
	subjects := make([]string, len(keys))
	for i, k := range keys {
		subjects[i] = "$KV." + kv.Bucket() + "." + k
	}
	if _, err := publishRetrying(ctx, s.js, s.cfg.Config.Logger, subjects, vals); err != nil {
		return storeUnavailable(err, "write %s", keys[0])
	}
	return nil
}

// values returns the values of kv's keys matching filter, by key.
func values(ctx context.Context, kv jetstream.KeyValue, filter string) (map[string][]byte, error) {
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, storeUnavailable(err, "read %s", filter)
	}
	defer w.Stop()
	out := make(map[string][]byte)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, storeUnavailable(errors.New("watch ended"), "read %s", filter)
			}
			if e == nil {
				return out, nil
			}
			out[e.Key()] = e.Value()
		case <-ctx.Done():
			return nil, storeUnavailable(ctx.Err(), "read %s", filter)
		}
	}
}

// purge removes every value of kv under the subject filter (key wildcards
// allowed), without delete markers.
func (s *Store) purge(ctx context.Context, kv jetstream.KeyValue, filter string) error {
	st, err := s.js.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return storeUnavailable(err, "purge %s", filter)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject("$KV."+kv.Bucket()+"."+filter)); err != nil {
		return storeUnavailable(err, "purge %s", filter)
	}
	return nil
}

// PutLatest records evs as the latest events of their devices. The writes
// are acknowledged (by a quorum, with replicas) before it returns.
func (s *Store) PutLatest(ctx context.Context, projectID string, evs []dcon.DeviceEvent) error {
	if len(evs) == 0 {
		return nil
	}
	keys := make([]string, 0, len(evs))
	vals := make([][]byte, 0, len(evs))
	for _, de := range evs {
		p, err := latestPrefix(projectID, de.DeviceID)
		if err != nil {
			return err
		}
		if !validKeyPart(string(de.Event.Type)) {
			return dcon.Errorf(dcon.EINVALID, "invalid event type %q", de.Event.Type)
		}
		keys = append(keys, p+"."+string(de.Event.Type))
		vals = append(vals, appendLatest(nil, de.Event))
	}
	return s.publishAll(ctx, s.latest, keys, vals)
}

// LatestEvents returns a device's latest events, ordered by event type.
func (s *Store) LatestEvents(ctx context.Context, projectID, deviceID string) ([]*dcon.Event, error) {
	p, err := latestPrefix(projectID, deviceID)
	if err != nil {
		return nil, err
	}
	vals, err := values(ctx, s.latest, p+".*")
	if err != nil {
		return nil, err
	}
	out := make([]*dcon.Event, 0, len(vals))
	for k, v := range vals {
		ev, err := decodeLatest(v, projectID, deviceID, dcon.EventType(strings.TrimPrefix(k, p+".")))
		if err != nil {
			return nil, fmt.Errorf("decode latest %s: %w", k, err)
		}
		out = append(out, ev)
	}
	slices.SortFunc(out, func(a, b *dcon.Event) int { return strings.Compare(string(a.Type), string(b.Type)) })
	return out, nil
}

// DeleteLatest forgets a device's latest events.
func (s *Store) DeleteLatest(ctx context.Context, projectID, deviceID string) error {
	p, err := latestPrefix(projectID, deviceID)
	if err != nil {
		return err
	}
	return s.purge(ctx, s.latest, p+".*")
}

// The statistics bucket, <Prefix>_STATS, has one key per node and connector,
// <node>.<connector>, its value internal/stats's encoding: each node keeps
// the statistics of the attempts it made, and reloads them when it starts
// again under the same StoreConfig.Node.

// SaveStats stores this node's statistics of several connectors.
func (s *Store) SaveStats(ctx context.Context, states map[string][]byte) error {
	keys := make([]string, 0, len(states))
	vals := make([][]byte, 0, len(states))
	for id, v := range states {
		if !validKeyPart(id) {
			return dcon.Errorf(dcon.EINVALID, "invalid data connector id %q", id)
		}
		keys = append(keys, s.cfg.Node+"."+id)
		vals = append(vals, v)
	}
	return s.publishAll(ctx, s.stats, keys, vals)
}

// LoadStats returns this node's stored statistics, by connector id.
func (s *Store) LoadStats(ctx context.Context) (map[string][]byte, error) {
	vals, err := values(ctx, s.stats, s.cfg.Node+".*")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(vals))
	for k, v := range vals {
		out[strings.TrimPrefix(k, s.cfg.Node+".")] = v
	}
	return out, nil
}

// PeerStats returns the statistics of a connector that every other node
// stored, by node name: what internal/stats's Fleet adds to this node's own.
// It implements stats.Peers. A node that stopped keeps its key, so its
// attempts keep counting until they leave the metrics window.
func (s *Store) PeerStats(ctx context.Context, connectorID string) (map[string][]byte, error) {
	if !validKeyPart(connectorID) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid data connector id %q", connectorID)
	}
	vals, err := values(ctx, s.stats, "*."+connectorID)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(vals))
	for k, v := range vals {
		node, _ := splitKey(k)
		if node != s.cfg.Node {
			out[node] = v
		}
	}
	return out, nil
}

// DeleteStats removes a connector's statistics, those of every node.
func (s *Store) DeleteStats(ctx context.Context, connectorID string) error {
	if !validKeyPart(connectorID) {
		return dcon.Errorf(dcon.EINVALID, "invalid data connector id %q", connectorID)
	}
	return s.purge(ctx, s.stats, "*."+connectorID)
}

// Secret returns a shared secret (a file every node needs the same copy of:
// the signing keys, the server key), or fails with ENOTFOUND.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	if !validKeyPart(name) {
		return nil, dcon.Errorf(dcon.EINVALID, "invalid secret name %q", name)
	}
	e, err := s.secrets.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, dcon.Errorf(dcon.ENOTFOUND, "secret %s not found", name)
	}
	if err != nil {
		return nil, storeUnavailable(err, "read secret %s", name)
	}
	return e.Value(), nil
}

// CreateSecret stores a shared secret, or fails with ECONFLICT if another
// node stored it first.
func (s *Store) CreateSecret(ctx context.Context, name string, val []byte) error {
	if !validKeyPart(name) {
		return dcon.Errorf(dcon.EINVALID, "invalid secret name %q", name)
	}
	_, err := s.secrets.Create(ctx, name, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return dcon.Errorf(dcon.ECONFLICT, "secret %s already exists", name)
	}
	if err != nil {
		return storeUnavailable(err, "write secret %s", name)
	}
	return nil
}

// SecretRevision returns a shared secret and its revision, for
// UpdateSecret, or fails with ENOTFOUND. It reads the bucket's leader.
func (s *Store) SecretRevision(ctx context.Context, name string) ([]byte, uint64, error) {
	if !validKeyPart(name) {
		return nil, 0, dcon.Errorf(dcon.EINVALID, "invalid secret name %q", name)
	}
	e, err := s.secrets.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, dcon.Errorf(dcon.ENOTFOUND, "secret %s not found", name)
	}
	if err != nil {
		return nil, 0, storeUnavailable(err, "read secret %s", name)
	}
	return e.Value(), e.Revision(), nil
}

// UpdateSecret replaces a shared secret if it is still at revision rev (as
// SecretRevision read it), and returns the new revision; or fails with
// ECONFLICT: another node changed it first (read it again and redo the
// change).
func (s *Store) UpdateSecret(ctx context.Context, name string, val []byte, rev uint64) (newRev uint64, err error) {
	if !validKeyPart(name) {
		return 0, dcon.Errorf(dcon.EINVALID, "invalid secret name %q", name)
	}
	newRev, err = s.secrets.Update(ctx, name, val, rev)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, dcon.Errorf(dcon.ECONFLICT, "secret %s was changed by another node", name)
	}
	if err != nil {
		return 0, storeUnavailable(err, "write secret %s", name)
	}
	return newRev, nil
}

// WatchSecret calls f with a shared secret's value and revision now (if it
// has one) and after every change, made through any node, until the Store
// closes. f runs one call at a time, in the bucket's order, and must not
// block for long.
func (s *Store) WatchSecret(ctx context.Context, name string, f func(val []byte, rev uint64)) error {
	if !validKeyPart(name) {
		return dcon.Errorf(dcon.EINVALID, "invalid secret name %q", name)
	}
	w, err := s.secrets.Watch(context.WithoutCancel(ctx), name, jetstream.IgnoreDeletes())
	if err != nil {
		return storeUnavailable(err, "watch secret %s", name)
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.closed {
		_ = w.Stop()
		return storeUnavailable(errors.New("the store is closed"), "watch secret %s", name)
	}
	s.secretWatchers = append(s.secretWatchers, w)
	s.secretWG.Go(func() {
		for e := range w.Updates() {
			if e != nil {
				f(e.Value(), e.Revision())
			}
		}
	})
	return nil
}

// PutSecret replaces a shared secret (after a rotation).
func (s *Store) PutSecret(ctx context.Context, name string, val []byte) error {
	if !validKeyPart(name) {
		return dcon.Errorf(dcon.EINVALID, "invalid secret name %q", name)
	}
	if _, err := s.secrets.Put(ctx, name, val); err != nil {
		return storeUnavailable(err, "write secret %s", name)
	}
	return nil
}
