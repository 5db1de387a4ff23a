// Package natsbus is the Bus across nodes, on core NATS. Every event is
// published on its user's own subject, <prefix>.<token>, where the token is
// the user's address in unpadded base64url (addresses hold '.' and ':',
// which subjects reserve or may not like; base64url holds neither '.',
// '*', '>' nor spaces). A node subscribes to the subjects of the users
// connected to it, once per user however many sessions that user has
// there, so a node receives only its own users' traffic.
//
// Core NATS delivers at most once: a message published while a node is
// cut off from NATS, or dropped because the node fell behind, is lost. That
// is enough here, because the bus is best effort by contract: a session
// that misses an update sees a gap in its cursors when the next one
// arrives and backfills the gap from the store (see package ws), and a
// client that reconnects resumes from its cursor. JetStream would add
// a second durable log beside the store for nothing.
//
// The connection reconnects by itself, without limit, and NATS restores
// the subscriptions; Publish buffers while it is reconnecting (up to
// nats.go's reconnect buffer) and fails past that.
package natsbus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// errClosed wraps bus.ErrClosed, so that callers test with errors.Is.
var errClosed = fmt.Errorf("natsbus: %w", bus.ErrClosed)

var _ bus.Bus = (*Bus)(nil)

// Options configures a Bus. Nil or zero fields mean the defaults named.
type Options struct {
	// Prefix starts every subject; nodes that talk to each other must
	// share it. Several deployments (or tests) can share one NATS with
	// different prefixes. Empty: "switchboard.user".
	Prefix string
	// Name names the connection in NATS's monitoring. Empty: "switchboard".
	Name string
	// QueueLen bounds the events received and not yet handed to
	// subscribers; past it NATS drops them (a slow consumer), which the
	// sessions see as gaps. Zero: 65536.
	QueueLen int
	// Logger. Nil: discard.
	Logger *slog.Logger
}

// Bus is safe for concurrent use. Subscribers' functions run on one
// goroutine of the bus, one event at a time, never after their cancel has
// returned; they must not block and must not call their own cancel.
type Bus struct {
	nc     *nats.Conn
	prefix string
	log    *slog.Logger
	msgs   chan *nats.Msg // every subscription of this node delivers here
	done   chan struct{}  // closed when the dispatcher has returned

	mu     sync.Mutex // guards the 2 following fields
	users  map[string]*userSub
	closed bool
}

// userSub is the node's one NATS subscription for a user, shared by that
// user's local subscribers. subs is replaced, never changed in place, so
// the dispatcher may range over a copy it read under Bus.mu.
type userSub struct {
	ns    *nats.Subscription
	subs  []*sub
	ready chan struct{} // closed once NATS has confirmed the subscription
}

type sub struct {
	mu   sync.Mutex // held while fn runs; guards dead
	dead bool
	fn   func(bus.Event)
}

// New connects to the NATS server(s) at url (nats://host:4222, or several
// separated by commas). A query parameter prefix (nats://host:4222?prefix=
// team1.users) sets Options.Prefix when that is empty, so that it can be
// given on a command line. New fails if no server answers now; after that,
// it reconnects by itself whenever the connection is lost.
func New(url string, opts *Options) (*Bus, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	url, prefix, err := splitPrefix(url)
	if err != nil {
		return nil, err
	}
	if o.Prefix == "" {
		o.Prefix = prefix
	}
	if o.Prefix == "" {
		o.Prefix = "switchboard.user"
	}
	if o.Name == "" {
		o.Name = "switchboard"
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 65536
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		prefix: o.Prefix,
		log:    log,
		msgs:   make(chan *nats.Msg, o.QueueLen),
		done:   make(chan struct{}),
		users:  map[string]*userSub{},
	}
	nc, err := nats.Connect(url,
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // Close, not a failure
			}
			log.Warn("disconnected from NATS; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			// Slow consumer: events dropped; the sessions backfill the gaps.
			log.Warn("NATS error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect: %w", err)
	}
	b.nc = nc
	go b.dispatch()
	return b, nil
}

// splitPrefix takes the prefix parameter out of the URLs' queries.
func splitPrefix(list string) (urls, prefix string, err error) {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := neturl.Parse(strings.TrimSpace(p))
		if err != nil {
			return "", "", errors.New("natsbus: cannot parse the NATS URL")
		}
		q := u.Query()
		if v := q.Get("prefix"); v != "" {
			if strings.ContainsAny(v, " *>") || strings.HasPrefix(v, ".") || strings.HasSuffix(v, ".") {
				return "", "", fmt.Errorf("natsbus: prefix %q is not a NATS subject", v)
			}
			prefix = v
		}
		q.Del("prefix")
		u.RawQuery = q.Encode()
		parts[i] = u.String()
	}
	return strings.Join(parts, ","), prefix, nil
}

