package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
)

// goMigrations are the steps that SQL cannot write so that they are safe to
// run again: SQLite has no ADD COLUMN IF NOT EXISTS. A step runs again when
// its version row is gone (TestMigrateCommand takes the newest one back
// that way). They share the numbering of the SQL files.
var goMigrations = []*goose.Migration{
	goose.NewGoMigration(7, &goose.GoFunc{RunTx: addDeviceCRS}, nil),
	goose.NewGoMigration(11, &goose.GoFunc{RunTx: addChangeStamps}, nil),
}

// addChangeStamps is step 11: devices.changed_at, when a device's name or
// group last changed (UpdateDevice, enrolling it again), indexed for the
// gateways' poll (DevicesChangedSince) that drops a moved device from the
// live sockets of users who may no longer see it; and
// users.password_changed_at, when the password was last set or removed
// (SetUserPassword), which ends the user's web sessions. Both are NULL
// until the first change.
func addChangeStamps(ctx context.Context, tx *sql.Tx) error {
	for _, c := range []struct{ table, column string }{{"devices", "changed_at"}, {"users", "password_changed_at"}} {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&n); err != nil {
			return fmt.Errorf("look for %s.%s: %w", c.table, c.column, err)
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+c.table+` ADD COLUMN `+c.column+` INTEGER`); err != nil {
			return fmt.Errorf("add %s.%s: %w", c.table, c.column, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS devices_changed_at ON devices (changed_at)`); err != nil {
		return fmt.Errorf("index devices.changed_at: %w", err)
	}
	return nil
}

// addDeviceCRS is step 7: a device's default coordinate system (devtrack
// device add --crs, devtrack device set-crs), the crs of its locations that
// name none, such as the GCJ-02 object a WeChat or uni-app mini-program
// posts; the empty string is WGS-84.
func addDeviceCRS(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('devices') WHERE name = 'crs'`).Scan(&n); err != nil {
		return fmt.Errorf("look for devices.crs: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `ALTER TABLE devices ADD COLUMN crs TEXT NOT NULL DEFAULT ''`); err != nil {
		return fmt.Errorf("add devices.crs: %w", err)
	}
	return nil
}
