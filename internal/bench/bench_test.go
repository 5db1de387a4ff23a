package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/server"
)

// serveEnv makes the test binary a server (see TestMain): the child that
// Idle starts.
const serveEnv = "SWITCHBOARD_BENCH_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		os.Exit(serveForTest(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// serveForTest is "switchboard serve" for the flags Idle passes.
func serveForTest(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg server.Config
	fs.StringVar(&cfg.Addr, "addr", "", "")
	fs.StringVar(&cfg.DataDir, "data", "", "")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "")
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := server.New(cfg)
	if err != nil {
		cfg.Logger.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		return 1
	}
	return 0
}

// checkClean fails unless the run delivered every acknowledged message to
// every other member exactly once and in order, without errors.
func checkClean(t *testing.T, r *Result) {
	t.Helper()
	if r.Lost != 0 || r.Duplicated != 0 || r.OutOfOrder != 0 || r.Errors != 0 || r.Unacked != 0 {
		t.Fatalf("lost %d, duplicated %d, out of order %d, errors %d (%s), unacked %d",
			r.Lost, r.Duplicated, r.OutOfOrder, r.Errors, r.FirstError, r.Unacked)
	}
	if r.AckedTotal == 0 || r.DeliveredTotal != r.AckedTotal*int64(r.GroupSize-1) {
		t.Fatalf("%d acknowledged, %d delivered: want %d deliveries each", r.AckedTotal, r.DeliveredTotal, r.GroupSize-1)
	}
	if r.Sent <= 0 || r.Delivered <= 0 || r.DeliveredPerSec != float64(r.Delivered)/r.DurationS {
		t.Fatalf("measured: sent %d, delivered %d (%v/s over %vs)", r.Sent, r.Delivered, r.DeliveredPerSec, r.DurationS)
	}
	if !(0 < r.P50Ms && r.P50Ms <= r.P99Ms && r.P99Ms <= r.P999Ms && r.P999Ms <= r.MaxMs) || r.AckP50Ms <= 0 {
		t.Fatalf("latency p50 %v p99 %v p99.9 %v max %v, ack p50 %v", r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs, r.AckP50Ms)
	}
}

