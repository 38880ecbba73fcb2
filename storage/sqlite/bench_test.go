package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/devtrack/devtrack/storage/storagetest"
)

// benchBatch is storagetest.BenchBatch, the batches of every store's
// SaveBatch benchmark.
var benchBatch = storagetest.BenchBatch

// BenchmarkSaveBatch writes batches of 500 new, mixed records.
func BenchmarkSaveBatch(b *testing.B) {
	const batchSize = 500
	ctx := context.Background()
	st := openBenchStore(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Building the batch is the gateway's and worker's cost, not the store's.
		b.StopTimer()
		bt := benchBatch(batchSize, i*batchSize)
		b.StartTimer()
		res, err := st.SaveBatch(ctx, bt)
		if err != nil {
			b.Fatal(err)
		}
		if res.Inserted != batchSize {
			b.Fatalf("inserted %d of %d", res.Inserted, batchSize)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "items/s")
}

// openBenchStore opens a migrated store in b's temp dir, closed when b ends.
func openBenchStore(b *testing.B) *Store {
	b.Helper()
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return st
}
