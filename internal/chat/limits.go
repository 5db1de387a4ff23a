package chat

// Limits bound one app's traffic on each node. A zero field means the
// server's default for it (see DefaultLimits); the admin API shows the
// limits in force, defaults filled in.
type Limits struct {
	// SendsPerSecond and Burst make the app's token bucket for sends.
	SendsPerSecond int `json:"sends_per_second"`
	Burst          int `json:"burst"`
	// MaxConcurrentRequests bounds the app's calls in progress at once.
	MaxConcurrentRequests int `json:"max_concurrent_requests"`
	// MaxConnections bounds the app's open WebSocket sessions.
	MaxConnections int `json:"max_connections"`
	// UserSendsPerSecond and UserBurst make each user's token bucket.
	UserSendsPerSecond int `json:"user_sends_per_second"`
	UserBurst          int `json:"user_burst"`
}

// DefaultLimits are the limits of an app that set none, per node. They let
// a busy app use a good part of one node but not all of it: the sum of two
// apps' default concurrency stays under the server-wide in-flight bound, so
// one app at its limits leaves room for the others.
var DefaultLimits = Limits{
	SendsPerSecond:        1000,
	Burst:                 2000,
	MaxConcurrentRequests: 128,
	MaxConnections:        20000,
	UserSendsPerSecond:    10,
	UserBurst:             20,
}

// limitBounds are the largest values the admin API accepts; each field
// must be from 1 to its bound.
var limitBounds = Limits{
	SendsPerSecond:        1_000_000,
	Burst:                 1_000_000,
	MaxConcurrentRequests: 100_000,
	MaxConnections:        10_000_000,
	UserSendsPerSecond:    100_000,
	UserBurst:             100_000,
}

// Or returns l with each zero field taken from d.
func (l Limits) Or(d Limits) Limits {
	pick := func(a, b int) int {
		if a > 0 {
			return a
		}
		return b
	}
	return Limits{
		SendsPerSecond:        pick(l.SendsPerSecond, d.SendsPerSecond),
		Burst:                 pick(l.Burst, d.Burst),
		MaxConcurrentRequests: pick(l.MaxConcurrentRequests, d.MaxConcurrentRequests),
		MaxConnections:        pick(l.MaxConnections, d.MaxConnections),
		UserSendsPerSecond:    pick(l.UserSendsPerSecond, d.UserSendsPerSecond),
		UserBurst:             pick(l.UserBurst, d.UserBurst),
	}
}

// LimitChange is a partial update of Limits: nil fields stay as they are.
type LimitChange struct {
	SendsPerSecond        *int64 `json:"sends_per_second"`
	Burst                 *int64 `json:"burst"`
	MaxConcurrentRequests *int64 `json:"max_concurrent_requests"`
	MaxConnections        *int64 `json:"max_connections"`
	UserSendsPerSecond    *int64 `json:"user_sends_per_second"`
	UserBurst             *int64 `json:"user_burst"`
}

// Apply checks every field given and, when all are valid, sets them in l.
// Each must be a whole number from 1 to a sane bound; otherwise l is left
// as it was and the error names the field.
func (c LimitChange) Apply(l *Limits) error {
	next := *l
	for _, f := range []struct {
		name string
		v    *int64
		dst  *int
		max  int
	}{
		{"sends_per_second", c.SendsPerSecond, &next.SendsPerSecond, limitBounds.SendsPerSecond},
		{"burst", c.Burst, &next.Burst, limitBounds.Burst},
		{"max_concurrent_requests", c.MaxConcurrentRequests, &next.MaxConcurrentRequests, limitBounds.MaxConcurrentRequests},
		{"max_connections", c.MaxConnections, &next.MaxConnections, limitBounds.MaxConnections},
		{"user_sends_per_second", c.UserSendsPerSecond, &next.UserSendsPerSecond, limitBounds.UserSendsPerSecond},
		{"user_burst", c.UserBurst, &next.UserBurst, limitBounds.UserBurst},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < 1 || *f.v > int64(f.max) {
			return Errorf(InvalidArgument, "%s must be a whole number from 1 to %d", f.name, f.max)
		}
		*f.dst = int(*f.v)
	}
	*l = next
	return nil
}
