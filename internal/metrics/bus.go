package metrics

import (
	"context"
	"time"

	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// measuredBus times publishes and measures the lag of each message it hands
// to a subscriber.
type measuredBus struct {
	b bus.Bus
	m *Metrics
}

var _ bus.Bus = (*measuredBus)(nil)

// Bus returns b measured: switchboard_bus_publish_duration_seconds,
// switchboard_bus_publish_errors_total, and
// switchboard_delivery_lag_seconds{app} for every message event handed to
// a live session of this node.
func (m *Metrics) Bus(b bus.Bus) bus.Bus { return &measuredBus{b: b, m: m} }

func (b *measuredBus) Publish(ctx context.Context, events ...bus.Event) error {
	start := time.Now()
	err := b.b.Publish(ctx, events...)
	b.m.busSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		b.m.busErrors.Inc()
	}
	return err
}

func (b *measuredBus) Subscribe(user chat.Address, fn func(bus.Event)) (func(), error) {
	lag := b.m.app(user.App()).lag // looked up once, not per message
	return b.b.Subscribe(user, func(e bus.Event) {
		if u := e.Update; u != nil && u.Type == chat.UpdateMessage && u.Message != nil {
			lag.Observe(time.Since(u.Message.SentAt).Seconds())
		}
		fn(e)
	})
}

func (b *measuredBus) Close() error { return b.b.Close() }
