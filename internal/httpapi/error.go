package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"dcon"
)

// eMethodNotAllowed is the code of a request whose path exists but not with its
// method. It is the API's own: the domain has no notion of HTTP methods.
const eMethodNotAllowed = "method_not_allowed"

// helpLink is the "help" member of every error answer.
const helpLink = "docs/api.md#errors"

// HTTPStatus returns the status the API answers err with, by the one table
// below: for other HTTP surfaces of dcon (the dashboard) to answer alike.
func HTTPStatus(err error) int { return statusFor(dcon.ErrorCode(err)) }

// statusFor is the one table that maps error codes to HTTP statuses. A code it
// does not know is an internal error.
func statusFor(code string) int {
	switch code {
	case dcon.EINVALID:
		return http.StatusBadRequest
	case dcon.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case dcon.EFORBIDDEN:
		return http.StatusForbidden
	case dcon.ENOTFOUND:
		return http.StatusNotFound
	case eMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case dcon.ECONFLICT:
		return http.StatusConflict
	case dcon.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case dcon.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case dcon.ERATELIMITED:
		return http.StatusTooManyRequests
	case dcon.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default: // dcon.EINTERNAL and any unknown code
		return http.StatusInternalServerError
	}
}

// errorBody is the contract's error answer.
type errorBody struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
	Help  string `json:"help"`
}

// retryAfterer is an error that knows when the client may try again.
type retryAfterer interface {
	RetryAfter() time.Duration
}

// writeError answers err: its code gives the status through statusFor, its
// client-safe message the "error" member. The cause of an internal error is
// logged and never shown; 429 and 503 carry Retry-After.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFor(dcon.ErrorCode(err))
	msg := dcon.ErrorMessage(err)
	switch status {
	case http.StatusInternalServerError:
		msg = "internal error"
		a.log.LogAttrs(r.Context(), slog.LevelError, "internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "request refused",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	if err := a.respond(w, status, errorBody{Error: msg, Code: status, Help: helpLink}); err != nil {
		// An errorBody always encodes; keep the answer's status all the same.
		http.Error(w, msg, status)
	}
}

// retryAfterSeconds is the Retry-After of err: what it says if it knows, rounded
// up to whole seconds, else one second.
func retryAfterSeconds(err error) int {
	var ra retryAfterer
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return int((d + time.Second - 1) / time.Second)
		}
	}
	return 1
}
