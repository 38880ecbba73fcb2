package worker_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
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
// NORMAL (its setting in production). Each store runs with one and with
// two workers; DRAIN_BATCH=n sets Config.BatchSize (default: the worker's).
// cpu-us/item is this process's CPU per item, steadier than items/s on a
// shared machine.
func BenchmarkDrain(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("sqlite/workers=%d", workers), func(b *testing.B) {
			e := newEnv(b)
			drain(b, e.rdb, e.store, workers)
		})
		b.Run(fmt.Sprintf("postgres/workers=%d", workers), func(b *testing.B) {
			e := newEnv(b)
			pg := pgtest.StartWith(b, pgtest.Options{Durable: true})
			st := openMigrated(b, func(ctx context.Context) (storage.Store, error) {
				return backend.Open(ctx, pg.NewDB(b), nil)
			})
			drain(b, e.rdb, st, workers)
		})
	}
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

// drain runs workers workers on one store until they stored b.N items.
func drain(b *testing.B, rdb *redisq.Client, store worker.BatchStore, workers int) {
	ctx := context.Background()
	fillIngest(b, rdb, b.N)
	ws := make([]*worker.Worker, workers)
	for i := range ws {
		batch, _ := strconv.Atoi(os.Getenv("DRAIN_BATCH"))
		w, err := worker.New(worker.Config{ID: fmt.Sprintf("bench-%d", i), Block: 100 * time.Millisecond, BatchSize: batch}, rdb, store, nil)
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	stored := func() (n int64) {
		for _, w := range ws {
			n += w.Stats().Stored
		}
		return n
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, workers)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	for _, w := range ws {
		go func() { done <- w.Run(runCtx) }()
	}
	for stored() < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	cancel()
	for range ws {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
	// The CPU this process spent per item (the worker's side: not Redis's
	// nor PostgreSQL's) varies less than items/s on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/item")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
