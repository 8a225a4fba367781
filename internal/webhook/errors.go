package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"dcon"
)

// Causes a failed attempt's Err can wrap, for errors.Is. Err also wraps
// context.Canceled (or context.DeadlineExceeded) when the caller's context
// ended the attempt.
var (
	ErrTimeout    = errors.New("webhook: attempt timed out")
	ErrInvalidURL = errors.New("webhook: invalid endpoint URL")
)

// maxSnippet is how much of a failed response's body goes into its error.
const maxSnippet = 200

// maxSecret is the longest secret redact must find whole in a body: the
// connector validation's limits on a secret and a header value.
const maxSecret = max(dcon.MaxSignatureSecretLen, dcon.MaxHeaderValueLen)

// redacted replaces secrets found in an error message.
const redacted = "[redacted]"

// minRedact is the shortest value redact looks for: shorter ones would match
// ordinary words of the message and say little anyway.
const minRedact = 4

// Error is the failure of one attempt. Its message is short, says what went
// wrong, and is safe to log and to keep in a dead-letter record: it never holds
// the URL's query or userinfo, the connector's secrets or its header
// values. Unwrap gives the cause, for errors.Is.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string { return e.msg }

func (e *Error) Unwrap() error { return e.err }

// statusError describes a non-2xx answer: "HTTP 503 Service Unavailable: <the
// start of the body>".
func statusError(conn *dcon.Connector, status int, body []byte) error {
	var b strings.Builder
	b.WriteString("HTTP ")
	b.WriteString(strconv.Itoa(status))
	if text := http.StatusText(status); text != "" {
		b.WriteByte(' ')
		b.WriteString(text)
	}
	if status >= 300 && status <= 399 {
		b.WriteString(" (redirects are not followed)")
	}
	keep := b.Len() + len(": ") + maxSnippet
	if s := printable(body); s != "" {
		b.WriteString(": ")
		b.WriteString(s)
	}
	// Redact before cutting: body holds more than the snippet, so that a
	// secret that crosses the cut is still found whole.
	return &Error{msg: cut(redact(b.String(), conn), keep)}
}

// cut returns the first n bytes of s, or fewer to end on a whole character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// transportError describes an attempt that got no response.
func (c *Client) transportError(ctx context.Context, conn *dcon.Connector, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error quotes the whole URL
	}
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, ErrTimeout) {
			return &Error{msg: "timeout after " + c.cfg.Timeout.String(), err: ErrTimeout}
		}
		return &Error{msg: "canceled: " + cause.Error(), err: cause}
	}
	return &Error{msg: redact(describe(err), conn), err: err}
}

// describe says in a few words why no response arrived.
func describe(err error) string {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalidCert x509.CertificateInvalidError
		recordHdr   tls.RecordHeaderError
		dnsErr      *net.DNSError
	)
	var refused *Error
	switch {
	case errors.Is(err, ErrForbiddenDestination) && errors.As(err, &refused):
		return refused.msg
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &unknownCA):
		return "tls: certificate signed by unknown authority"
	case errors.As(err, &hostname):
		return "tls: certificate is not valid for the endpoint's host"
	case errors.As(err, &invalidCert):
		return "tls: " + strings.TrimPrefix(invalidCert.Error(), "x509: ")
	case errors.As(err, &recordHdr):
		return "tls: the endpoint does not speak TLS"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "dns: no such host " + dnsErr.Name
		}
		return "dns: lookup of " + dnsErr.Name + " failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the endpoint before a response"
	}
	return clip(err.Error(), maxSnippet)
}

// redact removes from msg everything of conn that must not be logged: the URL's
// userinfo and query, the secrets and the header values. Longer values go
// first, so that one containing another is still found whole.
func redact(msg string, conn *dcon.Connector) string {
	hide := []string{conn.HTTP.SignatureSecret}
	hide = append(hide, conn.HTTP.StandardWebhookSecrets...)
	for _, v := range conn.HTTP.Headers {
		hide = append(hide, v)
		// "Bearer <token>", "Basic <credentials>": an endpoint may echo the
		// credential alone.
		if _, cred, ok := strings.Cut(v, " "); ok {
			hide = append(hide, strings.TrimSpace(cred))
		}
	}
	if u, err := url.Parse(conn.HTTP.URL); err == nil {
		hide = append(hide, u.RawQuery)
		if u.User != nil {
			hide = append(hide, u.User.String(), u.User.Username())
			if p, ok := u.User.Password(); ok {
				hide = append(hide, p)
			}
		}
	}
	slices.SortFunc(hide, func(a, b string) int { return len(b) - len(a) })
	for _, s := range hide {
		if len(s) >= minRedact {
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	return msg
}

// printable returns b as one line of printable text: control characters and
// invalid UTF-8 dropped, runs of spaces collapsed, trimmed.
func printable(b []byte) string {
	var out strings.Builder
	space := false
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
		case unicode.IsSpace(r) || !unicode.IsPrint(r):
			space = out.Len() > 0
		default:
			if space {
				out.WriteByte(' ')
				space = false
			}
			out.WriteRune(r)
		}
	}
	return out.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
