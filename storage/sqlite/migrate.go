package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"go.uber.org/zap"

	"github.com/devtrack/devtrack/storage"
)

// migrationFS holds the schema as goose SQL files named NNNN_what.sql. A
// file, once released, is never edited (only its goose annotations were
// added when goose replaced the hand-written runner): changes go into a new
// file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// versionTable is goose's record of applied versions.
const versionTable = goose.DefaultTablename

// newProvider builds the goose runner of the embedded files and of
// goMigrations on db. goose's global registry of Go migrations is off: the
// steps are the ones named here. goose logs nothing; Migrate logs what was
// applied.
func newProvider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectSQLite3, db, sub,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations...),
		goose.WithLogger(goose.NopLogger()),
	)
}

// knownVersion is the newest version among the embedded files and
// goMigrations.
func knownVersion() (int64, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return 0, err
	}
	files, err := fs.Glob(sub, "*.sql")
	if err != nil {
		return 0, err
	}
	var known int64
	for _, m := range goMigrations {
		known = max(known, m.Version)
	}
	for _, f := range files {
		v, err := goose.NumericComponent(f)
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", f, err)
		}
		known = max(known, v)
	}
	return known, nil
}

// Migrate creates or upgrades the schema; see storage.Store.
//
// The whole run holds an exclusive flock on a side file (lockMigrations):
// goose opens a transaction per file, so one BEGIN IMMEDIATE cannot span the
// run, and the version check, the adoption of an old database and every step
// must happen as one unit when a gateway and a worker start together. Inside
// the lock, a database newer than the embedded files is refused before
// anything is written; a database of the old runner is adopted (adoptOld);
// then goose applies what is missing, each file in its own transaction.
func (s *Store) Migrate(ctx context.Context) error {
	unlock, err := lockMigrations(ctx, s.path, s.log)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer unlock()

	current, known, err := s.SchemaVersion(ctx)
	if err != nil {
		var tooNew schemaTooNewError
		if errors.As(err, &tooNew) {
			return fmt.Errorf("sqlite: migrate: %w", tooNew)
		}
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if current < known {
		if err := s.adoptOld(ctx); err != nil {
			return fmt.Errorf("sqlite: migrate: adopt the old runner's versions: %w", err)
		}
	}
	p, err := newProvider(s.wdb)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	// A migration that rebuilds the search index (0004, 0005) rewrites
	// pages the database held before its statement, and SQLite keeps their
	// old content in the statement journal until the statement ends: with
	// the write connection's temp_store(MEMORY), 1.7 GB of memory at 10M
	// logs. During migrations the journal is a temporary file instead.
	if _, err := s.wdb.ExecContext(ctx, `PRAGMA temp_store = FILE`); err != nil {
		return fmt.Errorf("sqlite: migrate: journal to a file: %w", err)
	}
	defer func() {
		if _, err := s.wdb.ExecContext(context.WithoutCancel(ctx), `PRAGMA temp_store = MEMORY`); err != nil {
			s.log.Warn("sqlite: statement journals stay in files", zap.Error(err))
		}
	}()
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: migrate from version %d: %w", current, classify(err))
	}
	for _, r := range results {
		s.log.Info("sqlite migration applied", zap.Int64("version", r.Source.Version),
			zap.String("file", r.Source.Path), zap.Duration("took", r.Duration))
	}
	return nil
}

// SchemaVersion reports the highest version recorded in the database (goose's
// table, or the old runner's schema_migrations before adoption; 0 for a new
// file) and the newest one this binary knows. It only reads. When current is
// above known it also returns an error wrapping storage.ErrSchemaTooNew.
func (s *Store) SchemaVersion(ctx context.Context) (current, known int64, err error) {
	known, err = knownVersion()
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	current, err = recordedVersion(ctx, s.rdb)
	if err != nil {
		return 0, known, fmt.Errorf("sqlite: schema version: %w", err)
	}
	if current > known {
		return current, known, schemaTooNewError{current, known}
	}
	return current, known, nil
}

// schemaTooNewError is storage.ErrSchemaTooNew with the versions, worded for
// the operator who started an older binary on a newer database.
type schemaTooNewError struct{ current, known int64 }

func (e schemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this binary knows (%d); run a newer devtrack", e.current, e.known)
}

func (e schemaTooNewError) Is(target error) bool { return target == storage.ErrSchemaTooNew }

// recordedVersion reads the schema version from goose's table, else from the
// old runner's, else 0.
func recordedVersion(ctx context.Context, db *sql.DB) (int64, error) {
	for _, q := range []struct{ table, max string }{
		{versionTable, `SELECT max(version_id) FROM ` + versionTable + ` WHERE is_applied`},
		{oldVersionTable, `SELECT max(version) FROM ` + oldVersionTable},
	} {
		ok, err := tableExists(ctx, db, q.table)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		var v sql.NullInt64
		if err := db.QueryRowContext(ctx, q.max).Scan(&v); err != nil {
			return 0, fmt.Errorf("read %s: %w", q.table, err)
		}
		return v.Int64, nil
	}
	return 0, nil
}

// tableExists reports whether the database has a table of that name.
func tableExists(ctx context.Context, db database.DBTxConn, name string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("look for table %s: %w", name, err)
	}
	return n > 0, nil
}
