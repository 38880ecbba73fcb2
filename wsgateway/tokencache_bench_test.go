package wsgateway_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
//   - postgres: a real PostgreSQL server started by pgtest on this host (the
//     lookup through a pgx pool over TCP; the polls stay on SQLite, as
//     storage/postgres had not landed when this was written).
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
	var pgt *pgTokens
	var base func(*sqlite.Store) wsgateway.Store
	if pg {
		// The gateway's token lookups go to PostgreSQL instead.
		pgt = newPGTokens(b)
		base = func(st *sqlite.Store) wsgateway.Store { pgt.Store = st; return pgt }
	}
	c, stores := newClusterOn(b, 1, cfg, delay, base)
	toks := make([]string, 1000)
	for i := range toks {
		toks[i] = c.addDevice("d"+strconv.Itoa(i), "g")
		if pgt != nil {
			pgt.add(b, "d"+strconv.Itoa(i), token.Hash(toks[i]))
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

// pgTokens is a wsgateway.Store whose device token lookup is a query to a
// real PostgreSQL server; everything else is the SQLite store's.
type pgTokens struct {
	wsgateway.Store
	pool *pgxpool.Pool
}

func newPGTokens(b *testing.B) *pgTokens {
	b.Helper()
	ctx := context.Background()
	srv := pgtest.Start(b)
	pool, err := pgxpool.New(ctx, srv.NewDB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE devices (id text PRIMARY KEY, name text NOT NULL DEFAULT '',
		grp text NOT NULL, token_hash bytea NOT NULL UNIQUE, created_at bigint NOT NULL,
		revoked_at bigint, token_rotated_at bigint)`); err != nil {
		b.Fatal(err)
	}
	return &pgTokens{pool: pool}
}

// add registers a device with the hash of its token.
func (p *pgTokens) add(b *testing.B, id string, tokenHash []byte) {
	b.Helper()
	if _, err := p.pool.Exec(context.Background(), `INSERT INTO devices (id, grp, token_hash, created_at) VALUES ($1, 'g', $2, $3)`,
		id, tokenHash, time.Now().UnixMilli()); err != nil {
		b.Fatal(err)
	}
}

func (p *pgTokens) DeviceByTokenHash(ctx context.Context, tokenHash []byte) (storage.Device, error) {
	var d storage.Device
	var revoked, rotated *int64
	err := p.pool.QueryRow(ctx, `SELECT id, name, grp, created_at, revoked_at, token_rotated_at
		FROM devices WHERE token_hash = $1`, tokenHash).Scan(&d.ID, &d.Name, &d.Group, &d.CreatedAt, &revoked, &rotated)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Device{}, fmt.Errorf("bench postgres: device by token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return storage.Device{}, fmt.Errorf("bench postgres: device by token: %w", err)
	}
	if revoked != nil {
		return storage.Device{}, fmt.Errorf("bench postgres: device by token: %w", storage.ErrRevoked)
	}
	if rotated != nil {
		d.TokenRotatedAt = *rotated
	}
	return d, nil
}
