package pgstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/pgstore"
	"github.com/switchboard-chat/switchboard/internal/store/pgstore/pgtest"
	"github.com/switchboard-chat/switchboard/internal/store/storetest"
)

func open(t testing.TB, dbURL, schema string, opts *pgstore.Options) *pgstore.Store {
	t.Helper()
	o := pgstore.Options{}
	if opts != nil {
		o = *opts
	}
	o.Schema = schema
	s, err := pgstore.Open(context.Background(), dbURL, &o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// schemaOf remembers each test store's schema, for Reopen.
var schemaOf sync.Map // store.Store -> string

func harness(t *testing.T) storetest.Harness {
	pgtest.URL(t) // fail or skip before any subtest
	return storetest.Harness{
		Open: func(t *testing.T) store.Store {
			dbURL, schema := pgtest.Schema(t)
			s := open(t, dbURL, schema, nil)
			schemaOf.Store(store.Store(s), schema)
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			schema, _ := schemaOf.LoadAndDelete(s)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			ns := open(t, pgtest.URL(t), schema.(string), nil)
			schemaOf.Store(store.Store(ns), schema)
			return ns
		},
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, harness(t))
}

// twoNodes is one store made of two: every call goes to one or the other
// in turn, as calls of one user land on different nodes behind a load
// balancer. Each has its own pool, so they share nothing but the database.
type twoNodes struct {
	nodes [2]*pgstore.Store
	n     atomic.Uint64
}

func (s *twoNodes) next() *pgstore.Store { return s.nodes[s.n.Add(1)%2] }

func (s *twoNodes) CreateApp(ctx context.Context, app chat.App) error {
	return s.next().CreateApp(ctx, app)
}
func (s *twoNodes) App(ctx context.Context, id string) (chat.App, error) {
	return s.next().App(ctx, id)
}
func (s *twoNodes) Apps(ctx context.Context) ([]chat.App, error) { return s.next().Apps(ctx) }
func (s *twoNodes) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	return s.next().UpdateApp(ctx, id, fn)
}
func (s *twoNodes) CreateConversation(ctx context.Context, c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	return s.next().CreateConversation(ctx, c)
}
func (s *twoNodes) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	return s.next().Conversation(ctx, id)
}
func (s *twoNodes) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	return s.next().UpdateMembers(ctx, id, now, fn)
}
func (s *twoNodes) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	return s.next().AppendMessage(ctx, m)
}
func (s *twoNodes) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	return s.next().AppendMessages(ctx, ms)
}
func (s *twoNodes) Messages(ctx context.Context, id string, before int64, limit int) ([]chat.Message, error) {
	return s.next().Messages(ctx, id, before, limit)
}
func (s *twoNodes) MarkRead(ctx context.Context, id string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	return s.next().MarkRead(ctx, id, reader, seq)
}
func (s *twoNodes) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) ([]chat.Summary, *store.Page, error) {
	return s.next().Conversations(ctx, user, page, limit)
}
func (s *twoNodes) Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error) {
	return s.next().Updates(ctx, user, after, limit)
}
func (s *twoNodes) Block(ctx context.Context, a, b chat.Address) error {
	return s.next().Block(ctx, a, b)
}
func (s *twoNodes) Unblock(ctx context.Context, a, b chat.Address) error {
	return s.next().Unblock(ctx, a, b)
}
func (s *twoNodes) Blocked(ctx context.Context, a, b chat.Address) (bool, error) {
	return s.next().Blocked(ctx, a, b)
}
func (s *twoNodes) Ping(ctx context.Context) error { return s.next().Ping(ctx) }
func (s *twoNodes) Close() error {
	return errors.Join(s.nodes[0].Close(), s.nodes[1].Close())
}

// The whole suite again with every call alternating between two stores on
// one database: the concurrent cases then number seqs and cursors from two
// pools at once, as two nodes do.
func TestConformanceTwoNodes(t *testing.T) {
	pgtest.URL(t)
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			dbURL, schema := pgtest.Schema(t)
			return &twoNodes{nodes: [2]*pgstore.Store{open(t, dbURL, schema, nil), open(t, dbURL, schema, nil)}}
		},
	})
}

