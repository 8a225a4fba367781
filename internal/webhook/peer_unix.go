//go:build unix

package webhook

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// peerGone reports whether an idle connection can no longer carry a
// request: the endpoint closed it (end of stream), reset it, or sent
// something unasked (a TLS alert, a stray answer). It looks without
// blocking and without consuming anything (MSG_PEEK|MSG_DONTWAIT), one
// system call. A connection it cannot look into counts as usable.
func peerGone(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var (
		buf  [1]byte
		rerr error
	)
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness: this is a look, not a read
	})
	switch {
	case err != nil:
		return true
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) || errors.Is(rerr, syscall.EINTR):
		return false // nothing to read: the connection is idle, as it should be
	case rerr != nil:
		return true
	default:
		return true // end of stream, or bytes nobody asked for
	}
}
