package messaging

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

func TestTokenCache(t *testing.T) {
	var c tokenCache
	now := time.Now()
	if _, ok := c.get("t1", now); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put("t1", "app:alice", now.Add(time.Minute), now)
	if a, ok := c.get("t1", now); !ok || a != "app:alice" {
		t.Fatalf("get = %q, %v", a, ok)
	}
	if _, ok := c.get("t1", now.Add(time.Minute)); ok {
		t.Fatal("hit at exp")
	}
	c.put("t2", "app:bob", now, now)
	if _, ok := c.get("t2", now.Add(-time.Second)); ok {
		t.Fatal("an expired token was cached")
	}

	// Bounded: expired entries go first, then everything.
	for i := range maxCachedTokens + 10 {
		c.put(fmt.Sprint("k", i), chat.Address(fmt.Sprint("app:u", i)), now.Add(time.Hour), now)
	}
	if n := len(c.m); n > maxCachedTokens {
		t.Fatalf("cache holds %d entries, bound %d", n, maxCachedTokens)
	}
	if a, ok := c.get(fmt.Sprint("k", maxCachedTokens+9), now); !ok || a != chat.Address(fmt.Sprint("app:u", maxCachedTokens+9)) {
		t.Fatal("the newest entry is missing")
	}
}
