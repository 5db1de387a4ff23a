package messaging

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// SendRequest is a message as a client hands it in.
type SendRequest struct {
	ConversationID string
	ClientID       string
	Body           string
	Meta           json.RawMessage
}

// Sent is the answer to a send.
type Sent struct {
	Message chat.Message `json:"message"`
	Cursor  int64        `json:"cursor"`
	// Created is false when the send repeated an earlier client id.
	Created bool `json:"-"`
	// MessageJSON is Message encoded as JSON (as json.Marshal writes it),
	// for an edge that answers with it; shared with the published events,
	// so read-only. Nil for a repeated client id.
	MessageJSON []byte `json:"-"`
}

var emptyMeta = json.RawMessage(`{}`)

// validMeta checks that meta is absent, null, or a JSON object of at most
// MaxMetaBytes once compacted, and returns it compacted.
func validMeta(meta json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(meta)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return emptyMeta, nil
	}
	if trimmed[0] != '{' {
		return nil, chat.Errorf(chat.InvalidArgument, "meta must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, chat.Errorf(chat.InvalidArgument, "meta is not valid JSON")
	}
	if buf.Len() > chat.MaxMetaBytes {
		return nil, chat.Errorf(chat.PayloadTooLarge, "meta is %d bytes; at most %d are allowed", buf.Len(), chat.MaxMetaBytes)
	}
	return buf.Bytes(), nil
}

// ValidateSend checks a send's fields without touching the store.
func ValidateSend(r *SendRequest) error {
	if len(r.ClientID) < 1 || len(r.ClientID) > chat.MaxClientIDBytes {
		return chat.Errorf(chat.InvalidArgument, "client_id is required, 1 to %d bytes", chat.MaxClientIDBytes)
	}
	if len(r.Body) > chat.MaxBodyBytes {
		return chat.Errorf(chat.PayloadTooLarge, "the message body is %d bytes; at most %d are allowed", len(r.Body), chat.MaxBodyBytes)
	}
	if r.Body == "" {
		return chat.Errorf(chat.InvalidArgument, "body must not be empty")
	}
	if !utf8.ValidString(r.Body) || !utf8.ValidString(r.ClientID) {
		return chat.Errorf(chat.InvalidArgument, "body and client_id must be valid UTF-8")
	}
	meta, err := validMeta(r.Meta)
	if err != nil {
		return err
	}
	r.Meta = meta
	return nil
}

// Send stores a message from caller and publishes it to every member. A
// repeated client id answers the first result with Created = false.
func (s *Service) Send(ctx context.Context, caller chat.Address, r SendRequest) (sent Sent, err error) {
	if s.obs != nil {
		start := time.Now()
		defer func() { s.obs.ObserveSend(caller.App(), time.Since(start), err) }()
	}
	release, err := s.admit(ctx, caller, admission.Send)
	if err != nil {
		return Sent{}, err
	}
	defer release()
	if err := ValidateSend(&r); err != nil {
		return Sent{}, err
	}
	c, err := s.cachedMember(ctx, caller, r.ConversationID)
	if err != nil {
		return Sent{}, err
	}
	if err := s.mayReach(ctx, caller, &c); err != nil {
		return Sent{}, err
	}
	res, err := s.st.AppendMessage(ctx, chat.Message{
		ConversationID: r.ConversationID,
		Sender:         caller,
		ClientID:       r.ClientID,
		Kind:           chat.KindText,
		Body:           r.Body,
		Meta:           r.Meta,
		SentAt:         s.clock(),
	})
	if err != nil {
		return Sent{}, storeErr(err, "conversation "+r.ConversationID)
	}
	if !res.Created {
		return Sent{Message: res.Message, Cursor: res.Cursor}, nil
	}
	// Encoded once, for the sender's answer and every recipient's frame.
	mj := wirejson.AppendMessage(make([]byte, 0, 256+len(res.Message.Body)+len(res.Message.Meta)), &res.Message)
	m := res.Message
	s.publishMessage(ctx, res.Deliveries, &m, mj)
	return Sent{Message: res.Message, Cursor: res.Cursor, Created: true, MessageJSON: mj}, nil
}

