package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startTimeout bounds how long a server may take to start listening.
const startTimeout = 60 * time.Second

// Server is a dcon server the bench started: a child process on a fresh data
// directory, killed by Stop.
type Server struct {
	URL  string // http://127.0.0.1:port
	PID  int
	Data string // its data directory

	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// StartServer runs `bin serve --addr 127.0.0.1:0 --data dir <flags>` and waits
// until it says where it listens. Its log goes to dir/../server.log.
func StartServer(ctx context.Context, bin, dir string, flags []string) (*Server, error) {
	data := filepath.Join(dir, "data")
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--dev", "--addr", "127.0.0.1:0", "--data", data, "--log-level", "warn"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{PID: cmd.Process.Pid, Data: data, cmd: cmd, log: logf, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
				select {
				case addr <- strings.Fields(rest)[0]:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	select {
	case a := <-addr:
		s.URL = a
		return s, nil
	case <-s.done:
		err = fmt.Errorf("the server exited before listening; see %s: %s", logf.Name(), tail(logf.Name()))
	case <-time.After(startTimeout):
		err = fmt.Errorf("the server did not listen within %s", startTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Stop()
	return nil, err
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	s.log.Close()
}

// PeakRSS returns the server's peak resident set size (VmHWM), in bytes.
func (s *Server) PeakRSS() (int64, error) { return procStatus(s.PID, "VmHWM") }

// RSS returns the server's resident set size now (VmRSS), in bytes.
func (s *Server) RSS() (int64, error) { return procStatus(s.PID, "VmRSS") }

// DiskUsage returns the bytes the server's data directory holds.
func (s *Server) DiskUsage() (int64, error) { return dirSize(s.Data) }

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// dirSize sums the sizes of the files under dir; files removed while it walks
// are skipped.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n, err
}

// tail returns the last lines of a file, for an error message.
func tail(path string) string {
	raw, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(raw))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
