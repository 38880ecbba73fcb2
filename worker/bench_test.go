package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/devtrack/devtrack/worker"
)

// BenchmarkDrain measures a worker draining a pre-filled ingest list into
// SQLite: take, store, publish, finish. It reports items/s; b.N is the
// number of items. Run with -benchtime=50000x or more.
func BenchmarkDrain(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	rdb, store := e.rdb, e.store
	batch := make([][]byte, 0, 1000)
	for i := range b.N {
		batch = append(batch, item(fmt.Sprintf("d%d", i%200), fmt.Sprintf("m%d", i), i%1000))
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := rdb.Push(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
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
