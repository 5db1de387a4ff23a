package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

// faultyStore is a memstore whose Apps and Ping fail with the given error.
type faultyStore struct {
	store.Store
	err error
}

func (f *faultyStore) Apps(ctx context.Context) ([]chat.App, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.Store.Apps(ctx)
}

func (f *faultyStore) Ping(ctx context.Context) error {
	if f.err != nil {
		return f.err
	}
	return f.Store.Ping(ctx)
}

// retryErr is a *chat.Error that knows when to retry, as a rate limiter's
// error would.
type retryErr struct {
	err   *chat.Error
	after time.Duration
}

func (e retryErr) Error() string             { return e.err.Error() }
func (e retryErr) RetryAfter() time.Duration { return e.after }
func (e retryErr) Unwrap() error             { return e.err }

func TestStatuses(t *testing.T) {
	want := map[string]int{
		chat.InvalidArgument: 400, chat.Unauthenticated: 401, chat.PermissionDenied: 403,
		chat.NotFound: 404, chat.Conflict: 409, chat.PayloadTooLarge: 413,
		chat.RateLimited: 429, chat.Unavailable: 503, chat.Internal: 500, "made_up": 500,
	}
	for code, status := range want {
		if got := Status(code); got != status {
			t.Errorf("Status(%q) = %d, want %d", code, got, status)
		}
	}
}

type testServer struct {
	*httptest.Server
	store *faultyStore
	log   *bytes.Buffer
	h     *Handler
}

func newTestServer(t *testing.T) *testServer {
	fs := &faultyStore{Store: memstore.New()}
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	h := New(Config{Service: messaging.New(messaging.Config{Store: fs}), AdminToken: "admin", Logger: logger})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{srv, fs, &log, h}
}

func (s *testServer) get(t *testing.T, path string) (*http.Response, errorBody) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer admin")
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e errorBody
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
			t.Fatalf("error answer %s is not in the error shape", b)
		}
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return res, e
}

func TestInternalErrorsAreLoggedNotShown(t *testing.T) {
	s := newTestServer(t)
	s.store.err = errors.New("disk on fire at /secret/path")
	res, e := s.get(t, "/v1/admin/apps")
	if res.StatusCode != 500 || e.Error.Code != chat.Internal || strings.Contains(e.Error.Message, "fire") {
		t.Fatalf("%d %+v", res.StatusCode, e.Error)
	}
	id := res.Header.Get("X-Request-Id")
	if id == "" || !strings.Contains(e.Error.Message, id) {
		t.Fatalf("request id %q not in the answer %q", id, e.Error.Message)
	}
	if l := s.log.String(); !strings.Contains(l, "disk on fire") || !strings.Contains(l, "request_id="+id) {
		t.Fatalf("log %q lacks the error or the request id", l)
	}
}

func TestRetryAfter(t *testing.T) {
	s := newTestServer(t)
	for _, tc := range []struct {
		err    error
		status int
		after  string
	}{
		{store.ErrUnavailable, 503, "1"},
		{retryErr{chat.Errorf(chat.RateLimited, "slow down"), 2500 * time.Millisecond}, 429, "3"},
		{chat.Errorf(chat.Unavailable, "frozen"), 503, "1"},
	} {
		s.store.err = tc.err
		res, e := s.get(t, "/v1/admin/apps")
		if res.StatusCode != tc.status || res.Header.Get("Retry-After") != tc.after {
			t.Errorf("%v: %d Retry-After %q (%+v); want %d, %q", tc.err, res.StatusCode, res.Header.Get("Retry-After"), e.Error, tc.status, tc.after)
		}
	}
	s.store.err = store.ErrUnavailable
	if res, e := s.get(t, "/readyz"); res.StatusCode != 503 || e.Error.Code != chat.Unavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz with the store down: %d %+v", res.StatusCode, e.Error)
	}
}

func TestMountAndPanic(t *testing.T) {
	s := newTestServer(t)
	s.h.Handle("GET /boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("kaboom") }))
	s.h.Handle("GET /v1/extra", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, statusBody{"extra"}) }))
	if res, _ := s.get(t, "/v1/extra"); res.StatusCode != 200 {
		t.Fatalf("mounted endpoint: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", s.URL+"/v1/extra", nil)
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST to a mounted GET endpoint: %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	res, e := s.get(t, "/boom")
	if res.StatusCode != 500 || e.Error.Code != chat.Internal || !strings.Contains(s.log.String(), "kaboom") {
		t.Fatalf("panic: %d %+v; log %s", res.StatusCode, e.Error, s.log)
	}
}

// FuzzSendBody: whatever the body of a send, the answer is a success or a
// 4xx in the error shape, never a 500.
func FuzzSendBody(f *testing.F) {
	for _, seed := range []string{
		`{"client_id":"c","body":"hi"}`, `{"client_id":"c","body":"hi","meta":{"a":[1,{}]}}`,
		`{"client_id":1}`, `{"client_id":"c","body":"hi"}]`, `{`, `[]`, `null`, "\xff", `{"meta":"x"}`,
		`{"client_id":"c","body":"\ud800"}`, `{"body":{"x":1}}`, ` {"client_id":"c","body":"hi"} `,
	} {
		f.Add([]byte(seed))
	}
	ms := memstore.New()
	svc := messaging.New(messaging.Config{Store: ms})
	h := New(Config{Service: svc, AdminToken: "admin"})
	ctx := context.Background()
	if _, err := svc.CreateApp(ctx, "app", "App"); err != nil {
		f.Fatal(err)
	}
	c, _, err := svc.CreateConversation(ctx, "app:alice", []string{"app:bob"}, "")
	if err != nil {
		f.Fatal(err)
	}
	tok, err := svc.MintToken(ctx, "app", "alice", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", fmt.Sprintf("/v1/conversations/%s/messages", c.ID), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == 200 || rec.Code == 201:
		case rec.Code >= 400 && rec.Code < 500:
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Message == "" {
				t.Fatalf("%d answer %q is not in the error shape", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("body %q: status %d %s", body, rec.Code, rec.Body)
		}
	})
}

func TestJSONKind(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"", "a string"}, {int64(0), "an integer"}, {true, "a boolean"}, {[]string{}, "an array of strings"},
		{json.RawMessage{}, "a JSON value"}, {struct{}{}, "an object"}, {new(int64), "an integer"},
	} {
		if got := jsonKind(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("jsonKind(%T) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
