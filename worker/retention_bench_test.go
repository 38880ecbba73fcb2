package worker_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/postgres"
	"github.com/devtrack/devtrack/storage/sqlite"
	"github.com/devtrack/devtrack/worker"
)

// BenchmarkDrainDuringRetention measures what retention costs the drain: a
// worker drains b.N items into a SQLite store pre-filled with old records
// (DEVTRACK_BENCH_OLD_ROWS locations and as many logs, default 1,000,000
// each, all older than the bound), once with retention off ("idle") and
// once with a retention run purging the old records meanwhile
// ("retention", default chunk and share). Both report items/s; retention
// also reports the records it removed per second while the drain ran.
// Each run starts from a copy of the same pre-filled file.
//
//	go test -run '^$' -bench DrainDuringRetention -benchtime 200000x -count 3 ./worker/
func BenchmarkDrainDuringRetention(b *testing.B) {
	template := oldStoreTemplate(b)
	for _, mode := range []string{"idle", "retention"} {
		b.Run(mode, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "w.db")
			copyFile(b, template, path)
			store := openMigrated(b, func(ctx context.Context) (storage.Store, error) {
				return sqlite.Open(ctx, path, nil)
			})
			drainWithRetention(b, store, mode == "retention")
		})
	}
}

// BenchmarkDrainDuringRetentionPostgres is BenchmarkDrainDuringRetention
// on a PostgreSQL server of its own (pgtest), each run on a copy of a
// template database filled once per server. The server and its template
// belong to one call of the benchmark, so it runs both modes three times
// itself (run with -count 1):
//
//	go test -run '^$' -bench DrainDuringRetentionPostgres -benchtime 100000x ./worker/
func BenchmarkDrainDuringRetentionPostgres(b *testing.B) {
	srv := pgtest.Start(b)
	srv.Template(b, "old", func(dsn string) error {
		return fillOldStore(func(ctx context.Context) (storage.Store, error) {
			return postgres.Open(ctx, dsn, nil)
		}, benchOldRows())
	})
	for i := range 3 {
		for _, mode := range []string{"idle", "retention"} {
			b.Run(fmt.Sprintf("%s/run%d", mode, i+1), func(b *testing.B) {
				store := openMigrated(b, func(ctx context.Context) (storage.Store, error) {
					return postgres.Open(ctx, srv.NewDBFrom(b, "old"), nil)
				})
				drainWithRetention(b, store, mode == "retention")
			})
		}
	}
}

// drainStore is what the drain and retention need of a store.
type drainStore interface {
	worker.BatchStore
	worker.RetentionStore
}

func drainWithRetention(b *testing.B, store drainStore, retain bool) {
	ctx := context.Background()
	srv := redistest.Start(b)
	rdb, err := redisq.Open(ctx, srv.Addr(), "devtrack")
	if err != nil {
		b.Fatal(err)
	}
	defer rdb.Close()
	fillIngest(b, rdb, b.N)
	w, err := worker.New(worker.Config{Block: 100 * time.Millisecond}, rdb, store, nil)
	if err != nil {
		b.Fatal(err)
	}
	var ret *worker.Retention
	if retain {
		ret, err = worker.NewRetention(worker.RetentionConfig{Logs: time.Hour, Locations: time.Hour, Every: time.Hour, Busy: w.Busy}, rdb, store, nil)
		if err != nil {
			b.Fatal(err)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	if ret != nil {
		bg.Go(func() { _ = ret.Run(runCtx) })
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	for w.Stats().Stored < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var removed int64
	var finished bool
	if ret != nil {
		s := ret.Stats()
		removed, finished = s.Logs+s.Locations, s.Runs > 0
	}
	cancel()
	bg.Wait()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
	if ret != nil {
		b.ReportMetric(float64(removed)/elapsed.Seconds(), "purged/s")
		if finished {
			b.Logf("retention finished before the drain did: the drain was not measured under retention all along")
		}
	}
}

// oldStoreTemplate builds, once per process, a SQLite file of old records
// and returns its path.
func oldStoreTemplate(b *testing.B) string {
	templateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "devtrack-retention-bench-")
		if err != nil {
			templateErr = err
			return
		}
		templatePath = filepath.Join(dir, "old.db")
		templateErr = fillOldStore(func(ctx context.Context) (storage.Store, error) {
			return sqlite.Open(ctx, templatePath, nil)
		}, benchOldRows())
	})
	if templateErr != nil {
		b.Fatal(templateErr)
	}
	return templatePath
}

var (
	templateOnce sync.Once
	templatePath string
	templateErr  error
)

// TestMain removes the benchmark's template file, which outlives one
// benchmark function so that -count runs share it.
func TestMain(m *testing.M) {
	code := m.Run()
	if templatePath != "" {
		_ = os.RemoveAll(filepath.Dir(templatePath))
	}
	os.Exit(code)
}

// benchOldRows is DEVTRACK_BENCH_OLD_ROWS, default 1,000,000.
func benchOldRows() int {
	if v, err := strconv.Atoi(os.Getenv("DEVTRACK_BENCH_OLD_ROWS")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

// fillOldStore opens a store with open, migrates it, fills it with n old
// records (fillOld) and closes it.
func fillOldStore(open func(ctx context.Context) (storage.Store, error), n int) error {
	ctx := context.Background()
	st, err := open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if err := fillOld(st, n); err != nil {
		return err
	}
	return st.Close()
}

// fillOld writes n locations and n logs over 200 devices, one per second
// of device time ending a day ago.
func fillOld(st worker.BatchStore, n int) error {
	ctx := context.Background()
	end := time.Now().Add(-24 * time.Hour).UnixMilli()
	acc := 5.0
	for start := 0; start < n; start += 2000 {
		var bt storage.Batch
		for i := start; i < min(n, start+2000); i++ {
			dev := fmt.Sprintf("d%d", i%200)
			id := fmt.Sprintf("old%d", i)
			ts := end - int64(n-i)*1000
			bt.Locations = append(bt.Locations, storage.Location{Device: dev, ID: id, TS: ts, ReceivedAt: ts + 40,
				Lat: 52.52 + float64(i%1000)*1e-5, Lng: 13.40, Accuracy: &acc})
			bt.Logs = append(bt.Logs, storage.LogEntry{Device: dev, ID: id, TS: ts, ReceivedAt: ts + 40, Level: "info",
				Message: "sensor reading ok temperature 21.5 battery 87 percent " + id,
				Fields:  []byte(`{"temp":21.5,"battery":87}`)})
		}
		if _, err := st.SaveBatch(ctx, bt); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(b *testing.B, from, to string) {
	src, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
}
