package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-chat/switchboard/internal/store"
)

var _ store.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures a Store. Nil or zero fields mean the defaults named.
type Options struct {
	// Schema is the schema the tables live in; Open creates it when
	// missing and sets search_path to it on every connection. Empty: the
	// search_path of the URL, if it names one schema, else the server's
	// default (public).
	Schema string
	// Timeout bounds each call, retries included, so that a call fails
	// with store.ErrUnavailable rather than hang while the database is
	// away. Zero: 5s.
	Timeout time.Duration
	// MaxAttempts bounds how often a call runs when it meets a transient
	// error (a lost connection, a serialization failure, a deadlock).
	// Zero: 5.
	MaxAttempts int
	// MaxConns is the pool's size unless the URL sets pool_max_conns.
	// Zero: 10.
	MaxConns int32
	// Logger. Nil: discard.
	Logger *slog.Logger
}

// Store is a store.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	opts   Options
	log    *slog.Logger
	closed atomic.Bool
}

// Open connects to the database at url (postgres://...), applies the
// migrations it lacks and returns the store. It fails when the database
// cannot be reached within Options.Timeout (with store.ErrUnavailable).
func Open(ctx context.Context, url string, opts *Options) (*Store, error) {
	s := &Store{}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Timeout <= 0 {
		s.opts.Timeout = 5 * time.Second
	}
	if s.opts.MaxAttempts <= 0 {
		s.opts.MaxAttempts = 5
	}
	if s.opts.MaxConns <= 0 {
		s.opts.MaxConns = 10
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error quotes the URL, password included.
		return nil, errors.New("pgstore: cannot parse the database URL")
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = s.opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > s.opts.Timeout {
		cfg.ConnConfig.ConnectTimeout = min(3*time.Second, s.opts.Timeout)
	}
	// A dead connection is found by the next query that uses it; checking
	// often keeps that from being the sender's.
	cfg.HealthCheckPeriod = 5 * time.Second
	schema := s.opts.Schema
	if schema == "" {
		if sp := cfg.ConnConfig.RuntimeParams["search_path"]; sp != "" && !strings.ContainsAny(sp, ", ") {
			schema = sp
		}
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	s.pool = pool
	if err := s.migrate(ctx, schema); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// migration is one embedded file, migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var list []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("pgstore: migration file %s is not named NNNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		list = append(list, migration{v, e.Name(), string(b)})
	}
	slices.SortFunc(list, func(a, b migration) int { return a.version - b.version })
	return list, nil
}

// migrate applies the migrations the database lacks, each in its own
// transaction with its version row. Nodes starting together take turns
// through a session advisory lock keyed by the schema; the statements are
// idempotent besides, so a database without advisory locks only does
// harmless double work.
func (s *Store) migrate(ctx context.Context, schema string) error {
	list, err := loadMigrations()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, max(s.opts.Timeout, 30*time.Second))
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: connect: %w: %v", store.ErrUnavailable, err)
	}
	defer conn.Release()
	h := fnv.New64a()
	io.WriteString(h, "switchboard migrations "+schema)
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("pgstore: migration lock: %w", err)
	}
	defer func() {
		// A session lock outlives a failed transaction; let go explicitly.
		// If the connection broke, the server released it already.
		conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", key)
	}()
	if schema != "" {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("pgstore: create schema: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("pgstore: migrations table: %w", err)
	}
	rows, _ := conn.Query(ctx, "SELECT version FROM schema_migrations")
	done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("pgstore: read migrations: %w", err)
	}
	for _, m := range list {
		if slices.Contains(done, int64(m.version)) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)
				ON CONFLICT (version) DO NOTHING`, m.version, m.name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("pgstore: migration %s: %w", m.name, err)
		}
		s.log.Info("applied migration", "migration", m.name)
	}
	return nil
}

// fnErr carries an error of a caller's function (UpdateApp's,
// UpdateMembers') through the retry loop untouched.
type fnErr struct{ err error }

func (e fnErr) Error() string { return e.err.Error() }
func (e fnErr) Unwrap() error { return e.err }

// corruptErr is data the store cannot have written; retrying won't help.
type corruptErr struct{ msg string }

func (e corruptErr) Error() string { return "pgstore: corrupt data: " + e.msg }

func corrupt(msg string) error { return corruptErr{msg} }

// do runs fn, again on transient errors with backoff, within
// Options.Timeout. Errors come back wrapped with op: the store's own
// sentinels and fn's errors as they are, a database that cannot be reached
// as store.ErrUnavailable.
func (s *Store) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if s.closed.Load() {
		return fmt.Errorf("pgstore: %s: %w", op, store.ErrClosed)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var fe fnErr
		switch {
		case errors.As(err, &fe):
			return fe.err
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
			return fmt.Errorf("pgstore: %s: %w", op, err)
		case s.closed.Load():
			return fmt.Errorf("pgstore: %s: %w", op, store.ErrClosed)
		case parent.Err() != nil:
			return fmt.Errorf("pgstore: %s: %w", op, parent.Err())
		case ctx.Err() != nil:
			return fmt.Errorf("pgstore: %s: %w: no answer within %v: %v", op, store.ErrUnavailable, s.opts.Timeout, err)
		case !transient(err):
			return fmt.Errorf("pgstore: %s: %w", op, err)
		case attempt >= s.opts.MaxAttempts:
			return fmt.Errorf("pgstore: %s: %w after %d attempts: %v", op, store.ErrUnavailable, attempt, err)
		}
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if parent.Err() != nil {
				return fmt.Errorf("pgstore: %s: %w", op, parent.Err())
			}
			return fmt.Errorf("pgstore: %s: %w: no answer within %v: %v", op, store.ErrUnavailable, s.opts.Timeout, err)
		}
		backoff = min(backoff*4, 500*time.Millisecond)
	}
}

// transient reports whether err may go away by itself: the connection
// was lost or could not be made, or the database aborted the transaction
// for a conflict it expects the client to retry.
func transient(err error) bool {
	var ce corruptErr
	if errors.As(err, &ce) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"55P03", // lock_not_available
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now
			"53300": // too_many_connections
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection_exception
	}
	// Without a server error code it is the connection: refused, reset,
	// timed out, closed under us. SQL mistakes come back as PgError, so
	// this does not turn bugs into retries.
	return true
}

// tx runs fn in a transaction through do. fn may run more than once.
func (s *Store) tx(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return s.do(ctx, op, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
	})
}

// Ping implements store.Store: one round trip to the database.
func (s *Store) Ping(ctx context.Context) error {
	return s.do(ctx, "ping", func(ctx context.Context) error {
		return s.pool.Ping(ctx)
	})
}

// Close implements store.Store. It waits for calls in flight to give back
// their connections. Closing again is harmless.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}
