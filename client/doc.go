// Package client is the Go client of the Switchboard API: the REST calls of
// a user (Client) and of an operator (Admin), and a live stream over the
// WebSocket (Stream) with an outbox that never loses or doubles a message.
//
// A user's client:
//
//	c := client.New("http://127.0.0.1:8080", token, nil)
//	conv, _, err := c.CreateConversation(ctx, []string{"instagram:bob"}, "")
//	if err != nil {
//		var e *client.Error
//		if errors.As(err, &e) && e.Code == "permission_denied" { ... }
//	}
//
//	s, err := c.Connect(ctx, 0) // after cursor 0: the whole stream
//	defer s.Close()
//	out, err := s.Send(ctx, conv.ID, "hi bob", nil)
//	go func() {
//		sent, err := out.Wait(ctx) // acknowledged: stored durably
//		...
//	}()
//	for ev := range s.Events() {
//		switch {
//		case ev.Update != nil: // in cursor order, each once
//		case ev.Typing != nil:
//		case ev.State != nil: // connecting, connected, live, closed
//		}
//	}
//
// The stream reconnects by itself (exponential backoff with jitter) and
// resumes after the last cursor it delivered, so the application sees every
// update once, in order, across disconnects. Each message in the outbox has
// a random client_id and is sent again with that same id after every
// reconnect until the server acknowledges it; the server stores a repeated
// client_id once and answers the first result.
//
// The operator's client mints tokens and manages apps:
//
//	a := client.NewAdmin("http://127.0.0.1:8080", adminToken, nil)
//	app, err := a.CreateApp(ctx, "messenger", "Messenger")
//	tok, err := a.Token(ctx, "messenger", "alice", time.Hour)
package client
