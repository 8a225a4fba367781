package pebble

import (
	"maps"
	"sync"

	"dcon"
)

// DefaultConfigCacheSize is how many projects and devices the DB keeps
// decoded in memory by default (Options.ConfigCacheSize).
const DefaultConfigCacheSize = 100_000

// configCache keeps decoded projects and devices, by key, so that the reads
// of every publish (its project and its device) cost a map lookup and a copy
// instead of a Pebble Get and a JSON decode. It holds only values that exist;
// every write of a key (put, remove, DeleteProject) drops it after its
// commit. A read fills the cache only if no write dropped anything since the
// read began (gen), so that a value read before a write's commit never
// outlives that write. Bounded: when full, an arbitrary entry makes room.
type configCache struct {
	mu  sync.RWMutex
	gen uint64
	m   map[string]any // *dcon.Project or *dcon.Device, never handed out
	max int
}

func newConfigCache(max int) *configCache {
	return &configCache{m: make(map[string]any), max: max}
}

// lookup returns the value cached at key, if any, and the generation to pass
// to fill otherwise.
func (c *configCache) lookup(key []byte) (v any, gen uint64, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok = c.m[string(key)]
	return v, c.gen, ok
}

// fill caches v at key, unless a write dropped a key since gen.
func (c *configCache) fill(key []byte, v any, gen uint64) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[string(key)] = v
}

// drop forgets key; call it after a write of key, whatever its outcome.
func (c *configCache) drop(key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, string(key))
}

// cloneDevice returns a copy of d that shares nothing mutable with it.
func cloneDevice(d *dcon.Device) *dcon.Device {
	c := *d
	c.Labels = maps.Clone(d.Labels)
	return &c
}
