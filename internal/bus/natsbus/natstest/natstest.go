// Package natstest gives tests the NATS server named by
// SWITCHBOARD_TEST_NATS, and a subject prefix of their own on it. Without
// the variable a test skips on a developer's machine, and fails under CI
// (CI set), so that a run that could not reach NATS never counts as a pass.
package natstest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"
)

// Env is the variable that names the test NATS server.
const Env = "SWITCHBOARD_TEST_NATS"

// URL returns the test server's URL: Env's, or DefaultURL when something
// listens there. Otherwise it ends the test: a failure under CI, a skip
// elsewhere.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(Env); u != "" {
		return u
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:4222", time.Second); err == nil {
		c.Close()
		return DefaultURL
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set and nothing listens on 127.0.0.1:4222: the NATS tests must run in CI (.ci/run starts NATS)", Env)
	}
	t.Skipf("no NATS on 127.0.0.1:4222 and %s is not set: skipping the NATS tests (start nats-server -js, or set %s=nats://...)", Env, Env)
	return ""
}

// DefaultURL is the server used when Env is not set: the local NATS of the
// project's machines.
const DefaultURL = "nats://127.0.0.1:4222"

// Prefix returns a subject prefix no other test uses, so that tests
// sharing the server do not see each other's events.
func Prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "sbtest." + hex.EncodeToString(b[:])
}
