package httpapi

import (
	"bytes"
	"io"
	"net/http"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// setLimits is PUT /v1/admin/apps/{app}/limits: any subset of the limits,
// each a whole number from 1 to a sane bound; the others stay.
func (h *Handler) setLimits(w http.ResponseWriter, r *http.Request) error {
	var req chat.LimitChange
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	a, err := h.svc.SetLimits(r.Context(), r.PathValue("app"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, appBody{a})
	return nil
}

// freeze and unfreeze are POST /v1/admin/apps/{app}/freeze|unfreeze. They
// take no body (an empty one, or {}).
func (h *Handler) freeze(w http.ResponseWriter, r *http.Request) error {
	return h.setFrozen(w, r, true)
}

func (h *Handler) unfreeze(w http.ResponseWriter, r *http.Request) error {
	return h.setFrozen(w, r, false)
}

func (h *Handler) setFrozen(w http.ResponseWriter, r *http.Request, frozen bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		return invalid("the request body could not be read: %v", err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(b))
		var req struct{}
		if err := h.decodeBody(w, r, &req); err != nil {
			return err
		}
	}
	a, err := h.svc.SetFrozen(r.Context(), r.PathValue("app"), frozen)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, appBody{a})
	return nil
}
