package jetstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"dcon"
)

// Store keeps dcon's shared state in JetStream KV buckets, for a fleet of
// dcon nodes: projects, data connectors, devices, organizations, service
// accounts and their keys (one bucket, <Prefix>_CONFIG), every device's
// latest events (<Prefix>_LATEST), the delivery statistics of each node
// (<Prefix>_STATS) and the secrets every node must share (<Prefix>_SECRETS).
// It implements dcon.ConnectorStore, DeviceStore, ProjectStore, AccessStore
// and LatestEventStore, and internal/stats's Store, with the semantics of
// internal/pebble (both pass internal/storetest); and internal/stats's Peers,
// so that `:metrics` counts every node's attempts. Nodes follow a shared
// secret's changes (a key rotation) through WatchSecret.
//
// Every Store watches the config bucket and keeps an in-memory mirror of it,
// so that reads (a device per publish, a key per request, the connector
// index) cost no round trip and a change made through any node reaches every
// node within the watch's latency (milliseconds). Writes go to the server
// with optimistic concurrency (Create, Update with the revision read) and
// then to the mirror, so a node reads its own writes at once. A read that
// misses the mirror asks the server, so that an id created on another node a
// moment ago is found.
//
// Keys of the config bucket (every id a single token):
//
//	p.<project>                  a project (JSON)
//	c.<project>.<connector>      a data connector (JSON)
//	v.<project>.<device>         a device (JSON)
//	o.<org>                      an organization (JSON)
//	s.<project>.<account>        a service account (JSON)
//	k.<account>.<key>            a key of an account (JSON, the secret's hash only)
//	i.<key>                      the account of a key (its id), to find a key by id alone
type Store struct {
	cfg     StoreConfig
	nc      *nats.Conn
	js      jetstream.JetStream
	config  jetstream.KeyValue
	latest  jetstream.KeyValue
	stats   jetstream.KeyValue
	secrets jetstream.KeyValue

	watcher jetstream.KeyWatcher
	done    chan struct{} // closed when the watch loop has ended

	cmu sync.Mutex // serialises this node's multi-key writes (see DeleteProject)

	smu            sync.Mutex // guards closed and secretWatchers
	closed         bool
	secretWatchers []jetstream.KeyWatcher // WatchSecret's, stopped by Close
	secretWG       sync.WaitGroup         // WatchSecret's loops

	mu         sync.RWMutex
	groups     map[string]map[string]item // the mirror: group (key up to its last '.') → id → item
	tombstones map[string]uint64          // key → the revision of a deleted item, so older watch updates stay deleted
	onChange   func(kind, group, id string)
}

// item is a mirrored value and its revision.
type item struct {
	val []byte
	rev uint64
}

// StoreConfig says where the Store's buckets live.
type StoreConfig struct {
	// Config is the connection (URLs, credentials, TLS), the Prefix of the
	// bucket names and their Replicas, as for the queue; its queue fields are
	// ignored.
	Config Config
	// Node names this node in the statistics bucket, whose keys are
	// <node>.<connector>: each node keeps the statistics of the deliveries
	// it made. Letters, digits, '-' and '_'. Default: the host name.
	Node string
	// OpenTimeout bounds how long Open waits for the mirror to load. Default
	// 30 s.
	OpenTimeout time.Duration
}

var _ interface {
	dcon.ConnectorStore
	dcon.DeviceStore
	dcon.ProjectStore
	dcon.AccessStore
	dcon.LatestEventStore
} = (*Store)(nil)

// keyPart matches one token of a KV key that dcon writes.
var keyPart = regexp.MustCompile(`^[A-Za-z0-9_=-]+$`)

// validKeyPart reports whether s can be one token of a key.
func validKeyPart(s string) bool { return keyPart.MatchString(s) }

