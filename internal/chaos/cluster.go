package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	_ "github.com/jackc/pgx/v5/stdlib" // duplicate check of a PostgreSQL store
	_ "modernc.org/sqlite"             // read-only check of the store file
)

// Cluster is one case's world: a redis-server, a store (a SQLite file, or
// a PostgreSQL database given as DSN), devtrack processes, and an admin API
// token.
type Cluster struct {
	T          testing.TB
	Dir        string // logs, and the store unless StoreDir was given
	StoreDir   string
	DSN        string
	Redis      *Redis
	AdminToken string
	// API is the base URL of the gateway whose query API the checks use.
	API  string
	http *http.Client
}

// ClusterOptions are the knobs of NewCluster.
type ClusterOptions struct {
	Redis    RedisOptions
	StoreDir string // default: a temp dir
	// RedisAddr is the address the CLI uses (default Redis.Addr()).
	RedisAddr string
	// DSN is the store, e.g. a postgres:// database; default a SQLite file
	// in StoreDir.
	DSN string
}

// NewCluster starts Redis, migrates the store and adds an admin user.
func NewCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	c := &Cluster{T: t, Dir: t.TempDir(), StoreDir: o.StoreDir, http: &http.Client{Timeout: 10 * time.Second}}
	if c.StoreDir == "" {
		c.StoreDir = c.Dir
	}
	c.DSN = o.DSN
	if c.DSN == "" {
		c.DSN = "sqlite://" + filepath.Join(c.StoreDir, "devtrack.db")
	}
	c.Redis = StartRedis(t, o.Redis)
	c.CLI("migrate")
	c.AdminToken = lastLine(c.CLI("user", "add", "chaos-admin", "--role", "admin"))
	return c
}

// Env is the environment of devtrack processes that reach Redis at redisAddr.
func (c *Cluster) Env(redisAddr string) []string {
	return append(os.Environ(), "DEVTRACK_REDIS="+redisAddr, "DEVTRACK_STORE="+c.DSN, "DEVTRACK_LOG_FORMAT=json")
}

// CLI runs a devtrack command against the cluster and returns its stdout.
func (c *Cluster) CLI(args ...string) string {
	c.T.Helper()
	return run(c.T, c.Env(c.Redis.Addr()), Binary, args...)
}

// FreePort is a free TCP port on 127.0.0.1.
func (c *Cluster) FreePort() int { return redistest.FreePort(c.T) }

// StartGateway starts a gateway named name (also its --id) on 127.0.0.1:port,
// reaching Redis at redisAddr ("" for Redis.Addr()), and waits until /readyz
// answers 200. It makes the gateway the API of the checks.
func (c *Cluster) StartGateway(name string, port int, redisAddr string, w Wrap, args ...string) *Proc {
	c.T.Helper()
	if redisAddr == "" {
		redisAddr = c.Redis.Addr()
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := StartProc(c.T, c.Dir, name, c.Env(redisAddr), w,
		append([]string{"gateway", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--id", name, "--tiles", "none"}, args...)...)
	c.API = base
	c.WaitFor(30*time.Second, name+" /readyz 200", func() error {
		if exited, code := p.Exited(); exited {
			c.T.Fatalf("%s exited with %d at start", name, code)
		}
		if s := Status(base + "/readyz"); s != 200 {
			return fmt.Errorf("status %d", s)
		}
		return nil
	})
	return p
}

// StartWorker starts a worker reaching Redis at redisAddr ("" for Redis.Addr()).
func (c *Cluster) StartWorker(name, redisAddr string, w Wrap, args ...string) *Proc {
	c.T.Helper()
	if redisAddr == "" {
		redisAddr = c.Redis.Addr()
	}
	return StartProc(c.T, c.Dir, name, c.Env(redisAddr), w, append([]string{"worker"}, args...)...)
}

// WaitFor polls f every 50 ms until it returns nil; after timeout it fails
// the test with what it waited for and f's last error.
func (c *Cluster) WaitFor(timeout time.Duration, what string, f func() error) {
	c.T.Helper()
	if err := poll(timeout, f); err != nil {
		c.T.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Status is the HTTP status of a GET of u, or 0 if there was no answer within 2 s.
func Status(u string) int {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(u)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Get fetches an API path with the admin token and decodes the JSON answer.
func (c *Cluster) Get(path string, out any) error {
	req, _ := http.NewRequest("GET", c.API+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// QueueStats is GET /api/v1/queue.
type QueueStats struct {
	Pending  int `json:"pending"`
	InFlight int `json:"in_flight"`
	Dead     int `json:"dead"`
	Workers  int `json:"workers"`
}

// Queue reads GET /api/v1/queue.
func (c *Cluster) Queue() (QueueStats, error) {
	var q QueueStats
	err := c.Get("/api/v1/queue", &q)
	return q, err
}

// Online returns the ids of devices that GET /api/v1/devices shows online.
func (c *Cluster) Online() ([]string, error) {
	var out struct {
		Items []struct {
			ID     string `json:"id"`
			Online bool   `json:"online"`
		} `json:"items"`
	}
	if err := c.Get("/api/v1/devices", &out); err != nil {
		return nil, err
	}
	var on []string
	for _, d := range out.Items {
		if d.Online {
			on = append(on, d.ID)
		}
	}
	return on, nil
}

// Scan pages through the locations and logs of each device and counts the
// rows per "device/id".
func (c *Cluster) Scan(devices []string) (map[string]int, error) {
	rows := map[string]int{}
	for _, d := range devices {
		for _, base := range []string{
			"/api/v1/devices/" + url.PathEscape(d) + "/locations?limit=1000",
			"/api/v1/logs?limit=1000&device=" + url.QueryEscape(d),
		} {
			cursor := ""
			for {
				var page struct {
					Items []struct {
						Device string `json:"device"`
						ID     string `json:"id"`
					} `json:"items"`
					Next string `json:"next_cursor"`
				}
				if err := c.Get(base+"&cursor="+url.QueryEscape(cursor), &page); err != nil {
					return nil, err
				}
				for _, it := range page.Items {
					rows[it.Device+"/"+it.ID]++
				}
				if page.Next == "" {
					break
				}
				cursor = page.Next
			}
		}
	}
	return rows, nil
}

// DeadLetters lists every dead letter (devtrack queue dead list) as "device/id".
func (c *Cluster) DeadLetters() ([]string, error) {
	out := c.CLI("queue", "dead", "list", "--limit", "1000000")
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var d redisq.DeadLetter
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			return nil, fmt.Errorf("dead letter line %q: %w", line, err)
		}
		var it protocol.Item
		if err := json.Unmarshal([]byte(d.Item), &it); err != nil {
			keys = append(keys, "?/"+d.Item)
			continue
		}
		keys = append(keys, it.Device+"/"+it.ID)
	}
	return keys, nil
}

// StoreDuplicates opens the store's database directly (the SQLite file
// read-only) and counts the (device, id) pairs held by more than one row of
// locations or logs. The schema should make it 0; this checks it instead of
// trusting it.
func (c *Cluster) StoreDuplicates() (int, error) {
	driver, dsn := "sqlite", "file:"+filepath.Join(c.StoreDir, "devtrack.db")+"?mode=ro&_pragma=busy_timeout(5000)"
	if strings.HasPrefix(c.DSN, "postgres") {
		driver, dsn = "pgx", c.DSN
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM (SELECT 1 FROM locations GROUP BY device, id HAVING COUNT(*) > 1) AS l) +
		(SELECT COUNT(*) FROM (SELECT 1 FROM logs GROUP BY device, id HAVING COUNT(*) > 1) AS g)`).Scan(&n)
	return n, err
}
