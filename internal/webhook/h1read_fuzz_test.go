package webhook

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse feeds arbitrary bytes, as a hostile endpoint could send
// them, to the lean client's reader: it must never panic or read past what
// it was given, and where net/http reads a head, the status must agree and a
// body the lean reader says ended must hold the bytes net/http reads.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 7\r\n\r\nbusy",
		"HTTP/1.1 429 Too Many Requests\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		br := bufio.NewReaderSize(src, readBufSize)
		h, err := readHead(br)
		if err != nil {
			return
		}
		if h.status < 100 || h.status > 999 {
			t.Fatalf("status %d from %q", h.status, data)
		}
		b := h.body(br)
		var got bytes.Buffer
		_, rerr := io.Copy(&got, io.LimitReader(&b, int64(len(data))+1))
		if got.Len() > len(data) {
			t.Fatalf("read %d body bytes from %d bytes of input", got.Len(), len(data))
		}
		// net/http, the reference, on the same bytes.
		resp, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if herr != nil {
			return // the lean reader may be more lenient; net/http decides nothing here
		}
		defer resp.Body.Close()
		if resp.StatusCode != h.status && resp.StatusCode >= 200 {
			t.Fatalf("status %d, net/http %d, from %q", h.status, resp.StatusCode, data)
		}
		if rerr != nil || !b.done || resp.StatusCode != h.status {
			return
		}
		want, werr := io.ReadAll(resp.Body)
		if werr == nil && !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("body %q, net/http %q, from %q", got.Bytes(), want, data)
		}
	})
}