// OpenStore connects to the servers in cfg, makes or updates the buckets,
// loads the config bucket into the mirror and starts watching it.
func OpenStore(ctx context.Context, cfg StoreConfig) (*Store, error) {
	c, err := cfg.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Config = c
	if cfg.Node == "" {
		host, _ := os.Hostname()
		cfg.Node = strings.Map(func(r rune) rune {
			if r < 128 && validKeyPart(string(r)) {
				return r
			}
			return '-'
		}, host)
		if cfg.Node == "" {
			cfg.Node = "node"
		}
	}
	if !validKeyPart(cfg.Node) {
		return nil, fmt.Errorf("jetstream: node name %q: only letters, digits, '-' and '_'", cfg.Node)
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 30 * time.Second
	}
	opts, err := c.natsOptions()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(c.URLs, ","), append(opts, nats.Name(c.Name+"-store"))...)
	if err != nil {
		return nil, storeUnavailable(err, "connect to %s", strings.Join(c.URLs, ","))
	}
	s := &Store{cfg: cfg, nc: nc, done: make(chan struct{}),
		groups: make(map[string]map[string]item), tombstones: make(map[string]uint64)}
	if err := s.setUp(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

// setUp makes the buckets and starts the watch.
func (s *Store) setUp(ctx context.Context) error {
	js, err := jetstream.New(s.nc, jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return storeUnavailable(err, "open JetStream")
	}
	s.js = js
	p, r := s.cfg.Config.Prefix, s.cfg.Config.Replicas
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
		desc string
	}{
		{&s.config, p + "_CONFIG", "dcon projects, data connectors, devices, service accounts and keys"},
		{&s.latest, p + "_LATEST", "dcon: every device's latest event of each type"},
		{&s.stats, p + "_STATS", "dcon: each node's delivery statistics, by connector"},
		{&s.secrets, p + "_SECRETS", "dcon: the signing keys and server key every node shares"},
	} {
		*b.kv, err = retrySetUp(ctx, func() (jetstream.KeyValue, error) {
			return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: b.name, Description: b.desc, History: 1, Storage: jetstream.FileStorage, Replicas: r,
			})
		})
		if err != nil {
			return storeUnavailable(err, "make bucket %s", b.name)
		}
	}
	s.watcher, err = s.config.WatchAll(context.Background())
	if err != nil {
		return storeUnavailable(err, "watch bucket %s_CONFIG", p)
	}
	ready := make(chan struct{})
	go s.watch(ready)
	t := time.NewTimer(s.cfg.OpenTimeout)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-s.done:
		return storeUnavailable(errors.New("the watch ended"), "load bucket %s_CONFIG", p)
	case <-t.C:
	case <-ctx.Done():
	}
	_ = s.watcher.Stop()
	<-s.done
	return storeUnavailable(errors.New("timed out"), "load bucket %s_CONFIG", p)
}

// watch applies the config bucket's updates to the mirror until the watcher
// stops; it closes ready once the bucket's current values are loaded.
func (s *Store) watch(ready chan struct{}) {
	defer close(s.done)
	for e := range s.watcher.Updates() {
		if e == nil {
			if ready != nil {
				close(ready)
				ready = nil
			}
			continue
		}
		deleted := e.Operation() != jetstream.KeyValuePut
		if s.apply(e.Key(), e.Value(), e.Revision(), deleted) {
			s.mu.RLock()
			f := s.onChange
			s.mu.RUnlock()
			if f != nil {
				group, id := splitKey(e.Key())
				f(group[:1], group, id)
			}
		}
	}
}

// OnChange makes the Store call f, from its watch, for every change made by
// another node (or by this one through another Store) to the config bucket:
// kind is the key's first letter ("c" for a connector, "v" a device …),
// group the key without its last token ("c.<project>") and id that token.
// f runs one at a time, in the bucket's order, after the mirror has the
// change; it must not block for long.
func (s *Store) OnChange(f func(kind, group, id string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = f
}

// OnConnectorChange calls f(projectID, id) for every connector changed by
// another node: see OnChange.
func (s *Store) OnConnectorChange(f func(projectID, id string)) {
	s.OnChange(func(kind, group, id string) {
		if kind == "c" {
			f(strings.TrimPrefix(group, "c."), id)
		}
	})
}

// Close stops the watches and closes the connection.
func (s *Store) Close() error {
	s.smu.Lock()
	s.closed = true
	for _, w := range s.secretWatchers {
		_ = w.Stop()
	}
	s.secretWatchers = nil
	s.smu.Unlock()
	if s.watcher != nil {
		_ = s.watcher.Stop()
	}
	s.nc.Close()
	<-s.done
	s.secretWG.Wait()
	return nil
}

// Ping checks that the servers answer.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.config.Status(ctx); err != nil {
		return storeUnavailable(err, "ping")
	}
	return nil
}

