package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/metrics/metricstest"
)

// TestScrapeCountsParkedSessions: a session with nothing to read is parked
// (Linux only: the poller is epoll), the gauge says so, and a message
// delivered to it does not need it unparked.
func TestScrapeCountsParkedSessions(t *testing.T) {
	srv := node(t, "memory")
	base := "http://" + srv.Addr()
	ctx := context.Background()
	admin := client.NewAdmin(base, srv.AdminToken(), nil)
	if _, err := admin.CreateApp(ctx, "messenger", ""); err != nil {
		t.Fatal(err)
	}
	tok := func(user string) string {
		tk, err := admin.Token(ctx, "messenger", user, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	gauge := func(fams map[string]*dto.MetricFamily, name string) float64 {
		m := find(fams, name, nil)
		if m == nil {
			t.Fatalf("%s missing from the scrape", name)
		}
		return m.GetGauge().GetValue()
	}
	waitGauges := func(open, idle float64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			fams := metricstest.Scrape(t, base)
			o, i := gauge(fams, "switchboard_ws_connections"), gauge(fams, "switchboard_ws_idle_connections")
			if o == open && i == idle {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("connections %v, idle %v; want %v and %v", o, i, open, idle)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	bob := client.New(base, tok("bob"), nil)
	stream, err := bob.Connect(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitGauges(1, 1)

	alice := client.New(base, tok("alice"), nil)
	conv, _, err := alice.CreateConversation(ctx, []string{"messenger:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, conv.ID, "c-1", "hi bob", nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		for e := range stream.Events() {
			if e.Update != nil && e.Update.Message != nil {
				got <- e.Update.Message.Body
				return
			}
		}
	}()
	select {
	case body := <-got:
		if body != "hi bob" {
			t.Fatalf("bob got %q", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("bob's parked session did not deliver the message")
	}
	waitGauges(1, 1)

	// A socket in the middle of a frame is waited for, not parked.
	raw, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /v1/ws?after=0 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n", srv.Addr(), tok("carol"))
	res, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", res.Status)
	}
	waitGauges(2, 2)
	if _, err := raw.Write([]byte{0x81}); err != nil { // a text frame's first byte
		t.Fatal(err)
	}
	waitGauges(2, 1)

	raw.Close()
	stream.Close()
	waitGauges(0, 0)
}
