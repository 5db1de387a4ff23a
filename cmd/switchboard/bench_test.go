package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/metrics/metricstest"
)

func TestBenchUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"bench", "--nope"}, exitUsage, "flag provided but not defined"},
		{[]string{"bench", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"bench", "-h"}, exitOK, "--connections N"},
		{[]string{"bench", "--users", "3", "--quiet"}, exitError, "do not make whole pairs"},
		{[]string{"bench", "--server", "http://127.0.0.1:1", "--quiet"}, exitError, "needs its admin token"},
		{[]string{"bench", "-h"}, exitOK, "--relay"},
		{[]string{"bench", "--relay", "--users", "3", "--quiet"}, exitError, "do not make whole pairs"},
		// --relay measures its own relay: flags of a server or another
		// workload would make its figure mean something else.
		{[]string{"bench", "--relay", "--server", "http://127.0.0.1:1"}, exitUsage, "not go with --server"},
		{[]string{"bench", "--relay", "--connections", "10"}, exitUsage, "not go with --connections"},
		{[]string{"bench", "--relay", "--workload", "groups"}, exitUsage, "not go with --workload groups"},
		{[]string{"bench", "--relay", "--store", "memory"}, exitUsage, "not go with --store memory"},
		{[]string{"bench", "--relay", "--server-process"}, exitUsage, "not go with --server-process"},
		{[]string{"bench", "--relay", "--server-process", "--store", "memory"}, exitUsage, "not go with --server-process, --store memory"},
		{[]string{"bench", "--relay", "--rate", "-5", "--quiet"}, exitError, "rate -5: must be a positive number"},
		{[]string{"bench", "--unbatched"}, exitUsage, "--unbatched goes with --relay only"},
		{[]string{"bench", "-h"}, exitOK, "--unbatched"},
		{[]string{"bench", "--relay", "--yardstick", "1s"}, exitUsage, "--yardstick takes a positive duration, and goes with a workload"},
		{[]string{"bench", "--connections", "10", "--yardstick", "1s"}, exitUsage, "not with --relay or --connections"},
		{[]string{"bench", "--yardstick", "-1s"}, exitUsage, "--yardstick takes a positive duration"},
		{[]string{"bench", "--server", "http://127.0.0.1:1,ftp://x", "--admin-token", "t", "--quiet"}, exitError, `server "ftp://x": want http://host:port, or several`},
		{[]string{"bench", "--server", "http://127.0.0.1:1,http://127.0.0.1:2", "--admin-token", "t", "--server-pid", "1", "--quiet"}, exitError, "with several, give none"},
		{[]string{"bench", "--server", "http://127.0.0.1:1,http://127.0.0.1:2", "--admin-token", "t", "--connections", "5", "--quiet"}, exitError, "give one server"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, noEnv, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("run(%q) = %d, stderr %q; want %d, %q", tc.args, code, stderr.String(), tc.code, tc.stderr)
		}
	}
}

// TestBenchJSON runs a tiny workload against a server in this process and
// reads the one JSON object it prints.
func TestBenchJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// The environment's admin token is for a --server; without one it
	// must not get in the way.
	env := func(k string) string {
		if k == "SWITCHBOARD_ADMIN_TOKEN" {
			return "not-for-the-in-process-server"
		}
		return ""
	}
	args := []string{"bench", "--users", "2", "--window", "2", "--duration", "500ms", "--warmup", "0", "--json", "--quiet"}
	if code := run(t.Context(), args, env, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	for _, k := range []string{"workload", "users", "duration_s", "sent", "delivered", "delivered_per_sec",
		"p50_ms", "p99_ms", "p999_ms", "lost", "duplicated", "out_of_order", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, stdout.String())
		}
	}
	if m["workload"] != "pairs" || m["users"] != 2.0 || m["lost"] != 0.0 || m["errors"] != 0.0 || m["delivered"].(float64) <= 0 {
		t.Fatalf("result %s", stdout.String())
	}
	if _, ok := m["yardstick"]; ok {
		t.Errorf("a yardstick without --yardstick: %s", stdout.String())
	}
	if stderr.Len() != 0 {
		t.Fatalf("--quiet wrote %q", stderr.String())
	}
}

// TestBenchYardstick runs a tiny workload between two relay runs and reads
// both rates in its JSON, and in its table.
func TestBenchYardstick(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		var stdout, stderr bytes.Buffer
		args := []string{"bench", "--users", "2", "--window", "2", "--duration", "300ms", "--warmup", "0", "--yardstick", "200ms", "--quiet"}
		if asJSON {
			args = append(args, "--json")
		}
		if code := run(t.Context(), args, noEnv, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d; stderr %s", code, stderr.String())
		}
		if !asJSON {
			if !regexp.MustCompile(`yardstick +relay [0-9,]+/s before, [0-9,]+/s after \(0\.2 s each`).Match(stdout.Bytes()) {
				t.Errorf("no yardstick row in the table:\n%s", stdout.String())
			}
			if !regexp.MustCompile(`relay unbatched [0-9,]+/s before, [0-9,]+/s after`).Match(stdout.Bytes()) {
				t.Errorf("no unbatched relay row in the table:\n%s", stdout.String())
			}
			if !regexp.MustCompile(`wakeup [0-9]+ µs of CPU before, [0-9]+ after; a 4 KiB write and fdatasync [0-9]+ µs of CPU \([0-9]+ µs\) before`).Match(stdout.Bytes()) {
				t.Errorf("no machine row in the table:\n%s", stdout.String())
			}
			continue
		}
		var r struct {
			Delivered float64
			Yardstick *struct {
				DurationS float64            `json:"duration_s"`
				Before    float64            `json:"relay_before_per_sec"`
				After     float64            `json:"relay_after_per_sec"`
				Machine   map[string]float64 `json:"machine_before"`
				UBefore   float64            `json:"relay_unbatched_before_per_sec"`
				UAfter    float64            `json:"relay_unbatched_after_per_sec"`
			}
		}
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("%v: %s", err, stdout.String())
		}
		if y := r.Yardstick; r.Delivered <= 0 || y == nil || y.DurationS != 0.2 || y.Before <= 0 || y.After <= 0 || y.UBefore <= 0 || y.UAfter <= 0 {
			t.Fatalf("result %s", stdout.String())
		}
		for _, k := range []string{"wake_cpu_us", "fsync_cpu_us", "fsync_us"} {
			if r.Yardstick.Machine[k] <= 0 {
				t.Errorf("machine_before.%s: %s", k, stdout.String())
			}
		}
	}
}

