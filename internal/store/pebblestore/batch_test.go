package pebblestore

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// TestAppendMessagesFailsWhole: a batch whose later message fails its
// idempotency lookup (a malformed record, planted in the DB) writes none of
// its messages, leaves the writer's cached conversation and cursors as they
// were, and the next append gets the next seq and cursor.
func TestAppendMessagesFailsWhole(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	a, b := chat.Address("messenger:a"), chat.Address("messenger:b")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, _, err := s.CreateConversation(ctx, chat.Conversation{ID: "g1", Kind: chat.Group, Members: []chat.Address{a, b}, Creator: a, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	msg := func(id string) chat.Message {
		return chat.Message{ConversationID: "g1", Sender: a, ClientID: id, Kind: chat.KindText, Body: id, SentAt: t0}
	}
	first, err := s.AppendMessage(ctx, msg("ok"))
	if err != nil {
		t.Fatal(err)
	}
	// Planted as if the writer had written it: in its batch and in its
	// filters of recent records (recent.go), but not in its index of
	// unflushed ones, so the lookup reads it from an sstable once flushed
	// (idem.go).
	err = s.submit(ctx, func(w *writer) error {
		k := idemKey(nil, "g1", a, "bad")
		w.b.set(k, []byte{1, 2, 3})
		w.recent.add(w.idem.hash(k), w.gen)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessages(ctx, []chat.Message{msg("new1"), msg("new2"), msg("bad")}); err == nil {
		t.Fatal("a batch with a malformed idempotency record succeeded")
	}
	c, err := s.Conversation(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if c.LastSeq != 1 {
		t.Fatalf("LastSeq %d after the failed batch, want 1", c.LastSeq)
	}
	next, err := s.AppendMessage(ctx, msg("new1"))
	if err != nil {
		t.Fatal(err)
	}
	if !next.Created || next.Message.Seq != 2 || next.Cursor != first.Cursor+1 {
		t.Fatalf("after the failed batch: created %v seq %d cursor %d, want a new seq 2 at cursor %d", next.Created, next.Message.Seq, next.Cursor, first.Cursor+1)
	}
	ups, err := s.Updates(ctx, b, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, u := range ups {
		if u.Type == chat.UpdateMessage {
			seqs = append(seqs, u.Message.Seq)
		}
	}
	if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
		t.Fatalf("b's stream has messages %v, want [1 2]", seqs)
	}
}
