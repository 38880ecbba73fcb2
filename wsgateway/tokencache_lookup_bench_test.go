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
	st, toks := PostgresWithDevices(b, 1000)
	hashes := make([][]byte, len(toks))
	for i, tok := range toks {
		hashes[i] = token.Hash(tok)
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

// PostgresWithDevices opens a migrated storage/postgres store on a pgtest
// server of b's own and adds n devices d0, d1, ... in group g, each with a
// new device token; it returns the store and the tokens. It is the setup of
// the token benchmarks of both test packages, BenchmarkDeviceTokenLookup
// here and BenchmarkHandshakes in package wsgateway_test (which sees it
// because it is exported from a _test.go file of this package).
func PostgresWithDevices(b *testing.B, n int) (*postgres.Store, []string) {
	b.Helper()
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
	toks := make([]string, n)
	for i := range toks {
		toks[i] = token.New(token.DevicePrefix)
		if err := st.AddDevice(ctx, storage.Device{ID: "d" + strconv.Itoa(i), Group: "g"}, token.Hash(toks[i])); err != nil {
			b.Fatal(err)
		}
	}
	return st, toks
}