// storeUnavailable wraps a server failure as the error the API shows.
func storeUnavailable(err error, format string, args ...any) error {
	return dcon.WrapError(dcon.EUNAVAILABLE, fmt.Errorf("jetstream: "+format+": %w", append(args, err)...), "the store is unavailable")
}

// splitKey splits a key at its last '.'.
func splitKey(k string) (group, id string) {
	i := strings.LastIndexByte(k, '.')
	if i < 0 {
		return "", k
	}
	return k[:i], k[i+1:]
}

// apply records a value (or a deletion) of key at rev in the mirror, unless
// the mirror knows a later revision; it reports whether the mirror changed.
func (s *Store) apply(k string, val []byte, rev uint64, deleted bool) bool {
	group, id := splitKey(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	if old, ok := g[id]; ok && old.rev >= rev {
		return false
	}
	if t, ok := s.tombstones[k]; ok {
		if t >= rev {
			return false
		}
		delete(s.tombstones, k)
	}
	if deleted {
		if _, ok := g[id]; !ok {
			s.tombstones[k] = rev
			return false
		}
		delete(g, id)
		if len(g) == 0 {
			delete(s.groups, group)
		}
		s.tombstones[k] = rev
		return true
	}
	if g == nil {
		g = make(map[string]item)
		s.groups[group] = g
	}
	g[id] = item{val: val, rev: rev}
	return true
}

// forgetLocal removes key from the mirror after this node deleted it at
// revision rev (the deleted item's): older updates of the watch stay deleted.
func (s *Store) forgetLocal(k string, rev uint64) {
	group, id := splitKey(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.groups[group][id]; ok && old.rev <= rev {
		delete(s.groups[group], id)
		if len(s.groups[group]) == 0 {
			delete(s.groups, group)
		}
	}
	if s.tombstones[k] < rev {
		s.tombstones[k] = rev
	}
}

// cached returns the mirror's value of key.
func (s *Store) cached(k string) (item, bool) {
	group, id := splitKey(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	it, ok := s.groups[group][id]
	return it, ok
}

// read returns the value of key and its revision: from the mirror, or from
// the server when the mirror does not have it (ok false if neither has).
func (s *Store) read(ctx context.Context, k string) (it item, ok bool, err error) {
	if it, ok := s.cached(k); ok {
		return it, true, nil
	}
	return s.readServer(ctx, k)
}

// readServer reads key from the server, and records it in the mirror.
func (s *Store) readServer(ctx context.Context, k string) (item, bool, error) {
	e, err := s.config.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return item{}, false, nil
	}
	if err != nil {
		return item{}, false, storeUnavailable(err, "read %s", k)
	}
	s.apply(k, e.Value(), e.Revision(), false)
	return item{val: e.Value(), rev: e.Revision()}, true, nil
}

// get reads the JSON at key into v, or fails with ENOTFOUND naming what.
func (s *Store) get(ctx context.Context, k string, v any, what, name string) error {
	it, ok, err := s.read(ctx, k)
	if err != nil {
		return err
	}
	if !ok {
		return dcon.Errorf(dcon.ENOTFOUND, "%s %s not found", what, name)
	}
	if err := json.Unmarshal(it.val, v); err != nil {
		return fmt.Errorf("decode %s: %w", k, err)
	}
	return nil
}

// create stores v as JSON at key, or fails with ECONFLICT naming what.
func (s *Store) create(ctx context.Context, k string, v any, what, name string) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", what, name, err)
	}
	return s.createRaw(ctx, k, val, what, name)
}

