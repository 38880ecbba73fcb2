// Package redistest starts real redis-server processes for tests: each on a
// free port in its own temp dir, with AOF on, so that a test can stop, kill
// and restart it without losing what it acknowledged.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisproc"
)

// Server is a redis-server process owned by a test.
type Server struct {
	t    testing.TB
	dir  string
	port int

	mu   sync.Mutex
	proc *redisproc.Server
}

// Start starts a redis-server on a free port and stops it when the test ends.
// The test is skipped only if redis-server is not installed and the
// environment variable CI is empty; in CI a missing server fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("redis-server not installed")
		}
		t.Fatalf("redis-server not installed: %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), port: FreePort(t)}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Restart starts the server again on the same port and data dir (it must be stopped).
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.t.Fatalf("redistest: restart of a running server")
	}
	p, err := redisproc.Start(context.Background(), s.dir, s.port,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	s.proc = p
}

// Stop shuts the server down gracefully (SIGTERM, AOF flushed) and waits.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills the server with SIGKILL and waits.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Pause freezes the server with SIGSTOP: its connections stay open and
// nothing is answered until Resume, as in a Redis stall (a long fork, a
// swapped-out host, a network black hole). A paused server is resumed when
// the test ends, before it is stopped.
func (s *Server) Pause() {
	s.t.Helper()
	s.notify(syscall.SIGSTOP)
}

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	s.notify(syscall.SIGCONT)
}

func (s *Server) notify(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.t.Fatalf("redistest: %s to a server that is not running", sig)
	}
	if err := s.proc.Notify(sig); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
}

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if sig != syscall.SIGKILL {
		_ = s.proc.Notify(syscall.SIGCONT) // a paused server cannot act on SIGTERM
	}
	s.proc.Signal(sig)
	s.proc = nil
}

// Do runs one command with redis-cli-free RESP and returns the raw reply line
// (enough for simple checks like LLEN or HGET in tests).
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	return strings.TrimLeft(line, "+:"), nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
