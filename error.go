package dcon

import (
	"errors"
	"fmt"
)

// Error codes. They say what kind of failure happened, independently of the
// transport; internal/httpapi maps each to one HTTP status in a single table.
const (
	EINVALID      = "invalid"      // the caller's input is wrong
	ENOTFOUND     = "not_found"    // the resource does not exist (or is not the caller's)
	ECONFLICT     = "conflict"     // the resource exists already, or is in use
	ETOOLARGE     = "too_large"    // the request body is over its limit
	EUNSUPPORTED  = "unsupported"  // unsupported media type
	EUNAVAILABLE  = "unavailable"  // the store cannot take writes now; try again
	EUNAUTHORIZED = "unauthorized" // no or bad credentials
	EFORBIDDEN    = "forbidden"    // credentials valid, permission missing
	ERATELIMITED  = "rate_limited" // too many requests
	EINTERNAL     = "internal"     // a bug or an unexpected failure; details are logged, never shown
)

// Error is the one error type that crosses dcon's boundaries. Message is safe to
// show to clients; Err, the cause, is for logs only.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with the given code and message that keeps err as
// its cause.
func WrapError(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, or "internal error" for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
