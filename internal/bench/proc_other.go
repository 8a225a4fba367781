//go:build !linux

package bench

import "syscall"

// childAttr: only Linux can tie the server's life to the bench's; elsewhere
// Stop is the only guard.
func childAttr() *syscall.SysProcAttr { return nil }
