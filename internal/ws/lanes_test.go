package ws

import "testing"

func TestLanes(t *testing.T) {
	var l lanes
	if _, busy := l.get("a"); busy {
		t.Fatal("empty lanes: a is busy")
	}
	l.set("a", nil)
	l.set("b", []op{{ref: "b1"}})
	l.set("a", []op{{ref: "a1"}, {ref: "a2"}})
	if q, busy := l.get("a"); !busy || len(q) != 2 || q[1].ref != "a2" {
		t.Fatalf("a: %v %v", q, busy)
	}
	if l.more == nil {
		t.Fatal("a second lane should go to the map")
	}
	l.free("a")
	if _, busy := l.get("a"); busy {
		t.Fatal("a is busy after free")
	}
	if q, busy := l.get("b"); !busy || len(q) != 1 || q[0].ref != "b1" {
		t.Fatalf("b after a's free: %v %v", q, busy)
	}
	// c takes the free lane in place while b stays in the map.
	l.set("c", nil)
	if l.key != "c" || len(l.more) != 1 {
		t.Fatalf("c: in place %q, map %v", l.key, l.more)
	}
	l.set("b", nil)
	if q, busy := l.get("b"); !busy || len(q) != 0 {
		t.Fatalf("b emptied: %v %v", q, busy)
	}
	l.free("b")
	l.free("c")
	if l.busy || l.more != nil {
		t.Fatalf("all freed: busy %v, map %v", l.busy, l.more)
	}
}
