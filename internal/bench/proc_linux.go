package bench

import "syscall"

// childAttr makes the kernel kill the server if the bench dies without
// stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
