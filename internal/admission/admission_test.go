package admission

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(cfg Config) (*Controller, *clock) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg.Now = clk.now
	return New(cfg), clk
}

// code returns the API code of a refusal and checks its Retry-After.
func code(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ce *chat.Error
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ce) || !errors.As(err, &ra) || ra.RetryAfter() <= 0 {
		t.Fatalf("refusal %v lacks a *chat.Error or a RetryAfter", err)
	}
	return ce.Code
}

func TestAppBucket(t *testing.T) {
	c, clk := newTest(Config{})
	app := chat.App{ID: "a", Limits: chat.Limits{SendsPerSecond: 10, Burst: 5, UserSendsPerSecond: 1000, UserBurst: 1000}}
	for i := range 5 {
		rel, err := c.Admit(app, chat.Address(fmt.Sprintf("a:u%d", i)), Send)
		if err != nil {
			t.Fatalf("send %d within the burst: %v", i, err)
		}
		rel()
	}
	_, err := c.Admit(app, "a:u9", Send)
	if code(t, err) != chat.RateLimited {
		t.Fatalf("send past the burst: %v, want rate_limited", err)
	}
	var ra *Error
	errors.As(err, &ra)
	if d := ra.RetryAfter(); d < 90*time.Millisecond || d > 110*time.Millisecond {
		t.Errorf("RetryAfter %v, want about 100ms (one token at 10/s)", d)
	}
	// Other apps and other classes are not affected.
	if rel, err := c.Admit(chat.App{ID: "b"}, "b:u", Send); err != nil {
		t.Errorf("another app's send: %v", err)
	} else {
		rel()
	}
	if rel, err := c.Admit(app, "a:u9", Read); err != nil {
		t.Errorf("a read of the limited app: %v", err)
	} else {
		rel()
	}
	clk.add(100 * time.Millisecond)
	if rel, err := c.Admit(app, "a:u9", Send); err != nil {
		t.Errorf("after one token's time: %v", err)
	} else {
		rel()
	}
}

func TestUserBucket(t *testing.T) {
	c, clk := newTest(Config{})
	app := chat.App{ID: "a"} // defaults: 10/s per user, burst 20
	for i := range 20 {
		rel, err := c.Admit(app, "a:alice", Send)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		rel()
	}
	if _, err := c.Admit(app, "a:alice", Send); code(t, err) != chat.RateLimited {
		t.Fatalf("alice past her burst: %v", err)
	}
	if rel, err := c.Admit(app, "a:bob", Send); err != nil {
		t.Fatalf("bob: %v", err)
	} else {
		rel()
	}
	// alice's refusal gave the app's token back: the app spent 21.
	a := c.app("a")
	a.mu.Lock()
	left := a.bucket.tokens
	a.mu.Unlock()
	if want := float64(chat.DefaultLimits.Burst - 21); left != want {
		t.Errorf("app bucket holds %v tokens, want %v", left, want)
	}
	clk.add(time.Second)
	for i := range 10 {
		rel, err := c.Admit(app, "a:alice", Send)
		if err != nil {
			t.Fatalf("after a second, send %d: %v", i, err)
		}
		rel()
	}
}

