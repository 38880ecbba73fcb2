package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devtrack/devtrack/internal/redisproc"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// Env is one harness run's world: the devtrack binary, a temp dir, its own
// redis-server and (when a scenario needs one) its own PostgreSQL.
type Env struct {
	Bin   string // devtrack binary
	Dir   string
	Quick bool
	Log   *zap.Logger
	Redis *redisproc.Server
	RDB   rueidis.Client
	Keys  redisq.Keys
	PG    *PGServer // nil until StartPG
	seq   int
}

// NewEnv starts redis-server on a free port with its data in dir.
func NewEnv(ctx context.Context, bin, dir string, quick bool, log *zap.Logger) (*Env, error) {
	port, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, fmt.Errorf("make redis dir: %w", err)
	}
	// No persistence: the benchmarks measure devtrack, not the disk.
	srv, err := redisproc.Start(ctx, rdir, port, "--save", "", "--appendonly", "no", "--maxclients", "30000")
	if err != nil {
		return nil, err
	}
	rdb, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		srv.Signal(syscall.SIGKILL)
		return nil, fmt.Errorf("connect to redis: %w", err)
	}
	return &Env{Bin: bin, Dir: dir, Quick: quick, Log: log, Redis: srv, RDB: rdb, Keys: redisq.NewKeys("")}, nil
}

// Close stops the servers.
func (e *Env) Close() {
	e.RDB.Close()
	e.Redis.Signal(syscall.SIGTERM)
	if e.PG != nil {
		e.PG.Stop()
	}
}

// FlushRedis empties the harness's own Redis between runs.
func (e *Env) FlushRedis(ctx context.Context) error {
	if err := e.RDB.Do(ctx, e.RDB.B().Flushall().Build()).Error(); err != nil {
		return fmt.Errorf("flush the bench redis: %w", err)
	}
	return nil
}

// NewSQLite returns the DSN of a new SQLite file.
func (e *Env) NewSQLite() string {
	e.seq++
	return "sqlite://" + filepath.Join(e.Dir, fmt.Sprintf("store-%d.db", e.seq))
}

// Proc is a running devtrack process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs devtrack args with the store dsn, its log in Dir/name.log.
func (e *Env) Start(name, dsn string, args ...string) (*Proc, error) {
	logf, err := os.Create(filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", name, err)
	}
	cmd := exec.Command(e.Bin, args...)
	cmd.Env = append(os.Environ(), "DEVTRACK_REDIS="+e.Redis.Addr(), "DEVTRACK_STORE="+dsn, "DEVTRACK_LOG_FORMAT=json", "DEVTRACK_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Gateway is a running devtrack gateway.
type Gateway struct {
	*Proc
	Base  string // http://127.0.0.1:port
	Port  int
	Pprof string // http://127.0.0.1:port of its --pprof listener
}

// StartGateway starts a gateway on a free port (or port, if not 0) and
// waits for /readyz.
func (e *Env) StartGateway(ctx context.Context, dsn string, port int, extra ...string) (*Gateway, error) {
	if port == 0 {
		var err error
		if port, err = redisproc.FreePort(); err != nil {
			return nil, err
		}
	}
	pprofPort, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"gateway", "--listen", "127.0.0.1:" + strconv.Itoa(port), "--id", "bench-gw", "--tiles", "none",
		"--pprof", "127.0.0.1:" + strconv.Itoa(pprofPort),
		"--device-rate", "100000", "--viewer-max-sockets", "100000", "--max-conns", "-1",
		// Every client of the harness comes from 127.0.0.1.
		"--max-unauthenticated", "-1", "--max-unauthenticated-per-address", "-1"}, extra...)
	p, err := e.Start(fmt.Sprintf("gateway-%d", port), dsn, args...)
	if err != nil {
		return nil, err
	}
	g := &Gateway{Proc: p, Base: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, Pprof: fmt.Sprintf("http://127.0.0.1:%d", pprofPort)}
	err = Poll(ctx, 30*time.Second, func() bool {
		resp, err := http.Get(g.Base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if err != nil || p.Exited() {
		p.Stop()
		log, _ := os.ReadFile(filepath.Join(e.Dir, p.Name+".log"))
		return nil, fmt.Errorf("gateway not ready: %v: %s", err, tail(string(log), 2000))
	}
	return g, nil
}

// StartWorker starts a worker with a fixed id.
func (e *Env) StartWorker(dsn, id string, extra ...string) (*Proc, error) {
	return e.Start("worker-"+id, dsn, append([]string{"worker", "--id", id}, extra...)...)
}

// Poll calls f every 10 ms until it is true; an error after timeout.
func Poll(ctx context.Context, timeout time.Duration, f func() bool) error {
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// LLen is the length of a list in the bench redis (0 on error).
func (e *Env) LLen(ctx context.Context, key string) int64 {
	n, _ := e.RDB.Do(ctx, e.RDB.B().Llen().Key(key).Build()).AsInt64()
	return n
}

type rueidisCmd = rueidis.Completed
