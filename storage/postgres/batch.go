package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/devtrack/devtrack/storage"
)

// The bulk inserts of SaveBatch: the whole batch of a kind goes to the
// server as one array per column in one statement (one round trip, one plan
// for any batch size). The arrays hold only the first record of each
// (device, id) of the batch, as the row-by-row inserts of SQLite keep, and
// in insert order (insertOrder): by device, then ts, so that one device's
// ledger entries are neighbours in the index, where a batch of interleaved
// devices would jump between pages for every row. Both are done in Go, not
// in the statement: its DISTINCT ON and ORDER BY were two sorts per kind,
// about a fifth of the server's CPU per batch in the drain profile. In the
// statement:
//   - ids inserts the records into the ledger in the arrays' order, where ON
//     CONFLICT DO NOTHING skips every pair stored before (by any process:
//     the unique index waits for a concurrent transaction inserting the same
//     pair, then skips it) and RETURNING yields only the new ones with their
//     seq;
//   - only those go into the partitioned table.
//
// The statement's row count is the number of new records; the rest of the
// batch (stored before, or repeated in it) are duplicates.
const (
	insertLocationsSQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::float8[], $6::float8[],
		$7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::text[], $12::float8[], $13::float8[])
	AS t(device, id, ts, received_at, lat, lng, accuracy, speed, heading, altitude, crs, orig_lat, orig_lng)
), ids AS (
	INSERT INTO location_ids (device, id, ts)
	SELECT device, id, ts FROM input
	ON CONFLICT (device, id) DO NOTHING
	RETURNING device, id, seq
)
INSERT INTO locations (seq, device, id, ts, received_at, lat, lng, accuracy, speed, heading, altitude, crs, orig_lat, orig_lng)
SELECT ids.seq, f.device, f.id, f.ts, f.received_at, f.lat, f.lng, f.accuracy, f.speed, f.heading, f.altitude, f.crs, f.orig_lat, f.orig_lng
FROM ids JOIN input f ON f.device = ids.device AND f.id = ids.id`

	insertLogsSQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[])
	AS t(device, id, ts, received_at, level, message, fields)
), ids AS (
	INSERT INTO log_ids (device, id, ts)
	SELECT device, id, ts FROM input
	ON CONFLICT (device, id) DO NOTHING
	RETURNING device, id, seq
)
INSERT INTO logs (seq, device, id, ts, received_at, level, message, fields)
SELECT ids.seq, f.device, f.id, f.ts, f.received_at, f.level, f.message, f.fields::json
FROM ids JOIN input f ON f.device = ids.device AND f.id = ids.id`
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

// locationArgs are the column arrays of insertLocationsSQL: the first
// record of each (device, id) of ls, in insert order.
func locationArgs(ls []storage.Location) []any {
	order := insertOrder(ls, func(l *storage.Location) (string, string, int64) { return l.Device, l.ID, l.TS })
	n := len(order)
	device, id, crs := make([]string, n), make([]string, n), make([]string, n)
	ts, recv := make([]int64, n), make([]int64, n)
	lat, lng := make([]float64, n), make([]float64, n)
	acc, speed, heading, alt, olat, olng := make([]*float64, n), make([]*float64, n), make([]*float64, n),
		make([]*float64, n), make([]*float64, n), make([]*float64, n)
	for i, at := range order {
		l := &ls[at]
		device[i], id[i], ts[i], recv[i], lat[i], lng[i], crs[i] = l.Device, l.ID, l.TS, l.ReceivedAt, l.Lat, l.Lng, l.CRS
		acc[i], speed[i], heading[i], alt[i], olat[i], olng[i] = l.Accuracy, l.Speed, l.Heading, l.Altitude, l.OrigLat, l.OrigLng
	}
	return []any{device, id, ts, recv, lat, lng, acc, speed, heading, alt, crs, olat, olng}
}

// logArgs are the column arrays of insertLogsSQL, like locationArgs; a
// message's NUL bytes become U+FFFD (see cleanMessage).
func logArgs(es []storage.LogEntry) []any {
	order := insertOrder(es, func(e *storage.LogEntry) (string, string, int64) { return e.Device, e.ID, e.TS })
	n := len(order)
	device, id, level, msg := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ts, recv := make([]int64, n), make([]int64, n)
	fields := make([]*string, n)
	for i, at := range order {
		e := &es[at]
		device[i], id[i], ts[i], recv[i], level[i], msg[i] = e.Device, e.ID, e.TS, e.ReceivedAt, e.Level, cleanMessage(e.Message)
		if len(e.Fields) > 0 {
			f := string(e.Fields)
			fields[i] = &f
		}
	}
	return []any{device, id, ts, recv, level, msg, fields}
}

// insertOrder returns the positions in recs of the first record of each
// (device, id), as key gives them, sorted by device, then ts, then position.
// Devices compare by bytes, not by the server's collation: the order only
// has to keep each device's records together, and be the same in every
// worker, so that two batches with common records take their ledger entries
// in the same order.
func insertOrder[T any](recs []T, key func(*T) (device, id string, ts int64)) []int {
	type pair struct{ device, id string }
	seen := make(map[pair]struct{}, len(recs))
	order := make([]int, 0, len(recs))
	for i := range recs {
		d, id, _ := key(&recs[i])
		if _, dup := seen[pair{d, id}]; dup {
			continue
		}
		seen[pair{d, id}] = struct{}{}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int {
		da, _, ta := key(&recs[a])
		db, _, tb := key(&recs[b])
		return cmp.Or(strings.Compare(da, db), cmp.Compare(ta, tb), cmp.Compare(a, b))
	})
	return order
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
