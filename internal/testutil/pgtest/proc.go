package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// findBin returns the bin directory of the newest PostgreSQL installed the
// Debian way (/usr/lib/postgresql/VERSION/bin).
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", errors.New("no PostgreSQL server in /usr/lib/postgresql/*/bin")
	}
	// Sort by version number, not by string: 9.6 < 10 < 17.
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(found, func(a, b string) int {
		va, vb := version(a), version(b)
		switch {
		case va < vb:
			return -1
		case va > vb:
			return 1
		}
		return 0
	})
	return found[len(found)-1], nil
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// serverUser is the credential that initdb and postgres run with: the
// postgres OS user when this process is root (both refuse root), else
// nobody else (nil).
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres OS user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres OS user: uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// command is a server binary run as the server user, in its own process
// group (so that a Ctrl-C of the test reaches only the test, which then
// stops the server in order), killed by the kernel if the test dies (the
// postmaster's children then exit on their own, seeing it gone).
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	return cmd
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// initdb makes the base dir (owned by the server user) and a new cluster in it.
func (s *Server) initdb() error {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	s.dir = dir
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("initdb: chown %s: %w", dir, err)
		}
	}
	cmd := s.command("initdb", "-D", s.dataDir(), "-U", "postgres",
		"--encoding=UTF8", "--locale=C.UTF-8", "--auth=trust", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// settings are the server's -c options.
func (s *Server) settings() []string {
	set := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(s.port),
		"unix_socket_directories": s.dir,
		"max_connections":         "200",
		"log_min_messages":        "warning",
		"log_line_prefix":         "%m [%p] ",
	}
	if !s.opts.Durable {
		set["fsync"] = "off"
		set["synchronous_commit"] = "off"
		set["full_page_writes"] = "off"
	}
	for k, v := range s.opts.Settings {
		set[k] = v
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, "-c", k+"="+set[k])
	}
	return args
}

// postmaster is a running server process; its goroutine waits for it.
type postmaster struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done is closed
}

// runPostmaster starts postgres in the foreground as a child of the test.
func (s *Server) runPostmaster() (*postmaster, error) {
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := s.command("postgres", append([]string{"-D", s.dataDir()}, s.settings()...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p := &postmaster{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// errExited is the error of a postmaster that exited while starting.
var errExited = errors.New("exited during start-up")

// waitReady polls until the server answers a query, it exits, or ctx ends.
func (p *postmaster) waitReady(ctx context.Context, dsn string) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, dsn)
		if err == nil {
			err = conn.Ping(cctx)
			_ = conn.Close(cctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w: %v", errExited, p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// signalGroup sends sig to the postmaster and all its children. Every
// server process calls setsid() when the postmaster forks it, so they are
// not in the postmaster's process group: they are found by their parent
// pid. The postmaster is signalled first, so that on SIGSTOP or SIGKILL it
// forks no new child meanwhile.
func (p *postmaster) signalGroup(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s to postgres: %w", sig, err)
	}
	for _, pid := range childrenOf(p.cmd.Process.Pid) {
		_ = syscall.Kill(pid, sig) // it may have exited meanwhile
	}
	return nil
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := procStat(child); ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// procStat returns the parent pid and state of process pid (0 and "" if gone).
func procStat(pid int) (ppid int, state string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, ""
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, ""
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0]
}

// stop is a fast shutdown (SIGINT) and a wait for it; SIGKILL after stopTimeout.
func (p *postmaster) stop() error {
	_ = p.signalGroup(syscall.SIGCONT) // a paused server cannot act on SIGINT
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		p.kill()
		return fmt.Errorf("postgres did not stop within %s; killed", stopTimeout)
	}
}

// kill sends SIGKILL to the postmaster and every server process, waits for
// the postmaster and, at most 10 s, until the children are gone (a zombie
// counts as gone: it holds no shared memory), so that a start right after
// does not find the old shared memory block still attached.
func (p *postmaster) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGSTOP) // no new child while the list is read
	children := childrenOf(p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-p.done
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range children {
		for time.Now().Before(deadline) {
			if _, state := procStat(pid); state == "" || state == "Z" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, never 5432.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != 5432 {
			return port, nil
		}
	}
}

// logTail is the end of the server log, for a failure message.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath())
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}
