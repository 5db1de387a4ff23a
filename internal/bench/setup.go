package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
)

// target is the server a run talks to, and how to let it go.
type target struct {
	base       string   // http://host:port: the admin calls go there
	bases      []string // every node, base first: user i streams from bases[i%len]
	adminToken string
	inProcess  bool   // started in this process
	child      bool   // started as a child process
	store      string // in process
	command    string // child process: how it was started
	stop       func() error
}

// connectTarget returns the servers at bases (comma-separated: the nodes
// of one deployment), or, when bases is empty, one started in this
// process.
func connectTarget(bases, adminToken, store string, log *slog.Logger) (*target, error) {
	if bases == "" {
		return startInProcess(store, log)
	}
	list, err := serverList(bases)
	if err != nil {
		return nil, err
	}
	return &target{base: list[0], bases: list, adminToken: adminToken, stop: func() error { return nil }}, nil
}

// serverList splits a comma-separated list of base URLs and checks each.
func serverList(bases string) ([]string, error) {
	var list []string
	for b := range strings.SplitSeq(bases, ",") {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bench: server %q: want http://host:port, or several separated by commas", b)
		}
		list = append(list, strings.TrimRight(b, "/"))
	}
	return list, nil
}

// nodes is how many servers the run spreads its users over.
func (t *target) nodes() []string {
	if len(t.bases) == 0 {
		return []string{t.base}
	}
	return t.bases
}

// describe names the server for the report.
func (t *target) describe() string {
	switch {
	case t.inProcess:
		return "in-process (" + t.store + ", temporary directory)"
	case t.child:
		return "child process " + t.base + " (" + t.command + ", temporary directory)"
	case len(t.bases) > 1:
		return fmt.Sprintf("%s (%d nodes; user i streams from node i mod %d)", strings.Join(t.bases, ", "), len(t.bases), len(t.bases))
	}
	return t.base
}

// startInProcess runs a node in this process on 127.0.0.1 with store
// ("pebble" or "memory") and a temporary data directory, which stop
// removes.
func startInProcess(store string, log *slog.Logger) (*target, error) {
	dir, err := os.MkdirTemp("", "switchboard-bench-*")
	if err != nil {
		return nil, fmt.Errorf("bench: temporary data directory: %w", err)
	}
	// One more P, as serve runs the node (pebblestore.Procs), unless
	// GOMAXPROCS is set; the load generator in this process shares it.
	restoreProcs := func() {}
	if store == "pebble" && os.Getenv("GOMAXPROCS") == "" {
		prev := runtime.GOMAXPROCS(pebblestore.Procs(defaultProcs))
		restoreProcs = func() { runtime.GOMAXPROCS(prev) }
	}
	tok := auth.NewAdminToken()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminToken: tok, Store: store, Logger: log})
	if err != nil {
		restoreProcs()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: start server: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	addr := srv.Addr()
	if addr == "" {
		cancel()
		err := <-done
		restoreProcs()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: start server: %w", err)
	}
	return &target{
		base:       "http://" + addr,
		adminToken: tok,
		inProcess:  true,
		store:      store,
		stop: func() error {
			cancel()
			err := <-done
			restoreProcs()
			return errors.Join(err, os.RemoveAll(dir))
		},
	}, nil
}

// defaultProcs is the GOMAXPROCS the runtime chose, before an in-process
// node raises it.
var defaultProcs = runtime.GOMAXPROCS(0)

