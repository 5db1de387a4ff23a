package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// statuses maps every API error code to its HTTP status. It is the only
// place that does so.
var statuses = map[string]int{
	chat.InvalidArgument:  http.StatusBadRequest,
	chat.Unauthenticated:  http.StatusUnauthorized,
	chat.PermissionDenied: http.StatusForbidden,
	chat.NotFound:         http.StatusNotFound,
	chat.Conflict:         http.StatusConflict,
	chat.PayloadTooLarge:  http.StatusRequestEntityTooLarge,
	chat.RateLimited:      http.StatusTooManyRequests,
	chat.Unavailable:      http.StatusServiceUnavailable,
	chat.Internal:         http.StatusInternalServerError,
}

// Status returns the HTTP status of an API error code; unknown codes are 500.
func Status(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// defaultRetryAfter is what 429 and 503 answers advise when the error does
// not say.
const defaultRetryAfter = time.Second

// retryAfterer is implemented by errors that know when a retry may succeed
// (rate limiters, for instance). Checked with errors.As, so a later error
// type can carry it without this package changing.
type retryAfterer interface {
	RetryAfter() time.Duration
}

type errorBody struct {
	Error *chat.Error `json:"error"`
}

// writeError answers err in the API's error shape. A *chat.Error goes out as
// it is; anything else is logged with a request id and answered as a
// generic internal error, so that no internal detail leaks.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			// The client went away; there is nobody to answer and nothing
			// went wrong on our side.
			ce = &chat.Error{Code: chat.Unavailable, Message: "the request was cancelled"}
		} else {
			id := RequestID(r.Context())
			if id == "" {
				id = h.requestID()
			}
			h.log.Error("internal error", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("X-Request-Id", id)
			ce = &chat.Error{Code: chat.Internal, Message: "internal error; quote request id " + id + " when reporting it"}
		}
	}
	status := Status(ce.Code)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		d := defaultRetryAfter
		var ra retryAfterer
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			d = ra.RetryAfter()
		}
		// Retry-After is whole seconds; round up so that clients never
		// come back too early.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	}
	writeJSON(w, status, errorBody{ce})
}

func invalid(format string, args ...any) error {
	return chat.Errorf(chat.InvalidArgument, format, args...)
}
