package storagetest

import (
	"fmt"

	"github.com/devtrack/devtrack/storage"
)

// BenchBatch is a batch of n records, half locations and half logs, spread
// over 100 devices, with ids starting at base so that every batch of a run is
// new. Every store's SaveBatch benchmark writes these, so their figures
// compare.
func BenchBatch(n, base int) storage.Batch {
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
