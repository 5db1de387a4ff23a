package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "switchboard.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadGood(t *testing.T) {
	p := write(t, `
addr = ":9090"
data = "/var/lib/switchboard"
admin-token = "s3cret-token"
store = "postgres://sb:pw@db:5432/sb"
bus = "nats://nats:4222"
dev = true
shutdown-timeout = "1m30s"
log-format = "json"
log-level = "debug"
`)
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Serve{Addr: ":9090", Data: "/var/lib/switchboard", AdminToken: "s3cret-token", Store: "postgres://sb:pw@db:5432/sb",
		Bus: "nats://nats:4222", Dev: true, ShutdownTimeout: Duration(90 * time.Second), LogFormat: "json", LogLevel: "debug"}
	if got != want {
		t.Fatalf("Load = %+v\nwant   %+v", got, want)
	}
	// An empty file is the defaults.
	if got, err := Load(write(t, "")); err != nil || got != Defaults() {
		t.Fatalf("empty file: %+v, %v", got, err)
	}
}

// TestLoadBad: every bad file is refused with the key named.
func TestLoadBad(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`adr = "127.0.0.1:1"`, "adr: unknown key"},
		{"[server]\naddr = \"x\"", "server: unknown key"},
		{`addr = 8080`, `"addr"`},
		{`addr = "localhost"`, "addr: "},
		{`addr = "127.0.0.1:99999"`, "addr: "},
		{`data = ""`, "data: must name"},
		{`store = "mysql://u:pw@db/x"`, `store: unknown store "mysql://***@db/x"`},
		{`bus = "kafka://k"`, "bus: unknown bus"},
		{`dev = "yes"`, `"dev"`},
		{`shutdown-timeout = "ten"`, "shutdown-timeout: \"ten\" is not a duration"},
		{`shutdown-timeout = "0s"`, "shutdown-timeout: must be more than 0"},
		{`log-format = "xml"`, "log-format: "},
		{`log-level = "loud"`, "log-level: "},
		{`admin-token = "a b"`, "admin-token: "},
		{`addr = "127.0.0.1:8080`, "line 1"},
	} {
		p := write(t, tc.text)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v; want one naming %s and %q", tc.text, err, p, tc.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestSet(t *testing.T) {
	s := Defaults()
	for k, v := range map[string]string{"addr": ":1", "dev": "true", "shutdown-timeout": "3s", "log-level": "warn"} {
		if err := s.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if s.Addr != ":1" || !s.Dev || s.ShutdownTimeout != Duration(3*time.Second) || s.LogLevel != "warn" {
		t.Fatalf("%+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("dev", "maybe"); err == nil || !strings.Contains(err.Error(), "dev") {
		t.Fatalf("dev=maybe: %v", err)
	}
	if err := s.Set("nope", "1"); err == nil {
		t.Fatal("an unknown setting was taken")
	}
	for _, k := range Keys {
		if err := s.Set(k, "true"); err != nil && strings.Contains(err.Error(), "unknown setting") {
			t.Errorf("Keys lists %q but Set does not know it", k)
		}
	}
}
