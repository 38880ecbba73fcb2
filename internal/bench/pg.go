package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/devtrack/devtrack/internal/redisproc"
	"github.com/jackc/pgx/v5"
)

// PGServer is the harness's own PostgreSQL (initdb and postgres from
// /usr/lib/postgresql/*/bin on a free port, as internal/testutil/pgtest
// does, which needs a testing.TB). It runs with fsync off: the drain
// measures devtrack's statements, not this box's disk.
type PGServer struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	seq  int
}

// StartPG starts the server once per Env.
func (e *Env) StartPG(ctx context.Context) (*PGServer, error) {
	if e.PG != nil {
		return e.PG, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no PostgreSQL server in /usr/lib/postgresql/*/bin")
	}
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(dirs[i]))), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(dirs[j]))), 64)
		return vi < vj
	})
	bin := filepath.Dir(dirs[len(dirs)-1])
	port, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.Dir, "pg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make pg dir: %w", err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("chown pg dir: %w", err)
		}
		_ = os.Chmod(e.Dir, 0o755)
	}
	command := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, name), args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
		return c
	}
	data := filepath.Join(dir, "data")
	if out, err := command("initdb", "-D", data, "-U", "postgres", "--encoding=UTF8", "--locale=C.UTF-8",
		"--auth=trust", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	if cred != nil {
		_ = logf.Chown(int(cred.Uid), int(cred.Gid))
	}
	cmd := command("postgres", "-D", data, "-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir, "-c", "max_connections=200", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=256MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &PGServer{Port: port, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	err = Poll(ctx, 30*time.Second, func() bool {
		c, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err != nil {
			return false
		}
		_ = c.Close(ctx)
		return true
	})
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("postgres not ready: %w", err)
	}
	e.PG = s
	return s, nil
}

func (s *PGServer) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// NewDB creates an empty database and returns its DSN.
func (s *PGServer) NewDB(ctx context.Context) (string, error) {
	s.seq++
	name := fmt.Sprintf("bench%d", s.seq)
	c, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to postgres: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.dsn(name), nil
}

// Stop is a fast shutdown.
func (s *PGServer) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
