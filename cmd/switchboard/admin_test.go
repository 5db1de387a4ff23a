package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const testAdminToken = "test-admin-token-123"

// cli runs the command line with the server and admin token in the
// environment.
type cli struct {
	t     *testing.T
	base  string
	token string
}

type result struct {
	code           int
	stdout, stderr string
}

func (c cli) run(args ...string) result {
	c.t.Helper()
	env := map[string]string{"SWITCHBOARD_SERVER": c.base, "SWITCHBOARD_ADMIN_TOKEN": c.token}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != exitOK {
		c.t.Fatalf("%q: exit %d\nstdout %s\nstderr %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestAppAndTokenCommands(t *testing.T) {
	base, _ := serveInProcess(t, []string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--admin-token", testAdminToken}, noEnv)
	c := cli{t, base, testAdminToken}

	out := c.must("app", "create", "messenger", "--name", "Messenger")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "SECRET") ||
		!strings.HasPrefix(lines[1], "messenger") || !strings.Contains(lines[1], "Messenger") {
		t.Fatalf("app create printed:\n%s", out)
	}
	var created struct {
		App struct{ ID, Name, Secret string }
	}
	if err := json.Unmarshal([]byte(c.must("app", "create", "instagram", "--json")), &created); err != nil ||
		created.App.ID != "instagram" || created.App.Name != "instagram" || created.App.Secret == "" {
		t.Fatalf("app create --json: %+v, %v", created, err)
	}
	if r := c.run("app", "create", "messenger"); r.code != exitError || !strings.Contains(r.stderr, "conflict, HTTP 409") {
		t.Fatalf("a second create: %+v", r)
	}
	if r := c.run("app", "create"); r.code != exitUsage || !strings.Contains(r.stderr, "usage:") {
		t.Fatalf("create without an id: %+v", r)
	}

	out = c.must("app", "interop", "messenger", "instagram")
	if !strings.Contains(out, "INTEROP") || !strings.Contains(out, "instagram") {
		t.Fatalf("app interop printed:\n%s", out)
	}
	if r := c.run("app", "interop", "messenger"); r.code != exitUsage || !strings.Contains(r.stderr, "--clear") {
		t.Fatalf("interop with no other app and no --clear: %+v", r)
	}
	if r := c.run("app", "interop", "messenger", "nope"); r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("interop with an unknown app: %+v", r)
	}

	out = c.must("app", "list")
	if row := tableRow(out, "messenger"); len(row) < 4 || row[1] != "Messenger" || row[2] != "no" || row[3] != "instagram" || strings.Contains(out, "SECRET") || tableRow(out, "instagram") == nil {
		t.Fatalf("app list printed:\n%s", out)
	}
	var list struct {
		Apps []struct {
			ID      string
			Interop []string
		}
	}
	if err := json.Unmarshal([]byte(c.must("app", "list", "--json")), &list); err != nil || len(list.Apps) != 2 ||
		list.Apps[1].ID != "messenger" || len(list.Apps[1].Interop) != 1 {
		t.Fatalf("app list --json: %+v, %v", list, err)
	}
	c.must("app", "interop", "messenger", "--clear")
	if err := json.Unmarshal([]byte(c.must("app", "list", "--json")), &list); err != nil || len(list.Apps[1].Interop) != 0 {
		t.Fatalf("after --clear: %+v, %v", list, err)
	}

	tok := strings.TrimSpace(c.must("token", "messenger", "alice", "--ttl", "10m"))
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token printed %q, not a JWT", tok)
	}
	if s := status(t, "GET", base+"/v1/conversations", tok); s != 200 {
		t.Fatalf("the minted token is refused: %d", s)
	}
	var minted struct{ Token, App, User string }
	if err := json.Unmarshal([]byte(c.must("token", "instagram", "bob", "--json")), &minted); err != nil || minted.User != "bob" || strings.Count(minted.Token, ".") != 2 {
		t.Fatalf("token --json: %+v, %v", minted, err)
	}
	if r := c.run("token", "messenger", "bad user!"); r.code != exitError || !strings.Contains(r.stderr, "invalid_argument") {
		t.Fatalf("token for a bad user id: %+v", r)
	}

	// limits, freeze and unfreeze check their arguments before calling.
	if r := c.run("app", "limits", "messenger"); r.code != exitUsage || !strings.Contains(r.stderr, "--sends-per-second") {
		t.Fatalf("limits with no limit: %+v", r)
	}
	if r := c.run("app", "freeze"); r.code != exitUsage {
		t.Fatalf("freeze with no app: %+v", r)
	}
	out = c.must("app", "limits", "messenger", "--sends-per-second", "500", "--user-burst", "40")
	if row := tableRow(out, "messenger"); len(row) < 5 || !strings.Contains(row[4], "sends_per_second=500") || !strings.Contains(row[4], "user_burst=40") {
		t.Fatalf("app limits printed:\n%s", out)
	}
	var limited struct {
		App struct{ Limits map[string]int }
	}
	if err := json.Unmarshal([]byte(c.must("app", "limits", "messenger", "--burst", "900", "--json")), &limited); err != nil ||
		limited.App.Limits["burst"] != 900 || limited.App.Limits["sends_per_second"] != 500 {
		t.Fatalf("app limits --json: %+v, %v", limited, err)
	}
	if r := c.run("app", "limits", "messenger", "--burst", "-1"); r.code != exitError || !strings.Contains(r.stderr, "invalid_argument") {
		t.Fatalf("a bad limit: %+v", r)
	}
	if out := c.must("app", "freeze", "messenger"); !strings.Contains(out, "messenger is frozen") {
		t.Fatalf("app freeze printed %q", out)
	}
	if s := status(t, "GET", base+"/v1/conversations", tok); s != 503 {
		t.Fatalf("a frozen app's user: %d, want 503", s)
	}
	if row := tableRow(c.must("app", "list"), "messenger"); len(row) < 3 || row[2] != "yes" {
		t.Fatalf("app list does not show messenger frozen: %q", row)
	}
	if out := c.must("app", "unfreeze", "messenger"); !strings.Contains(out, "unfrozen") {
		t.Fatalf("app unfreeze printed %q", out)
	}
	if s := status(t, "GET", base+"/v1/conversations", tok); s != 200 {
		t.Fatalf("an unfrozen app's user: %d, want 200", s)
	}
	if r := c.run("app", "freeze", "nope"); r.code != exitError || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("freeze of an unknown app: %+v", r)
	}

	// The errors say what to do.
	if r := (cli{t, base, "wrong"}).run("app", "list"); r.code != exitError || !strings.Contains(r.stderr, "the admin token is wrong: set SWITCHBOARD_ADMIN_TOKEN") {
		t.Fatalf("a wrong token: %+v", r)
	}
	if r := (cli{t, base, ""}).run("app", "list"); r.code != exitError || !strings.Contains(r.stderr, "no admin token") {
		t.Fatalf("no token: %+v", r)
	}
}

