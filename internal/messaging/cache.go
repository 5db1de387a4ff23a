package messaging

import (
	"sync"
	"time"
)

// cache is a bounded map whose entries expire. The service keeps what the
// hot paths would otherwise read from the store on every request: apps,
// verified tokens, conversations and blocks.
type cache[K comparable, V any] struct {
	max int

	mu sync.RWMutex // guards m
	m  map[K]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v   V
	exp time.Time
}

func newCache[K comparable, V any](max int) *cache[K, V] {
	return &cache[K, V]{max: max, m: make(map[K]cacheEntry[V])}
}

// get returns the value for k unless it is missing or expired at now.
func (c *cache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put keeps v for k until exp.
func (c *cache[K, V]) put(k K, v V, exp, now time.Time) {
	if !now.Before(exp) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			// Still full of live entries: start over rather than track
			// recency; a miss costs only one store read.
			clear(c.m)
		}
	}
	c.m[k] = cacheEntry[V]{v, exp}
}

// drop forgets k, so that a change made through this node is seen at once.
func (c *cache[K, V]) drop(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