// mayReach checks that caller may send to every other member of c now:
// interop between the apps, and in a direct conversation no block either way.
func (s *Service) mayReach(ctx context.Context, caller chat.Address, c *chat.Conversation) error {
	direct := c.Kind == chat.Direct
	// The apps checked so far; a few at most, so a slice (on the stack)
	// rather than a map allocated per send.
	var buf [8]string
	seen := append(buf[:0], caller.App())
	for _, m := range c.Members {
		if m == caller || (!direct && slices.Contains(seen, m.App())) {
			continue
		}
		seen = append(seen, m.App())
		if err := s.mayContact(ctx, caller, m, direct); err != nil {
			return err
		}
	}
	return nil
}

// History returns up to limit messages with seq < before (0: from the
// newest), newest first.
func (s *Service) History(ctx context.Context, caller chat.Address, id string, before int64, limit int) ([]chat.Message, error) {
	release, err := s.admit(ctx, caller, admission.Read)
	if err != nil {
		return nil, err
	}
	defer release()
	if limit == 0 {
		limit = chat.DefaultHistory
	}
	if limit < 1 || limit > chat.MaxHistoryLimit {
		return nil, chat.Errorf(chat.InvalidArgument, "limit must be between 1 and %d", chat.MaxHistoryLimit)
	}
	if before < 0 {
		return nil, chat.Errorf(chat.InvalidArgument, "before must be a positive seq")
	}
	if _, err := s.member(ctx, caller, id); err != nil {
		return nil, err
	}
	list, err := s.st.Messages(ctx, id, before, limit)
	if err != nil {
		return nil, storeErr(err, "conversation "+id)
	}
	if list == nil {
		list = []chat.Message{}
	}
	return list, nil
}

// MarkRead moves the caller's read position forward to seq; it never moves
// back. Each move reaches every member's stream.
func (s *Service) MarkRead(ctx context.Context, caller chat.Address, id string, seq int64) (int64, error) {
	release, err := s.admit(ctx, caller, admission.Write)
	if err != nil {
		return 0, err
	}
	defer release()
	if seq < 1 {
		return 0, chat.Errorf(chat.InvalidArgument, "seq must be 1 or more")
	}
	c, err := s.member(ctx, caller, id)
	if err != nil {
		return 0, err
	}
	if seq > c.LastSeq {
		return 0, chat.Errorf(chat.InvalidArgument, "seq %d is past the conversation's last message (%d)", seq, c.LastSeq)
	}
	readSeq, deliveries, err := s.st.MarkRead(ctx, id, caller, seq)
	if err != nil {
		return 0, storeErr(err, "conversation "+id)
	}
	s.publish(ctx, deliveries, chat.Update{Type: chat.UpdateRead, ConversationID: id, Reader: caller, Seq: readSeq})
	return readSeq, nil
}

// Sync returns the caller's stream after the cursor after: the updates, the
// last cursor returned (after itself when none), and whether more follow.
func (s *Service) Sync(ctx context.Context, caller chat.Address, after int64, limit int) ([]chat.Update, int64, bool, error) {
	release, err := s.admit(ctx, caller, admission.Read)
	if err != nil {
		return nil, 0, false, err
	}
	defer release()
	return s.SessionSync(ctx, caller, after, limit)
}

// SessionSync is Sync for a live session's replay and gap backfill. The
// session was admitted when it connected, and its reads are not shed: a
// refused backfill can only end the session, and its client would then
// reconnect and replay more, adding load where shedding meant to remove it.
// The session's own outgoing queue bounds what it reads.
func (s *Service) SessionSync(ctx context.Context, caller chat.Address, after int64, limit int) ([]chat.Update, int64, bool, error) {
	if limit == 0 {
		limit = chat.DefaultSyncLimit
	}
	if limit < 1 || limit > chat.MaxSyncLimit {
		return nil, 0, false, chat.Errorf(chat.InvalidArgument, "limit must be between 1 and %d", chat.MaxSyncLimit)
	}
	if after < 0 {
		return nil, 0, false, chat.Errorf(chat.InvalidArgument, "after must be a cursor, 0 or more")
	}
	list, err := s.st.Updates(ctx, caller, after, limit+1)
	if err != nil {
		return nil, 0, false, storeErr(err, "updates")
	}
	more := len(list) > limit
	if more {
		list = list[:limit]
	}
	cursor := after
	if len(list) > 0 {
		cursor = list[len(list)-1].Cursor
	}
	if list == nil {
		list = []chat.Update{}
	}
	return list, cursor, more, nil
}

// Ping checks that the store can serve.
func (s *Service) Ping(ctx context.Context) error {
	return storeErr(s.st.Ping(ctx), "store")
}