// TestAdminErrors: a server that is not there, and one without the call
// (the limits and freeze endpoints come with a later version), are
// explained.
func TestAdminErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r := (cli{t, dead, testAdminToken}).run("app", "list")
	if r.code != exitError || !strings.Contains(r.stderr, "is the server running at "+dead+"? start it with `switchboard serve`") {
		t.Fatalf("no server: %+v", r)
	}

	// A server without the endpoint answers as Switchboard's mux does.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/freeze") {
			w.Header().Set("Allow", "GET")
			w.WriteHeader(405)
			w.Write([]byte(`{"error":{"code":"invalid_argument","message":"method POST is not allowed on ` + r.URL.Path + `; allowed: GET"}}`))
			return
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"error":{"code":"not_found","message":"no such endpoint: ` + r.Method + " " + r.URL.Path + `"}}`))
	}))
	defer old.Close()
	c := cli{t, old.URL, testAdminToken}
	for _, args := range [][]string{
		{"app", "limits", "messenger", "--sends-per-second", "100", "--burst", "200"},
		{"app", "freeze", "messenger"},
		{"app", "unfreeze", "messenger"},
	} {
		r := c.run(args...)
		if r.code != exitError || !strings.Contains(r.stderr, "does not offer this call") || !strings.Contains(r.stderr, "/v1/admin/apps/messenger/") {
			t.Errorf("%q against a server without the call: %+v", args, r)
		}
	}
}

// tableRow returns the fields of the table line that starts with id.
func tableRow(table, id string) []string {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == id {
			return f
		}
	}
	return nil
}
