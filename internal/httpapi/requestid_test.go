package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

// lockedBuffer is a log sink the test may read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestEveryRequestHasAnID(t *testing.T) {
	var log lockedBuffer
	h := New(Config{Service: messaging.New(messaging.Config{Store: memstore.New()}), AdminToken: "admin",
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path, incoming string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if incoming != "" {
			req.Header.Set("X-Request-Id", incoming)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header.Get("X-Request-Id")
	}
	a, b := get("/healthz", ""), get("/v1/admin/apps", "")
	if a == "" || b == "" || a == b {
		t.Fatalf("request ids %q and %q: want two different ones", a, b)
	}
	// A plain id from a proxy in front is kept; anything else is replaced.
	if id := get("/healthz", "lb-123.x_y"); id != "lb-123.x_y" {
		t.Errorf("incoming id not kept: %q", id)
	}
	if id := get("/healthz", "bad id!"); id == "" || strings.ContainsAny(id, " !") {
		t.Errorf("bad incoming id answered as %q", id)
	}
	// Every request gets an access log line naming its id, the 401 too.
	for _, id := range []string{a, b} {
		if !strings.Contains(log.String(), "request_id="+id) {
			t.Errorf("no log line with request_id=%s in\n%s", id, log.String())
		}
	}
	if !strings.Contains(log.String(), "path=/v1/admin/apps status=401") {
		t.Errorf("the access log lacks the 401:\n%s", log.String())
	}
}
