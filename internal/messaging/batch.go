package messaging

import (
	"context"
	"time"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// SendResult is the answer to one send of SendBatch: Sent, or Err.
type SendResult struct {
	Sent Sent
	Err  error
}

// SendBatch sends rs, one client's pipelined sends to one conversation, as
// Send would one after another: each gets its own answer (an invalid one
// fails alone), they are stored in the order given, and each is charged to
// the send rates. What it saves is per call: one admission slot, one check
// of membership and reach, one store write (when the store is a
// store.BatchAppender) and one bus publish for the lot. Every rs must have
// the ConversationID of rs[0].
func (s *Service) SendBatch(ctx context.Context, caller chat.Address, rs []SendRequest) []SendResult {
	res := make([]SendResult, len(rs))
	if len(rs) == 0 {
		return res
	}
	if s.obs != nil {
		start := time.Now()
		defer func() {
			took := time.Since(start)
			for _, r := range res {
				s.obs.ObserveSend(caller.App(), took, r.Err)
			}
		}()
	}
	failAll := func(err error) []SendResult {
		for i := range res {
			if res[i].Err == nil {
				res[i].Err = err
			}
		}
		return res
	}
	conv := rs[0].ConversationID
	release, err := s.admit(ctx, caller, admission.Send)
	if err != nil {
		return failAll(err)
	}
	defer release()

	// Charge and validate each, as Send does, before anything is stored.
	var validOf [16]int // on the stack for most batches
	valid := validOf[:0]
	for i := range rs {
		if i > 0 {
			if err := s.charge(ctx, caller); err != nil {
				res[i].Err = err
				continue
			}
		}
		if rs[i].ConversationID != conv {
			res[i].Err = chat.Errorf(chat.InvalidArgument, "a batch of sends must go to one conversation")
			continue
		}
		if err := ValidateSend(&rs[i]); err != nil {
			res[i].Err = err
			continue
		}
		valid = append(valid, i)
	}
	if len(valid) == 0 {
		return res
	}
	c, err := s.cachedMember(ctx, caller, conv)
	if err != nil {
		return failAll(err)
	}
	if err := s.mayReach(ctx, caller, &c); err != nil {
		return failAll(err)
	}

	now := s.clock()
	ms := make([]chat.Message, len(valid))
	for j, i := range valid {
		r := &rs[i]
		ms[j] = chat.Message{
			ConversationID: conv, Sender: caller, ClientID: r.ClientID,
			Kind: chat.KindText, Body: r.Body, Meta: r.Meta, SentAt: now,
		}
	}
	appended, errs := s.appendAll(ctx, ms)

	// The messages' JSON goes into one buffer for the batch, each a slice
	// capped at its end, so that nothing appended to one reaches the next.
	n, size := 0, 0
	for j := range valid {
		if a := &appended[j]; errs[j] == nil && a.Created {
			n += len(a.Deliveries)
			size += messageJSONSize(&a.Message)
		}
	}
	events := make([]bus.Event, 0, n)
	slab := make([]byte, 0, size)
	for j, i := range valid {
		if errs[j] != nil {
			res[i].Err = storeErr(errs[j], "conversation "+conv)
			continue
		}
		a := &appended[j]
		if !a.Created {
			res[i].Sent = Sent{Message: a.Message, Cursor: a.Cursor}
			continue
		}
		start := len(slab)
		slab = wirejson.AppendMessage(slab, &a.Message)
		mj := slab[start:len(slab):len(slab)]
		res[i].Sent = Sent{Message: a.Message, Cursor: a.Cursor, Created: true, MessageJSON: mj}
		// The updates point at the answer's copy, which nobody changes:
		// no copy of the message per send.
		events = appendMessageEvents(events, a.Deliveries, &res[i].Sent.Message, mj)
	}
	s.publishEvents(ctx, events)
	return res
}

// charge takes one more message from caller's send rates.
func (s *Service) charge(ctx context.Context, caller chat.Address) error {
	if s.adm == nil {
		return nil
	}
	a, err := s.app(ctx, caller.App())
	if err != nil {
		return err
	}
	return s.adm.Charge(a, caller)
}

// appendAll appends ms (one sender, one conversation) in one write when the
// store can, else one by one; errs[i] is ms[i]'s error.
func (s *Service) appendAll(ctx context.Context, ms []chat.Message) ([]store.Appended, []error) {
	errs := make([]error, len(ms))
	if b, ok := s.raw.(store.BatchAppender); ok {
		ctx, cancel := s.st.ctx(ctx)
		defer cancel()
		res, err := b.AppendMessages(ctx, ms)
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
			return make([]store.Appended, len(ms)), errs
		}
		return res, errs
	}
	res := make([]store.Appended, len(ms))
	for i, m := range ms {
		res[i], errs[i] = s.st.AppendMessage(ctx, m)
	}
	return res, errs
}

// messageJSONSize is the length of m's JSON when its strings need no
// escapes: the field names and punctuation, the longest seq and sent_at,
// "null" meta, and the strings themselves. Escapes make it longer, and the
// buffer then grows.
func messageJSONSize(m *chat.Message) int {
	return 160 + len(m.ConversationID) + len(m.Sender) + len(m.ClientID) + len(m.Kind) + len(m.Body) + len(m.Meta)
}
