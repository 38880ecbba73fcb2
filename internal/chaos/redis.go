package chaos

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisproc"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
)

// Redis is a redis-server owned by one case. Unlike redistest.Server it can
// run inside a network namespace (bound to the namespace's addresses), use
// appendfsync everysec, and be frozen with SIGSTOP; it keeps its data dir and
// port across kills so that a restart replays the AOF.
type Redis struct {
	t      testing.TB
	dir    string
	port   int
	binds  []string // addresses to bind; the first is the one clients use
	netns  string   // namespace to run in; "" for the current one
	fsync  string   // appendfsync policy: always or everysec
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// RedisOptions are the knobs of StartRedis. Zero values: 127.0.0.1, the
// current namespace, appendfsync always.
type RedisOptions struct {
	Binds []string
	NetNS string
	Fsync string
}

// StartRedis starts a redis-server with AOF on a free port, and kills it
// when the test ends.
func StartRedis(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("redis-server not installed")
		}
		t.Fatalf("redis-server not installed: %v", err)
	}
	if len(o.Binds) == 0 {
		o.Binds = []string{"127.0.0.1"}
	}
	if o.Fsync == "" {
		o.Fsync = "always"
	}
	r := &Redis{t: t, dir: t.TempDir(), port: redistest.FreePort(t), binds: o.Binds, netns: o.NetNS, fsync: o.Fsync}
	r.Start()
	t.Cleanup(func() { r.Signal(syscall.SIGKILL) })
	return r
}

// Addr is the address clients use.
func (r *Redis) Addr() string { return net.JoinHostPort(r.binds[0], strconv.Itoa(r.port)) }

// AddrOn is the address on the i-th bind address.
func (r *Redis) AddrOn(i int) string { return net.JoinHostPort(r.binds[i], strconv.Itoa(r.port)) }

// Start (re)starts the server on the same port and data dir and waits until it
// answers PING, which it does only once the AOF is loaded.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.t.Fatalf("chaos: redis already running")
	}
	args := []string{"--port", strconv.Itoa(r.port), "--bind", strings.Join(r.binds, " "), "--dir", r.dir,
		"--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"), "--save", "",
		"--appendonly", "yes", "--appendfsync", r.fsync, "--maxmemory-policy", "noeviction",
		// Bound only to loopback or to the test's own namespace addresses;
		// protected mode would refuse the non-loopback ones.
		"--protected-mode", "no"}
	cmd := exec.Command("redis-server", args...)
	if r.netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", r.netns, "redis-server"}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("chaos: start redis-server: %v", err)
	}
	r.cmd, r.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.exited)
	deadline := time.Now().Add(20 * time.Second)
	for !Ping(r.Addr()) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("chaos: redis-server on %s not ready after 20 s:\n%s", r.Addr(), tail(string(log), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to a running server; SIGKILL and SIGTERM wait for the exit.
func (r *Redis) Signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		if sig == syscall.SIGKILL {
			_ = r.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
		}
		<-r.exited
		r.cmd = nil
	}
}

// Kill crashes the server (SIGKILL) and waits for the exit.
func (r *Redis) Kill() { r.Signal(syscall.SIGKILL) }

// Freeze stops the server (SIGSTOP): connections stay open, nothing answers.
func (r *Redis) Freeze() { r.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (r *Redis) Thaw() { r.Signal(syscall.SIGCONT) }

// Ping reports whether the Redis at addr answers PING with PONG within a second.
var Ping = redisproc.Ping

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// LLen is LLEN key, asked with a 1 s deadline.
func (r *Redis) LLen(key string) (int, error) {
	c, err := net.DialTimeout("tcp", r.Addr(), 300*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nLLEN\r\n$%d\r\n%s\r\n", len(key), key); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(line, ":") {
		return 0, fmt.Errorf("LLEN %s: %q", key, line)
	}
	return strconv.Atoi(strings.TrimSpace(line[1:]))
}
