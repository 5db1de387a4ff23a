package messaging

import (
	"context"
	"slices"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/bus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// parseAddresses validates and deduplicates a list of addresses.
func parseAddresses(field string, list []string) ([]chat.Address, error) {
	out := make([]chat.Address, 0, len(list))
	for _, s := range list {
		a, err := chat.ParseAddress(s)
		if err != nil {
			return nil, chat.Errorf(chat.InvalidArgument, "%s: %s", field, err.(*chat.Error).Message)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// mayContact checks that from and to may exchange messages: to's app exists,
// both apps allow each other, and neither blocked the other (when
// checkBlocks).
func (s *Service) mayContact(ctx context.Context, from, to chat.Address, checkBlocks bool) error {
	fromApp, err := s.app(ctx, from.App())
	if err != nil {
		return err
	}
	toApp, err := s.app(ctx, to.App())
	if err != nil {
		return err
	}
	if !toApp.Allows(fromApp.ID) {
		return chat.Errorf(chat.PermissionDenied, "%s does not allow messages from %s", toApp.ID, fromApp.ID)
	}
	if !fromApp.Allows(toApp.ID) {
		return chat.Errorf(chat.PermissionDenied, "%s does not allow messages to %s", fromApp.ID, toApp.ID)
	}
	if !checkBlocks {
		return nil
	}
	if b, err := s.blocked(ctx, to, from); err != nil {
		return err
	} else if b {
		return chat.Errorf(chat.PermissionDenied, "%s does not accept messages from you", to)
	}
	if b, err := s.blocked(ctx, from, to); err != nil {
		return err
	} else if b {
		return chat.Errorf(chat.PermissionDenied, "you have blocked %s; unblock them first", to)
	}
	return nil
}

// CreateConversation starts a conversation between caller and members. One
// other member and no title make a direct conversation, which is returned
// with created = false if it exists; anything else makes a group.
func (s *Service) CreateConversation(ctx context.Context, caller chat.Address, members []string, title string) (chat.Conversation, bool, error) {
	release, err := s.admit(ctx, caller, admission.Write)
	if err != nil {
		return chat.Conversation{}, false, err
	}
	defer release()
	others, err := parseAddresses("members", members)
	if err != nil {
		return chat.Conversation{}, false, err
	}
	others = slices.DeleteFunc(others, func(a chat.Address) bool { return a == caller })
	if len(others) == 0 {
		return chat.Conversation{}, false, chat.Errorf(chat.InvalidArgument, "members must name at least one other user")
	}
	if len(others)+1 > chat.MaxGroupMembers {
		return chat.Conversation{}, false, chat.Errorf(chat.InvalidArgument, "a group has at most %d members, caller included", chat.MaxGroupMembers)
	}
	if len(title) > chat.MaxTitleBytes || !utf8.ValidString(title) {
		return chat.Conversation{}, false, chat.Errorf(chat.InvalidArgument, "title must be valid UTF-8 of at most %d bytes", chat.MaxTitleBytes)
	}
	for _, m := range others {
		if err := s.mayContact(ctx, caller, m, true); err != nil {
			return chat.Conversation{}, false, err
		}
	}
	now := s.clock()
	c := chat.Conversation{
		Kind:      chat.Group,
		Title:     title,
		Members:   append([]chat.Address{caller}, others...),
		Creator:   caller,
		CreatedAt: now,
		UpdatedAt: now,
	}
	if len(others) == 1 && title == "" {
		c.Kind = chat.Direct
		c.ID = chat.DirectID(caller, others[0])
		c.Creator = ""
	} else {
		c.ID = randomID("g")
	}
	c, deliveries, created, err := s.st.CreateConversation(ctx, c)
	if err != nil {
		return chat.Conversation{}, false, storeErr(err, "conversation")
	}
	s.publish(ctx, deliveries, chat.Update{Type: chat.UpdateConversation, Conversation: &c})
	return c, created, nil
}

// member returns the conversation if caller is in it. Not existing and not
// being a member are the same not_found, so that existence is not revealed.
func (s *Service) member(ctx context.Context, caller chat.Address, id string) (chat.Conversation, error) {
	c, err := s.st.Conversation(ctx, id)
	if err == nil && !c.HasMember(caller) {
		err = store.ErrNotFound
	}
	if err != nil {
		return chat.Conversation{}, storeErr(err, "conversation "+id)
	}
	return c, nil
}

// Conversation returns one conversation the caller is a member of.
func (s *Service) Conversation(ctx context.Context, caller chat.Address, id string) (chat.Conversation, error) {
	release, err := s.admit(ctx, caller, admission.Read)
	if err != nil {
		return chat.Conversation{}, err
	}
	defer release()
	return s.member(ctx, caller, id)
}

// Conversations lists the caller's conversations, latest activity first.
// token is the opaque position returned as next by the previous page.
func (s *Service) Conversations(ctx context.Context, caller chat.Address, token string, limit int) ([]chat.Summary, string, error) {
	release, err := s.admit(ctx, caller, admission.Read)
	if err != nil {
		return nil, "", err
	}
	defer release()
	if limit == 0 {
		limit = chat.DefaultListLimit
	}
	if limit < 1 || limit > chat.MaxListLimit {
		return nil, "", chat.Errorf(chat.InvalidArgument, "limit must be between 1 and %d", chat.MaxListLimit)
	}
	page, err := store.ParsePage(token)
	if err != nil {
		return nil, "", chat.Errorf(chat.InvalidArgument, "before: %v; pass the next token of the previous page, or nothing for the first page", err)
	}
	list, next, err := s.st.Conversations(ctx, caller, page, limit)
	if err != nil {
		return nil, "", storeErr(err, "conversations")
	}
	if list == nil {
		list = []chat.Summary{}
	}
	return list, next.Token(), nil
}

// UpdateMembers adds and removes members of a group. Any member may add
// (interop and blocks apply); members may remove themselves; the creator may
// remove anyone.
func (s *Service) UpdateMembers(ctx context.Context, caller chat.Address, id string, add, remove []string) (chat.Conversation, error) {
	release, err := s.admit(ctx, caller, admission.Write)
	if err != nil {
		return chat.Conversation{}, err
	}
	defer release()
	adds, err := parseAddresses("add", add)
	if err != nil {
		return chat.Conversation{}, err
	}
	removes, err := parseAddresses("remove", remove)
	if err != nil {
		return chat.Conversation{}, err
	}
	if len(adds) == 0 && len(removes) == 0 {
		return chat.Conversation{}, chat.Errorf(chat.InvalidArgument, "name at least one address in add or remove")
	}
	for _, a := range adds {
		if slices.Contains(removes, a) {
			return chat.Conversation{}, chat.Errorf(chat.InvalidArgument, "%s is both added and removed", a)
		}
	}
	if _, err := s.member(ctx, caller, id); err != nil {
		return chat.Conversation{}, err
	}
	for _, a := range adds {
		if a == caller {
			continue
		}
		if err := s.mayContact(ctx, caller, a, true); err != nil {
			return chat.Conversation{}, err
		}
	}
	c, deliveries, err := s.st.UpdateMembers(ctx, id, s.clock(), func(c *chat.Conversation) error {
		if !c.HasMember(caller) {
			return chat.Errorf(chat.NotFound, "conversation %s not found", id)
		}
		if c.Kind != chat.Group {
			return chat.Errorf(chat.InvalidArgument, "members can be changed only in a group conversation")
		}
		for _, r := range removes {
			if !c.HasMember(r) {
				return chat.Errorf(chat.InvalidArgument, "%s is not a member", r)
			}
			if r != caller && c.Creator != caller {
				return chat.Errorf(chat.PermissionDenied, "only the group's creator may remove other members")
			}
		}
		members := slices.DeleteFunc(slices.Clone(c.Members), func(m chat.Address) bool { return slices.Contains(removes, m) })
		for _, a := range adds {
			if !slices.Contains(members, a) {
				members = append(members, a)
			}
		}
		if len(members) > chat.MaxGroupMembers {
			return chat.Errorf(chat.InvalidArgument, "a group has at most %d members", chat.MaxGroupMembers)
		}
		c.Members = members
		return nil
	})
	if err != nil {
		return chat.Conversation{}, storeErr(err, "conversation "+id)
	}
	s.convs.drop(id)
	s.publish(ctx, deliveries, chat.Update{Type: chat.UpdateConversation, Conversation: &c})
	return c, nil
}

// Block stops addr from messaging the caller in direct conversations, and
// from starting conversations with them.
func (s *Service) Block(ctx context.Context, caller chat.Address, addr string) error {
	release, err := s.admit(ctx, caller, admission.Write)
	if err != nil {
		return err
	}
	defer release()
	a, err := chat.ParseAddress(addr)
	if err != nil {
		return err
	}
	if a == caller {
		return chat.Errorf(chat.InvalidArgument, "you cannot block yourself")
	}
	if _, err := s.app(ctx, a.App()); err != nil {
		return err
	}
	defer s.blocks.drop([2]chat.Address{caller, a})
	return storeErr(s.st.Block(ctx, caller, a), "block")
}

// Unblock lifts a block; lifting one that does not exist is not an error.
func (s *Service) Unblock(ctx context.Context, caller chat.Address, addr string) error {
	release, err := s.admit(ctx, caller, admission.Write)
	if err != nil {
		return err
	}
	defer release()
	a, err := chat.ParseAddress(addr)
	if err != nil {
		return err
	}
	defer s.blocks.drop([2]chat.Address{caller, a})
	return storeErr(s.st.Unblock(ctx, caller, a), "block")
}

// Typing tells the conversation's other members, those connected now, that
// the caller is typing. Nothing is stored.
func (s *Service) Typing(ctx context.Context, caller chat.Address, id string) error {
	release, err := s.admit(ctx, caller, admission.Typing)
	if err != nil {
		return err
	}
	defer release()
	c, err := s.cachedMember(ctx, caller, id)
	if err != nil {
		return err
	}
	if s.bus == nil {
		return nil
	}
	events := make([]bus.Event, 0, len(c.Members)-1)
	for _, m := range c.Members {
		if m != caller {
			events = append(events, bus.Event{User: m, Typing: &bus.Typing{ConversationID: id, From: caller}})
		}
	}
	return s.bus.Publish(ctx, events...)
}
