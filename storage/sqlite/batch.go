package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
	insertLogSQL = `INSERT INTO logs
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

// insertStmts are the statements of SaveBatch, prepared once on the single
// write connection and reused by every batch.
type insertStmts struct {
	loc, log, maxLogSeq, indexLogs *sql.Stmt
}

func (st *insertStmts) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{st.loc, st.log, st.maxLogSeq, st.indexLogs} {
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
		stmt := tx.StmtContext(rowCtx, st.loc)
		for i := range b.Locations {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return res, err
				}
			}
			l := &b.Locations[i]
			r, err := stmt.ExecContext(rowCtx,
				l.Device, l.ID, l.TS, l.ReceivedAt, l.Lat, l.Lng,
				nullFloat(l.Accuracy), nullFloat(l.Speed), nullFloat(l.Heading), nullFloat(l.Altitude),
				l.CRS, nullFloat(l.OrigLat), nullFloat(l.OrigLng))
			if err != nil {
				return res, fmt.Errorf("location %q/%q: %w", l.Device, l.ID, err)
			}
			count(&res, r)
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
