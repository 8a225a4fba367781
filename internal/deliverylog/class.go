package deliverylog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"

	"dcon"
	"dcon/internal/webhook"
)

// Error classes, as ErrorClass returns them.
const (
	ClassHTTP3xx            = "http_3xx" // a redirect: dcon does not follow them
	ClassHTTP4xx            = "http_4xx"
	ClassHTTP429            = "http_429"
	ClassHTTP5xx            = "http_5xx"
	ClassTimeout            = "timeout"
	ClassConnection         = "connection" // refused, reset, unreachable, DNS, closed early
	ClassTLS                = "tls"
	ClassRefusedDestination = "refused_destination" // dcon's destination rules refused the address
	ClassExpired            = "expired"
	ClassOther              = "other"
)

// ErrorClass says in one word why an attempt failed: "" for a delivered
// attempt, ClassExpired for an expiry, else the class of its status code or
// of its error (see internal/webhook's errors). It is a bounded set, fit for a
// metric label or a filter.
func ErrorClass(o *dcon.Outcome) string {
	switch {
	case o.Expired:
		return ClassExpired
	case o.Err == nil:
		return ""
	}
	if class, ok := isLogged(o.Err); ok {
		return class
	}
	switch s := o.StatusCode; {
	case s == 429:
		return ClassHTTP429
	case s >= 300 && s <= 399:
		return ClassHTTP3xx
	case s >= 400 && s <= 499:
		return ClassHTTP4xx
	case s >= 500 && s <= 599:
		return ClassHTTP5xx
	}
	return transportClass(o.Err)
}

// transportClass classifies the error of an attempt that got no response.
func transportClass(err error) string {
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalidCert x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		recordHdr   tls.RecordHeaderError
		alert       tls.AlertError
		dnsErr      *net.DNSError
		opErr       *net.OpError
	)
	switch {
	case errors.Is(err, webhook.ErrTimeout):
		return ClassTimeout
	case errors.Is(err, webhook.ErrForbiddenDestination):
		return ClassRefusedDestination
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalidCert),
		errors.As(err, &verify), errors.As(err, &recordHdr), errors.As(err, &alert):
		return ClassTLS
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &dnsErr), errors.As(err, &opErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassConnection
	}
	return ClassOther
}
