package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"go.uber.org/zap"

	"github.com/devtrack/devtrack/storage"
)

// migrationFS holds the schema as goose SQL files named NNNNN_what.sql. A
// file, once released, is never edited: changes go into a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateLockID is the session advisory lock that goose holds while it
// migrates, so that processes starting together migrate one at a time.
const migrateLockID = int64(0x64657674726b6d31) // "devtrkm1"

// versionTable is goose's table of applied versions.
const versionTable = "goose_db_version"

// provider builds the goose provider on a database/sql handle over the pool
// (goose speaks database/sql); close the handle after use.
func (s *Store) provider() (*goose.Provider, *sql.DB, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, nil, err
	}
	// A 1 s probe instead of goose's 5 s: a second process waits for the
	// first one's migration, which takes well under a second, for at most
	// 5 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithSessionLocker(locker), goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return p, db, nil
}

// knownVersion is the newest version of the embedded migrations.
func knownVersion(p *goose.Provider) int64 {
	src := p.ListSources()
	return src[len(src)-1].Version
}

// Migrate applies the embedded migrations that the database lacks, each in
// its own transaction, under goose's session lock; then it makes the
// partitions of the days around today. A database migrated by a newer
// release is refused before anything is changed.
func (s *Store) Migrate(ctx context.Context) error {
	p, db, err := s.provider()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer db.Close()
	cur, _, err := s.schemaVersion(ctx, knownVersion(p))
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate from version %d: %w", cur, classify(err))
	}
	for _, r := range results {
		s.log.Info("postgres migration applied", zap.Int64("version", r.Source.Version),
			zap.String("file", r.Source.Path), zap.Duration("took", r.Duration))
	}
	// Also after a migration applied by another process: this one's view
	// of the partitions starts now.
	s.forgetPartitions("locations")
	s.forgetPartitions("logs")
	if err := s.ensureAhead(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: partitions: %w", classify(err))
	}
	s.checkFolding(ctx)
	return nil
}

// SchemaVersion reports the version of the schema in the database (0 for an
// empty one) and the newest version this binary knows. It fails with
// storage.ErrSchemaTooNew (and both versions) when the database is newer.
func (s *Store) SchemaVersion(ctx context.Context) (int64, int64, error) {
	p, db, err := s.provider()
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	defer db.Close()
	cur, known, err := s.schemaVersion(ctx, knownVersion(p))
	if err != nil {
		return cur, known, fmt.Errorf("postgres: schema version: %w", err)
	}
	return cur, known, nil
}

// schemaVersion reads goose's table (0 when it does not exist yet) and
// compares it with known.
func (s *Store) schemaVersion(ctx context.Context, known int64) (int64, int64, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&exists); err != nil {
		return 0, known, classify(err)
	}
	if !exists {
		return 0, known, nil
	}
	var cur int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+versionTable+` WHERE is_applied`).Scan(&cur)
	if err != nil {
		return 0, known, classify(err)
	}
	if cur > known {
		return cur, known, fmt.Errorf("%w: database schema version %d is newer than this binary knows (%d); run a newer devtrack",
			storage.ErrSchemaTooNew, cur, known)
	}
	return cur, known, nil
}

// checkFolding warns when the database's LC_CTYPE does not lower-case
// non-ASCII letters (a "C" or "POSIX" locale): ILIKE would then find Straße
// only as written, unlike storage.Fold.
func (s *Store) checkFolding(ctx context.Context) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT lower('ÄЖΣ') = 'äжσ'`).Scan(&ok)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("postgres: cannot check case folding", zap.Error(oneLine(err)))
		return
	}
	if !ok {
		s.log.Warn("postgres database's LC_CTYPE does not fold non-ASCII case; search ignores case only for ASCII. " +
			"Create the database with a UTF-8 locale (e.g. LC_CTYPE C.UTF-8).")
	}
}
