package messaging

import (
	"fmt"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	const max = 1000
	c := newCache[string, string](max)
	now := time.Now()
	if _, ok := c.get("t1", now); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put("t1", "alice", now.Add(time.Minute), now)
	if v, ok := c.get("t1", now); !ok || v != "alice" {
		t.Fatalf("get = %q, %v", v, ok)
	}
	if _, ok := c.get("t1", now.Add(time.Minute)); ok {
		t.Fatal("hit at exp")
	}
	c.put("t2", "bob", now, now)
	if _, ok := c.get("t2", now.Add(-time.Second)); ok {
		t.Fatal("an entry that expired when put was kept")
	}
	c.drop("t1")
	if _, ok := c.get("t1", now); ok {
		t.Fatal("hit after drop")
	}

	// Bounded: expired entries go first, then everything.
	for i := range max + 10 {
		c.put(fmt.Sprint("k", i), fmt.Sprint("u", i), now.Add(time.Hour), now)
	}
	if n := len(c.m); n > max {
		t.Fatalf("cache holds %d entries, bound %d", n, max)
	}
	if v, ok := c.get(fmt.Sprint("k", max+9), now); !ok || v != fmt.Sprint("u", max+9) {
		t.Fatal("the newest entry is missing")
	}
}
