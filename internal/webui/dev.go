package webui

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/httpapi"
	"github.com/switchboard-chat/switchboard/internal/messaging"
)

// maxDevBody bounds a sign-in request; the two ids fit in far less.
const maxDevBody = 4 << 10

// MountDev registers the development sign-in on m: GET /v1/dev answers
// {"dev":true} (the page asks it to know whether to offer the sign-in
// form), and POST /v1/dev/login {"app","user"} answers {"token"} (see
// messaging.Service.DevLogin). Mount it only when the server runs with
// --dev: without it both paths answer the API's JSON 404.
func MountDev(m Mounter, svc *messaging.Service, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m.Handle("GET /v1/dev", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"dev": true})
	}))
	m.Handle("POST /v1/dev/login", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			App  string `json:"app"`
			User string `json:"user"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDevBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, chat.PayloadTooLarge, "the request body is over 4096 bytes")
				return
			}
			writeError(w, http.StatusBadRequest, chat.InvalidArgument, `send a JSON object {"app":"<app id>","user":"<user id>"}: `+err.Error())
			return
		}
		if _, err := dec.Token(); err != io.EOF {
			writeError(w, http.StatusBadRequest, chat.InvalidArgument, "the request body must hold one JSON object and nothing after it")
			return
		}
		tok, err := svc.DevLogin(r.Context(), req.App, req.User)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				log.Error("dev sign-in", "app", req.App, "user", req.User, "err", err)
				ce = &chat.Error{Code: chat.Internal, Message: "the sign-in failed inside the server; see its log"}
			}
			writeError(w, httpapi.Status(ce.Code), ce.Code, ce.Message)
			return
		}
		log.Info("dev sign-in", "app", req.App, "user", req.User)
		writeJSON(w, http.StatusOK, map[string]string{"token": tok})
	}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]*chat.Error{"error": {Code: code, Message: msg}})
}
