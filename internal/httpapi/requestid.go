package httpapi

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

type requestIDKey struct{}

// RequestID returns the id ServeHTTP gave the request whose context ctx
// is, or "" outside one. Every answer carries it in X-Request-Id, and every
// log line about the request (the WebSocket session's included) names it
// as request_id.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// incomingID returns the caller's X-Request-Id when it is short and plain
// enough to go into logs unchanged (a proxy in front usually sets one, and
// keeping it lets its logs and ours be joined), else "".
func incomingID(r *http.Request) string {
	v := r.Header.Get("X-Request-Id")
	if len(v) == 0 || len(v) > 64 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return v
}

// recorder notes the status and size of an answer for the access log. It
// passes Hijack and Flush through, for the WebSocket and event streams.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("httpapi: the ResponseWriter cannot be hijacked")
	}
	c, brw, err := h.Hijack()
	if err == nil {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequest writes the access log line: at debug level for answers below
// 500, so that a busy node's log stays readable at info, and at warn for
// server errors (the error itself is logged where it happened, with the
// same request id).
func (h *Handler) logRequest(r *http.Request, w *recorder, id string, start time.Time) {
	level := slog.LevelDebug
	if w.status >= 500 {
		level = slog.LevelWarn
	}
	ctx := r.Context()
	if !h.log.Enabled(ctx, level) {
		return
	}
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	h.log.LogAttrs(ctx, level, "request",
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", w.bytes),
		slog.Duration("took", time.Since(start)),
		slog.String("remote", r.RemoteAddr))
}
