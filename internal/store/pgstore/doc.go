// Package pgstore implements store.Store on PostgreSQL (through pgx and its
// pool), for running several Switchboard nodes on one database. Every node
// opens the same database; any node may serve any user.
//
// # Numbering across nodes
//
// Seqs and cursors are counters in rows, moved inside the transaction that
// writes what they number, under row locks:
//
//   - every write to a conversation (a message, a read, a member change)
//     first locks the conversation's row (SELECT ... FOR UPDATE), which
//     orders them and numbers messages with no gap or duplicate;
//   - then it bumps the stream counter of every member in one upsert
//     (INSERT ... ON CONFLICT DO UPDATE ... RETURNING), users in sorted
//     order, and inserts the stream entries at the cursors it returned.
//
// Locks are always taken in that order (one conversation, then users
// sorted), so two transactions do not deadlock; if the database finds one
// anyway, or aborts one for serialization, the store runs it again. A
// counter row stays locked until its transaction commits, so a reader never
// sees cursor n+1 committed before cursor n: the streams have no holes even
// for a moment.
//
// Durability is the database's: a call returns after COMMIT, which with
// synchronous_commit on (leave it on) waits for the WAL flush. Concurrent
// commits share a flush, which is the group commit the Pebble store does
// by hand.
//
// # Failures
//
// Every call runs within Options.Timeout. Transient errors (a lost or
// refused connection, serialization failures 40001, deadlocks 40P01, a
// server restarting) are retried with exponential backoff and jitter, up
// to Options.MaxAttempts. What still fails comes back wrapping
// store.ErrUnavailable, which the API answers as 503 unavailable; the pool
// reconnects by itself when the database is back. Retrying the writes is
// safe: sends are idempotent by client id, reads move only forward, and
// member changes and app updates re-run their function on fresh state. A
// commit whose answer was lost and that did commit is found by the retry;
// a send then answers Created = false with its first result, so no
// message is stored twice.
//
// # Schema
//
// Migrations are SQL files embedded in the binary (migrations/NNNN_*.sql),
// applied in order on Open, each in a transaction with its row in
// schema_migrations. Nodes that start together take turns through an
// advisory lock; the statements are idempotent besides. Times are Unix
// nanoseconds (BIGINT), since timestamps keep only microseconds. A message
// stream entry references the message (conversation id, seq), so a send to
// a group of 256 stores the body once. docs/postgres.md lists what this
// asks of the database, for PostgreSQL-compatible distributed databases.
package pgstore