// benchApps makes two apps that allow each other, named with a random
// prefix so that runs against one server do not collide, and lifts their
// send limits where the server has them, so that the run measures the
// server and not its quotas.
func benchApps(ctx context.Context, adm *client.Admin) (a, b chat.App, warn string, err error) {
	var r [3]byte
	rand.Read(r[:])
	prefix := "bench-" + hex.EncodeToString(r[:])
	var apps [2]chat.App
	for i, suffix := range []string{"-a", "-b"} {
		app, err := adm.CreateApp(ctx, prefix+suffix, "bench "+prefix+suffix)
		if err != nil {
			return a, b, "", fmt.Errorf("bench: create app: %w", err)
		}
		apps[i] = chat.App{ID: app.ID, Secret: app.Secret}
	}
	for i := range apps {
		if _, err := adm.SetInterop(ctx, apps[i].ID, []string{apps[1-i].ID}); err != nil {
			return a, b, "", fmt.Errorf("bench: set interop: %w", err)
		}
		if err := liftLimits(ctx, adm, apps[i].ID); err != nil {
			warn = fmt.Sprintf("could not lift the apps' limits (%v); sends may be rate-limited", err)
		}
	}
	return apps[0], apps[1], warn, nil
}

// liftLimits raises app's limits to the largest values the server
// accepts (the bounds of chat.Limits), so that no quota holds the load
// back. A server without limits (404 or 405) is fine; one that does not
// know user_burst, beyond the API's documented fields, gets those alone.
func liftLimits(ctx context.Context, adm *client.Admin, app string) error {
	limits := map[string]int{
		"sends_per_second": 1_000_000, "burst": 1_000_000,
		"max_concurrent_requests": 100_000, "max_connections": 1_000_000,
		"user_sends_per_second": 100_000, "user_burst": 100_000,
	}
	for {
		_, err := adm.SetLimits(ctx, app, limits)
		var ce *client.Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ce) && (ce.Status == http.StatusNotFound || ce.Status == http.StatusMethodNotAllowed):
			return nil
		case errors.As(err, &ce) && ce.Code == "invalid_argument" && limits["user_burst"] != 0:
			delete(limits, "user_burst")
		default:
			return err
		}
	}
}

// user is one simulated user: its address, token and stream, and what the
// run learns about it.
type user struct {
	idx    int
	addr   string // app:user
	token  string
	conv   string // the one conversation the user sends to and receives from
	client *client.Client
	stream *client.Stream
}

// makeUsers mints tokens for n users, alternating between the two apps,
// so that every pair and every group mixes apps.
func makeUsers(bases []string, hc *http.Client, a, b chat.App, n, outbox, ttlSecs int) ([]*user, error) {
	ttl := time.Duration(ttlSecs) * time.Second
	now := time.Now()
	us := make([]*user, n)
	for i := range us {
		app := a
		if i%2 == 1 {
			app = b
		}
		id := fmt.Sprintf("u%d", i)
		tok, err := auth.Mint(app, id, ttl, now)
		if err != nil {
			return nil, fmt.Errorf("bench: mint token: %w", err)
		}
		us[i] = &user{
			idx:   i,
			addr:  app.ID + ":" + id,
			token: tok,
			// Round robin over the nodes: the two of a pair, and the
			// neighbours in a group, stream from different nodes, so
			// that their messages cross the bus.
			client: client.New(bases[i%len(bases)], tok, &client.Options{
				HTTPClient:  hc,
				EventBuffer: 1024,
				MaxOutbox:   outbox,
			}),
		}
	}
	return us, nil
}

// createConversations makes one conversation per group of users (a direct
// one for groups of two), created by the group's first member, and
// records it on every member.
func createConversations(ctx context.Context, us []*user, groups [][]int) error {
	return parallel(ctx, len(groups), 8, func(ctx context.Context, g int) error {
		ms := groups[g]
		var others []string
		for _, m := range ms[1:] {
			others = append(others, us[m].addr)
		}
		title := ""
		if len(ms) > 2 {
			title = fmt.Sprintf("bench group %d", g)
		}
		conv, _, err := us[ms[0]].client.CreateConversation(ctx, others, title)
		if err != nil {
			return fmt.Errorf("bench: create conversation: %w", err)
		}
		for _, m := range ms {
			us[m].conv = conv.ID
		}
		return nil
	})
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the
// first error, after which the rest are skipped.
func parallel(ctx context.Context, n, workers int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					continue
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// benchHTTPClient is shared by every simulated user: REST calls and
// WebSocket handshakes, with enough idle connections kept for the setup's
// parallel calls.
func benchHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
