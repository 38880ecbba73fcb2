package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/devtrack/devtrack/storage"
)

// The bulk inserts of SaveBatch: the whole batch of a kind goes to the
// server as one array per column in one statement (one round trip, one plan
// for any batch size). In it:
//   - firsts keeps the first record of each (device, id) of the batch, as
//     the row-by-row inserts of SQLite do;
//   - ids inserts them into the ledger by device, then ts (neighbouring
//     index entries for one device's rows, where a batch of interleaved
//     devices jumps between pages for every row; the seqs still grow with
//     ts for each device's rows of a batch), where ON CONFLICT DO NOTHING skips
//     every pair stored before (by any process: the unique index waits for
//     a concurrent transaction inserting the same pair, then skips it) and
//     RETURNING yields only the new ones with their seq;
//   - only those go into the partitioned table.
//
// The statement's row count is the number of new records; the rest of the
// batch (stored before, or repeated in it) are duplicates.
const (
	insertLocationsSQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::float8[], $6::float8[],
		$7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::text[], $12::float8[], $13::float8[])
	WITH ORDINALITY AS t(device, id, ts, received_at, lat, lng, accuracy, speed, heading, altitude, crs, orig_lat, orig_lng, ord)
), firsts AS (
	SELECT DISTINCT ON (device, id) * FROM input ORDER BY device, id, ord
), ids AS (
	INSERT INTO location_ids (device, id, ts)
	SELECT device, id, ts FROM firsts ORDER BY device, ts, ord
	ON CONFLICT (device, id) DO NOTHING
	RETURNING device, id, seq
)
INSERT INTO locations (seq, device, id, ts, received_at, lat, lng, accuracy, speed, heading, altitude, crs, orig_lat, orig_lng)
SELECT ids.seq, f.device, f.id, f.ts, f.received_at, f.lat, f.lng, f.accuracy, f.speed, f.heading, f.altitude, f.crs, f.orig_lat, f.orig_lng
FROM ids JOIN firsts f ON f.device = ids.device AND f.id = ids.id`

	insertLogsSQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[])
	WITH ORDINALITY AS t(device, id, ts, received_at, level, message, fields, ord)
), firsts AS (
	SELECT DISTINCT ON (device, id) * FROM input ORDER BY device, id, ord
), ids AS (
	INSERT INTO log_ids (device, id, ts)
	SELECT device, id, ts FROM firsts ORDER BY device, ts, ord
	ON CONFLICT (device, id) DO NOTHING
	RETURNING device, id, seq
)
INSERT INTO logs (seq, device, id, ts, received_at, level, message, fields)
SELECT ids.seq, f.device, f.id, f.ts, f.received_at, f.level, f.message, f.fields::json
FROM ids JOIN firsts f ON f.device = ids.device AND f.id = ids.id`
)

// SaveBatch stores b in one transaction; see storage.Store. A record that can
// never be stored (storage.ValidateBatch) fails the whole batch, before
// anything is written, with an error wrapping storage.ErrInvalid that names
// the record; a failure of the server (down, unreachable, full, read-only,
// shutting down, not answering before ctx ends) wraps storage.ErrUnavailable.
func (s *Store) SaveBatch(ctx context.Context, b storage.Batch) (storage.SaveResult, error) {
	if err := storage.ValidateBatch(b); err != nil {
		return storage.SaveResult{}, fmt.Errorf("postgres: save batch: %w", err)
	}
	if b.Len() == 0 {
		return storage.SaveResult{}, nil
	}
	res, err := s.saveBatch(ctx, b)
	if isNoPartition(err) {
		// Another process dropped a partition that this one knew (a
		// purge): learn again and retry once.
		s.forgetPartitions("locations")
		s.forgetPartitions("logs")
		res, err = s.saveBatch(ctx, b)
	}
	if err != nil {
		if isDeadline(err) && s.answers(ctx) {
			// The server answers, so the batch itself was too slow for
			// the deadline: not an outage. Left unclassified, so that
			// the caller's CheckWrite decides (and a worker splits the
			// batch rather than retrying it forever).
			return storage.SaveResult{}, fmt.Errorf("postgres: save batch: %w", oneLine(err))
		}
		return storage.SaveResult{}, fmt.Errorf("postgres: save batch: %w", classify(err))
	}
	return res, nil
}

// answerTimeout is how long answers waits for the server.
const answerTimeout = time.Second

// answers reports whether the server answers a ping within answerTimeout.
func (s *Store) answers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
	defer cancel()
	return s.pool.Ping(ctx) == nil
}

