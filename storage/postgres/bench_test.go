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
			if err := saveOneRow(ctx, tx, &res, insertLocationIDSQL, l.Device, l.ID, l.TS, func(seq int64) error {
				_, err := tx.Exec(ctx, `INSERT INTO locations (seq, device, id, ts, received_at, lat, lng,
					accuracy, speed, heading, altitude, crs, orig_lat, orig_lng)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
					seq, l.Device, l.ID, l.TS, l.ReceivedAt, l.Lat, l.Lng, l.Accuracy, l.Speed, l.Heading, l.Altitude,
					l.CRS, l.OrigLat, l.OrigLng)
				return err
			}); err != nil {
				return err
			}
		}
		for _, e := range b.Logs {
			if err := saveOneRow(ctx, tx, &res, insertLogIDSQL, e.Device, e.ID, e.TS, func(seq int64) error {
				var fields *string
				if len(e.Fields) > 0 {
					f := string(e.Fields)
					fields = &f
				}
				_, err := tx.Exec(ctx, `INSERT INTO logs (seq, device, id, ts, received_at, level, message, fields)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)`,
					seq, e.Device, e.ID, e.TS, e.ReceivedAt, e.Level, cleanMessage(e.Message), fields)
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// The ledger INSERTs of saveRowByRow: $1 device, $2 id, $3 ts; the new
// row's seq, or no row for a duplicate.
const (
	insertLocationIDSQL = `INSERT INTO location_ids (device, id, ts) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING RETURNING seq`
	insertLogIDSQL = `INSERT INTO log_ids (device, id, ts) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING RETURNING seq`
)

// saveOneRow is one record of saveRowByRow: its row in the ledger
// (ledgerSQL) and, if that is new, the record itself with insert, counted
// in res. A plain function rather than a closure, so that insert stays on
// the stack and the benchmark's allocations stay those of the row-by-row
// writes.
func saveOneRow(ctx context.Context, tx pgx.Tx, res *storage.SaveResult, ledgerSQL, device, id string, ts int64, insert func(seq int64) error) error {
	var seq int64
	err := tx.QueryRow(ctx, ledgerSQL, device, id, ts).Scan(&seq)
	if err == pgx.ErrNoRows {
		res.Duplicates++
		return nil
	}
	if err != nil {
		return err
	}
	if err := insert(seq); err != nil {
		return err
	}
	res.Inserted++
	return nil
}
