package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
)

// Two worker processes with retention on one SQLite file: the one that
// holds the lock is killed with SIGKILL while it purges; its lease runs out,
// the other takes over, and when it is done everything older than the
// bound is gone and everything newer kept.
func TestRetentionHolderKill9AnotherWorkerTakesOver(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	st, err := backend.Open(ctx, c.dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const old, recent = 20_000, 300
	oldTS, newTS := time.Now().Add(-3*time.Hour).UnixMilli(), time.Now().Add(-10*time.Minute).UnixMilli()
	for start := 0; start < old+recent; start += 1000 {
		var b storage.Batch
		for i := start; i < min(old+recent, start+1000); i++ {
			ts, id := oldTS+int64(i), fmt.Sprintf("old%d", i)
			if i >= old {
				ts, id = newTS+int64(i), fmt.Sprintf("new%d", i)
			}
			dev := fmt.Sprintf("d%d", i%10)
			b.Locations = append(b.Locations, storage.Location{Device: dev, ID: id, TS: ts, ReceivedAt: ts, Lat: 1, Lng: 2})
			b.Logs = append(b.Logs, storage.LogEntry{Device: dev, ID: id, TS: ts, ReceivedAt: ts, Level: "info", Message: "reading " + id})
		}
		if _, err := st.SaveBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	const ttl = 3 * time.Second
	// The run must outlast the look at its first chunk: a plain build of
	// the worker (DEVTRACK_E2E_NORACE, as ./scripts/test runs it) purges
	// chunks of 200 (or 20) so fast that the run could end before the kill.
	chunk := "200"
	if os.Getenv("DEVTRACK_E2E_NORACE") != "" {
		chunk = "2"
	}
	args := func(id string) []string {
		return []string{"worker", "--id", id, "--retain-logs", "1h", "--retain-locations", "1h",
			"--retain-every", "200ms", "--retain-lock-ttl", ttl.String(), "--retain-chunk", chunk, "--log-level", "debug"}
	}
	workers := map[string]*proc{"w1": c.start("w1", args("w1")...), "w2": c.start("w2", args("w2")...)}

	rdb, err := redisq.Open(ctx, c.redis.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var holder string
	checkFor(t, 30*time.Second, "a worker to hold the retention lock", func() bool {
		holder, _ = rdb.LockHolder(ctx, "retention")
		return holder != ""
	})
	first, _, _ := strings.Cut(holder, "~")
	// Purging: let it remove something first.
	checkFor(t, 60*time.Second, first+" to purge a chunk", func() bool {
		b, _ := os.ReadFile(workers[first].log)
		return strings.Contains(string(b), `"retention_holder":"`+holder) && c.countOlder(time.Now().Add(-time.Hour).UnixMilli()) < 2*old
	})
	if h, _ := rdb.LockHolder(ctx, "retention"); h != holder {
		t.Fatalf("the run ended before the kill (holder now %q); the test needs more old rows", h)
	}
	workers[first].kill9()
	killed := time.Now()
	survivor := map[string]string{"w1": "w2", "w2": "w1"}[first]

	checkFor(t, 30*time.Second, survivor+" to take the lock", func() bool {
		h, _ := rdb.LockHolder(ctx, "retention")
		return strings.HasPrefix(h, survivor+"~")
	})
	// The lease was renewed at most a third of it before the kill.
	if took := time.Since(killed); took < ttl*2/3-200*time.Millisecond {
		t.Errorf("%s took the lock %s after the kill, before the lease could end", survivor, took)
	}
	bound := time.Now().Add(-time.Hour).UnixMilli()
	checkFor(t, 180*time.Second, "every old record purged", func() bool { return c.countOlder(bound) == 0 })
	if n := c.countNewer(bound); n != 2*recent {
		t.Errorf("%d records newer than the bound left, want %d", n, 2*recent)
	}
	if code := workers[survivor].stop(t); code != 0 {
		t.Errorf("%s exited %d after SIGTERM", survivor, code)
	}
	b, _ := os.ReadFile(workers[survivor].log)
	if !strings.Contains(string(b), `"msg":"retention purged"`) {
		t.Errorf("%s logged no purge:\n%s", survivor, tail(string(b), 2000))
	}
}

// countOlder and countNewer count the records of both kinds with ts
// before bound, and at or after it.
func (c *cluster) countOlder(bound int64) int { return c.countRange(1, bound-1) }

func (c *cluster) countNewer(bound int64) int { return c.countRange(bound, 0) }

func (c *cluster) countRange(from, to int64) int {
	c.t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, c.dsn, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	n := 0
	for d := range 10 {
		q := storage.LocationQuery{Device: fmt.Sprintf("d%d", d), FromMS: from, ToMS: to, Limit: 1000}
		for {
			page, next, err := st.Locations(ctx, q)
			if err != nil {
				c.t.Fatal(err)
			}
			n += len(page)
			if next == "" {
				break
			}
			q.Cursor = next
		}
	}
	q := storage.LogQuery{FromMS: from, ToMS: to, Limit: 1000}
	for {
		page, next, err := st.Logs(ctx, q)
		if err != nil {
			c.t.Fatal(err)
		}
		n += len(page)
		if next == "" {
			return n
		}
		q.Cursor = next
	}
}
