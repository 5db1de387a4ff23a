package reliability

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/bus/localbus"
	"github.com/switchboard-chat/switchboard/internal/httpapi"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store/faultstore"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
	"github.com/switchboard-chat/switchboard/internal/ws"
)

const adminToken = "admin-token"

// node is one Switchboard node assembled as internal/server assembles it
// (store, bus, Service with admission, HTTP API, WebSocket), except that
// the store is wrapped in a faultstore.
type node struct {
	t     testing.TB
	fs    *faultstore.Store
	svc   *messaging.Service
	adm   *admission.Controller
	ws    *ws.Server
	base  string
	admin *client.Admin
	hc    *http.Client
}

type nodeOpts struct {
	// noAdmission runs without admission control, to show what the
	// isolation test catches.
	noAdmission  bool
	storeTimeout time.Duration
	maxInFlight  int
}

func newNode(t testing.TB, o nodeOpts) *node {
	t.Helper()
	ps, err := pebblestore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := faultstore.New(ps)
	b := localbus.New()
	var adm *admission.Controller
	if !o.noAdmission {
		adm = admission.New(admission.Config{MaxInFlight: o.maxInFlight})
	}
	log := slog.New(slog.DiscardHandler)
	svc := messaging.New(messaging.Config{Store: fs, Bus: b, Logger: log, Admission: adm, StoreTimeout: o.storeTimeout})
	api := httpapi.New(httpapi.Config{Service: svc, AdminToken: adminToken, Logger: log})
	wss := ws.New(ws.Config{Service: svc, Bus: b, Logger: log})
	api.Handle("GET /v1/ws", wss)
	hs := httptest.NewServer(api)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	n := &node{t: t, fs: fs, svc: svc, adm: adm, ws: wss, base: hs.URL, hc: hc,
		admin: client.NewAdmin(hs.URL, adminToken, &client.Options{HTTPClient: hc})}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		wss.Shutdown(ctx)
		hs.Close()
		b.Close()
		ps.Close()
	})
	return n
}

// app creates an app.
func (n *node) app(id string) {
	n.t.Helper()
	if _, err := n.admin.CreateApp(context.Background(), id, id); err != nil {
		n.t.Fatal(err)
	}
}

// token mints a token for app:user.
func (n *node) token(app, user string) string {
	n.t.Helper()
	tok, err := n.admin.Token(context.Background(), app, user, time.Hour)
	if err != nil {
		n.t.Fatal(err)
	}
	return tok
}

// user returns a REST client for app:user.
func (n *node) user(app, user string, opts *client.Options) *client.Client {
	n.t.Helper()
	tok := n.token(app, user)
	if opts == nil {
		opts = &client.Options{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = n.hc
	}
	return client.New(n.base, tok, opts)
}

// post sends a JSON body with a user token and returns the status, the
// headers and how long the answer took.
func (n *node) post(path, token, body string) (int, http.Header, time.Duration) {
	n.t.Helper()
	req, err := http.NewRequest("POST", n.base+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	res, err := n.hc.Do(req)
	if err != nil {
		n.t.Fatalf("POST %s: %v", path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header, time.Since(start)
}

// drain reads a stream's events until it closes, keeping the updates.
type drain struct {
	mu      sync.Mutex
	updates []client.Update
	done    chan struct{}
}

func drainEvents(s *client.Stream) *drain {
	d := &drain{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for ev := range s.Events() {
			if ev.Update != nil {
				d.mu.Lock()
				d.updates = append(d.updates, *ev.Update)
				d.mu.Unlock()
			}
		}
	}()
	return d
}

func (d *drain) snapshot() []client.Update {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]client.Update(nil), d.updates...)
}

// waitFor polls cond until it holds or wait passes.
func waitFor(t testing.TB, what string, wait time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
