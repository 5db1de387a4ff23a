package main

import (
	"context"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestWebSocketLogsNameTheRequest: the upgrade answer carries X-Request-Id,
// and the session's log lines name the same request_id.
func TestWebSocketLogsNameTheRequest(t *testing.T) {
	w := newWatcher()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--admin-token", testAdminToken, "--log-level", "debug"}, noEnv, &strings.Builder{}, w)
	}()
	defer func() { cancel(); <-exited }()
	base := "http://" + w.wait(t, exited)
	c := cli{t, base, testAdminToken}
	c.must("app", "create", "messenger")
	tok := strings.TrimSpace(c.must("token", "messenger", "alice"))

	ws, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/ws?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("the upgrade answer has no X-Request-Id")
	}
	// Wait for the ready frame, then hang up: the session logs the read
	// that ended it.
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}
	ws.CloseNow()
	cancel()
	<-exited
	logs := w.String()
	if !strings.Contains(logs, "msg=request request_id="+id+" method=GET path=/v1/ws status=101") {
		t.Errorf("no access log line for the upgrade %s:\n%s", id, logs)
	}
	found := false
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "msg=\"ws: ") && strings.Contains(line, "request_id="+id) {
			found = true
		}
	}
	if !found {
		t.Errorf("no session log line names request_id=%s:\n%s", id, logs)
	}
}
