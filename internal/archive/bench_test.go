package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// benchFill stores devices x days x perDay locations and as many logs
// before `before`.
func benchFill(b *testing.B, st storage.Store, devices, days, perDay int) int {
	ctx := context.Background()
	n := 0
	for d := 0; d < devices; d++ {
		dev := fmt.Sprintf("dev-%04d", d)
		if err := st.AddDevice(ctx, storage.Device{ID: dev, CreatedAt: 1}, []byte(dev)); err != nil {
			b.Fatal(err)
		}
		var batch storage.Batch
		step := day / int64(perDay)
		for i := 0; i < days*perDay; i++ {
			ts := before - int64(days)*day + int64(i)*step + int64(d)
			acc := 12.5
			batch.Locations = append(batch.Locations, storage.Location{Device: dev, ID: fmt.Sprintf("l%d", i), TS: ts, ReceivedAt: ts + 3,
				Lat: 31.2304, Lng: 121.4737, Accuracy: &acc, CRS: "wgs84"})
			batch.Logs = append(batch.Logs, storage.LogEntry{Device: dev, ID: fmt.Sprintf("g%d", i), TS: ts, ReceivedAt: ts + 3,
				Level: "info", Message: fmt.Sprintf("door %d opened after 設備開門 check", i), Fields: json.RawMessage(`{"door":2}`)})
			if batch.Len() >= 10000 {
				if _, err := st.SaveBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = storage.Batch{}
			}
		}
		if _, err := st.SaveBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
		n += 2 * days * perDay
	}
	return n
}

// BenchmarkExportImport exports 20 devices x 30 days x 500 locations and
// as many logs (600,000 records, 1,200 files) and imports them into an
// empty store, reporting records/s of each.
func BenchmarkExportImport(b *testing.B) {
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			src := s.open(b)
			n := benchFill(b, src, 20, 30, 500)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				start := time.Now()
				res, err := Export(context.Background(), src, ExportConfig{Dir: dir, BeforeMS: before}, nil)
				if err != nil || res.Records != int64(n) {
					b.Fatalf("export: %+v, %v", res, err)
				}
				exp := time.Since(start)
				dst := s.open(b)
				start = time.Now()
				ir, err := Import(context.Background(), dst, dir, nil)
				if err != nil || ir.Inserted != int64(n) {
					b.Fatalf("import: %+v, %v", ir, err)
				}
				imp := time.Since(start)
				b.ReportMetric(float64(n)/exp.Seconds(), "export-records/s")
				b.ReportMetric(float64(n)/imp.Seconds(), "import-records/s")
			}
		})
	}
}
