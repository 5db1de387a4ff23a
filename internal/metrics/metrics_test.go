package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/metrics"
	"github.com/switchboard-chat/switchboard/internal/metrics/metricstest"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// node runs a real server on 127.0.0.1:0 until the test ends.
func node(t *testing.T, st string) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Store: st,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	if srv.Addr() == "" {
		cancel()
		t.Fatal(<-done)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv
}

// find returns the metric of family name whose labels include want, or nil.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func counter(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	if m := find(fams, name, labels); m != nil {
		return m.GetCounter().GetValue()
	}
	return 0
}

func TestScrapeMovesWithSends(t *testing.T) {
	for _, st := range []string{"memory", "pebble"} {
		t.Run(st, func(t *testing.T) { testScrape(t, st) })
	}
}

func testScrape(t *testing.T, st string) {
	srv := node(t, st)
	base := "http://" + srv.Addr()
	ctx := context.Background()
	admin := client.NewAdmin(base, srv.AdminToken(), nil)
	for _, app := range []string{"messenger", "instagram"} {
		if _, err := admin.CreateApp(ctx, app, ""); err != nil {
			t.Fatal(err)
		}
	}
	token := func(app, user string) string {
		tok, err := admin.Token(ctx, app, user, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice := client.New(base, token("messenger", "alice"), nil)
	bob := client.New(base, token("messenger", "bob"), nil)

	before := metricstest.Scrape(t, base)
	if before["switchboard_ws_connections"] == nil || before["switchboard_store_duration_seconds"] == nil {
		t.Fatalf("families missing from the scrape: %v", keys(before))
	}

	// Bob listens, so that the delivery lag is observed.
	stream, err := bob.Connect(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	conv, _, err := alice.CreateConversation(ctx, []string{"messenger:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for i := range n {
		if _, err := alice.Send(ctx, conv.ID, fmt.Sprintf("c-%d", i), "hi", nil); err != nil {
			t.Fatal(err)
		}
	}
	// A repeated client id stores nothing and must not count.
	if _, err := alice.Send(ctx, conv.ID, "c-0", "hi", nil); err != nil {
		t.Fatal(err)
	}
	// A send to a conversation that does not exist fails with not_found.
	var ce *client.Error
	if _, err := alice.Send(ctx, "nope", "c-x", "hi", nil); !errors.As(err, &ce) || ce.Code != "not_found" {
		t.Fatalf("send to an unknown conversation: %v", err)
	}
	// Wait until Bob's stream has the three messages: then the bus handed
	// them over and the lag was observed.
	got := 0
	for got < n {
		select {
		case e := <-stream.Events():
			if e.Update != nil && e.Update.Type == "message" {
				got++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("bob saw %d of %d messages", got, n)
		}
	}

	// Sends over alice's socket go to the store in batches
	// (append_messages), which count too.
	as, err := alice.Connect(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	const pipelined = 5
	var outs []*client.Outgoing
	for i := range pipelined {
		o, err := as.Send(ctx, conv.ID, fmt.Sprintf("pipelined %d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	for _, o := range outs {
		if _, err := o.Result(); err != nil {
			t.Fatal(err)
		}
	}

	after := metricstest.Scrape(t, base)
	app := map[string]string{"app": "messenger"}
	if d := counter(after, "switchboard_messages_sent_total", app) - counter(before, "switchboard_messages_sent_total", app); d != n+pipelined {
		t.Errorf("switchboard_messages_sent_total{app=messenger} moved by %v, want %d", d, n+pipelined)
	}
	if m := find(after, "switchboard_store_duration_seconds", map[string]string{"op": "append_messages"}); m == nil || m.GetHistogram().GetSampleCount() < 1 {
		t.Errorf("switchboard_store_duration_seconds{op=append_messages}: %v, want samples: the batch path hidden by the metrics", m)
	}
	if v := counter(after, "switchboard_send_errors_total", map[string]string{"app": "messenger", "code": "not_found"}); v != 1 {
		t.Errorf("switchboard_send_errors_total{app=messenger,code=not_found} = %v, want 1", v)
	}
	if m := find(after, "switchboard_send_duration_seconds", app); m == nil || m.GetHistogram().GetSampleCount() != n+2+pipelined {
		t.Errorf("switchboard_send_duration_seconds{app=messenger}: %v, want %d samples", m, n+2+pipelined)
	}
	if m := find(after, "switchboard_delivery_lag_seconds", app); m == nil || m.GetHistogram().GetSampleCount() < n {
		t.Errorf("switchboard_delivery_lag_seconds{app=messenger}: %v, want at least %d samples", m, n)
	}
	if m := find(after, "switchboard_store_duration_seconds", map[string]string{"op": "append_message"}); m == nil || m.GetHistogram().GetSampleCount() != n+1 {
		t.Errorf("switchboard_store_duration_seconds{op=append_message}: %v, want %d samples", m, n+1)
	}
	if m := find(after, "switchboard_bus_publish_duration_seconds", nil); m == nil || m.GetHistogram().GetSampleCount() < n {
		t.Errorf("switchboard_bus_publish_duration_seconds: %v, want at least %d samples", m, n)
	}
	if m := find(after, "switchboard_ws_connections", nil); m == nil || m.GetGauge().GetValue() != 2 {
		t.Errorf("switchboard_ws_connections: %v, want 2 (bob's and alice's)", m)
	}
	if m := find(after, "switchboard_app_state", map[string]string{"app": "instagram", "state": "operational"}); m == nil || m.GetGauge().GetValue() != 1 {
		t.Errorf("switchboard_app_state{app=instagram,state=operational}: %v, want 1", m)
	}
	if st == "pebble" && after["switchboard_store_queue_depth"] == nil {
		t.Errorf("switchboard_store_queue_depth missing over pebble")
	}
	// The engine's own figures, over the server's socket like the rest.
	if m := find(after, "switchboard_pebble_wal_fsync_duration_seconds", nil); st == "pebble" && (m == nil || m.GetHistogram().GetSampleCount() < 1) {
		t.Errorf("switchboard_pebble_wal_fsync_duration_seconds over pebble: %v, want synced writes counted", m)
	}
	if st != "pebble" && after["switchboard_pebble_wal_fsync_duration_seconds"] != nil {
		t.Errorf("switchboard_pebble_* over the %s store", st)
	}
}

func keys(m map[string]*dto.MetricFamily) []string {
	var list []string
	for k := range m {
		list = append(list, k)
	}
	return list
}

// BenchmarkSendPath is what the metrics add to one send: the observer and
// the stored-message count.
func BenchmarkSendPath(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveSend("messenger", time.Millisecond, nil)
		}
	})
}
