package webhook

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
)

// maxInterim is how many 1xx interim answers are skipped before the final
// one, as net/http.
const maxInterim = 5

// maxHeadBytes bounds an answer's head; lines longer than the read buffer
// are skipped, but count.
const maxHeadBytes = 1 << 20

// Causes of answers the lean client cannot read.
var (
	errMalformed      = errors.New("malformed HTTP response")
	errHeadTooLarge   = errors.New("HTTP response headers too large")
	errTooManyInterim = errors.New("too many 1xx informational responses")
	errUnsupportedTE  = errors.New("unsupported transfer encoding in HTTP response")
)

// head is what the client reads of an answer's status line and headers.
type head struct {
	status     int
	retryAfter string // on 429 and 503 only
	close      bool   // the connection cannot carry another request
	chunked    bool
	length     int64 // with !chunked: the body's length, or -1 for "until close"
}

// readHead reads the head of the final answer, skipping interim ones (1xx
// but 101, which the client never asks for and takes as final).
func readHead(br *bufio.Reader) (head, error) {
	for range maxInterim + 1 {
		h, err := readOneHead(br)
		if err != nil || h.status >= 200 || h.status == 101 {
			return h, err
		}
	}
	return head{}, errTooManyInterim
}

func readOneHead(br *bufio.Reader) (head, error) {
	h := head{length: -1}
	line, size, cut, err := readLine(br)
	if err != nil {
		return h, err
	}
	major, minor, status, ok := parseStatusLine(line)
	if !ok || cut {
		return h, errMalformed
	}
	h.status = status
	var (
		haveLength, keepAlive bool
		te                    []byte
	)
	for {
		line, n, cut, err := readLine(br)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return h, err
		}
		if size += n; size > maxHeadBytes {
			return h, errHeadTooLarge
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obs-fold continues a header the client needs not
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return h, errMalformed
		}
		name, value := line[:i], bytes.Trim(line[i+1:], " \t")
		if cut && (isHeader(name, "content-length") || isHeader(name, "transfer-encoding") || isHeader(name, "connection")) {
			return h, errMalformed // cut: the value is not whole
		}
		switch {
		case isHeader(name, "content-length"):
			l, ok := parseLength(value)
			if !ok || haveLength && l != h.length {
				return h, errMalformed
			}
			h.length, haveLength = l, true
		case isHeader(name, "transfer-encoding"):
			te = value
		case isHeader(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				h.close = h.close || bytes.EqualFold(tok, []byte("close"))
				keepAlive = keepAlive || bytes.EqualFold(tok, []byte("keep-alive"))
			}
		case isHeader(name, "retry-after"):
			if status == 429 || status == 503 {
				h.retryAfter = string(value)
			}
		}
	}
	http11 := major == 1 && minor >= 1
	switch {
	case status < 200 || status == 204 || status == 304:
		h.length = 0 // no body, whatever the headers say
		h.close = h.close || status == 101
	case http11 && len(te) > 0:
		if !bytes.EqualFold(te, []byte("chunked")) {
			return h, errUnsupportedTE
		}
		h.chunked = true
		h.close = h.close || haveLength // both framings: possibly smuggling
	}
	if !http11 && !keepAlive || !h.chunked && h.length < 0 {
		h.close = true
	}
	return h, nil
}

// readLine returns the next line without its line ending (CRLF or LF), and
// its size on the wire. A line longer than the reader's buffer is returned
// cut (only its start), the rest skipped. At the end of the stream before
// any byte of a line, the error is io.EOF.
func readLine(br *bufio.Reader) (line []byte, size int, cut bool, err error) {
	line, err = br.ReadSlice('\n')
	size = len(line)
	if err == bufio.ErrBufferFull {
		// Keep the start: skipping the rest overwrites the buffer.
		start := bytes.Clone(line[:min(len(line), 64)])
		for err == bufio.ErrBufferFull {
			var more []byte
			more, err = br.ReadSlice('\n')
			size += len(more)
			if size > maxHeadBytes {
				return nil, size, true, errHeadTooLarge
			}
		}
		if err == nil {
			return start, size, true, nil
		}
	}
	if err != nil {
		if err == io.EOF && size > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, size, false, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, size, false, nil
}

// parseStatusLine parses "HTTP/1.1 200 OK" (the reason is optional).
func parseStatusLine(line []byte) (major, minor, status int, ok bool) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/")) || line[6] != '.' || line[8] != ' ' ||
		len(line) > 12 && line[12] != ' ' {
		return 0, 0, 0, false
	}
	major, minor = int(line[5])-'0', int(line[7])-'0'
	if major != 1 || minor < 0 || minor > 9 {
		return 0, 0, 0, false
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, 0, 0, false
		}
		status = status*10 + int(d-'0')
	}
	return major, minor, status, status >= 100
}

