package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var _ store.BatchAppender = (*Store)(nil)

// AppendMessages implements store.BatchAppender: one transaction, so one
// commit, for the lot. Like AppendMessage it holds the conversation's row
// lock, which numbers the new messages; each member's stream row is bumped
// once by the number of new messages, so the round trips do not grow with
// the batch.
func (s *Store) AppendMessages(ctx context.Context, ms []chat.Message) ([]store.Appended, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	// Checked before the transaction: do would take a plain error for a
	// lost connection and retry it.
	if err := store.CheckBatch(ms); err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	convID, sender := ms[0].ConversationID, ms[0].Sender
	clientIDs := make([]string, len(ms))
	for i, m := range ms {
		clientIDs[i] = m.ClientID
	}
	var res []store.Appended
	err := s.tx(ctx, fmt.Sprintf("append %d to %s", len(ms), convID), func(ctx context.Context, tx pgx.Tx) error {
		res = make([]store.Appended, len(ms))
		// One round trip: the lock, then the idempotency records, read
		// under the lock.
		b := &pgx.Batch{}
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
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if errors.Is(convErr, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if convErr != nil {
			return convErr
		}
		if !c.HasMember(sender) {
			return store.ErrNotFound
		}
		// Number the new ones; a client id met before (stored, or earlier
		// in ms) answers its first result. Index of each new one in ms:
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
			return nil
		}
		first := c.LastSeq + 1
		lasts, err := appendMessageEntries(ctx, tx, sortedUnique(c.Members), convID, first, k)
		if err != nil {
			return err
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
		b = &pgx.Batch{}
		for _, i := range fresh {
			m := res[i].Message
			b.Queue(`INSERT INTO messages (`+msgColumns+`, sender_cursor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				m.ConversationID, m.Seq, string(m.Sender), m.ClientID, m.Kind, m.Body, nullMeta(m.Meta), nanos(m.SentAt), res[i].Cursor)
		}
		last := res[fresh[len(fresh)-1]].Message
		b.Queue(`UPDATE conversations SET last_seq = $2, updated_at = $3 WHERE id = $1`, convID, last.Seq, nanos(last.SentAt))
		b.Queue(`UPDATE members SET read_seq = $3 WHERE conversation_id = $1 AND member = $2`, convID, string(sender), last.Seq)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, err
	}
	for i := range res {
		res[i].Message.Meta = slices.Clone(res[i].Message.Meta)
	}
	return res, nil
}

// appendMessageEntries gives each of users (sorted, distinct) k new
// cursors holding message entries for seqs first..first+k-1 of convID, in
// that order, in one statement; it returns each user's last cursor after
// it. The upsert locks the stream rows in the order given, as appendEntry
// does.
func appendMessageEntries(ctx context.Context, tx pgx.Tx, users []string, convID string, first, k int64) ([]chat.Delivery, error) {
	// A data-modifying WITH runs to completion whether or not the outer
	// query reads it.
	rows, _ := tx.Query(ctx, `WITH bumped AS (
			INSERT INTO streams (user_addr, last_cursor)
			SELECT u.user_addr, $2::bigint FROM unnest($1::text[]) WITH ORDINALITY AS u (user_addr, n) ORDER BY u.n
			ON CONFLICT (user_addr) DO UPDATE SET last_cursor = streams.last_cursor + $2::bigint
			RETURNING user_addr, last_cursor),
		added AS (
			INSERT INTO updates (user_addr, cur, kind, conversation_id, seq)
			SELECT b.user_addr, b.last_cursor - $2::bigint + i, $3, $4, $5::bigint - 1 + i
			FROM bumped b, generate_series(1::bigint, $2::bigint) AS i)
		SELECT user_addr, last_cursor FROM bumped`, users, k, kindMessage, convID, first)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Delivery, error) {
		var d chat.Delivery
		var u string
		err := r.Scan(&u, &d.Cursor)
		d.User = chat.Address(u)
		return d, err
	})
}
