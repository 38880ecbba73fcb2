package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/storagetest"
)

// benchBatch is storagetest.BenchBatch, the batches of every store's
// SaveBatch benchmark.
var benchBatch = storagetest.BenchBatch

// BenchmarkSaveBatch compares the bulk path of SaveBatch (column arrays,
// one statement per kind) with the same batch written row by row (two
// statements per record: ledger, then row; statements prepared and cached
// by pgx), both in one transaction per batch of 500 records. The server is
// pgtest's (fsync off), so the figures are the store's and the server's
// CPU and round trips, not the disk's.
func BenchmarkSaveBatch(b *testing.B) {
	const batchSize = 500
	for _, mode := range []struct {
		name string
		save func(*Store, context.Context, storage.Batch) (storage.SaveResult, error)
	}{
		{"bulk", (*Store).SaveBatch},
		{"row-by-row", (*Store).saveRowByRow},
	} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			st := newStore(b, true)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				bt := benchBatch(batchSize, i*batchSize)
				b.StartTimer()
				res, err := mode.save(st, ctx, bt)
				if err != nil {
					b.Fatal(err)
				}
				if res.Inserted != batchSize {
					b.Fatalf("inserted %d of %d", res.Inserted, batchSize)
				}
			}
			b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// saveRowByRow is the plain way to write a batch with the same
// exactly-once ledger, for the benchmark: each record is one INSERT into the
// ledger and, if that inserted, one into its table.
func (s *Store) saveRowByRow(ctx context.Context, b storage.Batch) (storage.SaveResult, error) {
	if err := s.ensureAhead(ctx); err != nil {
		return storage.SaveResult{}, err
	}
	if err := s.ensurePartitions(ctx, "locations", locationDays(b.Locations)); err != nil {
		return storage.SaveResult{}, err
	}
	if err := s.ensurePartitions(ctx, "logs", logDays(b.Logs)); err != nil {
		return storage.SaveResult{}, err
	}
	var res storage.SaveResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, l := range b.Locations {
			var seq int64
			err := tx.QueryRow(ctx, `INSERT INTO location_ids (device, id, ts) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING RETURNING seq`, l.Device, l.ID, l.TS).Scan(&seq)
			if err == pgx.ErrNoRows {
				res.Duplicates++
				continue
			}
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO locations (seq, device, id, ts, received_at, lat, lng,
				accuracy, speed, heading, altitude, crs, orig_lat, orig_lng)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
				seq, l.Device, l.ID, l.TS, l.ReceivedAt, l.Lat, l.Lng, l.Accuracy, l.Speed, l.Heading, l.Altitude,
				l.CRS, l.OrigLat, l.OrigLng); err != nil {
				return err
			}
			res.Inserted++
		}
		for _, e := range b.Logs {
			var seq int64
			err := tx.QueryRow(ctx, `INSERT INTO log_ids (device, id, ts) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING RETURNING seq`, e.Device, e.ID, e.TS).Scan(&seq)
			if err == pgx.ErrNoRows {
				res.Duplicates++
				continue
			}
			if err != nil {
				return err
			}
			var fields *string
			if len(e.Fields) > 0 {
				f := string(e.Fields)
				fields = &f
			}
			if _, err := tx.Exec(ctx, `INSERT INTO logs (seq, device, id, ts, received_at, level, message, fields)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)`,
				seq, e.Device, e.ID, e.TS, e.ReceivedAt, e.Level, cleanMessage(e.Message), fields); err != nil {
				return err
			}
			res.Inserted++
		}
		return nil
	})
	return res, err
}
