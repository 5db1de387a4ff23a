package chat

import (
	"errors"
	"fmt"
)

// Error codes of the API. The HTTP and WebSocket edges map them to statuses
// in one place.
const (
	InvalidArgument  = "invalid_argument"
	Unauthenticated  = "unauthenticated"
	PermissionDenied = "permission_denied"
	NotFound         = "not_found"
	Conflict         = "conflict"
	PayloadTooLarge  = "payload_too_large"
	RateLimited      = "rate_limited"
	Unavailable      = "unavailable"
	Internal         = "internal"
)

// Error is an error a client may see: a code from the list above and a
// message a person can act on.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf makes an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err's *Error, or Internal when err is not
// one of ours.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
