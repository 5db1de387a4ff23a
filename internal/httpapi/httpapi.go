// Package httpapi is the HTTP/JSON edge of Switchboard: it adapts each
// endpoint of API version 1 to a call of messaging.Service, which validates
// and authorises. This package only parses requests strictly, authenticates
// callers, and writes answers and errors in the API's shapes.
//
// Choices where the API contract is silent:
//   - Request bodies are limited to Config.MaxRequestBytes (64 KiB); over it
//     is 413 payload_too_large. Content-Type is not checked.
//   - A body must be exactly one JSON object in valid UTF-8. Unknown fields,
//     wrong types and trailing data are 400 invalid_argument naming the
//     field, so that a client's typo never passes silently.
//   - An unknown path is 404 not_found; a known path with the wrong method
//     is 405 with an Allow header and code invalid_argument.
//   - Internal errors are logged with a request id, which the answer's
//     message and X-Request-Id header carry; the client sees nothing else.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
)

// Config configures a Handler. Service is required; zero values elsewhere
// mean defaults.
type Config struct {
	Service *messaging.Service
	// AdminToken authorises the admin calls. Empty: every admin call is
	// refused.
	AdminToken string
	// Logger receives internal errors and recovered panics. Nil: discard.
	Logger *slog.Logger
	// MaxRequestBytes bounds each request body. Zero: 64 KiB.
	MaxRequestBytes int64
	// ReadyTimeout bounds the store check of GET /readyz. Zero: 2s.
	ReadyTimeout time.Duration
}

// Handler serves the API. It is safe for concurrent use.
type Handler struct {
	mux      *http.ServeMux
	svc      *messaging.Service
	admin    string
	log      *slog.Logger
	maxBody  int64
	readyTTL time.Duration

	reqPrefix string
	reqSeq    atomic.Uint64
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler with every endpoint registered.
func New(cfg Config) *Handler {
	h := &Handler{
		mux:      http.NewServeMux(),
		svc:      cfg.Service,
		admin:    cfg.AdminToken,
		log:      cfg.Logger,
		maxBody:  cfg.MaxRequestBytes,
		readyTTL: cfg.ReadyTimeout,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxRequestBytes
	}
	if h.readyTTL <= 0 {
		h.readyTTL = 2 * time.Second
	}
	p := make([]byte, 4)
	rand.Read(p)
	h.reqPrefix = hex.EncodeToString(p) + "-"
	h.routes()
	return h
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /healthz", h.healthz)
	m.HandleFunc("GET /readyz", h.readyz)

	m.HandleFunc("POST /v1/admin/apps", h.adminOnly(h.createApp))
	m.HandleFunc("GET /v1/admin/apps", h.adminOnly(h.listApps))
	m.HandleFunc("PUT /v1/admin/apps/{app}/interop", h.adminOnly(h.setInterop))
	m.HandleFunc("POST /v1/admin/apps/{app}/tokens", h.adminOnly(h.mintToken))
	m.HandleFunc("PUT /v1/admin/apps/{app}/limits", h.adminOnly(h.setLimits))
	m.HandleFunc("POST /v1/admin/apps/{app}/freeze", h.adminOnly(h.freeze))
	m.HandleFunc("POST /v1/admin/apps/{app}/unfreeze", h.adminOnly(h.unfreeze))
	m.HandleFunc("POST /v1/admin/backup", h.adminOnly(h.backup))

	m.HandleFunc("POST /v1/conversations", h.user(h.createConversation))
	m.HandleFunc("GET /v1/conversations", h.user(h.listConversations))
	m.HandleFunc("GET /v1/conversations/{id}", h.user(h.getConversation))
	m.HandleFunc("POST /v1/conversations/{id}/members", h.user(h.updateMembers))
	m.HandleFunc("POST /v1/conversations/{id}/messages", h.user(h.send))
	m.HandleFunc("GET /v1/conversations/{id}/messages", h.user(h.history))
	m.HandleFunc("POST /v1/conversations/{id}/read", h.user(h.markRead))
	m.HandleFunc("POST /v1/blocks", h.user(h.block))
	m.HandleFunc("DELETE /v1/blocks/{address}", h.user(h.unblock))
	m.HandleFunc("GET /v1/sync", h.user(h.sync))

	m.HandleFunc("/", h.noRoute)
}

// Handle mounts another endpoint (the WebSocket, metrics, the status page)
// on the same mux, so that it shares the JSON 404 and 405 answers. It
// panics on a pattern that conflicts with one already registered.
func (h *Handler) Handle(pattern string, handler http.Handler) {
	h.mux.Handle(pattern, handler)
}

// ServeHTTP gives the request its id, routes it, logs it, and turns a
// panic into a logged 500.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := incomingID(r)
	if id == "" {
		id = h.requestID()
	}
	rw.Header().Set("X-Request-Id", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	w := &recorder{ResponseWriter: rw}
	defer h.logRequest(r, w, id, start)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("panic serving request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			// If the handler wrote already this write fails quietly and the
			// client sees a truncated answer, which is the best we can do.
			w.Header().Set("X-Request-Id", id)
			writeJSON(w, http.StatusInternalServerError, errorBody{&chat.Error{Code: chat.Internal, Message: "internal error; quote request id " + id + " when reporting it"}})
		}
	}()
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) requestID() string {
	return h.reqPrefix + strconv.FormatUint(h.reqSeq.Add(1), 10)
}

var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// noRoute answers what no pattern took: 405 when the path exists under
// another method, else 404.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := h.mux.Handler(probe); p != "" && p != "/" {
			allowed = append(allowed, m)
			if m == http.MethodGet {
				allowed = append(allowed, http.MethodHead)
			}
		}
	}
	if len(allowed) == 0 {
		h.writeError(w, r, chat.Errorf(chat.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{chat.Errorf(chat.InvalidArgument,
		"method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))})
}

// bearer returns the token of an "Authorization: Bearer <token>" header, or
// "" without one.
func bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(v[7:])
}

type (
	handlerFunc     func(w http.ResponseWriter, r *http.Request) error
	userHandlerFunc func(w http.ResponseWriter, r *http.Request, caller chat.Address) error
)

// adminOnly runs fn for callers that present the admin token.
func (h *Handler) adminOnly(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !auth.AdminOK(bearer(r), h.admin) {
			h.writeError(w, r, chat.Errorf(chat.Unauthenticated, "this call needs the admin token: send Authorization: Bearer <admin token>"))
			return
		}
		if err := fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// user runs fn for callers with a valid user token.
func (h *Handler) user(fn userHandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller, err := h.svc.Authenticate(r.Context(), bearer(r))
		if err == nil {
			err = fn(w, r, caller)
		}
		if err != nil {
			h.writeError(w, r, err)
		}
	}
}

type statusBody struct {
	Status string `json:"status"`
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statusBody{"ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.readyTTL)
	defer cancel()
	if err := h.svc.Ping(ctx); err != nil {
		h.log.Warn("not ready", "err", err)
		h.writeError(w, r, chat.Errorf(chat.Unavailable, "not ready: the message store does not answer"))
		return
	}
	writeJSON(w, http.StatusOK, statusBody{"ready"})
}
