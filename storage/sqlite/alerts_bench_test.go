package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/storagetest"
)

// BenchmarkApplyAlerts applies the transitions of batches of 500 locations
// against 10 geofences (5,000 transitions, 500 flips with an event, an
// alert and a delivery each), as a worker does after each stored batch.
func BenchmarkApplyAlerts(b *testing.B) {
	const batchSize = 500
	ctx := context.Background()
	st := openTemp(b, filepath.Join(b.TempDir(), "bench.db"))
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateWebhook(ctx, storage.Webhook{ID: "h", URL: "http://127.0.0.1:9/h"}); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ts := storagetest.BenchTransitions(batchSize, i)
		b.StartTimer()
		if _, _, err := st.ApplyAlerts(ctx, ts, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "locations/s")
}
