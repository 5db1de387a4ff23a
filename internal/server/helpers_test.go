package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// env is one real node on 127.0.0.1:0 over Pebble in a temp directory,
// and a client for it.
type env struct {
	t     testing.TB
	srv   *Server
	stop  func() // ends Run and waits for it; idempotent
	base  string
	admin string
	c     *http.Client
	// secrets of the apps made through env.app, by id.
	secrets map[string]string
}

func start(t testing.TB) *env {
	t.Helper()
	return startWith(t, Config{})
}

func startWith(t testing.TB, cfg Config) *env {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	addr := srv.Addr()
	if addr == "" {
		cancel()
		t.Fatalf("Run: %v", <-done)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			tr.CloseIdleConnections()
		})
	}
	t.Cleanup(stop)
	return &env{t: t, srv: srv, stop: stop, base: "http://" + addr, admin: srv.AdminToken(),
		c: &http.Client{Transport: tr, Timeout: 30 * time.Second}, secrets: map[string]string{}}
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body is sent as is when it is a string or []byte,
// else encoded as JSON; nil sends no body.
func (e *env) do(method, path, token string, body any) answer {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading answer: %v", method, path, err)
	}
	return answer{res.StatusCode, res.Header, b}
}

// want checks the status and decodes the body into v (when not nil).
func (a answer) want(t testing.TB, status int, v any) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body %s", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, a.body)
	}
	if v != nil {
		if err := json.Unmarshal(a.body, v); err != nil {
			t.Fatalf("decoding %s: %v", a.body, err)
		}
	}
	return a
}

// wantErr checks an error answer: status, code, and that the message
// contains each of subs.
func (a answer) wantErr(t testing.TB, status int, code string, subs ...string) {
	t.Helper()
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	a.want(t, status, &e)
	if e.Error == nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error body %s, want code %q and a message", a.body, code)
	}
	for _, s := range subs {
		if !strings.Contains(e.Error.Message, s) {
			t.Fatalf("error message %q does not mention %q", e.Error.Message, s)
		}
	}
	if (status == 429 || status == 503) && a.header.Get("Retry-After") == "" {
		t.Fatalf("status %d without Retry-After", status)
	}
}

// app registers an app and remembers its secret.
func (e *env) app(id string) {
	e.t.Helper()
	var got struct {
		App struct {
			ID, Secret string
		}
	}
	e.do("POST", "/v1/admin/apps", e.admin, map[string]any{"id": id, "name": id}).want(e.t, 201, &got)
	if got.App.ID != id || got.App.Secret == "" {
		e.t.Fatalf("created app %+v", got.App)
	}
	e.secrets[id] = got.App.Secret
}

func (e *env) interop(id string, apps ...string) {
	e.t.Helper()
	if apps == nil {
		apps = []string{}
	}
	e.do("PUT", "/v1/admin/apps/"+id+"/interop", e.admin, map[string]any{"apps": apps}).want(e.t, 200, nil)
}

// token mints a token for address "app:user".
func (e *env) token(addr string) string {
	e.t.Helper()
	app, user, _ := strings.Cut(addr, ":")
	var got struct{ Token string }
	e.do("POST", "/v1/admin/apps/"+app+"/tokens", e.admin, map[string]any{"user": user}).want(e.t, 201, &got)
	if got.Token == "" {
		e.t.Fatal("empty token")
	}
	return got.Token
}

type conversation struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Members   []string  `json:"members"`
	LastSeq   int64     `json:"last_seq"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// in lists only
	ReadSeq     int64    `json:"read_seq"`
	LastMessage *message `json:"last_message"`
}

type message struct {
	ConversationID string          `json:"conversation_id"`
	Seq            int64           `json:"seq"`
	Sender         string          `json:"sender"`
	ClientID       string          `json:"client_id"`
	Kind           string          `json:"kind"`
	Body           string          `json:"body"`
	Meta           json.RawMessage `json:"meta"`
	SentAt         time.Time       `json:"sent_at"`
}

type update struct {
	Cursor         int64         `json:"cursor"`
	Type           string        `json:"type"`
	Message        *message      `json:"message"`
	ConversationID string        `json:"conversation_id"`
	Reader         string        `json:"reader"`
	Seq            int64         `json:"seq"`
	Conversation   *conversation `json:"conversation"`
}

type syncAnswer struct {
	Updates []update `json:"updates"`
	Cursor  int64    `json:"cursor"`
	More    bool     `json:"more"`
}

type sendAnswer struct {
	Message message `json:"message"`
	Cursor  int64   `json:"cursor"`
}

// create makes a conversation and checks the status.
func (e *env) create(token string, status int, title string, members ...string) conversation {
	e.t.Helper()
	var got struct{ Conversation conversation }
	e.do("POST", "/v1/conversations", token, map[string]any{"members": members, "title": title}).want(e.t, status, &got)
	return got.Conversation
}

func (e *env) send(token, conv, clientID, body string) sendAnswer {
	e.t.Helper()
	var got sendAnswer
	e.do("POST", "/v1/conversations/"+conv+"/messages", token, map[string]any{"client_id": clientID, "body": body}).want(e.t, 201, &got)
	return got
}

// syncAll reads the whole stream of the token's user.
func (e *env) syncAll(token string) []update {
	e.t.Helper()
	var all []update
	var after int64
	for {
		var got syncAnswer
		e.do("GET", fmt.Sprintf("/v1/sync?after=%d", after), token, nil).want(e.t, 200, &got)
		all = append(all, got.Updates...)
		after = got.Cursor
		if !got.More {
			return all
		}
	}
}

func (e *env) history(token, conv string) []message {
	e.t.Helper()
	var got struct{ Messages []message }
	e.do("GET", "/v1/conversations/"+conv+"/messages?limit=200", token, nil).want(e.t, 200, &got)
	return got.Messages
}
