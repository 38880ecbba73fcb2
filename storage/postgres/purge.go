package postgres

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/devtrack/devtrack/storage"
)

// purgeLockTimeout bounds the wait of a partition drop for its lock: DROP
// needs the parent table exclusively for a moment, and waiting behind a long
// query would queue every insert behind the drop. A drop that times out is
// tried again at the next Purge.
const purgeLockTimeout = "5s"

// tables names the partitioned table and the ledger of a kind.
func tables(kind storage.Kind) (data, ids string, err error) {
	switch kind {
	case storage.KindLocations:
		return "locations", "location_ids", nil
	case storage.KindLogs:
		return "logs", "log_ids", nil
	}
	return "", "", fmt.Errorf("unknown kind %q", kind)
}

// Purge removes records of kind with ts before beforeMS. It first drops, one
// per call, a partition whose whole range is older (with its rows in the
// ledger, so that the ids may be stored again); once none is left it deletes
// the older rows of the boundary partition, at most limit per call.
func (s *Store) Purge(ctx context.Context, kind storage.Kind, beforeMS int64, limit int) (int64, error) {
	data, ids, err := tables(kind)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge: %w", err)
	}
	limit = max(limit, 1)
	for {
		n, dropped, err := s.dropOldPartition(ctx, data, ids, beforeMS)
		if err != nil {
			return 0, fmt.Errorf("postgres: purge %s: %w", kind, classify(err))
		}
		if !dropped {
			break
		}
		if n > 0 {
			return n, nil
		}
		// An empty partition: dropping it removed nothing, and 0 would
		// tell the caller that nothing is left.
	}
	var n int64
	err = s.pool.QueryRow(ctx, `WITH gone AS (
		DELETE FROM `+data+` WHERE (ts, seq) IN (
			SELECT ts, seq FROM `+data+` WHERE ts < $1 ORDER BY ts LIMIT $2)
		RETURNING device, id
	), forgotten AS (
		DELETE FROM `+ids+` i USING gone g WHERE i.device = g.device AND i.id = g.id
	)
	SELECT count(*) FROM gone`, beforeMS, limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge %s: %w", kind, classify(err))
	}
	return n, nil
}

// boundsRE parses a range partition's bound expression (pg_get_expr of
// relpartbound), e.g. FOR VALUES FROM ('1700000000000') TO ('1700086400000').
var boundsRE = regexp.MustCompile(`FROM \('?(-?\d+|MINVALUE)'?\) TO \('?(-?\d+|MAXVALUE)'?\)`)

// dropOldPartition drops the oldest partition of data whose range ends at or
// before beforeMS, and the ledger rows of its range, in one transaction; it
// returns how many records went and whether there was one to drop.
func (s *Store) dropOldPartition(ctx context.Context, data, ids string, beforeMS int64) (int64, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass`, data)
	if err != nil {
		return 0, false, err
	}
	type part struct {
		name   string
		lo, hi int64
	}
	var oldest *part
	for rows.Next() {
		var name, bound string
		if err := rows.Scan(&name, &bound); err != nil {
			rows.Close()
			return 0, false, err
		}
		m := boundsRE.FindStringSubmatch(bound)
		if m == nil {
			continue // not one of ours (a DEFAULT partition): never dropped
		}
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if m[1] != "MINVALUE" {
			lo, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m[2] == "MAXVALUE" {
			continue // never entirely older
		}
		hi, _ = strconv.ParseInt(m[2], 10, 64)
		if hi <= beforeMS && (oldest == nil || lo < oldest.lo) {
			oldest = &part{name, lo, hi}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if oldest == nil {
		return 0, false, nil
	}
	var n int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+purgeLockTimeout+`'`); err != nil {
			return err
		}
		// The partition's SHARE lock keeps inserts into its range out (a
		// resent id must not slip into the ledger and the doomed
		// partition) while the ledger rows go, without holding up inserts
		// into other days or any reader; the parent is locked exclusively
		// only by the DROP, at the end, for a moment.
		part := pgx.Identifier{oldest.name}.Sanitize()
		if _, err := tx.Exec(ctx, `LOCK TABLE `+part+` IN SHARE MODE`); err != nil {
			return fmt.Errorf("lock partition %s: %w", oldest.name, err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+ids+` WHERE ts >= $1 AND ts < $2`, oldest.lo, oldest.hi)
		if err != nil {
			return fmt.Errorf("forget ids of %s: %w", oldest.name, err)
		}
		if _, err := tx.Exec(ctx, `DROP TABLE `+part); err != nil {
			return fmt.Errorf("drop partition %s: %w", oldest.name, err)
		}
		n = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	s.forgetPartitions(data)
	s.log.Info("postgres partition dropped", zap.String("partition", oldest.name), zap.Int64("records", n))
	return n, true, nil
}

// DeleteRecords removes the records of kind of one device with the given ids
// and their ledger rows, in one transaction.
func (s *Store) DeleteRecords(ctx context.Context, kind storage.Kind, device string, idList []string) (int64, error) {
	data, ids, err := tables(kind)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete records: %w", err)
	}
	if len(idList) == 0 || validText("device", device) != nil {
		return 0, nil
	}
	var n int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM `+ids+` WHERE device = $1 AND id = ANY($2) RETURNING ts, seq`,
			device, validOnly(idList))
		if err != nil {
			return err
		}
		var tss, seqs []int64
		var ts, seq int64
		if _, err := pgx.ForEachRow(rows, []any{&ts, &seq}, func() error {
			tss, seqs = append(tss, ts), append(seqs, seq)
			return nil
		}); err != nil {
			return err
		}
		if len(tss) == 0 {
			return nil
		}
		// ts = ANY lets the executor prune the partitions not named.
		tag, err := tx.Exec(ctx, `DELETE FROM `+data+` WHERE ts = ANY($1)
			AND (ts, seq) IN (SELECT * FROM unnest($1::int8[], $2::int8[]))`, tss, seqs)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete records of %q: %w", device, classify(err))
	}
	return n, nil
}
