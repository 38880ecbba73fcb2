package bridge

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
	"github.com/devtrack/devtrack/worker"
)

// env is a real redis-server, a real SQLite store and a worker draining the
// ingest list into it, in-process.
type env struct {
	t     *testing.T
	srv   *redistest.Server
	rdb   *redisq.Client
	store *sqlite.Store
}

func newEnv(t *testing.T, devices ...string) *env {
	t.Helper()
	srv := redistest.Start(t)
	rdb, err := redisq.Open(context.Background(), srv.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "b.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range devices {
		h := sha256.Sum256([]byte("token-" + d))
		if err := st.AddDevice(context.Background(), storage.Device{ID: d, CreatedAt: time.Now().UnixMilli()}, h[:]); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, srv: srv, rdb: rdb, store: st}
	e.startWorker()
	return e
}

func (e *env) startWorker() {
	w, err := worker.New(worker.Config{Block: 100 * time.Millisecond, Devices: e.store}, e.rdb, e.store, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.goUntilCleanup("worker", w.Run)
}

// goUntilCleanup runs fn until the test ends; cleanup cancels and waits.
func (e *env) goUntilCleanup(what string, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := fn(ctx); err != nil {
			e.t.Errorf("%s returned %v", what, err)
		}
	})
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// stored counts the stored locations of device by id.
func (e *env) stored(device string) map[string]int {
	e.t.Helper()
	return testutil.StoredLocations(e.t, e.store, device)
}

func checkFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.CheckFor(t, timeout, what, cond)
}
