// Package sqlite is the SQLite implementation of storage.Store, built on the
// pure-Go driver modernc.org/sqlite. It owns the schema (embedded versioned
// migrations), the batched writes of the workers and the paged, filtered reads
// of the query API.
//
// Several processes (workers, gateways) may open the same file. The database
// runs in WAL mode, so readers never block the writer. Each Store writes
// through a single connection whose transactions start with BEGIN IMMEDIATE:
// the write lock is taken up front, and a writer of another process waits
// (busy_timeout) instead of failing with SQLITE_BUSY on a lock upgrade.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/devtrack/devtrack/storage"
)

var _ storage.Store = (*Store)(nil)

// Connection settings.
const (
	// busyTimeout is how long a connection waits for a lock held by another
	// connection or process before failing with SQLITE_BUSY. Batches are
	// small, so a wait this long means something is stuck.
	busyTimeout = 10 * time.Second
	// writeCacheKiB is the page cache of the write connection. A batch
	// touches a leaf page per device in each per-device index; they should
	// stay cached from batch to batch.
	writeCacheKiB = 64 << 10
	// walCheckpointPages is the WAL size (in pages) at which a commit copies
	// the WAL back into the database. The same hot index pages are rewritten
	// by every batch; a larger WAL lets one checkpoint write them once
	// instead of every few batches.
	walCheckpointPages = 16384
	// walSizeLimit is what the WAL file is truncated to after a checkpoint.
	walSizeLimit = 64 << 20
	// minReaders is the least size of the read pool; it grows with the CPUs.
	minReaders = 4
	// readMmapBytes is how much of the file the read connections map
	// (SQLite's default build caps it near 2 GiB): address space, not
	// memory; the OS page cache holds what is read either way.
	readMmapBytes = 2 << 30
)

// Store is a storage.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	log *zap.Logger
	// path is the database file; the migration lock file sits beside it.
	path string
	// wdb has exactly one connection, so the statements of ins are prepared
	// once on it and every write is serialised in this process.
	wdb *sql.DB
	// rdb is a pool of query_only connections for the read API.
	rdb *sql.DB

	// mu guards ins, which is prepared on first use (after Migrate has
	// created the tables) and kept until Close.
	mu  sync.Mutex
	ins *insertStmts
	// reads are the hot read queries, prepared on first use (readstmt.go).
	reads readStmts

	// purgeFrom is the device where the next chunk of a locations Purge
	// starts looking (findOldLocations).
	purgeFrom resumePoint

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database file at path. log may be nil.
// The schema is not touched: call Migrate before use.
func Open(ctx context.Context, path string, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	wdb, err := openDB(ctx, path, true)
	if err != nil {
		return nil, err
	}
	rdb, err := openDB(ctx, path, false)
	if err != nil {
		_ = wdb.Close()
		return nil, err
	}
	log.Debug("sqlite store opened", zap.String("path", path))
	return &Store{log: log, path: path, wdb: wdb, rdb: rdb}, nil
}

// openDB opens the write handle (one connection, BEGIN IMMEDIATE) or the read
// pool (query_only) on path and checks that it works.
func openDB(ctx context.Context, path string, write bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	if write {
		q.Set("_txlock", "immediate")
		q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writeCacheKiB))
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walCheckpointPages))
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
		// Statement journals (the undo log of one INSERT inside a batch)
		// stay in memory instead of spilling to a temp file.
		q.Add("_pragma", "temp_store(MEMORY)")
	} else {
		q.Add("_pragma", "query_only(1)")
		// Reads map the file instead of copying pages through pread: a
		// search's index plan looks up thousands of rows spread over the
		// whole file, one page each, and at 10M logs the syscalls were
		// most of its time (BenchmarkSearch).
		q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", readMmapBytes))
	}
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if write {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
	} else {
		db.SetMaxOpenConns(readPoolSize())
		db.SetMaxIdleConns(readPoolSize())
	}
	// Connections live as long as the Store: prepared statements stay valid
	// and the per-connection pragmas run once.
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := ping(ctx, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// readPoolSize is the size of the read pool.
func readPoolSize() int { return max(minReaders, runtime.NumCPU()) }

// ping opens the first connection of db. Switching a new file to WAL takes an
// exclusive lock, and SQLite reports a conflict there at once as SQLITE_BUSY
// instead of calling the busy handler; so when processes start together on a
// new file, all but one retry here until the file is in WAL mode.
func ping(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Close releases the prepared statements and both connection pools. It is
// safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		var errs []error
		if s.ins != nil {
			errs = append(errs, s.ins.close())
			s.ins = nil
		}
		s.mu.Unlock()
		errs = append(errs, s.reads.close())
		// Let SQLite refresh the planner statistics that this connection's
		// queries showed to be stale; cheap, and a failure only costs plans.
		if _, err := s.wdb.Exec(`PRAGMA optimize`); err != nil {
			s.log.Debug("sqlite optimize on close", zap.Error(err))
		}
		errs = append(errs, s.wdb.Close(), s.rdb.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite3.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3lib.SQLITE_BUSY
}

// isConstraint reports whether err is a UNIQUE or PRIMARY KEY violation.
func isConstraint(err error) bool {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3lib.SQLITE_CONSTRAINT_UNIQUE, sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// nowMS is the store's clock, in Unix milliseconds.
func nowMS() int64 { return time.Now().UnixMilli() }

// Ping checks that the database answers a query on the read pool.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}
