package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/devtrack/devtrack/storage"
)

// storeFailures are the SQLite result codes (primary, low byte) that say the
// database cannot write now, whatever is written: any write would get them.
var storeFailures = map[int]bool{
	sqlite3lib.SQLITE_PERM:     true,
	sqlite3lib.SQLITE_BUSY:     true, // another writer held the lock past busy_timeout
	sqlite3lib.SQLITE_LOCKED:   true,
	sqlite3lib.SQLITE_NOMEM:    true,
	sqlite3lib.SQLITE_READONLY: true, // read-only file or directory, remounted ro
	sqlite3lib.SQLITE_IOERR:    true, // every SQLITE_IOERR_* extended code
	sqlite3lib.SQLITE_CORRUPT:  true,
	sqlite3lib.SQLITE_FULL:     true, // "database or disk is full"
	sqlite3lib.SQLITE_CANTOPEN: true,
	sqlite3lib.SQLITE_PROTOCOL: true,
	sqlite3lib.SQLITE_NOTADB:   true,
}

// classify marks err as storage.ErrUnavailable when it is a failure of the
// database rather than of the records being written. Errors it cannot place
// (a constraint, a value SQLite refuses, a deadline that a batch too large
// for a slow disk would meet every time, anything unknown) are returned as
// they are: the caller tells them apart with CheckWrite.
func classify(err error) error {
	if err == nil || errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	var se *sqlite3.Error
	switch {
	case errors.As(err, &se) && storeFailures[se.Code()&0xff],
		errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// reopenIfReadOnly drops the idle connections after a read-only error, so
// that the next write opens the files again. SQLite opens a file it may not
// write read-only and keeps it so for the life of the connection, and the
// WAL index (-shm) is shared by every connection of the process to that
// file, read pool included: a worker that started on a read-only disk would
// never write again once the disk is writable. Closing the idle connections
// (database/sql reopens them, prepared statements re-prepare themselves)
// costs a few opens per failed write, which only happens while the disk is
// read-only.
func (s *Store) reopenIfReadOnly(err error) {
	var se *sqlite3.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3lib.SQLITE_READONLY {
		return
	}
	s.wdb.SetMaxIdleConns(0)
	s.wdb.SetMaxIdleConns(1)
	s.rdb.SetMaxIdleConns(0)
	s.rdb.SetMaxIdleConns(readPoolSize())
}

// CheckWrite rewrites the one row of store_health in a committed
// transaction: if that fails, no write can succeed now.
func (s *Store) CheckWrite(ctx context.Context) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err == nil {
		_, err = tx.ExecContext(ctx, `UPDATE store_health SET checked_at = ? WHERE id = 1`, nowMS())
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
	}
	if err != nil {
		s.reopenIfReadOnly(err)
		err = classify(err)
		if !errors.Is(err, storage.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return fmt.Errorf("sqlite: check write: %w", err)
	}
	return nil
}
