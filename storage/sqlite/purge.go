package sqlite

// Retention (Purge) and the deletes of an archive export (DeleteRecords).
//
// Both delete in short write transactions on the store's single write
// connection, so that a worker's batches, which queue for the same
// connection and the same file lock, get in between two chunks. Logs carry
// an FTS delete trigger: each deleted log also removes its terms from
// logs_fts, which is what makes a log cost more to delete than a location.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/devtrack/devtrack/storage"
)

const (
	// defaultPurgeLimit is the chunk of a Purge called with limit <= 0.
	defaultPurgeLimit = 1000
	// maxPurgeLimit bounds one chunk: a larger one would hold the write
	// lock long enough to stall a worker's batch.
	maxPurgeLimit = 50_000
	// deleteIDsChunk is how many ids one DeleteRecords statement names,
	// well below SQLite's limit of bound parameters.
	deleteIDsChunk = 500
)

// table maps a record kind to its table.
func table(kind storage.Kind) (string, error) {
	switch kind {
	case storage.KindLocations:
		return "locations", nil
	case storage.KindLogs:
		return "logs", nil
	}
	return "", fmt.Errorf("unknown record kind %q", kind)
}

// Purge removes up to about limit records of kind with ts < beforeMS, in one
// short write transaction; see storage.Store. Logs are picked oldest first
// through the logs_ts index. Locations have no index on ts alone (only
// (device, ts), which the query API needs and every insert pays for), so
// their old rows are found device by device on the read pool (see
// findOldLocations), and only the deletes take the write lock.
func (s *Store) Purge(ctx context.Context, kind storage.Kind, beforeMS int64, limit int) (int64, error) {
	if limit <= 0 {
		limit = defaultPurgeLimit
	}
	limit = min(limit, maxPurgeLimit)
	var n int64
	var err error
	switch kind {
	case storage.KindLogs:
		n, err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
			// The subquery reads the chunk off the (ts) index; the rows go
			// by primary key, each firing the FTS delete trigger.
			return execCount(ctx, tx, `DELETE FROM logs WHERE seq IN
				(SELECT seq FROM logs WHERE ts < ? ORDER BY ts LIMIT ?)`, beforeMS, limit)
		})
	case storage.KindLocations:
		var old []deviceCount
		old, err = s.findOldLocations(ctx, beforeMS, limit)
		if err != nil || len(old) == 0 {
			break
		}
		n, err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
			var total int64
			for _, o := range old {
				// Taken again under the write lock: the read pool's view
				// may be a moment old; what a row's ts is now decides.
				m, err := execCount(ctx, tx, `DELETE FROM locations WHERE seq IN
					(SELECT seq FROM locations WHERE device = ? AND ts < ? ORDER BY ts LIMIT ?)`,
					o.device, beforeMS, o.n)
				if err != nil {
					return 0, err
				}
				total += m
			}
			return total, nil
		})
	default:
		_, err = table(kind)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge %s before %d: %w", kind, beforeMS, err)
	}
	return n, nil
}

// DeleteRecords removes the records of kind of device with the given ids;
// see storage.Store. Long lists go in chunks, each its own transaction, so
// a worker's batches get in between; what a failed call already removed
// stays removed, and calling again with the same ids removes the rest.
func (s *Store) DeleteRecords(ctx context.Context, kind storage.Kind, device string, ids []string) (int64, error) {
	tbl, err := table(kind)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete records: %w", err)
	}
	var total int64
	for chunk := range slices.Chunk(ids, deleteIDsChunk) {
		// Bound parameters rather than a JSON array: ids are compared
		// byte for byte, whatever they hold.
		q := `DELETE FROM ` + tbl + ` WHERE device = ? AND id IN (?` + strings.Repeat(", ?", len(chunk)-1) + `)`
		args := make([]any, 0, len(chunk)+1)
		args = append(args, device)
		for _, id := range chunk {
			args = append(args, id)
		}
		n, err := s.write(ctx, func(tx *sql.Tx) (int64, error) { return execCount(ctx, tx, q, args...) })
		if err != nil {
			return total, fmt.Errorf("sqlite: delete %s of %q: %w", kind, device, err)
		}
		total += n
	}
	return total, nil
}

// write runs fn in one write transaction (BEGIN IMMEDIATE on the write
// connection) and commits it. Errors are classified as SaveBatch's are.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) (int64, error)) (int64, error) {
	n, err := func() (int64, error) {
		tx, err := s.wdb.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		n, err := fn(tx)
		if err != nil {
			_ = tx.Rollback()
			return 0, err
		}
		return n, tx.Commit()
	}()
	if err != nil {
		s.reopenIfReadOnly(err)
		return 0, classify(err)
	}
	return n, nil
}

func execCount(ctx context.Context, tx *sql.Tx, q string, args ...any) (int64, error) {
	r, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// deviceCount is how many old locations of one device a chunk removes.
type deviceCount struct {
	device string
	n      int
}

// findOldLocations walks the devices of the locations table in order, on
// one read connection, and counts their rows with ts < beforeMS until it
// has about limit of them. It resumes where the previous call of this
// Store stopped (Store.purgeFrom), so that a purge in many chunks visits
// each device about once instead of walking the devices it already emptied
// again at every chunk; it wraps around, and finds nothing only after
// looking at every device.
func (s *Store) findOldLocations(ctx context.Context, beforeMS int64, limit int) ([]deviceCount, error) {
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// Both read a covering index (locations_device_ts).
	next, err := conn.PrepareContext(ctx, `SELECT device FROM locations WHERE device >= ? ORDER BY device LIMIT 1`)
	if err != nil {
		return nil, err
	}
	defer next.Close()
	count, err := conn.PrepareContext(ctx, `SELECT count(*) FROM
		(SELECT 1 FROM locations WHERE device = ? AND ts < ? LIMIT ?)`)
	if err != nil {
		return nil, err
	}
	defer count.Close()

	start := s.purgeFrom.get()
	var found []deviceCount
	total := 0
	from, wrapped := start, start == ""
	for {
		var dev string
		err := next.QueryRowContext(ctx, from).Scan(&dev)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if wrapped {
				s.purgeFrom.set("")
				return found, nil
			}
			from, wrapped = "", true
			continue
		case err != nil:
			return nil, err
		case wrapped && start != "" && dev >= start:
			// Back where this call began: every device was seen.
			s.purgeFrom.set("")
			return found, nil
		}
		var n int
		if err := count.QueryRowContext(ctx, dev, beforeMS, limit-total).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			found = append(found, deviceCount{dev, n})
			total += n
		}
		if total >= limit {
			// This device may hold more: the next call starts with it.
			s.purgeFrom.set(dev)
			return found, nil
		}
		from = dev + "\x00" // the next device after dev
	}
}

// resumePoint is the device where the next findOldLocations of a Store
// starts. It only saves work: any value is correct. It has a lock of its
// own so that a purge never waits on the Store's mu, which every batch takes.
type resumePoint struct {
	mu     sync.Mutex
	device string
}

func (r *resumePoint) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.device
}

func (r *resumePoint) set(d string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.device = d
}
