// Package cfgcache caches what a built-in plugin derives from its config
// (compiled regexes, schemas, folded needles), keyed by the raw config bytes.
//
// A handler receives its config as JSON on every call, but the config of a
// given plugin rarely changes, so the expensive setup runs once per distinct
// config. The cache is bounded: when it is full an arbitrary entry is evicted,
// so a config that changes per call (a per-request canary, say) costs one
// build per call and never grows memory without bound.
package cfgcache

import "sync"

// DefaultSize is the bound used by a zero Cache.
const DefaultSize = 64

type entry[T any] struct {
	val T
	err error
}

// Cache maps raw config bytes to the value built from them, including a
// build error, so a bad config fails the same way on every call without
// being rebuilt. The zero Cache is ready to use and holds DefaultSize
// entries. A Cache is safe for concurrent use.
type Cache[T any] struct {
	// Size bounds the number of entries; zero means DefaultSize.
	Size int

	mu sync.RWMutex
	m  map[string]entry[T]
}

// Get returns the value built from raw, calling build on a miss. Concurrent
// misses on the same key may each call build; only one result is kept.
func (c *Cache[T]) Get(raw []byte, build func(raw []byte) (T, error)) (T, error) {
	c.mu.RLock()
	e, ok := c.m[string(raw)] // no allocation for the lookup
	c.mu.RUnlock()
	if ok {
		return e.val, e.err
	}
	v, err := build(raw)
	size := c.Size
	if size <= 0 {
		size = DefaultSize
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]entry[T], size)
	}
	if _, ok := c.m[string(raw)]; !ok {
		for k := range c.m {
			if len(c.m) < size {
				break
			}
			delete(c.m, k)
		}
		c.m[string(raw)] = entry[T]{val: v, err: err}
	}
	c.mu.Unlock()
	return v, err
}

// Len reports the number of cached entries.
func (c *Cache[T]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