// TestBenchYardstickOpenLoop: around an open loop the relay runs open too,
// at the same rate, and its latencies come with the result.
func TestBenchYardstickOpenLoop(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		var stdout, stderr bytes.Buffer
		args := []string{"bench", "--users", "2", "--rate", "400", "--duration", "300ms", "--warmup", "0", "--yardstick", "200ms", "--quiet"}
		if asJSON {
			args = append(args, "--json")
		}
		if code := run(t.Context(), args, noEnv, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d; stderr %s", code, stderr.String())
		}
		if !asJSON {
			if !regexp.MustCompile(`relay at 400/s: p50 [0-9.]+ ms, p99 [0-9.]+ ms before; p50 [0-9.]+ ms, p99 [0-9.]+ ms after`).Match(stdout.Bytes()) {
				t.Errorf("no open relay row in the table:\n%s", stdout.String())
			}
			continue
		}
		var r struct {
			Yardstick *struct {
				Before    float64 `json:"relay_before_per_sec"`
				OpenRate  float64 `json:"open_rate"`
				BeforeP50 float64 `json:"relay_open_before_p50_ms"`
				BeforeP99 float64 `json:"relay_open_before_p99_ms"`
				AfterP50  float64 `json:"relay_open_after_p50_ms"`
				AfterP99  float64 `json:"relay_open_after_p99_ms"`
			}
		}
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("%v: %s", err, stdout.String())
		}
		y := r.Yardstick
		if y == nil || y.Before <= 0 || y.OpenRate != 400 || !(0 < y.BeforeP50 && y.BeforeP50 <= y.BeforeP99) || !(0 < y.AfterP50 && y.AfterP50 <= y.AfterP99) {
			t.Fatalf("result %s", stdout.String())
		}
	}
}

// TestBenchRelayJSON runs the relay for a moment and reads the one JSON
// object it prints.
func TestBenchRelayJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--relay", "--workload", "pairs", "--users", "4", "--window", "2",
		"--duration", "200ms", "--warmup", "0", "--json", "--quiet"}
	if code := run(t.Context(), args, noEnv, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if m["workload"] != "relay" || m["users"] != 4.0 || m["window"] != 2.0 || m["warmup_s"] != 0.0 ||
		m["out_of_order"] != 0.0 || m["delivered"].(float64) <= 0 {
		t.Fatalf("result %s", stdout.String())
	}
	if stderr.Len() != 0 {
		t.Fatalf("--quiet wrote %q", stderr.String())
	}
}

// TestBenchConnections runs the built binary, which starts itself again as
// the server (serve) in a child process and reads that process's memory.
func TestBenchConnections(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.CommandContext(t.Context(), bin, "bench", "--connections", "10", "--settle", "10ms", "--json", "--quiet")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v; stderr %s", err, stderr.String())
	}
	var r struct {
		Connections, Live int
		ServerPID         int `json:"server_pid"`
		Measured          bool
		Before            int64 `json:"server_rss_before_bytes"`
		After             int64 `json:"server_rss_after_bytes"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Connections != 10 || r.Live != 10 || !r.Measured || r.ServerPID == 0 || r.Before <= 0 || r.After <= 0 {
		t.Fatalf("result %s", out)
	}
}

// TestBenchAcrossNodes runs a small workload over a cluster of two
// server processes (PostgreSQL and NATS): every pair has a user on each
// node, so every delivery crosses the bus, and none may be lost.
func TestBenchAcrossNodes(t *testing.T) {
	const admin = "bench-cluster-admin"
	nodes := startCluster(t, 2, admin)
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--server", nodes[0].url + "," + nodes[1].url, "--admin-token", admin,
		"--users", "4", "--window", "2", "--duration", "1s", "--warmup", "0", "--json", "--quiet"}
	if code := run(t.Context(), args, noEnv, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, stderr.String())
	}
	var r struct {
		Server                  string
		Delivered, Lost, Errors float64
		Duplicated              float64
		OutOfOrder              float64 `json:"out_of_order"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if !strings.Contains(r.Server, "2 nodes") || r.Delivered <= 0 || r.Lost != 0 || r.Errors != 0 || r.Duplicated != 0 || r.OutOfOrder != 0 {
		t.Fatalf("result %s", stdout.String())
	}
	// Both nodes handed messages to live sessions of their own.
	for i, nd := range nodes {
		if n := deliveriesOn(t, nd.url); n <= 0 {
			t.Errorf("node %d handed no message to a session (switchboard_delivery_lag_seconds_count %v)", i, n)
		}
	}
}

// deliveriesOn scrapes a node for the message events it handed to its
// live sessions, summed over the apps.
func deliveriesOn(t *testing.T, base string) float64 {
	t.Helper()
	fams := metricstest.Scrape(t, base)
	var sum float64
	for _, m := range fams["switchboard_delivery_lag_seconds"].GetMetric() {
		sum += float64(m.GetHistogram().GetSampleCount())
	}
	return sum
}