func TestRunPairsClosedLoop(t *testing.T) {
	var progress bytes.Buffer
	r, err := Run(t.Context(), Config{
		Users: 4, Window: 4, Duration: time.Second, Warmup: 200 * time.Millisecond,
		Progress: &progress, ProgressInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	// The apps' limits were lifted, or the server has none.
	if r.Warning != "" {
		t.Fatalf("warning: %s", r.Warning)
	}
	if r.Workload != Pairs || r.Users != 4 || r.Conversations != 2 || r.GroupSize != 2 || r.Loop != "closed" || r.Window != 4 {
		t.Fatalf("shape: %+v", r)
	}
	// Every message has one receiver: over the whole run, sends and
	// deliveries match one for one.
	if r.DeliveredTotal != r.AckedTotal {
		t.Fatalf("%d delivered, %d acknowledged", r.DeliveredTotal, r.AckedTotal)
	}
	if !strings.Contains(progress.String(), "bench: measure") {
		t.Fatalf("no progress line in %q", progress.String())
	}

	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pairs", "closed loop, 4 in flight", "delivered", "p99", "lost", "out of order"} {
		if !strings.Contains(table.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestRunGroupsOpenLoop(t *testing.T) {
	const users, rate = 6, 300.0
	cfg := Config{
		Workload: Groups, GroupSize: 3, Users: users, Rate: rate,
		Duration: time.Second, Warmup: 200 * time.Millisecond,
	}
	r, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	if r.Conversations != 2 || r.GroupSize != 3 || r.Loop != "open" || r.Rate != rate {
		t.Fatalf("shape: %+v", r)
	}
	// The schedule is fixed: each user sends at rate/users per second over
	// warmup and duration; the measured window holds rate*duration sends,
	// give or take one per user at its edges.
	if r.AckedTotal != int64(rate*1.2) {
		t.Fatalf("%d sends acknowledged, want %d", r.AckedTotal, int64(rate*1.2))
	}
	if d := r.Sent - int64(rate); d < -users || d > users {
		t.Fatalf("%d sends measured, want %d", r.Sent, int64(rate))
	}
}

func TestResultJSON(t *testing.T) {
	b, err := json.Marshal(&Result{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "users", "duration_s", "sent", "delivered", "delivered_per_sec",
		"p50_ms", "p99_ms", "p999_ms", "lost", "duplicated", "out_of_order", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Users: 5}, "whole pairs"},
		{Config{Workload: Groups, Users: 12}, "whole groups of 8"},
		{Config{Workload: Groups, GroupSize: 1}, "group size"},
		{Config{Workload: "ring"}, "unknown workload"},
		{Config{Window: -1}, "window"},
		{Config{Rate: -5}, "rate"},
		{Config{BodySize: 5}, "body size"},
		{Config{AdminToken: "x"}, "without a server"},
		{Config{Server: "http://127.0.0.1:1"}, "admin token"},
		{Config{Server: "http://127.0.0.1:1", AdminToken: "x", Store: "memory"}, "only to a server bench starts"},
		{Config{Store: "disk"}, "store"},
	} {
		_, err := Run(t.Context(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.cfg, err, tc.want)
		}
	}
}

func TestIdleChildServer(t *testing.T) {
	const n = 20
	r, err := Idle(t.Context(), IdleConfig{
		Connections:   n,
		ServerCommand: []string{os.Args[0], "serve"},
		ServerEnv:     []string{serveEnv + "=1"},
		Settle:        100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Connections != n || r.Live != n || r.Errors != 0 || !r.Measured || r.ServerPID == 0 || r.ServerPID == os.Getpid() {
		t.Fatalf("result %+v", r)
	}
	if r.RSSBefore <= 0 || r.RSSAfter <= 0 || r.BytesPerConn != float64(r.RSSAfter-r.RSSBefore)/n {
		t.Fatalf("memory: before %d, after %d, per connection %v", r.RSSBefore, r.RSSAfter, r.BytesPerConn)
	}
	// Idle stopped the child on its way out.
	if err := syscall.Kill(r.ServerPID, 0); err == nil {
		t.Fatalf("server %d still running", r.ServerPID)
	}
}

func TestIdleExternalServerWithoutPID(t *testing.T) {
	tgt, err := startInProcess("memory", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.stop()
	r, err := Idle(t.Context(), IdleConfig{Connections: 3, Server: tgt.base, AdminToken: tgt.adminToken, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Live != 3 || r.Measured || !strings.Contains(r.Note, "--server-pid") {
		t.Fatalf("result %+v", r)
	}
	var table bytes.Buffer
	r.WriteTable(&table)
	if !strings.Contains(table.String(), "not measured") {
		t.Fatalf("table:\n%s", table.String())
	}
}

func TestProgress(t *testing.T) {
	var plain, term bytes.Buffer
	newProgress(&plain, false).update("measure", 0.5, 5*time.Second, 10*time.Second, 1234, 1200, 2500, 0)
	if got := plain.String(); !strings.HasPrefix(got, "bench: measure") || !strings.Contains(got, "1,234/s") || !strings.Contains(got, "p99 2.50ms") || strings.Contains(got, "\r") {
		t.Fatalf("plain line %q", got)
	}
	p := newProgress(&term, true)
	p.update("measure", 0.5, 5*time.Second, 10*time.Second, 1234, 1200, 2500, 0)
	p.end()
	if got := term.String(); !strings.HasPrefix(got, "\r[############............]") || !strings.HasSuffix(got, "\x1b[K\n") {
		t.Fatalf("terminal line %q", got)
	}
}

// TestRunChildServer runs a workload against a server in a child process,
// whose CPU time is read apart from this process's.
func TestRunChildServer(t *testing.T) {
	r, err := Run(t.Context(), Config{
		Users: 2, Window: 2, Duration: 500 * time.Millisecond, Warmup: -1,
		ServerCommand: []string{os.Args[0], "serve"},
		ServerEnv:     []string{serveEnv + "=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	if r.ServerPID == 0 || r.ServerPID == os.Getpid() || r.ServerCPUCores <= 0 || r.ServerCPUPerDeliveryUs <= 0 || !strings.HasPrefix(r.Server, "child process") {
		t.Fatalf("server %q pid %d: %v cores, %v µs per delivery", r.Server, r.ServerPID, r.ServerCPUCores, r.ServerCPUPerDeliveryUs)
	}
}