// Nodes that start together all succeed, and each migration is applied
// once.
func TestMigrateConcurrently(t *testing.T) {
	dbURL, schema := pgtest.Schema(t)
	const nodes = 4
	var wg sync.WaitGroup
	stores := make([]*pgstore.Store, nodes)
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = pgstore.Open(t.Context(), dbURL, &pgstore.Options{Schema: schema})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Open: %v", i, err)
		}
		defer stores[i].Close()
	}
	conn, err := pgx.Connect(t.Context(), pgtest.WithSearchPath(dbURL, schema))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, distinct int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != distinct || n < 1 {
		t.Fatalf("schema_migrations has %d rows for %d versions after %d concurrent opens", n, distinct, nodes)
	}
	// The store works, through a search_path given in the URL this time.
	s, err := pgstore.Open(t.Context(), pgtest.WithSearchPath(dbURL, schema), nil)
	if err != nil {
		t.Fatalf("Open with search_path in the URL: %v", err)
	}
	defer s.Close()
	if err := s.CreateApp(t.Context(), chat.App{ID: "a", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[0].App(t.Context(), "a"); err != nil {
		t.Fatalf("the app made through the URL's search_path is not in the schema: %v", err)
	}
}

// With the database away, calls fail within the timeout with
// ErrUnavailable, nothing of a failed send remains, and the store serves
// again by itself once the database is back.
func TestDatabaseAway(t *testing.T) {
	dbURL, schema := pgtest.Schema(t)
	proxy, viaProxy := pgtest.NewProxy(t, dbURL)
	const timeout = 2 * time.Second
	s := open(t, viaProxy, schema, &pgstore.Options{Timeout: timeout})
	defer s.Close()
	ctx := t.Context()
	a, b := chat.NewAddress("app", "alice"), chat.NewAddress("app", "bob")
	conv := chat.Conversation{ID: "g1", Kind: chat.Group, Members: []chat.Address{a, b}, Creator: a, CreatedAt: time.Now()}
	if _, _, _, err := s.CreateConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	send := func(id string) (store.Appended, error) {
		return s.AppendMessage(ctx, chat.Message{ConversationID: "g1", Sender: a, ClientID: id, Kind: chat.KindText, Body: id, SentAt: time.Now()})
	}
	if _, err := send("before"); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	for _, id := range []string{"during-1", "during-2"} {
		start := time.Now()
		_, err := send(id)
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("send with the database away: err = %v, want ErrUnavailable", err)
		}
		if took > timeout+time.Second {
			t.Errorf("send with the database away took %v, want at most about %v", took, timeout)
		}
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with the database away: %v, want ErrUnavailable", err)
	}

	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the store did not serve again within 10s of the database coming back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := send("after")
	if err != nil {
		t.Fatalf("send after the database came back: %v", err)
	}
	if res.Message.Seq != 2 {
		t.Errorf("the send after the outage got seq %d, want 2: a failed send left a trace", res.Message.Seq)
	}
	// The failed sends were not stored, and a retry of one stores it now.
	res, err = send("during-1")
	if err != nil || !res.Created || res.Message.Seq != 3 {
		t.Fatalf("retrying a send that failed: %+v, %v; want created with seq 3", res, err)
	}
	for _, u := range []chat.Address{a, b} {
		list, err := s.Updates(ctx, u, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 4 {
			t.Errorf("%s's stream has %d updates, want 4 (create and 3 messages)", u, len(list))
		}
		for i, up := range list {
			if up.Cursor != int64(i+1) {
				t.Errorf("%s's stream: cursor %d at %d", u, up.Cursor, i)
			}
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	dbURL, schema := pgtest.Schema(t)
	proxy, viaProxy := pgtest.NewProxy(t, dbURL)
	proxy.Cut()
	start := time.Now()
	_, err := pgstore.Open(t.Context(), viaProxy, &pgstore.Options{Schema: schema, Timeout: time.Second})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of an unreachable database: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 35*time.Second {
		t.Errorf("Open of an unreachable database took %v", took)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store {
		dbURL, schema := pgtest.Schema(b)
		return open(b, dbURL, schema, &pgstore.Options{MaxConns: 32})
	})
}
