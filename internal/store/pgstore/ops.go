package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// Stream entry kinds, the updates.kind column.
const (
	kindMessage      = 1
	kindRead         = 2
	kindConversation = 3
)

func nanos(t time.Time) int64     { return t.UnixNano() }
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func strs(list []chat.Address) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = string(a)
	}
	return out
}

func addrs(list []string) []chat.Address {
	out := make([]chat.Address, len(list))
	for i, a := range list {
		out[i] = chat.Address(a)
	}
	return out
}

// sortedUnique returns the distinct addresses of the lists, sorted: the
// order in which stream rows are locked, the same in every transaction, so
// that two of them never wait for each other in a circle.
func sortedUnique(lists ...[]chat.Address) []string {
	var out []string
	for _, l := range lists {
		out = append(out, strs(l)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func nullMeta(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreateApp implements store.Store.
func (s *Store) CreateApp(ctx context.Context, app chat.App) error {
	interop := app.Interop
	if interop == nil {
		interop = []string{}
	}
	return s.do(ctx, "create app "+app.ID, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, `INSERT INTO apps (id, name, secret, interop, created_at, limits, frozen) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO NOTHING`, app.ID, app.Name, app.Secret, interop, nanos(app.CreatedAt), limitsJSON(app.Limits), app.Frozen)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrConflict
		}
		return nil
	})
}

const appColumns = `id, name, secret, interop, created_at, limits, frozen`

func scanApp(row pgx.Row) (chat.App, error) {
	var a chat.App
	var created int64
	var limits string
	err := row.Scan(&a.ID, &a.Name, &a.Secret, &a.Interop, &created, &limits, &a.Frozen)
	a.CreatedAt = fromNanos(created)
	if err == nil {
		if jerr := json.Unmarshal([]byte(limits), &a.Limits); jerr != nil {
			err = fmt.Errorf("pgstore: app %s: limits: %w", a.ID, jerr)
		}
	}
	return a, err
}

func limitsJSON(l chat.Limits) string {
	b, _ := json.Marshal(l) // a struct of ints always encodes
	return string(b)
}

// App implements store.Store.
func (s *Store) App(ctx context.Context, id string) (chat.App, error) {
	var a chat.App
	err := s.do(ctx, "app "+id, func(ctx context.Context) error {
		var err error
		a, err = scanApp(s.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return a, err
}

// Apps implements store.Store.
func (s *Store) Apps(ctx context.Context) ([]chat.App, error) {
	var list []chat.App
	err := s.do(ctx, "apps", func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT `+appColumns+` FROM apps ORDER BY id`)
		var err error
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.App, error) { return scanApp(r) })
		return err
	})
	return list, err
}

// UpdateApp implements store.Store. fn runs with the app's row locked; it
// runs again only when the transaction is retried.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*chat.App) error) (chat.App, error) {
	var out chat.App
	err := s.tx(ctx, "update app "+id, func(ctx context.Context, tx pgx.Tx) error {
		a, err := scanApp(tx.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return fnErr{err}
		}
		a.ID = id
		interop := a.Interop
		if interop == nil {
			interop = []string{}
		}
		if _, err := tx.Exec(ctx, `UPDATE apps SET name = $2, secret = $3, interop = $4, created_at = $5, limits = $6, frozen = $7 WHERE id = $1`,
			id, a.Name, a.Secret, interop, nanos(a.CreatedAt), limitsJSON(a.Limits), a.Frozen); err != nil {
			return err
		}
		out = a
		return nil
	})
	return out, err
}

const convColumns = `id, kind, title, members, creator, last_seq, created_at, updated_at`

func scanConv(row pgx.Row, extra ...any) (chat.Conversation, error) {
	var c chat.Conversation
	var members []string
	var creator string
	var created, updated int64
	dest := append([]any{&c.ID, &c.Kind, &c.Title, &members, &creator, &c.LastSeq, &created, &updated}, extra...)
	err := row.Scan(dest...)
	c.Members = addrs(members)
	c.Creator = chat.Address(creator)
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return c, err
}

// lockConv reads a conversation and locks its row until the transaction
// ends: every change to a conversation, its messages and its members' read
// positions goes through this lock, which is what numbers seqs without
// gaps across nodes.
func lockConv(ctx context.Context, tx pgx.Tx, id string) (chat.Conversation, error) {
	c, err := scanConv(tx.QueryRow(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, store.ErrNotFound
	}
	return c, err
}

// entry is the part of a stream entry that is the same for every user it
// goes to.
type entry struct {
	kind           int
	conversationID string
	seq            int64
	reader         string
	conversation   *chat.Conversation
}

// appendEntry gives each of users (sorted, distinct) their next cursor and
// stores e there, in one statement: the upsert locks the users' stream
// rows in the order given and holds them to the end of the transaction.
func appendEntry(ctx context.Context, tx pgx.Tx, users []string, e entry) ([]chat.Delivery, error) {
	var conv *string
	if e.conversation != nil {
		b, err := json.Marshal(e.conversation)
		if err != nil {
			return nil, err
		}
		s := string(b)
		conv = &s
	}
	var convID, reader *string
	var seq *int64
	if e.conversationID != "" {
		convID = &e.conversationID
	}
	if e.reader != "" {
		reader = &e.reader
	}
	if e.seq != 0 {
		seq = &e.seq
	}
	rows, _ := tx.Query(ctx, `WITH bumped AS (
			INSERT INTO streams (user_addr, last_cursor)
			SELECT u.user_addr, 1 FROM unnest($1::text[]) WITH ORDINALITY AS u (user_addr, n) ORDER BY u.n
			ON CONFLICT (user_addr) DO UPDATE SET last_cursor = streams.last_cursor + 1
			RETURNING user_addr, last_cursor)
		INSERT INTO updates (user_addr, cur, kind, conversation_id, seq, reader, conversation)
		SELECT user_addr, last_cursor, $2, $3, $4, $5, $6 FROM bumped
		RETURNING user_addr, cur`, users, e.kind, convID, seq, reader, conv)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Delivery, error) {
		var d chat.Delivery
		var u string
		err := r.Scan(&u, &d.Cursor)
		d.User = chat.Address(u)
		return d, err
	})
}

// CreateConversation implements store.Store.
func (s *Store) CreateConversation(ctx context.Context, c chat.Conversation) (chat.Conversation, []chat.Delivery, bool, error) {
	c.Members = slices.Clone(c.Members)
	c.LastSeq = 0
	c.UpdatedAt = c.CreatedAt
	var (
		out     chat.Conversation
		ds      []chat.Delivery
		created bool
	)
	err := s.tx(ctx, "create conversation "+c.ID, func(ctx context.Context, tx pgx.Tx) error {
		ds, created = nil, false
		// A racing create of the same id waits here for the other to
		// commit, then does nothing.
		tag, err := tx.Exec(ctx, `INSERT INTO conversations (`+convColumns+`) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)
			ON CONFLICT (id) DO NOTHING`, c.ID, c.Kind, c.Title, strs(c.Members), string(c.Creator), nanos(c.CreatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			out, err = scanConv(tx.QueryRow(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = $1`, c.ID))
			return err
		}
		users := sortedUnique(c.Members)
		if _, err := tx.Exec(ctx, `INSERT INTO members (conversation_id, member, read_seq, active)
			SELECT $1, m, 0, true FROM unnest($2::text[]) AS m
			ON CONFLICT (conversation_id, member) DO UPDATE SET read_seq = 0, active = true`, c.ID, users); err != nil {
			return err
		}
		ds, err = appendEntry(ctx, tx, users, entry{kind: kindConversation, conversation: &c})
		out, created = c, true
		return err
	})
	if err != nil {
		return chat.Conversation{}, nil, false, err
	}
	return out, ds, created, nil
}

