package ws_test

import (
	"testing"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// TestReplayNotShed: while the node sheds reads (its in-flight calls past
// three quarters of the bound), a new session still gets its backlog and
// ready. Shedding the replay would only close the socket, and its client
// would reconnect and replay again.
func TestReplayNotShed(t *testing.T) {
	adm := admission.New(admission.Config{MaxInFlight: 4})
	e := newEnv(t, envOpts{admission: adm})
	e.app("messenger")
	alice, bob := chat.Address("messenger:alice"), chat.Address("messenger:bob")
	conv := e.direct(alice, bob)
	for i := range 5 {
		e.send(alice, conv, "c"+string(rune('a'+i)), "hi")
	}

	// Hold three calls of another user in flight: reads are shed from three.
	app := chat.App{ID: "messenger"}
	for range 3 {
		release, err := adm.Admit(app, "messenger:carol", admission.Write)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
	}
	if _, err := adm.Admit(app, "messenger:carol", admission.Read); chat.ErrorCode(err) != chat.Unavailable {
		t.Fatalf("a read past three quarters of the bound was not shed: %v", err)
	}

	c := e.dial(e.token(bob), 0)
	ups, cursor := c.readUntilReady()
	checkOrder(t, ups, 1)
	if len(ups) != 6 || cursor != 6 {
		t.Fatalf("backlog of %d updates up to cursor %d, want the conversation and 5 messages (cursor 6)", len(ups), cursor)
	}
}
