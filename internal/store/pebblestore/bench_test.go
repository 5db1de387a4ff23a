package pebblestore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/cputime"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/store/storetest"
)

// BenchmarkAppend measures durable appends with 1, 8 and 64 concurrent
// appenders, each sending to its own direct conversation of two members.
func BenchmarkAppend(b *testing.B) {
	for _, senders := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			benchAppend(b, senders)
		})
	}
}

func benchAppend(b *testing.B, senders int) {
	s := openTest(b, b.TempDir())
	defer s.Close()
	ctx := context.Background()
	convs := make([]chat.Conversation, senders)
	for i := range convs {
		me, peer := chat.NewAddress("bench", fmt.Sprint("s", i)), chat.NewAddress("bench", fmt.Sprint("p", i))
		c := chat.Conversation{ID: chat.DirectID(me, peer), Kind: chat.Direct, Members: []chat.Address{me, peer}, CreatedAt: t0}
		if _, _, _, err := s.CreateConversation(ctx, c); err != nil {
			b.Fatal(err)
		}
		convs[i] = c
	}
	body := "a message of a typical length, some sixty bytes or so......"
	meta := []byte(`{}`)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cputime.Self()
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			c := convs[i]
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				_, err := s.AppendMessage(ctx, chat.Message{
					ConversationID: c.ID, Sender: c.Members[0], ClientID: fmt.Sprint("c", n),
					Kind: chat.KindText, Body: body, Meta: meta, SentAt: t0.Add(time.Duration(n)),
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cputime.Self()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	// CPU time per append tells cost apart from the wait for other
	// processes on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkAppendGroup measures durable appends by 64 concurrent senders to
// one group, where each message goes to every member's stream.
func BenchmarkAppendGroup(b *testing.B) {
	for _, members := range []int{16, 256} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			s := openTest(b, b.TempDir())
			defer s.Close()
			ctx := context.Background()
			list := make([]chat.Address, members)
			for i := range list {
				list[i] = chat.NewAddress("bench", fmt.Sprint("m", i))
			}
			if _, _, _, err := s.CreateConversation(ctx, chat.Conversation{ID: "g", Kind: chat.Group, Members: list, Creator: list[0], CreatedAt: t0}); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cputime.Self()
			var wg sync.WaitGroup
			for i := range 64 {
				wg.Go(func() {
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						_, err := s.AppendMessage(ctx, chat.Message{
							ConversationID: "g", Sender: list[i%members], ClientID: fmt.Sprint("c", n),
							Kind: chat.KindText, Body: "hello, group", SentAt: t0.Add(time.Duration(n)),
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed, cpu := time.Since(start), cputime.Self()-cpu0
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkStore runs the benchmarks shared by every backend.
func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store { return openTest(b, b.TempDir()) })
}