// isHeader reports whether name is lower (in lower case), case-insensitively.
func isHeader(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: decimal digits only.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range v {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// body returns the reader of the answer's body, which follows h on br.
func (h *head) body(br *bufio.Reader) body {
	b := body{br: br, chunked: h.chunked, n: h.length}
	switch {
	case h.chunked:
		b.n = 0
	case h.length < 0:
		b.untilEOF, b.n = true, math.MaxInt64
	case h.length == 0:
		b.done = true
	}
	return b
}

// body reads an answer's body: of a length, chunked, or until the end of the
// stream. It reads no further than the body.
type body struct {
	br       *bufio.Reader
	chunked  bool
	untilEOF bool
	started  bool  // chunked: a chunk's size was read
	n        int64 // bytes left in the body, or in the current chunk
	done     bool  // the body ended where its framing says
}

// more readies the next bytes of the body: it reads the next chunk's size,
// or reports the end of the body with io.EOF.
func (b *body) more() error {
	if b.done || !b.chunked {
		b.done = true
		return io.EOF
	}
	if b.started {
		if line, _, _, err := readLine(b.br); err != nil || len(line) != 0 {
			return errMalformed // the CRLF after a chunk's data
		}
	}
	b.started = true
	line, _, cut, err := readLine(b.br)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions
	}
	line = bytes.Trim(line, " \t")
	if cut || len(line) == 0 || len(line) > 15 {
		return errMalformed
	}
	var n int64
	for _, d := range line {
		switch {
		case '0' <= d && d <= '9':
			d -= '0'
		case 'a' <= d && d <= 'f':
			d -= 'a' - 10
		case 'A' <= d && d <= 'F':
			d -= 'A' - 10
		default:
			return errMalformed
		}
		n = n<<4 | int64(d)
	}
	if n > 0 {
		b.n = n
		return nil
	}
	for { // the last chunk: skip the trailer section
		line, _, cut, err := readLine(b.br)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 && !cut {
			b.done = true
			return io.EOF
		}
	}
}

func (b *body) Read(p []byte) (int, error) {
	if b.n == 0 {
		if err := b.more(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	return n, b.eof(err)
}

// skip discards up to max bytes of the body.
func (b *body) skip(max int64) (int64, error) {
	var total int64
	for total < max {
		if b.n == 0 {
			if err := b.more(); err != nil {
				return total, err
			}
		}
		d, err := b.br.Discard(int(min(b.n, max-total)))
		total += int64(d)
		b.n -= int64(d)
		if err != nil {
			return total, b.eof(err)
		}
	}
	return total, nil
}

// eof translates the end of the stream: the end of an until-close body, an
// early end for the others.
func (b *body) eof(err error) error {
	if err != io.EOF {
		return err
	}
	if b.untilEOF {
		b.done = true
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}

// ended reports whether the body was read to its end, so that the connection
// may carry another request. It never waits: a chunked body whose last chunk
// is not buffered yet has not ended.
func (b *body) ended() bool {
	if b.done {
		return true
	}
	if b.n != 0 || b.untilEOF {
		return false
	}
	if !b.chunked {
		return true
	}
	end := "0\r\n\r\n"
	if b.started {
		end = "\r\n0\r\n\r\n"
	}
	if b.br.Buffered() < len(end) {
		return false
	}
	if p, _ := b.br.Peek(len(end)); string(p) != end {
		return false
	}
	_, _ = b.br.Discard(len(end))
	b.done = true
	return true
}
