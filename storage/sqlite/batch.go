package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/devtrack/devtrack/storage"
)

// The inserts of SaveBatch. ON CONFLICT DO NOTHING makes a stored (device, id)
// a no-op that affects no row and fires no trigger, which is how duplicates
// are counted and kept out of the FTS index.
const (
	insertLocationSQL = `INSERT INTO locations
	(device, id, ts, received_at, lat, lng, accuracy, speed, heading, altitude, crs, orig_lat, orig_lng)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (device, id) DO NOTHING`
	insertLocationsHead = `INSERT INTO locations
	(device, id, ts, received_at, lat, lng, accuracy, speed, heading, altitude, crs, orig_lat, orig_lng)
	VALUES `
	locationRowSQL = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertLogSQL   = `INSERT INTO logs
	(device, id, ts, received_at, level, message, fields)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (device, id) DO NOTHING`
	// maxLogSeqSQL and indexLogsSQL index the logs of a batch in one
	// statement (see the schema for why not a trigger). The transaction
	// holds the write lock, so the rows above the maximum seen before the
	// inserts are exactly the new ones.
	maxLogSeqSQL = `SELECT coalesce(max(seq), 0) FROM logs`
	indexLogsSQL = `INSERT INTO logs_fts (rowid, message) SELECT seq, devtrack_fts_text(message) FROM logs WHERE seq > ?`
)

// locationChunk is how many locations one multi-row INSERT stores (13
// parameters each). One statement per row costs a database/sql call, a bind
// and a VM start each; a 500-item batch pays them 500 times (a third of a
// batch's time in the drain profile), in chunks of 100 five times. The rows
// left over (fewer than a chunk) go one by one.
const locationChunk = 100

// insertLocationsSQL is the INSERT of n locations.
func insertLocationsSQL(n int) string {
	var b strings.Builder
	b.WriteString(insertLocationsHead)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(locationRowSQL)
	}
	b.WriteString(" ON CONFLICT (device, id) DO NOTHING")
	return b.String()
}

// insertStmts are the statements of SaveBatch, prepared once on the single
// write connection and reused by every batch.
type insertStmts struct {
	loc, locs, log, maxLogSeq, indexLogs *sql.Stmt
}

func (st *insertStmts) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{st.loc, st.locs, st.log, st.maxLogSeq, st.indexLogs} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// stmts returns the insert statements, preparing them on first use. They
// cannot be prepared in Open: the tables may not exist before Migrate.
func (s *Store) stmts(ctx context.Context) (*insertStmts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ins != nil {
		return s.ins, nil
	}
	st := &insertStmts{}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&st.loc, insertLocationSQL},
		{&st.locs, insertLocationsSQL(locationChunk)},
		{&st.log, insertLogSQL},
		{&st.maxLogSeq, maxLogSeqSQL},
		{&st.indexLogs, indexLogsSQL},
	} {
		stmt, err := s.wdb.PrepareContext(ctx, p.sql)
		if err != nil {
			_ = st.close()
			return nil, err
		}
		*p.stmt = stmt
	}
	s.ins = st
	return st, nil
}

// SaveBatch stores b in one transaction; see storage.Store. A record that can
// never be stored (storage.ValidateBatch) fails the whole batch, before
// anything is written, with an error wrapping storage.ErrInvalid that names
// the record; a failure of the database itself (full or read-only disk, I/O
// error, lock timeout) wraps storage.ErrUnavailable.
func (s *Store) SaveBatch(ctx context.Context, b storage.Batch) (storage.SaveResult, error) {
	if err := storage.ValidateBatch(b); err != nil {
		return storage.SaveResult{}, fmt.Errorf("sqlite: save batch: %w", err)
	}
	if b.Len() == 0 {
		return storage.SaveResult{}, nil
	}
	res, err := s.saveBatch(ctx, b)
	if err != nil {
		s.reopenIfReadOnly(err)
		return storage.SaveResult{}, fmt.Errorf("sqlite: save batch: %w", classify(err))
	}
	return res, nil
}

