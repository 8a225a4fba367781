package webhook

// The lean HTTP/1.1 client. net/http's transport runs two goroutines per
// connection and hands every request and response between them and the
// caller, with maps of headers on both sides; for dcon's one small POST per
// attempt that was a third of the CPU an event costs. Here the attempt's own
// goroutine writes the request on a pooled keep-alive connection (one flush,
// one write), reads the answer's head, reads or skips its body up to
// Config.MaxResponseBytes, and puts the connection back only when the answer
// was read whole and neither side asked to close. Deadlines are the
// connection's; the caller's context closes it.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"dcon"
)

// Sizes of the pooled buffers an exchange borrows.
const (
	readBufSize  = 4 << 10
	writeBufSize = 8 << 10 // a request's head and a typical body, written at once
)

// The signature headers as written on the wire: in canonical form, as
// net/http writes them (a test checks).
const (
	hdrDT    = "X-Dt-Signature"
	hdrES256 = "Dt-Asymmetric-Signature"
	hdrWhID  = "Webhook-Id"
	hdrWhTS  = "Webhook-Timestamp"
	hdrWhSig = "Webhook-Signature"
)

// errInvalidHeader is the cause of an attempt refused because a header of the
// connector could not be written safely.
var errInvalidHeader = errors.New("webhook: invalid header")

// sendH1 makes the attempt with the lean client. An idle connection that
// fails before any byte of an answer arrived — the endpoint closed it while it
// was idle — is replaced once by a fresh one, as net/http does.
func (c *Client) sendH1(ctx context.Context, conn *dcon.Connector, t *target, a Attempt, s *signed, start time.Time) Result {
	deadline, own := start.Add(c.cfg.Timeout), true
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, own = d, false
	}
	fresh := false
	for {
		if err := ctx.Err(); err != nil {
			return Result{Err: c.h1Error(ctx, conn, err, deadline, own), Duration: time.Since(start)}
		}
		var nc net.Conn
		if !fresh {
			nc = c.idle.get(t.key, time.Now())
		}
		reused := nc != nil
		if !reused {
			var h2 bool
			var err error
			if nc, h2, err = c.dialH1(ctx, t, deadline); err != nil {
				return Result{Err: c.h1Error(ctx, conn, err, deadline, own), Duration: time.Since(start)}
			}
			if h2 {
				c.h2.remember(t.key, time.Now())
				return c.sendHTTP(ctx, conn, a, s, start, nc)
			}
		}
		res, retry := c.exchange(ctx, conn, t, nc, a, s, deadline, own)
		if retry && reused {
			fresh = true
			continue
		}
		res.Duration = time.Since(start)
		return res
	}
}

// dialH1 dials t, by deadline. With TLS, h2 reports that the endpoint
// selected HTTP/2, which the lean client does not speak.
func (c *Client) dialH1(ctx context.Context, t *target, deadline time.Time) (_ net.Conn, h2 bool, _ error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if !t.tls {
		nc, err := c.dial(ctx, "tcp", t.addr)
		return nc, false, err
	}
	tc, err := c.dialTLS(ctx, t.addr, t.hostname)
	if err != nil {
		return nil, false, err
	}
	return tc, tc.ConnectionState().NegotiatedProtocol == "h2", nil
}

// exchange writes the request on nc and reads the answer. nc is the
// exchange's: it goes back to the idle pool or is closed. retry says that nc
// failed before any byte of an answer arrived, in time and uncanceled.
func (c *Client) exchange(ctx context.Context, conn *dcon.Connector, t *target, nc net.Conn, a Attempt, s *signed, deadline time.Time, own bool) (res Result, retry bool) {
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { nc.Close() })
	}
	fail := func(err error, early bool) (Result, bool) {
		stop()
		nc.Close()
		return Result{Err: c.h1Error(ctx, conn, err, deadline, own)}, early && ctx.Err() == nil && time.Now().Before(deadline)
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return fail(err, true)
	}
	keepAlive := !c.transport.DisableKeepAlives
	bw := c.writer(nc)
	c.writeRequest(bw, conn, t, a, s, keepAlive)
	err := bw.Flush()
	bw.Reset(nil)
	c.writers.Put(bw)
	if err != nil {
		return fail(err, true)
	}

	br := c.reader(nc)
	defer c.putReader(br)
	if _, err := br.Peek(1); err != nil {
		return fail(err, true)
	}
	head, err := readHead(br)
	if err != nil {
		return fail(err, false)
	}
	res.StatusCode = head.status
	if head.status == http.StatusTooManyRequests || head.status == http.StatusServiceUnavailable {
		res.RetryAfter = parseRetryAfter(head.retryAfter, c.cfg.Now())
	}
	// A 2xx is a success even if its body then fails to arrive in time: the
	// receiver has the event, and a retry would only make a duplicate.
	ok := head.status >= 200 && head.status <= 299
	b := head.body(br)
	snippet := c.drainH1(&b, !ok)
	reuse := keepAlive && !head.close && b.ended() && br.Buffered() == 0
	if stopped := stop(); reuse && stopped {
		c.idle.put(t.key, nc, time.Now())
	} else {
		nc.Close()
	}
	if !ok {
		res.Err = statusError(conn, head.status, snippet)
	}
	return res, false
}

