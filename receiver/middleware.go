package receiver

import (
	"bytes"
	"errors"
	"io"
	"net/http"
)

// DefaultMaxBody is the body limit Middleware uses when given 0: 1 MiB, far
// above any event dcon sends.
const DefaultMaxBody = 1 << 20

// Handler handles one verified, decoded event. What it writes is the answer to
// dcon: any 2xx acknowledges the event (the default, 200, if it writes
// nothing); anything else makes dcon retry it later.
type Handler interface {
	ServeEvent(w http.ResponseWriter, r *http.Request, ev *Event)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, ev *Event)

// ServeEvent calls f(w, r, ev).
func (f HandlerFunc) ServeEvent(w http.ResponseWriter, r *http.Request, ev *Event) { f(w, r, ev) }

// Middleware returns the http.Handler of a data connector endpoint. For each
// request it
//
//   - answers 405 to anything but POST;
//   - reads the body, up to maxBody bytes (0 means DefaultMaxBody), and
//     answers 413 past that;
//   - verifies it with v, answering 401 and a short reason when a signature
//     is missing or wrong, or 503 when the signing keys cannot be fetched;
//   - decodes the event (ParseEvent), answering 400 if it cannot;
//   - calls next.ServeEvent with it. r.Body then holds the raw body again,
//     should next want the exact bytes.
//
// It panics if v or next is nil: an endpoint that verifies nothing must be
// written on purpose, without this function.
func Middleware(v *Verifier, maxBody int64, next Handler) http.Handler {
	if v == nil || next == nil {
		panic("receiver: Middleware needs a Verifier and a Handler")
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := v.Verify(r, body); err != nil {
			if errors.Is(err, ErrKeyFetch) {
				// The cause (a URL, a network error) is the receiver's business.
				http.Error(w, ErrKeyFetch.Error(), http.StatusServiceUnavailable)
				return
			}
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		ev, err := ParseEvent(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeEvent(w, r, ev)
	})
}
