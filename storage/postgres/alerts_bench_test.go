package postgres

import (
	"context"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/storagetest"
)

// BenchmarkApplyAlerts is the SQLite store's (storage/sqlite), on pgtest's
// server (fsync off).
func BenchmarkApplyAlerts(b *testing.B) {
	const batchSize = 500
	ctx := context.Background()
	st := newStore(b, true)
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
