//go:build unix

package webhook

import (
	"net"
	"testing"
	"time"
)

// peerPair returns the two ends of a loopback TCP connection: ours, as the
// pool holds it, and the endpoint's.
func peerPair(t *testing.T) (ours, theirs net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	ours, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	theirs, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	return ours, theirs
}

// eventually waits, bounded, for cond: the kernel passes a close or a byte
// to our end a moment after the other end sends it.
func eventually(t *testing.T, cond func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

func TestPeerGone(t *testing.T) {
	t.Parallel()
	t.Run("idle", func(t *testing.T) {
		ours, _ := peerPair(t)
		if peerGone(ours) {
			t.Error("an idle, open connection counts as gone")
		}
	})
	t.Run("closed by the endpoint", func(t *testing.T) {
		ours, theirs := peerPair(t)
		theirs.Close()
		if !eventually(t, func() bool { return peerGone(ours) }) {
			t.Error("a connection the endpoint closed still counts as usable")
		}
	})
	t.Run("unasked bytes", func(t *testing.T) {
		ours, theirs := peerPair(t)
		if _, err := theirs.Write([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if !eventually(t, func() bool { return peerGone(ours) }) {
			t.Error("a connection with an unasked answer on it counts as usable")
		}
		// The look consumed nothing.
		buf := make([]byte, 8)
		if n, err := ours.Read(buf); err != nil || string(buf[:n]) != "HTTP/1.1" {
			t.Errorf("read after the look: %q, %v; want the bytes untouched", buf[:n], err)
		}
	})
}

func TestSweepClosesConnectionsTheEndpointClosed(t *testing.T) {
	t.Parallel()
	open, _ := peerPair(t)
	gone, theirs := peerPair(t)
	var p connPool
	now := time.Now()
	p.put("k", open, now)
	p.put("k", gone, now)
	theirs.Close()
	if !eventually(t, func() bool { return peerGone(gone) }) {
		t.Fatal("the closed connection never looked closed")
	}
	p.closeStale()
	p.mu.Lock()
	left := append([]idleConn(nil), p.idle["k"]...)
	armed := p.sweep != nil
	p.mu.Unlock()
	if len(left) != 1 || left[0].conn != open {
		t.Errorf("idle after the sweep: %d connections, want only the open one", len(left))
	}
	if !armed {
		t.Error("the sweep is not armed again while a connection is idle")
	}
	p.closeIdle()
}
