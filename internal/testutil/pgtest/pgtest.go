// Package pgtest starts private PostgreSQL servers for tests: initdb in a
// temp dir, a postmaster listening only on 127.0.0.1 on a free port (never
// the machine's own server on 5432) and on a unix socket in that dir. As
// root, initdb and postgres run as the postgres OS user, since both refuse
// to run as root. A test can stop, restart, kill and freeze the server to
// play an outage.
//
// Start gives a test its own server; Shared gives every test of a package
// one server (with Main in TestMain), and NewDB a fresh database on it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options change how a server runs. The zero value is a fast test server.
type Options struct {
	// Durable keeps fsync, synchronous_commit and full_page_writes on. By
	// default they are off: a test server's data need not survive a crash,
	// and with them on every commit waits for the disk. A test that kills
	// the server (Kill) and counts what survived must set it: with
	// synchronous_commit off, a commit is acknowledged before its WAL is
	// written, and kill -9 loses the last few hundred milliseconds.
	Durable bool
	// Settings are extra server settings (-c name=value), e.g.
	// shared_buffers for a benchmark.
	Settings map[string]string
}

// Server is a PostgreSQL server owned by a test (Start) or by a package's
// tests (Shared).
type Server struct {
	t    testing.TB // the test that started it, for Fatal in Stop, Start, ...
	opts Options
	bin  string // directory of initdb and postgres
	dir  string // base dir: data/, the unix socket, postgres.log
	port int
	cred *syscall.Credential // the postgres OS user when run as root, else nil

	mu   sync.Mutex
	proc *postmaster // nil while stopped

	dbMu sync.Mutex
	dbN  int
	tmpl map[string]error // templates made by Template, with their outcome
}

// Start starts a server for the test and stops it, removing its files, when
// the test ends. Without PostgreSQL binaries the test is skipped, or fails
// when the environment variable CI is set (CI installs them).
func Start(t testing.TB) *Server { t.Helper(); return StartWith(t, Options{}) }

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := newServer(t, opts)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.destroy)
	return s
}

// newServer finds the binaries (skipping t if there are none), runs initdb
// and starts the postmaster.
func newServer(t testing.TB, opts Options) (*Server, error) {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: %v (CI must install the PostgreSQL server)", err)
		}
		t.Skipf("pgtest: %v; install postgresql to run this test", err)
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	s := &Server{t: t, opts: opts, bin: bin, cred: cred, tmpl: map[string]error{}}
	if err := s.initdb(); err != nil {
		s.removeDir()
		return nil, err
	}
	// A port free a moment ago may be taken before the postmaster binds it:
	// try a few.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil || attempt == 4 {
			break
		}
	}
	if err != nil {
		s.removeDir()
		return nil, err
	}
	return s, nil
}

// Port is the TCP port the server listens on (127.0.0.1).
func (s *Server) Port() int { return s.port }

// Dir is the server's base directory (data/ and postgres.log inside).
func (s *Server) Dir() string { return s.dir }

// DSN is the URL of database db as the superuser postgres, over TCP.
func (s *Server) DSN(db string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(s.port) + "/" + db + "?sslmode=disable"
}

// Stop shuts the server down like pg_ctl stop -m fast (SIGINT to the
// postmaster: sessions are ended, a checkpoint written) and waits. A paused
// server is resumed first. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if err := s.proc.stop(); err != nil {
		s.t.Errorf("pgtest: stop: %v", err)
	}
	s.proc = nil
}

// Kill kills the postmaster and every server process with SIGKILL, as a
// crash of the server would, and waits; Start then runs crash recovery.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.kill()
	s.proc = nil
}

// Start starts a stopped or killed server again on the same port and data.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("pgtest: %v", err)
	}
}

// Pause freezes the postmaster and all its children (SIGSTOP): connections stay open and new ones are accepted by the
// kernel, but nothing is answered until Resume, like a server stuck on a
// dead disk or a network black hole.
func (s *Server) Pause() { s.t.Helper(); s.notify(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() { s.t.Helper(); s.notify(syscall.SIGCONT) }

func (s *Server) notify(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.t.Fatalf("pgtest: %s to a server that is not running", sig)
	}
	if err := s.proc.signalGroup(sig); err != nil {
		s.t.Fatalf("pgtest: %v", err)
	}
}

// destroy stops the server however it is (also paused) and removes its files.
func (s *Server) destroy() {
	s.mu.Lock()
	if s.proc != nil {
		if err := s.proc.stop(); err != nil {
			s.proc.kill()
		}
		s.proc = nil
	}
	s.mu.Unlock()
	s.removeDir()
}

func (s *Server) removeDir() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// start runs the postmaster and waits until it accepts connections. Right
// after a Kill the old server's shared memory may still count as attached
// for a moment (the killed processes are still being torn down), and the
// new postmaster exits at once: that is retried for a few seconds.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("start: the server is running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		p, err := s.runPostmaster()
		if err != nil {
			return err
		}
		err = p.waitReady(ctx, s.DSN("postgres"))
		if err == nil {
			s.proc = p
			return nil
		}
		p.kill()
		if !errors.Is(err, errExited) || attempt == 50 {
			return fmt.Errorf("postgres on port %d: %w\n%s", s.port, err, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Timeouts of the server's life cycle.
const (
	startTimeout = 60 * time.Second // crash recovery of a big benchmark database may take a while
	stopTimeout  = 60 * time.Second // the shutdown checkpoint
)
