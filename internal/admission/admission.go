// Package admission decides, before any work is done, whether a call may
// run: it keeps each app in its own bulkhead (a token bucket for sends, a
// bound on calls in progress, a bound on open connections), gives each user
// a token bucket for sends, honours the operators' freeze of an app, and
// sheds the least important work first when the whole node is saturated.
//
// Every refusal is immediate: nothing waits in a queue here, so an
// overloaded app or node answers fast instead of slowly. Refusals are
// errors carrying a *chat.Error (429 rate_limited or 503 unavailable) and a
// RetryAfter hint for the edge's Retry-After header.
//
// Limits are per node: with N nodes an app may get up to N times its
// limits in all.
//
// Memory: one small record per app (apps are few and never deleted), and
// per user a token bucket, of which at most Config.MaxUsers are kept; a
// bucket that has refilled is worth nothing and is dropped first.
package admission

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// Class orders calls by importance, for shedding under saturation.
type Class int

const (
	// Typing notices: best effort, shed first.
	Typing Class = iota
	// Read calls: history, sync, listings; shed next.
	Read
	// Write calls: read receipts, conversations, members, blocks.
	Write
	// Send is a message send: a write that also takes a token from the
	// app's and the user's buckets.
	Send
)

func (c Class) String() string {
	switch c {
	case Typing:
		return "typing"
	case Read:
		return "read"
	case Write:
		return "write"
	case Send:
		return "send"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Config configures a Controller. Zero values mean the defaults named.
type Config struct {
	// Defaults fill the zero fields of an app's own limits. Zero:
	// chat.DefaultLimits.
	Defaults chat.Limits
	// MaxInFlight bounds the calls in progress on the node, all apps
	// together. Typing is refused from half of it on, reads from three
	// quarters, writes and sends at the bound. Zero: 512.
	MaxInFlight int
	// MaxUsers bounds the per-user buckets kept. Zero: 1<<18.
	MaxUsers int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Controller is safe for concurrent use.
type Controller struct {
	defaults chat.Limits
	max      int64
	maxUsers int
	now      func() time.Time

	inflight atomic.Int64 // calls in progress, all apps

	mu   sync.Mutex // guards apps
	apps map[string]*appState

	users userBuckets
}

type appState struct {
	inflight atomic.Int64
	conns    atomic.Int64

	mu     sync.Mutex // guards bucket
	bucket bucket
}

// New returns a Controller.
func New(cfg Config) *Controller {
	c := &Controller{defaults: cfg.Defaults, max: int64(cfg.MaxInFlight), maxUsers: cfg.MaxUsers, now: cfg.Now, apps: map[string]*appState{}}
	if c.defaults == (chat.Limits{}) {
		c.defaults = chat.DefaultLimits
	}
	c.defaults = c.defaults.Or(chat.DefaultLimits)
	if c.max <= 0 {
		c.max = 512
	}
	if c.maxUsers <= 0 {
		c.maxUsers = 1 << 18
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.users.init(c.maxUsers)
	return c
}

// Limits returns the limits in force for app: its own, defaults filled in.
func (c *Controller) Limits(app chat.App) chat.Limits { return app.Limits.Or(c.defaults) }

// InFlight returns the calls in progress on the node.
func (c *Controller) InFlight() int { return int(c.inflight.Load()) }

func (c *Controller) app(id string) *appState {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[id]
	if a == nil {
		a = &appState{}
		c.apps[id] = a
	}
	return a
}

// threshold is how many calls may be in progress on the node for a call
// of class k to start.
func (c *Controller) threshold(k Class) int64 {
	switch k {
	case Typing:
		return c.max / 2
	case Read:
		return c.max * 3 / 4
	}
	return c.max
}

// Admit lets one call of class k by user (of app) start, or refuses it.
// On success the caller must call release exactly once when the call ends.
func (c *Controller) Admit(app chat.App, user chat.Address, k Class) (release func(), err error) {
	if app.Frozen {
		return nil, Frozen(app.ID)
	}
	lim := c.Limits(app)
	if n := c.inflight.Add(1); n > c.threshold(k) {
		c.inflight.Add(-1)
		return nil, refuse(chat.Unavailable, time.Second, "the server is overloaded; %s calls are refused for now, retry shortly", k)
	}
	a := c.app(app.ID)
	if n := a.inflight.Add(1); n > int64(lim.MaxConcurrentRequests) {
		a.inflight.Add(-1)
		c.inflight.Add(-1)
		return nil, refuse(chat.Unavailable, time.Second, "%s has %d requests in progress, its limit; retry shortly", app.ID, lim.MaxConcurrentRequests)
	}
	release = func() {
		a.inflight.Add(-1)
		c.inflight.Add(-1)
	}
	if k != Send {
		return release, nil
	}
	if err := c.Charge(app, user); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// Charge takes one message from app's and user's send rates, or refuses
// with rate_limited. Admit of a Send does it for the first message; a
// caller sending several messages in one call charges each further one.
func (c *Controller) Charge(app chat.App, user chat.Address) error {
	lim := c.Limits(app)
	a := c.app(app.ID)
	now := c.now()
	// The app's bucket first: when the user's then refuses, the app's
	// token goes back, so that one user's excess costs the app nothing.
	a.mu.Lock()
	ok, wait := a.bucket.take(now, float64(lim.SendsPerSecond), lim.Burst)
	a.mu.Unlock()
	if !ok {
		return refuse(chat.RateLimited, wait, "%s is over its limit of %d messages per second; retry after the time in Retry-After", app.ID, lim.SendsPerSecond)
	}
	if ok, wait := c.users.take(user, now, float64(lim.UserSendsPerSecond), lim.UserBurst); !ok {
		a.mu.Lock()
		a.bucket.give(lim.Burst)
		a.mu.Unlock()
		return refuse(chat.RateLimited, wait, "you are over your limit of %d messages per second; retry after the time in Retry-After", lim.UserSendsPerSecond)
	}
	return nil
}

// Connect lets one more live session of app open, or refuses it. On
// success the caller must call release exactly once when it closes.
func (c *Controller) Connect(app chat.App) (release func(), err error) {
	if app.Frozen {
		return nil, Frozen(app.ID)
	}
	lim := c.Limits(app)
	a := c.app(app.ID)
	if n := a.conns.Add(1); n > int64(lim.MaxConnections) {
		a.conns.Add(-1)
		return nil, refuse(chat.Unavailable, 5*time.Second, "%s has %d open connections on this server, its limit; reconnect later", app.ID, lim.MaxConnections)
	}
	var once sync.Once
	return func() { once.Do(func() { a.conns.Add(-1) }) }, nil
}

// Connections returns app's open sessions on this node.
func (c *Controller) Connections(appID string) int {
	return int(c.app(appID).conns.Load())
}

// Frozen is the error every call of a frozen app gets.
func Frozen(appID string) error {
	return refuse(chat.Unavailable, 30*time.Second, "%s is frozen by the operators; its service is stopped for now", appID)
}

// Error is a refusal: a *chat.Error (through Unwrap) and when to retry.
type Error struct {
	err   *chat.Error
	after time.Duration
}

func refuse(code string, after time.Duration, format string, args ...any) *Error {
	return &Error{err: chat.Errorf(code, format, args...), after: after}
}

func (e *Error) Error() string { return e.err.Error() }

// Unwrap gives the *chat.Error, for errors.As.
func (e *Error) Unwrap() error { return e.err }

// RetryAfter is how long until a retry may succeed.
func (e *Error) RetryAfter() time.Duration { return e.after }

// bucket is a token bucket; its user holds the lock that guards it.
type bucket struct {
	tokens float64
	last   time.Time
}

// refill brings the bucket to now.
func (b *bucket) refill(now time.Time, rate float64, burst int) {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	b.tokens = min(b.tokens, float64(burst)) // the burst may have been lowered
}

// take takes one token, or says how long until one is there.
func (b *bucket) take(now time.Time, rate float64, burst int) (bool, time.Duration) {
	b.refill(now, rate, burst)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// give returns a token taken in vain.
func (b *bucket) give(burst int) { b.tokens = min(float64(burst), b.tokens+1) }

// full reports whether the bucket would be full at now, so that dropping
// it changes nothing.
func (b *bucket) full(now time.Time, rate float64, burst int) bool {
	return b.tokens+now.Sub(b.last).Seconds()*rate >= float64(burst)
}

// userBuckets holds the per-user buckets in shards, so that users of
// different shards do not contend.
type userBuckets struct {
	shards [64]userShard
}

type userShard struct {
	mu  sync.Mutex // guards m and max
	m   map[chat.Address]*userBucket
	max int
}

type userBucket struct {
	bucket
	rate  float64
	burst int
}

func (u *userBuckets) init(max int) {
	for i := range u.shards {
		u.shards[i].m = map[chat.Address]*userBucket{}
		u.shards[i].max = max/len(u.shards) + 1
	}
}

func (u *userBuckets) shard(a chat.Address) *userShard {
	// FNV-1a over the address.
	h := uint32(2166136261)
	for i := 0; i < len(a); i++ {
		h ^= uint32(a[i])
		h *= 16777619
	}
	return &u.shards[h%uint32(len(u.shards))]
}

func (u *userBuckets) take(a chat.Address, now time.Time, rate float64, burst int) (bool, time.Duration) {
	s := u.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[a]
	if b == nil {
		if len(s.m) >= s.max {
			s.sweep(now)
		}
		b = &userBucket{}
		s.m[a] = b
	}
	b.rate, b.burst = rate, burst
	return b.take(now, rate, burst)
}

// sweep makes room: buckets that have refilled go first; if every bucket
// is in use, the shard starts over, which lets those users burst once more
// rather than grow without bound. s.mu is held.
func (s *userShard) sweep(now time.Time) {
	for a, b := range s.m {
		if b.full(now, b.rate, b.burst) {
			delete(s.m, a)
		}
	}
	if len(s.m) >= s.max {
		clear(s.m)
	}
}

// Users returns how many per-user buckets are kept, for tests.
func (c *Controller) Users() int {
	n := 0
	for i := range c.users.shards {
		s := &c.users.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
