package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var _ store.BatchAppender = (*Store)(nil)

// AppendMessages implements store.BatchAppender: one transaction, so one
// commit, for the lot. Like AppendMessage it holds the conversation's row
// lock, which numbers the new messages; each member's stream row is bumped
// once by the number of new messages.
//
// The transaction takes two round trips, whatever the batch: BEGIN, the
// lock and the idempotency records go in one pipeline, and the stream
// entries, the messages, the conversation's and the sender's rows and
// COMMIT in the next. The row lock is held for those two round trips only
// (it was five with a round trip per step), which is what bounds a busy
// conversation across nodes. A connection whose transaction did not end
// is not given back to the pool but closed (pgxpool does so on Release).
func (s *Store) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	// Checked before the transaction: do would take a plain error for a
	// lost connection and retry it.
	if err := store.CheckBatch(ms); err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	var res []store.Appended
	err := s.do(ctx, fmt.Sprintf("append %d to %s", len(ms), ms[0].ConversationID), func(ctx context.Context) error {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		res, err = appendPipelined(ctx, conn.Conn(), ms)
		if err != nil && conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().PgConn().IsBusy() {
			// ErrNotFound and the like, answered inside the transaction:
			// end it, so that the connection goes back to the pool.
			if _, rerr := conn.Conn().Exec(ctx, "ROLLBACK"); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range res {
		res[i].Message.Meta = slices.Clone(res[i].Message.Meta)
	}
	return res, nil
}

// appendPipelined is AppendMessages' transaction on conn, in two round
// trips (see there).
func appendPipelined(ctx context.Context, conn *pgx.Conn, ms []chat.Message) ([]store.Appended, error) {
	convID, sender := ms[0].ConversationID, ms[0].Sender
	clientIDs := make([]string, len(ms))
	for i, m := range ms {
		clientIDs[i] = m.ClientID
	}
	res := make([]store.Appended, len(ms))
	// The lock, then the idempotency records, read under the lock.
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	var (
		c       chat.Conversation
		convErr error
		prev    = map[string]store.Appended{}
	)
	b.Queue(`SELECT `+convColumns+` FROM conversations WHERE id = $1 FOR UPDATE`, convID).QueryRow(func(row pgx.Row) error {
		c, convErr = scanConv(row)
		return nil
	})
	b.Queue(`SELECT `+msgColumns+`, sender_cursor FROM messages WHERE conversation_id = $1 AND sender = $2 AND client_id = ANY($3::text[])`,
		convID, string(sender), clientIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var cur int64
			m, err := scanMsg(rows, &cur)
			if err != nil {
				return err
			}
			prev[m.ClientID] = store.Appended{Message: m, Cursor: cur}
		}
		return rows.Err()
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if errors.Is(convErr, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if convErr != nil {
		return nil, convErr
	}
	if !c.HasMember(sender) {
		return nil, store.ErrNotFound
	}
	// Number the new ones; a client id met before (stored, or earlier in
	// ms) answers its first result. Index of each new one in ms:
	var fresh []int
	firstIn := map[string]int{}
	dupOf := map[int]int{} // a repeat within ms -> its first
	for i, m := range ms {
		if p, ok := prev[m.ClientID]; ok {
			res[i] = p
			continue
		}
		if j, ok := firstIn[m.ClientID]; ok {
			res[i] = store.Appended{Message: res[j].Message}
			dupOf[i] = j
			continue
		}
		firstIn[m.ClientID] = i
		m.Seq = c.LastSeq + int64(len(fresh)) + 1
		res[i] = store.Appended{Message: m, Created: true}
		fresh = append(fresh, i)
	}
	k := int64(len(fresh))
	if k == 0 {
		_, err := conn.Exec(ctx, "COMMIT")
		return res, err
	}
	// The stream entries, then the messages, whose sender cursor is read
	// from the sender's stream row as the entries left it, then the rows
	// of the conversation and of the sender, and COMMIT.
	var lasts []chat.Delivery
	b = &pgx.Batch{}
	queueMessageEntries(b, sortedUnique(c.Members), convID, c.LastSeq+1, k, &lasts)
	for n, i := range fresh {
		m := res[i].Message
		b.Queue(`INSERT INTO messages (`+msgColumns+`, sender_cursor)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, last_cursor - $9::bigint FROM streams WHERE user_addr = $3`,
			m.ConversationID, m.Seq, string(m.Sender), m.ClientID, m.Kind, m.Body, nullMeta(m.Meta), nanos(m.SentAt), k-1-int64(n)).
			Exec(func(ct pgconn.CommandTag) error {
				if ct.RowsAffected() != 1 {
					// The sender's stream row, bumped just before, is
					// missing: never store a message without its cursor.
					return fmt.Errorf("message %d of %s: %d rows inserted", m.Seq, convID, ct.RowsAffected())
				}
				return nil
			})
	}
	last := res[fresh[len(fresh)-1]].Message
	b.Queue(`UPDATE conversations SET last_seq = $2, updated_at = $3 WHERE id = $1`, convID, last.Seq, nanos(last.SentAt))
	b.Queue(`UPDATE members SET read_seq = $3 WHERE conversation_id = $1 AND member = $2`, convID, string(sender), last.Seq)
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	for n, i := range fresh {
		ds := make([]chat.Delivery, len(lasts))
		for u, d := range lasts {
			ds[u] = chat.Delivery{User: d.User, Cursor: d.Cursor - k + 1 + int64(n)}
			if d.User == sender {
				res[i].Cursor = ds[u].Cursor
			}
		}
		res[i].Deliveries = ds
	}
	for i, j := range dupOf {
		res[i].Cursor = res[j].Cursor
	}
	return res, nil
}

// queueMessageEntries queues the statement that gives each of users
// (sorted, distinct) k new cursors holding message entries for seqs
// first..first+k-1 of convID, in that order; each user's last cursor after
// it goes to out. The upsert locks the stream rows in the order given, as
// appendEntry does.
func queueMessageEntries(b *pgx.Batch, users []string, convID string, first, k int64, out *[]chat.Delivery) {
	// A data-modifying WITH runs to completion whether or not the outer
	// query reads it.
	b.Queue(`WITH bumped AS (
			INSERT INTO streams (user_addr, last_cursor)
			SELECT u.user_addr, $2::bigint FROM unnest($1::text[]) WITH ORDINALITY AS u (user_addr, n) ORDER BY u.n
			ON CONFLICT (user_addr) DO UPDATE SET last_cursor = streams.last_cursor + $2::bigint
			RETURNING user_addr, last_cursor),
		added AS (
			INSERT INTO updates (user_addr, cur, kind, conversation_id, seq)
			SELECT b.user_addr, b.last_cursor - $2::bigint + i, $3, $4, $5::bigint - 1 + i
			FROM bumped b, generate_series(1::bigint, $2::bigint) AS i)
		SELECT user_addr, last_cursor FROM bumped`, users, k, kindMessage, convID, first).Query(func(rows pgx.Rows) error {
		var err error
		*out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Delivery, error) {
			var d chat.Delivery
			var u string
			err := r.Scan(&u, &d.Cursor)
			d.User = chat.Address(u)
			return d, err
		})
		return err
	})
}
