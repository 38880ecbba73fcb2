package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
	"github.com/devtrack/devtrack/worker"
)

// BenchmarkDrain measures a worker draining a pre-filled ingest list into
// each store: take, store, publish, finish. It reports items/s; b.N is the
// number of items. Run with -benchtime=50000x or more; the figure
// is -benchtime=1000000x -count=3. PostgreSQL runs durable (fsync and
// synchronous commit on, as in production), SQLite in WAL with synchronous
// NORMAL (its setting in production).
func BenchmarkDrain(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		e := newEnv(b)
		drain(b, e.rdb, e.store)
	})
	b.Run("postgres", func(b *testing.B) {
		e := newEnv(b)
		pg := pgtest.StartWith(b, pgtest.Options{Durable: true})
		st := openMigrated(b, func(ctx context.Context) (storage.Store, error) {
			return backend.Open(ctx, pg.NewDB(b), nil)
		})
		drain(b, e.rdb, st)
	})
}

// openMigrated opens a store with open, closes it when b ends, and
// migrates it.
func openMigrated(b *testing.B, open func(ctx context.Context) (storage.Store, error)) storage.Store {
	b.Helper()
	ctx := context.Background()
	st, err := open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return st
}

// fillIngest pushes n items onto the ingest list, 1,000 a push: locations
// of 200 devices, ids m0, m1, ...
func fillIngest(b *testing.B, rdb *redisq.Client, n int) {
	b.Helper()
	ctx := context.Background()
	batch := make([][]byte, 0, 1000)
	for i := range n {
		batch = append(batch, item(fmt.Sprintf("d%d", i%200), fmt.Sprintf("m%d", i), i%1000))
		if len(batch) == cap(batch) || i == n-1 {
			if err := rdb.Push(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

func drain(b *testing.B, rdb *redisq.Client, store worker.BatchStore) {
	ctx := context.Background()
	fillIngest(b, rdb, b.N)
	w, err := worker.New(worker.Config{Block: 100 * time.Millisecond}, rdb, store, nil)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- w.Run(runCtx) }()
	for w.Stats().Stored < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
}