// h1Error describes a lean attempt that got no answer, as transportError
// does for net/http's: the connection's deadline is the attempt's timeout,
// or the caller's deadline if that came first.
func (c *Client) h1Error(ctx context.Context, conn *dcon.Connector, err error, deadline time.Time, own bool) error {
	if ctx.Err() == nil && !time.Now().Before(deadline) {
		if own {
			return &Error{msg: "timeout after " + c.cfg.Timeout.String(), err: ErrTimeout}
		}
		<-ctx.Done() // the caller's deadline, which has passed: its context ends now
	}
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		return &Error{msg: "canceled: " + cause.Error(), err: cause}
	}
	return &Error{msg: redact(describe(err), conn), err: err}
}

// drainH1 reads b up to the configured limit; with keep, it returns the
// first bytes for an error message. Read errors end the reading and are
// otherwise ignored: the status line is the answer.
func (c *Client) drainH1(b *body, keep bool) []byte {
	limit := c.cfg.MaxResponseBytes
	if !keep {
		_, _ = b.skip(limit)
		return nil
	}
	head := make([]byte, min(maxSnippet+maxSecret, limit)) // see statusError
	n, err := io.ReadFull(b, head)
	if err == nil {
		_, _ = b.skip(limit - int64(n))
	}
	return head[:n]
}

func (c *Client) writer(w io.Writer) *bufio.Writer {
	if bw, _ := c.writers.Get().(*bufio.Writer); bw != nil {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, writeBufSize)
}

func (c *Client) reader(r io.Reader) *bufio.Reader {
	if br, _ := c.readers.Get().(*bufio.Reader); br != nil {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, readBufSize)
}

func (c *Client) putReader(br *bufio.Reader) {
	br.Reset(nil)
	c.readers.Put(br)
}

// writeRequest writes the attempt's request into w: the request line, Host,
// User-Agent, Content-Type, Content-Length, the connector's headers in
// canonical form (but those the client sets itself), the URL's userinfo as
// Basic authorization unless the connector sets Authorization (as net/http
// does), the signatures, and the body. The headers were checked by
// checkHeaders.
func (c *Client) writeRequest(w *bufio.Writer, conn *dcon.Connector, t *target, a Attempt, s *signed, keepAlive bool) {
	w.WriteString("POST ")
	w.WriteString(t.uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(t.host)
	w.WriteString("\r\nUser-Agent: ")
	w.WriteString(c.cfg.UserAgent)
	w.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
	w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(a.Body)), 10))
	w.WriteString("\r\n")
	if !keepAlive {
		w.WriteString("Connection: close\r\n")
	}
	authz := t.authz
	for k, v := range conn.HTTP.Headers {
		k = http.CanonicalHeaderKey(k)
		if s.replaces(k) {
			continue
		}
		if k == "Authorization" {
			authz = ""
		}
		writeHeader(w, k, v)
	}
	if authz != "" {
		writeHeader(w, "Authorization", authz)
	}
	if s.dt != nil {
		writeHeaderBytes(w, hdrDT, s.dt)
	}
	if s.es != nil {
		writeHeaderBytes(w, hdrES256, s.es)
	}
	if s.whSig != "" {
		writeHeader(w, hdrWhID, s.whID)
		writeHeaderBytes(w, hdrWhTS, s.whTS)
		writeHeader(w, hdrWhSig, s.whSig)
	}
	w.WriteString("\r\n")
	w.Write(a.Body)
}

// replaces reports whether a connector header of canonical name k is not
// written because the client writes its own (or, for the framing headers,
// none), as net/http does.
func (s *signed) replaces(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Type", "Content-Length", "Transfer-Encoding", "Trailer", "Connection":
		return true
	case hdrDT:
		return s.dt != nil
	case hdrES256:
		return s.es != nil
	case hdrWhID, hdrWhTS, hdrWhSig:
		return s.whSig != ""
	}
	return false
}

func writeHeader(w *bufio.Writer, k, v string) {
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(v)
	w.WriteString("\r\n")
}

func writeHeaderBytes(w *bufio.Writer, k string, v []byte) {
	w.WriteString(k)
	w.WriteString(": ")
	w.Write(v)
	w.WriteString("\r\n")
}

// checkHeaders refuses the connector's headers that could not be written
// safely: a name that is not an HTTP token, a value with a control character
// other than tab (CR and LF above all). The connector's validation keeps them
// out; the client never writes a header line it did not check. The error
// names the header, never its value.
func checkHeaders(h map[string]string) error {
	for k, v := range h {
		if !dcon.IsHTTPToken(k) {
			return &Error{msg: "invalid header: a name in the connector's headers is not an HTTP token", err: errInvalidHeader}
		}
		if !validHeaderValue(v) {
			return &Error{msg: "invalid header " + http.CanonicalHeaderKey(k) + ": its value contains a control character (CR, LF…)", err: errInvalidHeader}
		}
	}
	return nil
}

// validHeaderValue reports whether s holds no control character but tab, as
// net/http requires of header values.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
