// Package natstest gives tests the NATS server named by
// SWITCHBOARD_TEST_NATS, and a subject prefix of their own on it. Without
// the variable a test skips on a developer's machine, and fails under CI
// (CI set), so that a run that could not reach NATS never counts as a pass.
package natstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// Env is the variable that names the test NATS server.
const Env = "SWITCHBOARD_TEST_NATS"

// URL returns the test server's URL, or ends the test: a failure under
// CI, a skip elsewhere.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u != "" {
		return u
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set, and CI is: the NATS tests must run in CI (.ci/run sets it)", Env)
	}
	t.Skipf("%s is not set: skipping the NATS tests (e.g. %s=nats://127.0.0.1:4222)", Env, Env)
	return ""
}

// Prefix returns a subject prefix no other test uses, so that tests
// sharing the server do not see each other's events.
func Prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "sbtest." + hex.EncodeToString(b[:])
}
