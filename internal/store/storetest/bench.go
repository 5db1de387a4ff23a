package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// RunBenchmarks measures the store calls on a message's path: the append,
// and the reads that sync, history and the conversation list make. open
// returns a fresh, empty store; the benchmark closes it. Prefills are
// small, so that backends that sync every write stay quick.
func RunBenchmarks(b *testing.B, open func(b *testing.B) store.Store) {
	fresh := func(b *testing.B) store.Store {
		s := open(b)
		b.Cleanup(func() {
			if err := s.Close(); err != nil {
				b.Errorf("Close: %v", err)
			}
		})
		return s
	}
	members := func(n int) []chat.Address {
		list := make([]chat.Address, n)
		for i := range list {
			list[i] = addr(fmt.Sprintf("u%d", i))
		}
		return list
	}
	newConv := func(b *testing.B, s store.Store, id string, ms []chat.Address) {
		c := chat.Conversation{ID: id, Kind: chat.Group, Members: ms, Creator: ms[0], CreatedAt: base, UpdatedAt: base}
		if _, _, _, err := s.CreateConversation(b.Context(), c); err != nil {
			b.Fatalf("CreateConversation: %v", err)
		}
	}
	var clientIDs atomic.Int64
	// appendOne may run on RunParallel's goroutines, so it reports
	// instead of stopping the benchmark.
	appendOne := func(b *testing.B, s store.Store, conv string, from chat.Address) bool {
		n := clientIDs.Add(1)
		_, err := s.AppendMessage(b.Context(), chat.Message{
			ConversationID: conv, Sender: from, ClientID: fmt.Sprintf("c-%d", n), Kind: chat.KindText,
			Body: "a message of a typical length, some forty bytes", Meta: []byte(`{}`),
			SentAt: base.Add(time.Duration(n) * time.Millisecond),
		})
		if err != nil {
			b.Errorf("AppendMessage: %v", err)
			return false
		}
		return true
	}

	for _, n := range []int{2, 16} {
		b.Run(fmt.Sprintf("AppendMessage/members=%d", n), func(b *testing.B) {
			s := fresh(b)
			ms := members(n)
			newConv(b, s, "g1", ms)
			b.ReportAllocs()
			for b.Loop() {
				if !appendOne(b, s, "g1", ms[0]) {
					return
				}
			}
		})
	}
	b.Run("AppendMessage/parallel/conversations=8", func(b *testing.B) {
		s := fresh(b)
		ms := members(2)
		for i := range 8 {
			newConv(b, s, fmt.Sprintf("g%d", i), ms)
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			conv := fmt.Sprintf("g%d", next.Add(1)%8)
			for pb.Next() {
				if !appendOne(b, s, conv, ms[0]) {
					return
				}
			}
		})
	})

	const prefill = 200
	filled := func(b *testing.B) (store.Store, chat.Address) {
		s := fresh(b)
		ms := members(2)
		newConv(b, s, "g1", ms)
		for range prefill {
			if !appendOne(b, s, "g1", ms[0]) {
				b.FailNow()
			}
		}
		return s, ms[1]
	}
	b.Run("Updates/limit=100", func(b *testing.B) {
		s, user := filled(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			list, err := s.Updates(b.Context(), user, int64(i%(prefill-100)), 100)
			if err != nil || len(list) != 100 {
				b.Fatalf("Updates: %d, %v", len(list), err)
			}
			i++
		}
	})
	b.Run("Messages/limit=50", func(b *testing.B) {
		s, _ := filled(b)
		b.ReportAllocs()
		for b.Loop() {
			list, err := s.Messages(b.Context(), "g1", 0, 50)
			if err != nil || len(list) != 50 {
				b.Fatalf("Messages: %d, %v", len(list), err)
			}
		}
	})
	b.Run("Conversations/limit=50", func(b *testing.B) {
		s := fresh(b)
		ms := members(2)
		for i := range 100 {
			newConv(b, s, fmt.Sprintf("g%03d", i), ms)
		}
		b.ReportAllocs()
		for b.Loop() {
			list, _, err := s.Conversations(b.Context(), ms[0], nil, 50)
			if err != nil || len(list) != 50 {
				b.Fatalf("Conversations: %d, %v", len(list), err)
			}
		}
	})
}
