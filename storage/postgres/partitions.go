package postgres

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Partitions of locations and logs, one per UTC day of ts.
//
// Why daily: retention drops whole partitions, so the width is the
// granularity at which old data leaves without a row-by-row DELETE; with a
// day, the boundary partition's remainder (at most a day) is all that is
// deleted in chunks, where a month would leave up to a month of rows to
// delete one by one. A year of retention is ~365 partitions per table,
// which the planner prunes (ts bounds) or walks in order (an ordered Append
// stops at the first page), so planning stays cheap.
const (
	dayMS = int64(24 * time.Hour / time.Millisecond)
	// aheadDays is how many days after today have partitions made ahead of
	// time, so that the first batch of a day does not wait for DDL.
	aheadDays = 7
	// partitionLockID is the advisory lock that serialises partition DDL
	// of every process on the database, so that two creators of the same
	// day never race (CREATE TABLE IF NOT EXISTS alone can fail on the
	// catalog's unique index when two sessions run it at once).
	partitionLockID = int64(0x64657674726b7031) // "devtrkp1"
)

// partitioned are the partitioned tables.
var partitioned = []string{"locations", "logs"}

// partitions remembers which partitions this process knows to exist, so that
// a batch costs no DDL round trip for days already seen.
type partitions struct {
	mu    sync.Mutex
	known map[partKey]bool
	ahead int64 // the day for which the days ahead were last ensured
}

type partKey struct {
	table string
	day   int64
}

func newPartitions() partitions { return partitions{known: map[partKey]bool{}, ahead: math.MinInt64} }

// dayOf is the day number of ts (days since 1970-01-01 UTC, floored).
func dayOf(ts int64) int64 {
	d := ts / dayMS
	if ts%dayMS < 0 {
		d--
	}
	return d
}

// partBounds is the FOR VALUES clause of day's partition. The first and the
// last day of int64 range are open-ended, so that every int64 ts has a
// partition and no bound overflows.
func partBounds(day int64) string {
	lo, hi := "MINVALUE", "MAXVALUE"
	if day > dayOf(math.MinInt64) {
		lo = fmt.Sprint(day * dayMS)
	}
	if day < dayOf(math.MaxInt64) {
		hi = fmt.Sprint((day + 1) * dayMS)
	}
	return "FROM (" + lo + ") TO (" + hi + ")"
}

// partName is the name of table's partition for day: logs_p20231114, or
// logs_d<day number> (m for minus) for days outside years 1000-9999.
func partName(table string, day int64) string {
	if day > dayOf(math.MinInt64) && day < dayOf(math.MaxInt64) {
		if t := time.UnixMilli(day * dayMS).UTC(); t.Year() >= 1000 && t.Year() <= 9999 {
			return table + "_p" + t.Format("20060102")
		}
	}
	if day < 0 {
		return fmt.Sprintf("%s_dm%d", table, -day)
	}
	return fmt.Sprintf("%s_d%d", table, day)
}

// ensure makes the partitions of table for days that this process does not
// know to exist.
func (s *Store) ensurePartitions(ctx context.Context, table string, days map[int64]bool) error {
	var missing []int64
	s.parts.mu.Lock()
	for d := range days {
		if !s.parts.known[partKey{table, d}] {
			missing = append(missing, d)
		}
	}
	s.parts.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	if err := s.createPartitions(ctx, table, missing); err != nil {
		return err
	}
	s.parts.mu.Lock()
	for _, d := range missing {
		s.parts.known[partKey{table, d}] = true
	}
	s.parts.mu.Unlock()
	return nil
}

// createPartitions creates the partitions that do not exist yet, in one
// transaction under the partition lock.
func (s *Store) createPartitions(ctx context.Context, table string, days []int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, partitionLockID); err != nil {
			return fmt.Errorf("partition lock: %w", err)
		}
		for _, d := range days {
			name := partName(table, d)
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgx.Identifier{name}.Sanitize()+
				` PARTITION OF `+pgx.Identifier{table}.Sanitize()+` FOR VALUES `+partBounds(d))
			if err != nil {
				return fmt.Errorf("create partition %s: %w", name, err)
			}
		}
		return nil
	})
}

// ensureAhead makes the partitions of yesterday, today and the days ahead,
// once per day of this process.
func (s *Store) ensureAhead(ctx context.Context) error {
	today := dayOf(nowMS())
	s.parts.mu.Lock()
	done := s.parts.ahead == today
	s.parts.mu.Unlock()
	if done {
		return nil
	}
	days := map[int64]bool{}
	for d := today - 1; d <= today+aheadDays; d++ {
		days[d] = true
	}
	for _, table := range partitioned {
		if err := s.ensurePartitions(ctx, table, days); err != nil {
			return err
		}
	}
	s.parts.mu.Lock()
	s.parts.ahead = today
	s.parts.mu.Unlock()
	s.log.Debug("postgres partitions ensured ahead", zap.Int64("from_day", today-1), zap.Int("days", aheadDays+2))
	return nil
}

// forgetPartitions drops what this process knows about table's partitions:
// after a purge dropped some, or when an insert found one missing that
// another process dropped.
func (s *Store) forgetPartitions(table string) {
	s.parts.mu.Lock()
	defer s.parts.mu.Unlock()
	for k := range s.parts.known {
		if k.table == table {
			delete(s.parts.known, k)
		}
	}
	s.parts.ahead = math.MinInt64
}