// Conversation implements store.Store.
func (s *Store) Conversation(ctx context.Context, id string) (chat.Conversation, error) {
	var c chat.Conversation
	err := s.do(ctx, "conversation "+id, func(ctx context.Context) error {
		var err error
		c, err = scanConv(s.pool.QueryRow(ctx, `SELECT `+convColumns+` FROM conversations WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return c, err
}

// UpdateMembers implements store.Store. fn runs with the conversation's
// row locked; it runs again only when the transaction is retried.
func (s *Store) UpdateMembers(ctx context.Context, id string, now time.Time, fn func(*chat.Conversation) error) (chat.Conversation, []chat.Delivery, error) {
	var (
		out chat.Conversation
		ds  []chat.Delivery
	)
	err := s.tx(ctx, "update members "+id, func(ctx context.Context, tx pgx.Tx) error {
		ds = nil
		cur, err := lockConv(ctx, tx, id)
		if err != nil {
			return err
		}
		work := cur
		work.Members = slices.Clone(cur.Members)
		if err := fn(&work); err != nil {
			return fnErr{err}
		}
		if slices.Equal(work.Members, cur.Members) {
			out = cur
			return nil
		}
		next := cur
		next.Members = slices.Clone(work.Members)
		next.UpdatedAt = now
		var joined, left []string
		for _, m := range next.Members {
			if !cur.HasMember(m) {
				joined = append(joined, string(m))
			}
		}
		for _, m := range cur.Members {
			if !next.HasMember(m) {
				left = append(left, string(m))
			}
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE conversations SET members = $2, updated_at = $3 WHERE id = $1`, id, strs(next.Members), nanos(now))
		b.Queue(`INSERT INTO members (conversation_id, member, read_seq, active)
			SELECT $1, m, 0, true FROM unnest($2::text[]) AS m
			ON CONFLICT (conversation_id, member) DO UPDATE SET read_seq = 0, active = true`, id, joined)
		b.Queue(`UPDATE members SET active = false WHERE conversation_id = $1 AND member = ANY($2::text[])`, id, left)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		ds, err = appendEntry(ctx, tx, sortedUnique(cur.Members, next.Members), entry{kind: kindConversation, conversation: &next})
		out = next
		return err
	})
	if err != nil {
		return chat.Conversation{}, nil, err
	}
	return out, ds, nil
}

const msgColumns = `conversation_id, seq, sender, client_id, kind, body, meta, sent_at`

func scanMsg(row pgx.Row, extra ...any) (chat.Message, error) {
	var m chat.Message
	var sender string
	var meta []byte
	var sent int64
	dest := append([]any{&m.ConversationID, &m.Seq, &sender, &m.ClientID, &m.Kind, &m.Body, &meta, &sent}, extra...)
	err := row.Scan(dest...)
	m.Sender = chat.Address(sender)
	if len(meta) > 0 {
		m.Meta = meta
	}
	m.SentAt = fromNanos(sent)
	return m, err
}

// AppendMessage implements store.Store: a batch of one (AppendMessages),
// so that a single send takes the same two round trips.
func (s *Store) AppendMessage(ctx context.Context, m chat.Message) (store.Appended, error) {
	res, err := s.AppendMessages(ctx, []chat.Message{m})
	if err != nil {
		return store.Appended{}, err
	}
	return res[0], nil
}

// Messages implements store.Store.
func (s *Store) Messages(ctx context.Context, conversationID string, before int64, limit int) ([]chat.Message, error) {
	if limit < 1 {
		return nil, nil
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	var list []chat.Message
	err := s.do(ctx, "messages of "+conversationID, func(ctx context.Context) error {
		rows, _ := s.pool.Query(ctx, `SELECT `+msgColumns+` FROM messages WHERE conversation_id = $1 AND seq < $2
			ORDER BY seq DESC LIMIT $3`, conversationID, before, limit)
		var err error
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (chat.Message, error) { return scanMsg(r) })
		return err
	})
	return list, err
}

// MarkRead implements store.Store.
func (s *Store) MarkRead(ctx context.Context, conversationID string, reader chat.Address, seq int64) (int64, []chat.Delivery, error) {
	var (
		pos int64
		ds  []chat.Delivery
	)
	err := s.tx(ctx, "mark read in "+conversationID, func(ctx context.Context, tx pgx.Tx) error {
		ds = nil
		// The conversation's lock orders this with sends and member
		// changes, so that one reader's read updates rise in every stream.
		c, err := lockConv(ctx, tx, conversationID)
		if err != nil {
			return err
		}
		if !c.HasMember(reader) {
			return store.ErrNotFound
		}
		if err := tx.QueryRow(ctx, `SELECT read_seq FROM members WHERE conversation_id = $1 AND member = $2`,
			conversationID, string(reader)).Scan(&pos); err != nil {
			return err
		}
		if seq <= pos {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE members SET read_seq = $3 WHERE conversation_id = $1 AND member = $2`,
			conversationID, string(reader), seq); err != nil {
			return err
		}
		pos = seq
		ds, err = appendEntry(ctx, tx, sortedUnique(c.Members), entry{kind: kindRead, conversationID: conversationID, reader: string(reader), seq: seq})
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return pos, ds, nil
}

// Conversations implements store.Store.
func (s *Store) Conversations(ctx context.Context, user chat.Address, page *store.Page, limit int) ([]chat.Summary, *store.Page, error) {
	if limit < 1 {
		return nil, nil, nil
	}
	var (
		afterTime *int64
		afterID   string
	)
	if page != nil {
		t := nanos(page.UpdatedAt)
		afterTime, afterID = &t, page.ID
	}
	var list []chat.Summary
	err := s.do(ctx, "conversations of "+string(user), func(ctx context.Context) error {
		list = list[:0]
		rows, err := s.pool.Query(ctx, `SELECT c.id, c.kind, c.title, c.members, c.creator, c.last_seq, c.created_at, c.updated_at,
				mb.read_seq, m.conversation_id, m.seq, m.sender, m.client_id, m.kind, m.body, m.meta, m.sent_at
			FROM members mb
			JOIN conversations c ON c.id = mb.conversation_id
			LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
			WHERE mb.member = $1 AND mb.active
				AND ($2::bigint IS NULL OR c.updated_at < $2 OR (c.updated_at = $2 AND c.id < $3))
			ORDER BY c.updated_at DESC, c.id DESC
			LIMIT $4`, string(user), afterTime, afterID, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sum chat.Summary
			var (
				mConv, mSender, mClient, mKind, mBody *string
				mSeq, mSent                           *int64
				mMeta                                 []byte
			)
			sum.Conversation, err = scanConv(rows, &sum.ReadSeq, &mConv, &mSeq, &mSender, &mClient, &mKind, &mBody, &mMeta, &mSent)
			if err != nil {
				return err
			}
			if mConv != nil {
				m := chat.Message{ConversationID: *mConv, Seq: *mSeq, Sender: chat.Address(*mSender), ClientID: *mClient,
					Kind: *mKind, Body: *mBody, SentAt: fromNanos(*mSent)}
				if len(mMeta) > 0 {
					m.Meta = mMeta
				}
				sum.LastMessage = &m
			}
			list = append(list, sum)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, err
	}
	var next *store.Page
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		next = &store.Page{UpdatedAt: last.UpdatedAt, ID: last.ID}
	}
	return list, next, nil
}

// Updates implements store.Store. Message entries are resolved from the
// messages table.
func (s *Store) Updates(ctx context.Context, user chat.Address, after int64, limit int) ([]chat.Update, error) {
	if limit < 1 {
		return nil, nil
	}
	var list []chat.Update
	err := s.do(ctx, "updates of "+string(user), func(ctx context.Context) error {
		list = list[:0]
		rows, err := s.pool.Query(ctx, `SELECT u.cur, u.kind, u.conversation_id, u.seq, u.reader, u.conversation,
				m.sender, m.client_id, m.kind, m.body, m.meta, m.sent_at
			FROM updates u
			LEFT JOIN messages m ON u.kind = 1 AND m.conversation_id = u.conversation_id AND m.seq = u.seq
			WHERE u.user_addr = $1 AND u.cur > $2
			ORDER BY u.cur
			LIMIT $3`, string(user), after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				u                            chat.Update
				kind                         int
				convID, reader, conv         *string
				seq, sent                    *int64
				sender, client, mKind, mBody *string
				meta                         []byte
			)
			if err := rows.Scan(&u.Cursor, &kind, &convID, &seq, &reader, &conv, &sender, &client, &mKind, &mBody, &meta, &sent); err != nil {
				return err
			}
			switch kind {
			case kindMessage:
				if sender == nil {
					return corrupt(fmt.Sprintf("stream of %s: cursor %d names message %v/%v, which is missing", user, u.Cursor, *convID, *seq))
				}
				m := chat.Message{ConversationID: *convID, Seq: *seq, Sender: chat.Address(*sender), ClientID: *client,
					Kind: *mKind, Body: *mBody, SentAt: fromNanos(*sent)}
				if len(meta) > 0 {
					m.Meta = meta
				}
				u.Type, u.Message = chat.UpdateMessage, &m
			case kindRead:
				u.Type, u.ConversationID, u.Reader, u.Seq = chat.UpdateRead, *convID, chat.Address(*reader), *seq
			case kindConversation:
				var c chat.Conversation
				if err := json.Unmarshal([]byte(*conv), &c); err != nil {
					return corrupt(fmt.Sprintf("stream of %s: cursor %d: %v", user, u.Cursor, err))
				}
				u.Type, u.Conversation = chat.UpdateConversation, &c
			default:
				return corrupt(fmt.Sprintf("stream of %s: cursor %d has kind %d", user, u.Cursor, kind))
			}
			list = append(list, u)
		}
		return rows.Err()
	})
	return list, err
}

// Block implements store.Store.
func (s *Store) Block(ctx context.Context, blocker, blocked chat.Address) error {
	return s.do(ctx, "block", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO blocks (blocker, blocked) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			string(blocker), string(blocked))
		return err
	})
}

// Unblock implements store.Store.
func (s *Store) Unblock(ctx context.Context, blocker, blocked chat.Address) error {
	return s.do(ctx, "unblock", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `DELETE FROM blocks WHERE blocker = $1 AND blocked = $2`, string(blocker), string(blocked))
		return err
	})
}

// Blocked implements store.Store.
func (s *Store) Blocked(ctx context.Context, blocker, blocked chat.Address) (bool, error) {
	var ok bool
	err := s.do(ctx, "blocked", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker = $1 AND blocked = $2)`,
			string(blocker), string(blocked)).Scan(&ok)
	})
	return ok, err
}
