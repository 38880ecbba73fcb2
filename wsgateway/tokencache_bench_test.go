package wsgateway_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage/sqlite"
	"github.com/devtrack/devtrack/wsgateway"
)

// BenchmarkHandshakes measures device handshakes per second (dial, token
// lookup, link in Redis, upgrade, close) from 32 concurrent clients cycling
// through 1,000 registered devices, with the token cache on and off, against
// a store whose token lookup costs:
//
//   - sqlite: a local SQLite file, no round trip (one host, as today);
//
//   - sqlite+1ms: the same plus 1 ms per lookup, a store on another host;
//
//   - postgres: storage/postgres on a real PostgreSQL server started by
//     pgtest on this host (loopback TCP, the server sharing the CPUs).
//
//     go test -run '^$' -bench Handshakes -count 3 ./wsgateway/
func BenchmarkHandshakes(b *testing.B) {
	stores := []struct {
		name  string
		delay time.Duration
		pg    bool
	}{{"sqlite", 0, false}, {"sqlite+1ms", time.Millisecond, false}, {"postgres", 0, true}}
	for _, st := range stores {
		for _, cache := range []bool{false, true} {
			name := fmt.Sprintf("store=%s/cache=%v", st.name, cache)
			// Set up once per variant: a benchmark that runs
			// sub-benchmarks is itself run once, they are scaled.
			b.Run(name, func(b *testing.B) {
				cfg := cacheConfig(wsgateway.Config{})
				if !cache {
					cfg.TokenCacheSize = -1
				}
				benchHandshakes(b, cfg, st.delay, st.pg)
			})
		}
	}
}

func benchHandshakes(b *testing.B, cfg wsgateway.Config, delay time.Duration, pg bool) {
	var toks []string
	var base func(*sqlite.Store) wsgateway.Store
	if pg {
		pgs, pgToks := wsgateway.PostgresWithDevices(b, 1000)
		toks = pgToks
		base = func(*sqlite.Store) wsgateway.Store { return pgs }
	}
	c, stores := newClusterOn(b, 1, cfg, delay, base)
	if !pg {
		toks = make([]string, 1000)
		for i := range toks {
			toks[i] = c.addDevice("d"+strconv.Itoa(i), "g")
		}
	}
	for _, tok := range toks { // warm: each device once (fills the cache when on)
		if st := c.status(tok); st != 101 {
			b.Fatalf("warm-up handshake: %d", st)
		}
	}
	var next atomic.Int64
	b.Run("handshakes", func(b *testing.B) {
		before := stores[0].lookups.Load()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tok := toks[int(next.Add(1))%len(toks)]
				ws, _, err := c.dial(tok)
				if err != nil {
					b.Errorf("handshake: %v", err)
					return
				}
				ws.Close()
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		b.ReportMetric(float64(stores[0].lookups.Load()-before)/float64(b.N), "lookups/op")
	})
}
