package store

import (
	"testing"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

func TestCheckBatch(t *testing.T) {
	a, b := chat.Address("app:a"), chat.Address("app:b")
	m := func(conv string, from chat.Address) chat.Message {
		return chat.Message{ConversationID: conv, Sender: from}
	}
	for _, ok := range [][]chat.Message{nil, {m("c1", a)}, {m("c1", a), m("c1", a), m("c1", a)}} {
		if err := CheckBatch(ok); err != nil {
			t.Errorf("CheckBatch(%v): %v", ok, err)
		}
	}
	for _, bad := range [][]chat.Message{{m("c1", a), m("c2", a)}, {m("c1", a), m("c1", a), m("c1", b)}} {
		if err := CheckBatch(bad); err == nil {
			t.Errorf("CheckBatch(%v) accepted a batch that mixes conversations or senders", bad)
		}
	}
}