// isDeadline reports whether err is a context deadline or a timeout on the way.
func isDeadline(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}

func (s *Store) saveBatch(ctx context.Context, b storage.Batch) (storage.SaveResult, error) {
	if err := s.ensureAhead(ctx); err != nil {
		return storage.SaveResult{}, err
	}
	if err := s.ensurePartitions(ctx, "locations", locationDays(b.Locations)); err != nil {
		return storage.SaveResult{}, err
	}
	if err := s.ensurePartitions(ctx, "logs", logDays(b.Logs)); err != nil {
		return storage.SaveResult{}, err
	}
	var inserted int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(b.Locations) > 0 {
			tag, err := tx.Exec(ctx, insertLocationsSQL, locationArgs(b.Locations)...)
			if err != nil {
				return fmt.Errorf("insert locations: %w", err)
			}
			inserted += tag.RowsAffected()
		}
		if len(b.Logs) > 0 {
			tag, err := tx.Exec(ctx, insertLogsSQL, logArgs(b.Logs)...)
			if err != nil {
				return fmt.Errorf("insert logs: %w", err)
			}
			inserted += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return storage.SaveResult{}, err
	}
	return storage.SaveResult{Inserted: int(inserted), Duplicates: b.Len() - int(inserted)}, nil
}

// isNoPartition reports whether err is an insert into a day without a partition.
func isNoPartition(err error) bool {
	return pgCode(err) == codeCheckViolation && strings.Contains(err.Error(), "no partition")
}

func locationDays(ls []storage.Location) map[int64]bool {
	days := map[int64]bool{}
	for i := range ls {
		days[dayOf(ls[i].TS)] = true
	}
	return days
}

func logDays(es []storage.LogEntry) map[int64]bool {
	days := map[int64]bool{}
	for i := range es {
		days[dayOf(es[i].TS)] = true
	}
	return days
}

// locationArgs are the column arrays of insertLocationsSQL.
func locationArgs(ls []storage.Location) []any {
	n := len(ls)
	device, id, crs := make([]string, n), make([]string, n), make([]string, n)
	ts, recv := make([]int64, n), make([]int64, n)
	lat, lng := make([]float64, n), make([]float64, n)
	acc, speed, heading, alt, olat, olng := make([]*float64, n), make([]*float64, n), make([]*float64, n),
		make([]*float64, n), make([]*float64, n), make([]*float64, n)
	for i := range ls {
		l := &ls[i]
		device[i], id[i], ts[i], recv[i], lat[i], lng[i], crs[i] = l.Device, l.ID, l.TS, l.ReceivedAt, l.Lat, l.Lng, l.CRS
		acc[i], speed[i], heading[i], alt[i], olat[i], olng[i] = l.Accuracy, l.Speed, l.Heading, l.Altitude, l.OrigLat, l.OrigLng
	}
	return []any{device, id, ts, recv, lat, lng, acc, speed, heading, alt, crs, olat, olng}
}

// logArgs are the column arrays of insertLogsSQL; a message's NUL bytes
// become U+FFFD (see cleanMessage).
func logArgs(es []storage.LogEntry) []any {
	n := len(es)
	device, id, level, msg := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts, recv := make([]int64, n), make([]int64, n)
	fields := make([]*string, n)
	for i := range es {
		e := &es[i]
		device[i], id[i], ts[i], recv[i], level[i], msg[i] = e.Device, e.ID, e.TS, e.ReceivedAt, e.Level, cleanMessage(e.Message)
		if len(e.Fields) > 0 {
			f := string(e.Fields)
			fields[i] = &f
		}
	}
	return []any{device, id, ts, recv, level, msg, fields}
}

// cleanMessage replaces NUL bytes, which PostgreSQL text cannot hold, with
// U+FFFD, as the gateway does for every frame before a store sees it: a log
// line with a NUL is still worth keeping, and refusing it would dead-letter
// it. Identifiers with a NUL (device, id, level) are refused instead
// (storage.ValidateBatch), since changing them would change which record
// they name.
func cleanMessage(m string) string {
	if strings.IndexByte(m, 0) < 0 {
		return m
	}
	return strings.ReplaceAll(m, "\x00", "\uFFFD")
}

// CheckWrite rewrites the one row of store_health (autocommit): if that
// fails, no write can succeed now.
func (s *Store) CheckWrite(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE store_health SET checked_at = $1 WHERE id = 1`, nowMS())
	if err != nil {
		err = classify(err)
		if !errors.Is(err, storage.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: check write: %w", err)
	}
	return nil
}
