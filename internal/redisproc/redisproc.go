// Package redisproc runs a redis-server child process on 127.0.0.1: for
// devtrack demo, and for tests through internal/testutil/redistest.
package redisproc

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Port int
	cmd  *exec.Cmd
}

// Start runs redis-server on port with its data and log in dir, plus the
// given extra options, and waits until it answers PING (at most 10 s).
func Start(ctx context.Context, dir string, port int, options ...string) (*Server, error) {
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log")}, options...)
	cmd := exec.Command("redis-server", args...)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s := &Server{Port: port, cmd: cmd}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !s.Ping() {
		select {
		case <-ctx.Done():
			s.Signal(syscall.SIGKILL)
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, fmt.Errorf("redis-server on %s not ready: %w: %s", s.Addr(), ctx.Err(), log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s, nil
}

// Pid is the redis-server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Ping reports whether the server answers PING with PONG (so it has also
// finished loading its data).
func (s *Server) Ping() bool { return Ping(s.Addr()) }

// Ping reports whether the Redis at addr answers PING with PONG within a
// second. It speaks RESP by hand so that it needs no client.
func Ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Signal sends sig (SIGTERM: graceful, SIGKILL: crash) and waits for the exit.
func (s *Server) Signal(sig syscall.Signal) {
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
}

// Notify sends sig without waiting: SIGSTOP freezes the server (a stall:
// connections stay open, nothing is answered), SIGCONT resumes it.
func (s *Server) Notify(sig syscall.Signal) error {
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal redis-server %s: %w", sig, err)
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
