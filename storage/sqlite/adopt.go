package sqlite

import (
	"context"
	"fmt"

	"github.com/pressly/goose/v3/database"
	"go.uber.org/zap"
)

// Before goose, a hand-written runner recorded applied versions (1 to 3) in
// oldVersionTable. adoptOld moves that record into goose's table so that an
// existing database upgrades in place: the old steps are not run again.
const (
	oldVersionTable = "schema_migrations"
	// adoptedTable is where the old record is kept, renamed. Renaming rather
	// than keeping it also stops a binary of the old runner that starts on
	// an adopted database: it finds no record, runs 0001 again, fails on the
	// existing tables and rolls back, changing nothing, instead of taking
	// the database as version 3 and running on a schema it does not know.
	adoptedTable = "schema_migrations_before_goose"
)

// adoptOld records the old runner's versions in goose's table, in one
// transaction with the rename of the old table, when the database has the
// old table and not goose's. Otherwise it does nothing. Migrate calls it with
// the migration lock held.
func (s *Store) adoptOld(ctx context.Context) (err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	hasGoose, err := tableExists(ctx, tx, versionTable)
	if err != nil {
		return err
	}
	hasOld, err := tableExists(ctx, tx, oldVersionTable)
	if err != nil {
		return err
	}
	if hasGoose || !hasOld {
		return tx.Rollback()
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM `+oldVersionTable+` ORDER BY version`)
	if err != nil {
		return fmt.Errorf("read %s: %w", oldVersionTable, err)
	}
	var versions []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("read %s: %w", oldVersionTable, err)
		}
		versions = append(versions, v)
	}
	if err := closeRows(rows, "read "+oldVersionTable); err != nil {
		return err
	}

	gs, err := database.NewStore(database.DialectSQLite3, versionTable)
	if err != nil {
		return err
	}
	if err := gs.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	// Version 0 is goose's mark of an initialised table.
	for _, v := range append([]int64{0}, versions...) {
		if err := gs.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE `+oldVersionTable+` RENAME TO `+adoptedTable); err != nil {
		return fmt.Errorf("rename %s: %w", oldVersionTable, err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("sqlite: adopted the versions of the old migration runner", zap.Int64s("versions", versions))
	return nil
}
