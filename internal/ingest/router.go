package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"dcon"
)

// Dropper removes a connector's queued deliveries; dcon.Queue implements it.
type Dropper interface {
	Drop(ctx context.Context, connectorID string) (int, error)
}

// Router is a dcon.ConnectorStore that keeps an in-memory index of every
// connector next to the store it wraps, for routing and for the delivery engine.
// Writes go to the store first and change the index only when the store took them.
//
// When a connector is deleted or leaves ACTIVE, the Router drops its queued
// deliveries: a disabled connector receives nothing, and re-enabling it does not
// backfill.
//
// Connectors handed out by the Router are shared and must not be modified.
type Router struct {
	store  dcon.ConnectorStore
	queue  Dropper
	log    *slog.Logger
	onDrop func(connectorID string, n int) // see WithDropHook; nil: none

	writeMu sync.Mutex // serialises writes, so store and index change in the same order

	mu       sync.RWMutex
	byID     map[string]*dcon.Connector
	projects map[string]map[string]*dcon.Connector // every connector, by project and id
	active   map[string][]*dcon.Connector          // ACTIVE connectors by project; slices are replaced, never changed
}

var _ dcon.ConnectorStore = (*Router)(nil)

// NewRouter loads every connector of store into a new Router.
func NewRouter(ctx context.Context, store dcon.ConnectorStore, queue Dropper) (*Router, error) {
	all, err := store.AllConnectors(ctx)
	if err != nil {
		return nil, fmt.Errorf("load connectors: %w", err)
	}
	r := &Router{
		store:    store,
		queue:    queue,
		log:      slog.New(slog.DiscardHandler),
		byID:     make(map[string]*dcon.Connector, len(all)),
		projects: make(map[string]map[string]*dcon.Connector),
		active:   make(map[string][]*dcon.Connector),
	}
	for _, c := range all {
		r.put(c)
	}
	return r, nil
}

// WithLogger makes the Router log the queues it drops to l, and returns it.
func (r *Router) WithLogger(l *slog.Logger) *Router {
	r.log = l
	return r
}

// WithDropHook makes the Router tell f how many queued deliveries it dropped
// with a connector that was disabled or deleted (metrics), and returns it.
// It must be set before the Router is used.
func (r *Router) WithDropHook(f func(connectorID string, n int)) *Router {
	r.onDrop = f
	return r
}

// Active returns the project's ACTIVE connectors. The slice must not be modified.
func (r *Router) Active(projectID string) []*dcon.Connector {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.active[projectID]
}

// Lookup returns the connector with the given id, as it is now.
func (r *Router) Lookup(id string) (*dcon.Connector, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.byID[id]
	return c, ok
}

// CreateConnector stores c and starts routing to it if it is active.
func (r *Router) CreateConnector(ctx context.Context, c *dcon.Connector) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if err := r.store.CreateConnector(ctx, c); err != nil {
		return err
	}
	r.put(c.Clone())
	return nil
}

// UpdateConnector stores c. A connector leaving ACTIVE has its queue dropped.
func (r *Router) UpdateConnector(ctx context.Context, c *dcon.Connector) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	old, _ := r.Lookup(c.ID)
	if err := r.store.UpdateConnector(ctx, c); err != nil {
		return err
	}
	r.put(c.Clone())
	if old != nil && old.Status == dcon.StatusActive && c.Status != dcon.StatusActive {
		n, err := r.queue.Drop(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("drop queue of disabled connector %s: %w", c.ID, err)
		}
		r.log.Info("connector disabled; its queued deliveries were dropped",
			"connector", c.ID, "status", c.Status, "dropped", n)
		if r.onDrop != nil {
			r.onDrop(c.ID, n)
		}
	}
	return nil
}

// DeleteConnector removes the connector and its queue. The queue goes first,
// so that its size can be told; the store may drop it again.
func (r *Router) DeleteConnector(ctx context.Context, projectID, id string) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if c, ok := r.Lookup(id); !ok || c.ProjectID != projectID {
		return r.store.DeleteConnector(ctx, projectID, id) // the store's not-found error
	}
	n, err := r.queue.Drop(ctx, id)
	if err != nil {
		return fmt.Errorf("drop queue of deleted connector %s: %w", id, err)
	}
	if err := r.store.DeleteConnector(ctx, projectID, id); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.byID, id)
	delete(r.projects[projectID], id)
	r.reindexLocked(projectID)
	r.mu.Unlock()
	r.log.Info("connector deleted with its queued deliveries", "connector", id, "dropped", n)
	if r.onDrop != nil {
		r.onDrop(id, n)
	}
	return nil
}

// Reload applies a change that another node made to a connector in a shared
// store: it reads the connector from the store and indexes it as it is now,
// or forgets it if it is gone. It drops no queue (the node that made the
// change did, once). Calls made through the Router itself need none.
func (r *Router) Reload(ctx context.Context, projectID, id string) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	c, err := r.store.Connector(ctx, projectID, id)
	switch {
	case err == nil:
		r.put(c)
	case dcon.ErrorCode(err) == dcon.ENOTFOUND:
		r.mu.Lock()
		if old, ok := r.byID[id]; ok && old.ProjectID == projectID {
			delete(r.byID, id)
			delete(r.projects[projectID], id)
			r.reindexLocked(projectID)
		}
		r.mu.Unlock()
	default:
		return fmt.Errorf("reload connector %s: %w", id, err)
	}
	return nil
}

// Connector reads through to the store.
func (r *Router) Connector(ctx context.Context, projectID, id string) (*dcon.Connector, error) {
	return r.store.Connector(ctx, projectID, id)
}

// ListConnectors reads through to the store.
func (r *Router) ListConnectors(ctx context.Context, projectID string, p dcon.Page) ([]*dcon.Connector, string, error) {
	return r.store.ListConnectors(ctx, projectID, p)
}

// AllConnectors reads through to the store.
func (r *Router) AllConnectors(ctx context.Context) ([]*dcon.Connector, error) {
	return r.store.AllConnectors(ctx)
}

func (r *Router) put(c *dcon.Connector) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[c.ID] = c
	p := r.projects[c.ProjectID]
	if p == nil {
		p = make(map[string]*dcon.Connector)
		r.projects[c.ProjectID] = p
	}
	p[c.ID] = c
	r.reindexLocked(c.ProjectID)
}

// reindexLocked rebuilds one project's slice of active connectors. Its cost is
// the project's number of connectors, paid on writes only; routing never copies.
func (r *Router) reindexLocked(projectID string) {
	var active []*dcon.Connector
	for _, c := range r.projects[projectID] {
		if c.Status == dcon.StatusActive {
			active = append(active, c)
		}
	}
	if len(r.projects[projectID]) == 0 {
		delete(r.projects, projectID)
	}
	if len(active) == 0 {
		delete(r.active, projectID)
		return
	}
	slices.SortFunc(active, func(a, b *dcon.Connector) int { return strings.Compare(a.ID, b.ID) })
	r.active[projectID] = active
}