func (s *Store) saveBatch(ctx context.Context, b storage.Batch) (res storage.SaveResult, err error) {
	st, err := s.stmts(ctx)
	if err != nil {
		return res, err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	// The rows run without ctx: with a cancellable context the driver arms
	// an interrupt watcher for every statement, which costs more than the
	// insert itself. ctx still bounds the lock wait of BeginTx and the batch
	// stops between rows once ctx is done.
	rowCtx := context.WithoutCancel(ctx)
	if len(b.Locations) > 0 {
		ls, repeated := deviceOrder(b.Locations)
		res.Duplicates += repeated
		if err := insertLocations(ctx, tx.StmtContext(rowCtx, st.locs), tx.StmtContext(rowCtx, st.loc), ls, &res); err != nil {
			return res, err
		}
	}
	if len(b.Logs) > 0 {
		var maxSeq int64
		if err := tx.StmtContext(rowCtx, st.maxLogSeq).QueryRowContext(rowCtx).Scan(&maxSeq); err != nil {
			return res, err
		}
		before := res.Inserted
		stmt := tx.StmtContext(rowCtx, st.log)
		for i := range b.Logs {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return res, err
				}
			}
			e := &b.Logs[i]
			var fields any
			if len(e.Fields) > 0 {
				fields = string(e.Fields)
			}
			r, err := stmt.ExecContext(rowCtx, e.Device, e.ID, e.TS, e.ReceivedAt, e.Level, e.Message, fields)
			if err != nil {
				return res, fmt.Errorf("log %q/%q: %w", e.Device, e.ID, err)
			}
			count(&res, r)
		}
		if res.Inserted > before {
			if _, err := tx.StmtContext(rowCtx, st.indexLogs).ExecContext(rowCtx, maxSeq); err != nil {
				return res, fmt.Errorf("index logs: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return storage.SaveResult{}, err
	}
	return res, nil
}

// deviceOrder returns the first record of each (device, id) of ls (a
// later one is a duplicate, as it would be row by row), sorted by device
// and then ts (stable), and how many records it left out. Inserted in
// that order, the rows of one device go into neighbouring entries of both
// indexes (device, id) and (device, ts), where a batch of interleaved
// devices jumps between their pages for every row: BenchmarkDrain (200
// devices interleaved, 2000 a batch) stores 14% more per second with it.
// Rows get their seq in this order, so seq still grows with ts for each
// device's rows of a batch; nothing orders rows of different devices by seq.
func deviceOrder(ls []storage.Location) ([]storage.Location, int) {
	out := make([]storage.Location, 0, len(ls))
	seen := make(map[[2]string]struct{}, len(ls))
	for i := range ls {
		k := [2]string{ls[i].Device, ls[i].ID}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, ls[i])
	}
	slices.SortStableFunc(out, func(x, y storage.Location) int {
		return cmp.Or(strings.Compare(x.Device, y.Device), cmp.Compare(x.TS, y.TS))
	})
	return out, len(ls) - len(out)
}

// insertLocations stores ls with the chunk statement locs (locationChunk
// rows) and the rest with the one-row statement loc, adding to res. The
// statements run without a cancellable context (see saveBatch); ctx is
// checked between them.
func insertLocations(ctx context.Context, locs, loc *sql.Stmt, ls []storage.Location, res *storage.SaveResult) error {
	rowCtx := context.WithoutCancel(ctx)
	args := make([]any, 0, 13*locationChunk)
	for len(ls) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := locationChunk
		stmt := locs
		if len(ls) < n {
			n, stmt = 1, loc
		}
		args = args[:0]
		for i := range n {
			l := &ls[i]
			args = append(args, l.Device, l.ID, l.TS, l.ReceivedAt, l.Lat, l.Lng,
				nullFloat(l.Accuracy), nullFloat(l.Speed), nullFloat(l.Heading), nullFloat(l.Altitude),
				l.CRS, nullFloat(l.OrigLat), nullFloat(l.OrigLng))
		}
		r, err := stmt.ExecContext(rowCtx, args...)
		if err != nil {
			if n == 1 {
				return fmt.Errorf("location %q/%q: %w", ls[0].Device, ls[0].ID, err)
			}
			return fmt.Errorf("locations %q/%q to %q/%q: %w", ls[0].Device, ls[0].ID, ls[n-1].Device, ls[n-1].ID, err)
		}
		// RowsAffected cannot fail with this driver; a duplicate affects no row.
		inserted, _ := r.RowsAffected()
		res.Inserted += int(inserted)
		res.Duplicates += n - int(inserted)
		ls = ls[n:]
	}
	return nil
}

// count adds the outcome of one ON CONFLICT DO NOTHING insert to res.
func count(res *storage.SaveResult, r sql.Result) {
	// RowsAffected cannot fail with this driver.
	if n, _ := r.RowsAffected(); n > 0 {
		res.Inserted++
	} else {
		res.Duplicates++
	}
}

// nullFloat maps an absent optional value to NULL.
func nullFloat(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