// subject is the user's subject: the address in base64url, one token.
func (b *Bus) subject(user chat.Address) string {
	return b.prefix + "." + base64.RawURLEncoding.EncodeToString([]byte(user))
}

// Publish sends each event on its user's subject. It returns once NATS has
// the events in its outgoing buffer, without waiting for delivery.
func (b *Bus) Publish(ctx context.Context, events ...bus.Event) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return errClosed
	}
	var data []byte
	for i := range events {
		var err error
		// NATS copies the data into its buffer: one buffer serves all.
		if data, err = appendEvent(data[:0], &events[i]); err != nil {
			return fmt.Errorf("natsbus: encode: %w", err)
		}
		if err := b.nc.Publish(b.subject(events[i].User), data); err != nil {
			if errors.Is(err, nats.ErrConnectionClosed) {
				return errClosed
			}
			return fmt.Errorf("natsbus: publish: %w", err)
		}
	}
	return nil
}

// Subscribe registers fn for user's events until cancel is called. The
// node's first subscriber of a user subscribes to the user's subject; the
// last cancel unsubscribes. cancel is idempotent; once it returns, fn is
// not called again.
//
// Subscribe returns once the NATS server has the subscription (one round
// trip, for the first subscriber of a user), so that an event published by
// any node after it returns is delivered: a session subscribes, then reads
// the store, and must not miss what is stored in between. While NATS is
// unreachable it waits up to a second and returns anyway; NATS restores
// the subscription on reconnecting.
func (b *Bus) Subscribe(user chat.Address, fn func(bus.Event)) (cancel func(), err error) {
	s := &sub{fn: fn}
	subj := b.subject(user)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed
	}
	us := b.users[subj]
	first := us == nil
	if first {
		// Under b.mu, so that a racing cancel of the last subscriber
		// cannot unsubscribe what this call relies on.
		ns, err := b.nc.ChanSubscribe(subj, b.msgs)
		if err != nil {
			b.mu.Unlock()
			return nil, fmt.Errorf("natsbus: subscribe: %w", err)
		}
		us = &userSub{ns: ns, ready: make(chan struct{})}
		b.users[subj] = us
	}
	us.subs = append(slices.Clone(us.subs), s)
	b.mu.Unlock()
	if first {
		if err := b.nc.FlushTimeout(time.Second); err != nil {
			b.log.Warn("NATS did not confirm a subscription; it is restored on reconnecting", "err", err)
		}
		close(us.ready)
	} else {
		<-us.ready
	}

	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			if us := b.users[subj]; us != nil {
				us.subs = slices.DeleteFunc(slices.Clone(us.subs), func(x *sub) bool { return x == s })
				if len(us.subs) == 0 {
					delete(b.users, subj)
					if err := us.ns.Unsubscribe(); err != nil && !b.closed {
						b.log.Warn("NATS unsubscribe failed", "err", err)
					}
				}
			}
			b.mu.Unlock()
			// Wait out a delivery in progress, then mark the sub dead so
			// that the dispatcher, holding an older list, skips it.
			s.mu.Lock()
			s.dead = true
			s.mu.Unlock()
		})
	}, nil
}

// Flush waits until the NATS server has processed everything this node
// sent before: its publications and subscriptions.
func (b *Bus) Flush() error {
	return b.nc.FlushTimeout(5 * time.Second)
}

// Subscriptions returns the number of NATS subscriptions of this node: one
// per user with local subscribers. For tests and metrics.
func (b *Bus) Subscriptions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.users)
}

// dispatch hands every received event to the local subscribers of its
// subject, in the order NATS delivered them.
func (b *Bus) dispatch() {
	defer close(b.done)
	for m := range b.msgs {
		b.mu.Lock()
		var list []*sub
		if us := b.users[m.Subject]; us != nil {
			list = us.subs
		}
		b.mu.Unlock()
		if len(list) == 0 {
			continue
		}
		var ev bus.Event
		if err := decodeEvent(m.Data, &ev); err != nil {
			b.log.Warn("dropping an undecodable bus event", "subject", m.Subject, "err", err)
			continue
		}
		for _, s := range list {
			s.mu.Lock()
			if !s.dead {
				s.fn(ev)
			}
			s.mu.Unlock()
		}
	}
}

// Close stops delivery: Publish and Subscribe fail from now on, and no fn
// is called once Close has returned. Calling a cancel afterwards is
// harmless.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	users := b.users
	b.users = map[string]*userSub{}
	b.mu.Unlock()
	// Close flushes what Publish buffered and ends every subscription;
	// nothing is sent on msgs after it returns.
	b.nc.Close()
	close(b.msgs)
	for _, us := range users {
		for _, s := range us.subs {
			s.mu.Lock()
			s.dead = true
			s.mu.Unlock()
		}
	}
	<-b.done
	return nil
}