func (s *Store) createRaw(ctx context.Context, k string, val []byte, what, name string) error {
	rev, err := s.config.Create(ctx, k, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return dcon.Errorf(dcon.ECONFLICT, "%s %s already exists", what, name)
	}
	if err != nil {
		return storeUnavailable(err, "write %s", k)
	}
	s.apply(k, val, rev, false)
	return nil
}

// update replaces the JSON at key with v, or fails with ENOTFOUND naming
// what. It writes over the revision it read, and reads again from the server
// when another write came first, so an update never brings back a deleted
// item.
func (s *Store) update(ctx context.Context, k string, v any, what, name string) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", what, name, err)
	}
	it, ok, err := s.read(ctx, k)
	for {
		if err != nil {
			return err
		}
		if !ok {
			return dcon.Errorf(dcon.ENOTFOUND, "%s %s not found", what, name)
		}
		rev, uerr := s.config.Update(ctx, k, val, it.rev)
		if uerr == nil {
			s.apply(k, val, rev, false)
			return nil
		}
		if !errors.Is(uerr, jetstream.ErrKeyExists) {
			return storeUnavailable(uerr, "write %s", k)
		}
		it, ok, err = s.readServer(ctx, k)
	}
}

// remove deletes key, or fails with ENOTFOUND naming what.
func (s *Store) remove(ctx context.Context, k, what, name string) error {
	it, ok, err := s.read(ctx, k)
	for {
		if err != nil {
			return err
		}
		if !ok {
			return dcon.Errorf(dcon.ENOTFOUND, "%s %s not found", what, name)
		}
		err = s.config.Delete(ctx, k, jetstream.LastRevision(it.rev))
		if err == nil {
			s.forgetLocal(k, it.rev)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return storeUnavailable(err, "delete %s", k)
		}
		it, ok, err = s.readServer(ctx, k)
	}
}

// count returns how many items a group has in the mirror.
func (s *Store) count(group string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.groups[group])
}

// page returns one page of a group's values, ordered by id, and the next
// page's token (the base64url form of the last id, as internal/pebble).
func page[T any](s *Store, group string, p dcon.Page) ([]*T, string, error) {
	size := p.Size
	if size <= 0 || size > dcon.MaxPageSize {
		size = dcon.MaxPageSize
	}
	after, err := decodeToken(p.Token)
	if err != nil {
		return nil, "", err
	}
	s.mu.RLock()
	g := s.groups[group]
	ids := make([]string, 0, len(g))
	for id := range g {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	more := len(ids) > size
	ids = ids[:min(size, len(ids))]
	vals := make([][]byte, len(ids))
	for i, id := range ids {
		vals[i] = g[id].val
	}
	s.mu.RUnlock()
	out := make([]*T, len(vals))
	for i, val := range vals {
		out[i] = new(T)
		if err := json.Unmarshal(val, out[i]); err != nil {
			return nil, "", fmt.Errorf("decode %s.%s: %w", group, ids[i], err)
		}
	}
	next := ""
	if more {
		next = encodeToken(ids[len(ids)-1])
	}
	return out, next, nil
}

// all returns every value of the groups whose name starts with prefix.
func all[T any](s *Store, prefix string) ([]*T, error) {
	s.mu.RLock()
	var vals [][]byte
	for name, g := range s.groups {
		if strings.HasPrefix(name, prefix) {
			for _, it := range g {
				vals = append(vals, it.val)
			}
		}
	}
	s.mu.RUnlock()
	out := make([]*T, len(vals))
	for i, val := range vals {
		out[i] = new(T)
		if err := json.Unmarshal(val, out[i]); err != nil {
			return nil, fmt.Errorf("decode %s…: %w", prefix, err)
		}
	}
	return out, nil
}

// encodeToken returns the page token after id.
func encodeToken(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// decodeToken returns the id a page token names ("" for none), or EINVALID.
func decodeToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	after, err := base64.RawURLEncoding.DecodeString(token)
	// Every id dcon lists has the form of a project id; anything else is not
	// a token dcon made.
	if err != nil || !dcon.ValidProjectID(string(after)) {
		return "", dcon.Errorf(dcon.EINVALID, "invalid page token")
	}
	return string(after), nil
}
