package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// DefaultTokenTTL is the lifetime of a minted token when ttl_seconds is
// absent.
const DefaultTokenTTL = time.Hour

type appBody struct {
	App chat.App `json:"app"`
}

type appsBody struct {
	Apps []chat.App `json:"apps"`
}

type conversationBody struct {
	Conversation chat.Conversation `json:"conversation"`
}

// blockBody answers both block calls: the address as the caller named it
// and whether it is blocked now.
type blockBody struct {
	Address string `json:"address"`
	Blocked bool   `json:"blocked"`
}

// Admin

func (h *Handler) createApp(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	a, err := h.svc.CreateApp(r.Context(), req.ID, req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, appBody{a})
	return nil
}

func (h *Handler) listApps(w http.ResponseWriter, r *http.Request) error {
	list, err := h.svc.Apps(r.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []chat.App{}
	}
	writeJSON(w, http.StatusOK, appsBody{list})
	return nil
}

func (h *Handler) setInterop(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Apps []string `json:"apps"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	a, err := h.svc.SetInterop(r.Context(), r.PathValue("app"), req.Apps)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, appBody{a})
	return nil
}

func (h *Handler) mintToken(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		User       string `json:"user"`
		TTLSeconds *int64 `json:"ttl_seconds"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	ttl := DefaultTokenTTL
	if req.TTLSeconds != nil {
		max := int64(auth.MaxTTL / time.Second)
		if *req.TTLSeconds < 1 || *req.TTLSeconds > max {
			return invalid("ttl_seconds must be between 1 and %d", max)
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	tok, err := h.svc.MintToken(r.Context(), r.PathValue("app"), req.User, ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		Token string `json:"token"`
	}{tok})
	return nil
}

// Conversations

func (h *Handler) createConversation(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	var req struct {
		Members []string `json:"members"`
		Title   string   `json:"title"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	c, created, err := h.svc.CreateConversation(r.Context(), caller, req.Members, req.Title)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, conversationBody{c})
	return nil
}

func (h *Handler) listConversations(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	q := r.URL.Query()
	limit, err := intParam(q, "limit", 1, chat.MaxListLimit)
	if err != nil {
		return err
	}
	list, next, err := h.svc.Conversations(r.Context(), caller, q.Get("before"), int(limit))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Conversations []chat.Summary `json:"conversations"`
		Next          string         `json:"next"`
	}{list, next})
	return nil
}

func (h *Handler) getConversation(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	c, err := h.svc.Conversation(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, conversationBody{c})
	return nil
}

func (h *Handler) updateMembers(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	var req struct {
		Add    []string `json:"add"`
		Remove []string `json:"remove"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	c, err := h.svc.UpdateMembers(r.Context(), caller, r.PathValue("id"), req.Add, req.Remove)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, conversationBody{c})
	return nil
}

// Messages

// sendBody is the body of a send.
type sendBody struct {
	ClientID string          `json:"client_id"`
	Body     string          `json:"body"`
	Meta     json.RawMessage `json:"meta"`
}

func (b *sendBody) decodeWire(s string) bool {
	var err error
	known := true
	perr := wirejson.Fields(s, func(k, v string) bool {
		switch k {
		case "client_id":
			b.ClientID, err = wirejson.String(v)
		case "body":
			b.Body, err = wirejson.String(v)
		case "meta":
			b.Meta = json.RawMessage(v)
		default:
			known = false
		}
		return err == nil && known
	})
	if perr != nil || err != nil || !known {
		*b = sendBody{}
		return false
	}
	return true
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	var req sendBody
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	// A send runs to its end even if its client goes away (within the
	// Service's deadlines): the retry with the same client id then gets
	// the stored result. Without the request's cancellation, the store and
	// bus deadlines below are the cheap shared ones (package deadline).
	sent, err := h.svc.Send(context.WithoutCancel(r.Context()), caller, messaging.SendRequest{
		ConversationID: r.PathValue("id"),
		ClientID:       req.ClientID,
		Body:           req.Body,
		Meta:           req.Meta,
	})
	if err != nil {
		return err
	}
	if !sent.Created {
		writeJSON(w, http.StatusOK, sent)
		return nil
	}
	// The message's JSON is already made (for the published updates):
	// the answer wraps it rather than encoding the message again.
	buf := getBuf()
	defer putBuf(buf)
	b := append(buf.AvailableBuffer(), `{"message":`...)
	b = append(b, sent.MessageJSON...)
	b = append(b, `,"cursor":`...)
	b = strconv.AppendInt(b, sent.Cursor, 10)
	b = append(b, "}\n"...)
	writeRaw(w, http.StatusCreated, b)
	return nil
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	q := r.URL.Query()
	before, err := intParam(q, "before", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, chat.MaxHistoryLimit)
	if err != nil {
		return err
	}
	list, err := h.svc.History(r.Context(), caller, r.PathValue("id"), before, int(limit))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Messages []chat.Message `json:"messages"`
	}{list})
	return nil
}

func (h *Handler) markRead(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	var req struct {
		Seq int64 `json:"seq"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	readSeq, err := h.svc.MarkRead(r.Context(), caller, r.PathValue("id"), req.Seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ReadSeq int64 `json:"read_seq"`
	}{readSeq})
	return nil
}

// Blocks

func (h *Handler) block(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	var req struct {
		Address string `json:"address"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := h.svc.Block(r.Context(), caller, req.Address); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, blockBody{req.Address, true})
	return nil
}

func (h *Handler) unblock(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	addr := r.PathValue("address")
	if err := h.svc.Unblock(r.Context(), caller, addr); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, blockBody{addr, false})
	return nil
}

// The stream

func (h *Handler) sync(w http.ResponseWriter, r *http.Request, caller chat.Address) error {
	q := r.URL.Query()
	after, err := intParam(q, "after", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, chat.MaxSyncLimit)
	if err != nil {
		return err
	}
	updates, cursor, more, err := h.svc.Sync(r.Context(), caller, after, int(limit))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Updates []chat.Update `json:"updates"`
		Cursor  int64         `json:"cursor"`
		More    bool          `json:"more"`
	}{updates, cursor, more})
	return nil
}
