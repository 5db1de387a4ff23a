package messaging

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

type sendRecord struct {
	app  string
	took time.Duration
	code string // "" on success
}

type recordingObserver struct {
	mu    sync.Mutex
	sends []sendRecord
}

func (o *recordingObserver) ObserveSend(app string, took time.Duration, err error) {
	r := sendRecord{app: app, took: took}
	if err != nil {
		r.code = chat.ErrorCode(err)
	}
	o.mu.Lock()
	o.sends = append(o.sends, r)
	o.mu.Unlock()
}

func TestObserverSeesEverySend(t *testing.T) {
	ctx := context.Background()
	obs := &recordingObserver{}
	st := memstore.New()
	s := New(Config{Store: st, Observer: obs})
	if _, err := s.DevLogin(ctx, "messenger", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DevLogin(ctx, "instagram", "bob"); err != nil {
		t.Fatal(err)
	}
	c, _, err := s.CreateConversation(ctx, "messenger:alice", []string{"instagram:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, "messenger:alice", SendRequest{ConversationID: c.ID, ClientID: "c1", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, "instagram:bob", SendRequest{ConversationID: c.ID, ClientID: "c1", Body: ""}); err == nil {
		t.Fatal("an empty body was accepted")
	}
	st.Close()
	if _, err := s.Send(ctx, "messenger:alice", SendRequest{ConversationID: c.ID, ClientID: "c2", Body: "there?"}); err == nil {
		t.Fatal("a send to a closed store succeeded")
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := []sendRecord{{app: "messenger"}, {app: "instagram", code: chat.InvalidArgument}, {app: "messenger", code: chat.Unavailable}}
	if len(obs.sends) != len(want) {
		t.Fatalf("observed %+v, want %d sends", obs.sends, len(want))
	}
	for i, w := range want {
		got := obs.sends[i]
		if got.app != w.app || got.code != w.code || got.took <= 0 {
			t.Errorf("send %d observed as %+v, want app %s, code %q and a positive duration", i, got, w.app, w.code)
		}
	}
}
