package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/devtrack/devtrack/storage"
)

// benchBatch is a batch of n records, half locations and half logs, spread
// over 100 devices, with ids starting at base so that every batch of a run is
// new.
func benchBatch(n, base int) storage.Batch {
	acc := 5.0
	var b storage.Batch
	for i := range n {
		id := fmt.Sprintf("r%09d", base+i)
		dev := fmt.Sprintf("dev%03d", (base+i)%100)
		ts := int64(1_700_000_000_000 + base + i)
		if i%2 == 0 {
			b.Locations = append(b.Locations, storage.Location{
				Device: dev, ID: id, TS: ts, ReceivedAt: ts + 5,
				Lat: 52.52 + float64(i)*1e-5, Lng: 13.40, Accuracy: &acc, CRS: "EPSG:4326",
			})
		} else {
			b.Logs = append(b.Logs, storage.LogEntry{
				Device: dev, ID: id, TS: ts, ReceivedAt: ts + 5, Level: "info",
				Message: "sensor reading ok temperature 21.5 battery 87 percent",
				Fields:  []byte(`{"temp":21.5,"battery":87}`),
			})
		}
	}
	return b
}

// BenchmarkSaveBatch writes batches of 500 new, mixed records.
func BenchmarkSaveBatch(b *testing.B) {
	const batchSize = 500
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
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
