package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	e := startWith(t, Config{DataDir: dir})
	tok := e.srv.AdminToken()
	if !strings.HasPrefix(tok, "sb_admin_") {
		t.Fatalf("admin token %q", tok)
	}
	fi, err := os.Stat(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token mode %v, want 0600", fi.Mode().Perm())
	}
	e.do("GET", "/v1/admin/apps", tok, nil).want(t, 200, nil)
	e.stop()

	// The next start on the directory keeps the token.
	e2 := startWith(t, Config{DataDir: dir})
	if e2.srv.AdminToken() != tok {
		t.Fatalf("token changed across restarts: %q, then %q", tok, e2.srv.AdminToken())
	}
	e2.stop()

	// A token given in the config wins and nothing is written.
	dir2 := t.TempDir()
	e3 := startWith(t, Config{DataDir: dir2, AdminToken: "given"})
	if e3.srv.AdminToken() != "given" {
		t.Fatalf("token %q, want the given one", e3.srv.AdminToken())
	}
	if _, err := os.Stat(filepath.Join(dir2, "admin-token")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("admin-token written though one was given: %v", err)
	}
	e3.do("GET", "/v1/admin/apps", tok, nil).wantErr(t, 401, "unauthenticated")
	e3.do("GET", "/v1/admin/apps", "given", nil).want(t, 200, nil)
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
		// reached: the config is valid but what it names does not answer,
		// which is found after the data directory is made.
		reached bool
	}{
		{Config{Store: "postgres://user:hunter2@127.0.0.1:1/switchboard?connect_timeout=1"}, "store unavailable", true},
		{Config{Store: "mysql://user:hunter2@db/x"}, "unknown store", false},
		{Config{Bus: "nats://user:hunter2@127.0.0.1:1", Store: "memory"}, "bus nats://***@127.0.0.1:1", true},
		{Config{Bus: "kafka"}, "unknown bus", false},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		tc.cfg.DataDir = dir
		s, err := New(tc.cfg)
		if err == nil {
			s.Close()
			t.Fatalf("New(%+v) succeeded", tc.cfg)
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("New(%+v): %v; want %q and no password", tc.cfg, err, tc.want)
		}
		if _, err := os.Stat(dir); !tc.reached && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a refused config left %s behind", dir)
		}
	}
}

func TestListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{Addr: ln.Addr().String(), DataDir: t.TempDir(), AdminToken: "x", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a taken port: %v", err)
	}
	if a := s.Addr(); a != "" {
		t.Fatalf("Addr after a failed Run: %q", a)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

// TestRestartKeepsData: a clean stop and a start on the same directory
// keep apps, secrets, conversations, messages and streams.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	e := startWith(t, Config{DataDir: dir})
	e.app("messenger")
	alice, bob := e.token("messenger:alice"), e.token("messenger:bob")
	c := e.create(alice, 201, "", "messenger:bob")
	s := e.send(alice, c.ID, "c-1", "before the restart")
	e.stop()

	e2 := startWith(t, Config{DataDir: dir})
	// Tokens minted before still verify: the secret is stored.
	h := e2.history(bob, c.ID)
	if len(h) != 1 || h[0].Body != "before the restart" || h[0].Seq != 1 {
		t.Fatalf("history after restart %+v", h)
	}
	var rep sendAnswer
	e2.do("POST", "/v1/conversations/"+c.ID+"/messages", alice, `{"client_id":"c-1","body":"before the restart"}`).want(t, 200, &rep)
	if rep.Message.Seq != 1 || rep.Cursor != s.Cursor {
		t.Fatalf("repeat after restart %+v, first %+v", rep, s)
	}
	if s2 := e2.send(alice, c.ID, "c-2", "after"); s2.Message.Seq != 2 || s2.Cursor != s.Cursor+1 {
		t.Fatalf("send after restart %+v", s2)
	}
	ups := e2.syncAll(bob)
	checkCursors(t, ups)
	if len(ups) != 3 {
		t.Fatalf("bob's stream after restart %+v", ups)
	}
}

func TestMemoryStore(t *testing.T) {
	e := startWith(t, Config{Store: "memory"})
	e.app("messenger")
	alice := e.token("messenger:alice")
	c := e.create(alice, 201, "", "messenger:bob")
	e.send(alice, c.ID, "c-1", "hi")
	if _, err := os.Stat(filepath.Join(e.srv.cfg.DataDir, "pebble")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("memory store made a pebble directory: %v", err)
	}
}

// TestShutdownFinishesInFlight: a request being served when Run's context
// ends is finished and answered, new connections are refused, and the
// message it sent is stored.
func TestShutdownFinishesInFlight(t *testing.T) {
	dir := t.TempDir()
	e := startWith(t, Config{DataDir: dir})
	e.app("messenger")
	alice := e.token("messenger:alice")
	c := e.create(alice, 201, "", "messenger:bob")
	e.c.Transport.(*http.Transport).CloseIdleConnections()

	// Send the headers with Expect: 100-continue: the server says
	// "100 Continue" only once the handler reads the body, so after it the
	// request is certainly in flight.
	conn, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"client_id":"c-1","body":"in flight"}`
	fmt.Fprintf(conn, "POST /v1/conversations/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", c.ID, alice, len(body))
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("waiting for 100 Continue: %q, %v", line, err)
	}
	rd.ReadString('\n') // the blank line after the interim answer

	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	// Shutdown has begun once the listener refuses connections.
	for {
		c, err := net.Dial("tcp", e.srv.Addr())
		if err != nil {
			break
		}
		c.Close()
		runtime.Gosched()
	}
	select {
	case <-stopped:
		t.Fatal("Run returned with a request in flight")
	default:
	}
	io.WriteString(conn, body)
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 {
		t.Fatalf("in-flight send answered %d %s", res.StatusCode, b)
	}
	<-stopped

	e2 := startWith(t, Config{DataDir: dir})
	if h := e2.history(alice, c.ID); len(h) != 1 || h[0].Body != "in flight" {
		t.Fatalf("history after the restart %+v", h)
	}
}