func TestConcurrencyAndShedding(t *testing.T) {
	c, _ := newTest(Config{MaxInFlight: 8})
	app := chat.App{ID: "a", Limits: chat.Limits{MaxConcurrentRequests: 3}}
	var rels []func()
	for i := range 3 {
		rel, err := c.Admit(app, "a:u", Write)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		rels = append(rels, rel)
	}
	if _, err := c.Admit(app, "a:u", Write); code(t, err) != chat.Unavailable {
		t.Fatalf("over the app's concurrency: %v, want unavailable", err)
	}
	// Another app fills the node: typing goes at 4 (half), reads at 6,
	// writes at 8.
	b := chat.App{ID: "b"}
	rel, err := c.Admit(b, "b:u", Write)
	if err != nil {
		t.Fatal(err)
	}
	rels = append(rels, rel) // 4 in flight
	if _, err := c.Admit(b, "b:u", Typing); code(t, err) != chat.Unavailable {
		t.Fatalf("typing at half the node's bound: %v, want unavailable", err)
	}
	for range 2 {
		rel, err := c.Admit(b, "b:u", Read)
		if err != nil {
			t.Fatalf("read under three quarters: %v", err)
		}
		rels = append(rels, rel)
	} // 6
	if _, err := c.Admit(b, "b:u", Read); code(t, err) != chat.Unavailable {
		t.Fatalf("read at three quarters: %v", err)
	}
	for range 2 {
		rel, err := c.Admit(b, "b:u", Send)
		if err != nil {
			t.Fatalf("send under the bound: %v", err)
		}
		rels = append(rels, rel)
	} // 8
	if _, err := c.Admit(b, "b:u", Send); code(t, err) != chat.Unavailable {
		t.Fatalf("send at the bound: %v", err)
	}
	for _, r := range rels {
		r()
	}
	if n := c.InFlight(); n != 0 {
		t.Fatalf("%d in flight after every release", n)
	}
	if rel, err := c.Admit(b, "b:u", Typing); err != nil {
		t.Fatalf("typing once idle: %v", err)
	} else {
		rel()
	}
}

func TestFrozenAndConnections(t *testing.T) {
	c, _ := newTest(Config{})
	app := chat.App{ID: "a", Frozen: true}
	for _, k := range []Class{Typing, Read, Write, Send} {
		_, err := c.Admit(app, "a:u", k)
		if code(t, err) != chat.Unavailable {
			t.Fatalf("%v of a frozen app: %v", k, err)
		}
		if want := "a is frozen by the operators"; !containsMsg(err, want) {
			t.Fatalf("%v: message %q does not say %q", k, err, want)
		}
	}
	if _, err := c.Connect(app); code(t, err) != chat.Unavailable {
		t.Fatalf("connect to a frozen app: %v", err)
	}
	app = chat.App{ID: "a", Limits: chat.Limits{MaxConnections: 2}}
	r1, err := c.Connect(app)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.Connect(app)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(app); code(t, err) != chat.Unavailable {
		t.Fatalf("third connection: %v", err)
	}
	r1()
	r1() // idempotent
	if n := c.Connections("a"); n != 1 {
		t.Fatalf("%d connections after one release, want 1", n)
	}
	r3, err := c.Connect(app)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	r2()
	r3()
}

func containsMsg(err error, s string) bool {
	var ce *chat.Error
	return errors.As(err, &ce) && len(ce.Message) >= len(s) && ce.Message[:len(s)] == s
}

// The per-user buckets stay bounded however many users send.
func TestUserBucketsBounded(t *testing.T) {
	c, clk := newTest(Config{MaxUsers: 640})
	app := chat.App{ID: "a", Limits: chat.Limits{SendsPerSecond: 1_000_000, Burst: 1_000_000}}
	for i := range 20000 {
		rel, err := c.Admit(app, chat.Address(fmt.Sprintf("a:u%d", i)), Send)
		if err != nil {
			t.Fatalf("user %d: %v", i, err)
		}
		rel()
		if i%1000 == 0 {
			clk.add(time.Millisecond)
		}
	}
	if n := c.Users(); n > 640+64 {
		t.Fatalf("%d user buckets kept, bound 640", n)
	}
}

func TestLimitChange(t *testing.T) {
	l := chat.Limits{SendsPerSecond: 5}
	n := func(v int64) *int64 { return &v }
	if err := (chat.LimitChange{Burst: n(9), UserBurst: n(3)}).Apply(&l); err != nil {
		t.Fatal(err)
	}
	if l != (chat.Limits{SendsPerSecond: 5, Burst: 9, UserBurst: 3}) {
		t.Fatalf("after Apply: %+v", l)
	}
	for _, bad := range []chat.LimitChange{{Burst: n(0)}, {SendsPerSecond: n(-1)}, {MaxConnections: n(1 << 40)}, {Burst: n(2), UserSendsPerSecond: n(0)}} {
		before := l
		if err := bad.Apply(&l); chat.ErrorCode(err) != chat.InvalidArgument {
			t.Errorf("Apply(%+v) = %v, want invalid_argument", bad, err)
		}
		if l != before {
			t.Errorf("a refused change changed the limits: %+v", l)
		}
	}
}
