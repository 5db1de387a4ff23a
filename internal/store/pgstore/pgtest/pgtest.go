// Package pgtest gives tests a PostgreSQL to run against: the one named by
// SWITCHBOARD_TEST_POSTGRES, and a fresh schema in it per test. Without the
// variable a test skips on a developer's machine, and fails under CI (CI
// set), so that a run that could not reach the database never counts as a
// pass.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-chat/switchboard/internal/netproxy"
)

// Env is the variable that names the test database.
const Env = "SWITCHBOARD_TEST_POSTGRES"

// DefaultURL is the database used when Env is not set: the local
// PostgreSQL of the project's machines (trust auth, database test).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the test database's URL: Env's, or DefaultURL when something
// listens there. Otherwise it ends the test: a failure under CI, a skip
// elsewhere.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(Env); u != "" {
		return u
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:5432", time.Second); err == nil {
		c.Close()
		return DefaultURL
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set and nothing listens on 127.0.0.1:5432: the PostgreSQL tests must run in CI (.ci/run starts PostgreSQL)", Env)
	}
	t.Skipf("no PostgreSQL on 127.0.0.1:5432 and %s is not set: skipping the PostgreSQL tests (start PostgreSQL, or set %s=postgres://...)", Env, Env)
	return ""
}

// Schema makes a new, empty schema in the test database and drops it when
// the test ends. It fails the test when the database cannot be reached.
func Schema(t testing.TB) (dbURL, schema string) {
	t.Helper()
	dbURL = URL(t)
	var b [6]byte
	rand.Read(b[:])
	schema = "sbtest_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("cannot connect to %s (%s): %v", Env, redact(dbURL), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return dbURL, schema
}

// WithSearchPath returns dbURL with search_path set to schema, the form a
// server's --store flag takes.
func WithSearchPath(dbURL, schema string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "an unparsable URL"
	}
	return u.Redacted()
}

// NewProxy starts a TCP proxy to the database of dbURL and returns it with
// dbURL rewritten to go through it, for tests that take the database away
// (Proxy.Cut) and bring it back (Proxy.Restore).
func NewProxy(t testing.TB, dbURL string) (*netproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("parse %s: %v", Env, err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	p, addr := netproxy.New(t, target)
	u.Host = addr
	return p, u.String()
}
