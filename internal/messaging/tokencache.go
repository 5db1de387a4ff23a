package messaging

import (
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// maxCachedTokens bounds the verified-token cache.
const maxCachedTokens = 1 << 16

// tokenCache remembers tokens that verified, until their exp, so that a
// client sending many requests with one token pays for the JWT parse and
// HMAC once. Only successes are kept. This is sound because nothing that
// Verify checks changes during a token's life: apps are never deleted and
// their secrets never change. (A secret rotation must clear the cache.)
type tokenCache struct {
	mu sync.RWMutex // guards m
	m  map[string]cachedToken
}

type cachedToken struct {
	addr chat.Address
	exp  time.Time
}

func (c *tokenCache) get(token string, now time.Time) (chat.Address, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	if !ok || !now.Before(e.exp) {
		return "", false
	}
	return e.addr, true
}

func (c *tokenCache) put(token string, addr chat.Address, exp time.Time, now time.Time) {
	if !now.Before(exp) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cachedToken)
	}
	if len(c.m) >= maxCachedTokens {
		for k, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedTokens {
			// Still full of live tokens: start over rather than track
			// recency; a miss costs only one verification.
			clear(c.m)
		}
	}
	c.m[token] = cachedToken{addr, exp}
}
