package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRelay(t *testing.T) {
	base := runtime.NumGoroutine()
	var progress bytes.Buffer
	r, err := Relay(t.Context(), Config{
		Users: 20, Window: 4, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Progress: &progress, ProgressInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Workload != "relay" || r.Users != 20 || r.Loop != "closed" || r.Window != 4 || r.BodySize != 64 || r.DurationS != 0.3 || r.WarmupS != 0.1 {
		t.Fatalf("shape: %+v", r)
	}
	if r.Sent <= 0 || r.Delivered <= 0 || r.DeliveredPerSec != float64(r.Delivered)/r.DurationS {
		t.Fatalf("measured: sent %d, delivered %d (%v/s)", r.Sent, r.Delivered, r.DeliveredPerSec)
	}
	if r.OutOfOrder != 0 {
		t.Fatalf("%d out of order", r.OutOfOrder)
	}
	if !(0 < r.P50Ms && r.P50Ms <= r.P99Ms && r.P99Ms <= r.P999Ms && r.P999Ms <= r.MaxMs) {
		t.Fatalf("latency p50 %v p99 %v p99.9 %v max %v", r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	}
	if r.CPUCores <= 0 || r.CPUPerDeliveryUs <= 0 || r.NumCPU < 1 || r.GoMaxProcs < 1 {
		t.Fatalf("cpu: %v cores, %v µs per delivery, %d CPUs, GOMAXPROCS %d", r.CPUCores, r.CPUPerDeliveryUs, r.NumCPU, r.GoMaxProcs)
	}
	if !strings.Contains(progress.String(), "bench: measure") {
		t.Fatalf("no progress line in %q", progress.String())
	}

	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"relay (20 users in 10 pairs", "closed loop, 4 in flight", "delivered", "p99", "out of order"} {
		if !strings.Contains(table.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, table.String())
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "users", "window", "body_size", "duration_s", "warmup_s", "sent", "delivered",
		"delivered_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms", "out_of_order", "cpu_cores", "cpu_us_per_delivery",
		"num_cpu", "gomaxprocs", "load_avg", "load_avg_1m_before"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}

	// The relay, its connections and both sides' goroutines are gone.
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > base; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayOpenLoop runs the relay on a schedule: every send due in the
// measured window goes out, whatever the acks, and the result says so.
func TestRelayOpenLoop(t *testing.T) {
	const users, rate = 20, 2000.0
	r, err := Relay(t.Context(), Config{Users: users, Rate: rate, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Loop != "open" || r.Rate != rate || r.Window != 0 {
		t.Fatalf("shape: %+v", r)
	}
	// Each user's sends are 10 ms apart: 50 of each fall in the window,
	// give or take the one at its edge.
	if want := int64(rate * 0.5); r.Sent < want-users || r.Sent > want+users {
		t.Fatalf("sent %d in the window, want %d give or take %d", r.Sent, want, users)
	}
	if r.Delivered < r.Sent-2*users || r.OutOfOrder != 0 {
		t.Fatalf("delivered %d of %d, %d out of order", r.Delivered, r.Sent, r.OutOfOrder)
	}
	if !(0 < r.P50Ms && r.P50Ms <= r.P99Ms && r.P99Ms <= r.MaxMs) {
		t.Fatalf("latency p50 %v p99 %v max %v", r.P50Ms, r.P99Ms, r.MaxMs)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "open loop, 2,000 messages/s") {
		t.Fatalf("table lacks the open loop:\n%s", table.String())
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"loop":"open","rate":2000`)) || bytes.Contains(b, []byte(`"window"`)) {
		t.Fatalf("JSON: %s", b)
	}
}

func TestRelayRefusesBadConfigs(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Users: 3}, "whole pairs"},
		{Config{Users: -2}, "whole pairs"},
		{Config{Window: -1}, "window"},
		{Config{Duration: -time.Second}, "duration"},
		{Config{BodySize: 5}, "body size"},
		{Config{BodySize: 5000}, "body size"},
		{Config{Workload: Groups}, "pairs workload only"},
		{Config{Rate: -1}, "must be a positive number"},
		{Config{Store: "memory"}, "its own server"},
		{Config{Server: "http://127.0.0.1:1", AdminToken: "t"}, "its own server"},
	} {
		_, err := Relay(t.Context(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.cfg, err, tc.want)
		}
	}
}

// TestRelayReceiveChecks feeds a receiver frames a correct relay never
// sends: deliveries out of order and after a gap, and an ack beyond the
// window.
func TestRelayReceiveChecks(t *testing.T) {
	const bodySize = minBody
	r := &relayRun{cfg: Config{BodySize: bodySize, Window: 1}, lat: newShardedHist(), epoch: time.Now(), endNs: int64(time.Hour)}
	for _, c := range []*counter{&r.sent, &r.sentWin, &r.acked, &r.delivered, &r.deliveredWn} {
		*c = newCounter(1)
	}
	relayEnd, userEnd := net.Pipe()
	defer relayEnd.Close()
	defer userEnd.Close()
	u := &relayUser{idx: 0, c: userEnd, free: make(chan struct{}, 1)} // one send in flight
	var wg sync.WaitGroup
	wg.Go(func() { r.receive(u) })

	var frames []byte
	for _, seq := range []uint64{0, 1, 3, 4, 2} { // 3 after a gap, 2 late
		body := binary.BigEndian.AppendUint64(nil, seq)
		body = binary.BigEndian.AppendUint64(body, 0)
		body = append(body, make([]byte, bodySize-len(body))...)
		frames = binary.BigEndian.AppendUint32(frames, uint32(1+len(body)))
		frames = append(append(frames, frameDeliver), body...)
	}
	frames = append(frames, 0, 0, 0, 1, frameAck, 0, 0, 0, 1, frameAck)
	if _, err := relayEnd.Write(frames); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if got := r.outOfOrder.Load(); got != 2 {
		t.Errorf("%d out of order, want 2", got)
	}
	if got := r.delivered.load(); got != 5 {
		t.Errorf("%d delivered, want 5", got)
	}
	if err := r.err(); err == nil || !strings.Contains(err.Error(), "ack beyond the window") {
		t.Errorf("error %v, want an ack beyond the window", err)
	}
}

// TestRelayCancel ends a run early through its context: it returns at
// once, leaving nothing behind.
func TestRelayCancel(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Relay(ctx, Config{Users: 10, Window: 2, Duration: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("error %v after %v, want the context's soon", err, time.Since(start))
	}
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > base; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeCounter counts the writes on a connection.
type writeCounter struct {
	net.Conn
	n atomic.Int64
}

func (c *writeCounter) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// TestRelayServerWrites sends three frames to the relay in one write: it
// relays them in one write to the peer and one of acks back, or, unbatched,
// in a write each.
func TestRelayServerWrites(t *testing.T) {
	for _, unbatched := range []bool{false, true} {
		s := &relayServer{unbatched: unbatched, ready: make(chan struct{}), done: make(chan struct{}), byUser: make([]*relayConn, 2)}
		var users [2]net.Conn
		var relayEnds [2]*writeCounter
		for i := range users {
			relayEnd, userEnd := net.Pipe()
			users[i], relayEnds[i] = userEnd, &writeCounter{Conn: relayEnd}
			rc := &relayConn{c: relayEnds[i], w: bufio.NewWriterSize(relayEnds[i], relayBufSize)}
			s.wg.Go(func() { s.serve(rc) })
			if _, err := userEnd.Write(binary.BigEndian.AppendUint32([]byte{0, 0, 0, 5, frameHello}, uint32(i))); err != nil {
				t.Fatal(err)
			}
		}
		var sends []byte
		for range 3 {
			sends = append(sends, 0, 0, 0, 2, frameSend, 'x')
		}
		if _, err := users[0].Write(sends); err != nil {
			t.Fatal(err)
		}
		// Each user reads its three frames: delivers to the peer, acks
		// back to the sender.
		var wg sync.WaitGroup
		for i, want := range []byte{frameAck, frameDeliver} {
			wg.Go(func() {
				fr := frameReader{br: bufio.NewReaderSize(users[i], relayBufSize)}
				for range 3 {
					if p, err := fr.next(); err != nil || p[0] != want {
						t.Errorf("user %d: frame %q, %v; want %q", i, p, err, want)
						return
					}
				}
			})
		}
		wg.Wait()
		want := int64(1)
		if unbatched {
			want = 3
		}
		for i, c := range relayEnds {
			if got := c.n.Load(); got != want {
				t.Errorf("unbatched %v: %d writes to user %d, want %d", unbatched, got, i, want)
			}
		}
		for _, u := range users {
			u.Close()
		}
		s.wg.Wait()
	}
}

// TestRelayUnbatched runs the unbatched relay for a moment: it relays, and
// says it was unbatched in its table and JSON.
func TestRelayUnbatched(t *testing.T) {
	r, err := Relay(t.Context(), Config{Users: 4, Window: 4, Duration: 200 * time.Millisecond, Warmup: -1, Unbatched: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Unbatched || r.Delivered <= 0 || r.OutOfOrder != 0 {
		t.Fatalf("result %+v", r)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "unbatched: every frame in a system call of its own") {
		t.Fatalf("table:\n%s", table.String())
	}
	if b, err := json.Marshal(r); err != nil || !bytes.Contains(b, []byte(`"unbatched":true`)) {
		t.Fatalf("JSON %s, %v", b, err)
	}
	if _, err := Run(t.Context(), Config{Unbatched: true}); err == nil || !strings.Contains(err.Error(), "relay's only") {
		t.Fatalf("Run unbatched: %v", err)
	}
}
