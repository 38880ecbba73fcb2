package wsgateway

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/postgres"
)

// BenchmarkDeviceTokenLookup is the token lookup alone (what a handshake
// asks of the store), without WebSocket, Redis or HTTP around it: 32
// concurrent callers cycling through 1,000 devices of a storage/postgres
// store on a pgtest server, straight from the store and through the token
// cache. BenchmarkHandshakes measures the whole handshake.
//
//	go test -run '^$' -bench DeviceTokenLookup -count 3 ./wsgateway/
func BenchmarkDeviceTokenLookup(b *testing.B) {
	ctx := context.Background()
	srv := pgtest.Start(b)
	st, err := postgres.Open(ctx, srv.NewDB(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	hashes := make([][]byte, 1000)
	for i := range hashes {
		hashes[i] = token.Hash(token.New(token.DevicePrefix))
		if err := st.AddDevice(ctx, storage.Device{ID: "d" + strconv.Itoa(i), Group: "g"}, hashes[i]); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, lookup deviceLookup, queries func() float64) {
		var next atomic.Int64
		before := queries()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := lookup(ctx, hashes[int(next.Add(1))%len(hashes)]); err != nil {
					b.Errorf("lookup: %v", err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		b.ReportMetric((queries()-before)/float64(b.N), "queries/op")
	}
	b.Run("cache=false", func(b *testing.B) {
		var n atomic.Int64
		counted := func(ctx context.Context, h []byte) (storage.Device, error) {
			n.Add(1)
			return st.DeviceByTokenHash(ctx, h)
		}
		run(b, counted, func() float64 { return float64(n.Load()) })
	})
	b.Run("cache=true", func(b *testing.B) {
		c, err := newTokenCache(100_000, time.Minute, st.DeviceByTokenHash)
		if err != nil {
			b.Fatal(err)
		}
		// The polls are current for the whole run (a real gateway's report
		// every RevokePoll).
		c.now = func() time.Time { return time.Unix(1, 0) }
		c.revocationsChecked(c.now(), nil)
		c.rotationsChecked(c.now(), nil)
		run(b, c.lookup, func() float64 { return counterValue(tokenStoreLookups) })
	})
}
