package sqlite

// What an admin changes in users and devices (storage.AccountAdmin).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/devtrack/devtrack/storage"
)

const (
	// deleteLocationsChunk and deleteLogsChunk are how many archived
	// records of a deleted device one transaction removes (DeleteDevice):
	// each about a few tenths of a second, so that a worker's batches get
	// in between. A log costs several times a location to delete (it
	// leaves the search index too).
	deleteLocationsChunk = 5000
	deleteLogsChunk      = 500
	// tombstoneTTL is how long RevokedSince reports a deleted device.
	tombstoneTTL = 3600_000 // 1 h in ms
)

// UpdateUser changes the user's role and groups in one transaction.
func (s *Store) UpdateUser(ctx context.Context, name string, ch storage.UserChange) (_ storage.User, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return storage.User{}, fmt.Errorf("sqlite: update user %q: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var id int64
	var role string
	if err = tx.QueryRowContext(ctx, `SELECT id, role FROM users WHERE name = ?`, name).Scan(&id, &role); err != nil {
		return storage.User{}, fmt.Errorf("sqlite: update user %q: %w", name, notFound(err))
	}
	if ch.Role != nil {
		role = *ch.Role
	}
	var groups []string
	if ch.Groups != nil {
		groups = normGroups(*ch.Groups)
	} else if groups, err = userGroups(ctx, tx, id); err != nil {
		return storage.User{}, fmt.Errorf("sqlite: update user %q: %w", name, err)
	}
	if err = storage.CheckAccount(role, groups); err != nil {
		return storage.User{}, fmt.Errorf("sqlite: update user %q: %w", name, err)
	}
	if _, err = tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, id); err != nil {
		return storage.User{}, fmt.Errorf("sqlite: update user %q: %w", name, err)
	}
	if ch.Groups != nil {
		if _, err = tx.ExecContext(ctx, `DELETE FROM user_groups WHERE user_id = ?`, id); err != nil {
			return storage.User{}, fmt.Errorf("sqlite: update user %q: %w", name, err)
		}
		for _, g := range groups {
			if _, err = tx.ExecContext(ctx, `INSERT INTO user_groups (user_id, grp) VALUES (?, ?)`, id, g); err != nil {
				return storage.User{}, fmt.Errorf("sqlite: update user %q: group %q: %w", name, g, err)
			}
		}
	}
	if err = tx.Commit(); err != nil {
		return storage.User{}, fmt.Errorf("sqlite: update user %q: %w", name, err)
	}
	u, _, err := s.UserByName(ctx, name)
	return u, err
}

// userGroups reads the groups of user id in tx.
func userGroups(ctx context.Context, tx *sql.Tx, id int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT grp FROM user_groups WHERE user_id = ? ORDER BY grp`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// SetUserPassword replaces the user's password hash (nil: none) and
// stamps password_changed_at, which ends the user's web sessions.
func (s *Store) SetUserPassword(ctx context.Context, name string, passwordHash []byte) error {
	var pw any
	if passwordHash != nil {
		pw = passwordHash
	}
	r, err := s.wdb.ExecContext(ctx, `UPDATE users SET password_hash = ?,
		password_changed_at = `+fmt.Sprintf(nextStamp, "password_changed_at")+` WHERE name = ?`, pw, nowMS(), name)
	if err != nil {
		return fmt.Errorf("sqlite: set password of user %q: %w", name, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: set password of user %q: %w", name, storage.ErrNotFound)
	}
	return nil
}

// UpdateDevice changes the device's name and group and stamps changed_at.
func (s *Store) UpdateDevice(ctx context.Context, id string, ch storage.DeviceChange) (storage.Device, error) {
	if err := storage.CheckDeviceChange(ch); err != nil {
		return storage.Device{}, fmt.Errorf("sqlite: update device %q: %w", id, err)
	}
	var name, group any
	if ch.Name != nil {
		name = *ch.Name
	}
	if ch.Group != nil {
		group = *ch.Group
	}
	d, err := scanDevice(s.wdb.QueryRowContext(ctx, `UPDATE devices SET name = coalesce(?, name), grp = coalesce(?, grp),
		changed_at = `+fmt.Sprintf(nextStamp, "changed_at")+`
		WHERE id = ? RETURNING `+deviceColumns, name, group, nowMS(), id))
	if err != nil {
		return storage.Device{}, fmt.Errorf("sqlite: update device %q: %w", id, notFound(err))
	}
	return d, nil
}

// DevicesChangedSince lists the devices whose name or group changed at or
// after sinceMS.
func (s *Store) DevicesChangedSince(ctx context.Context, sinceMS int64) ([]storage.Device, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE changed_at >= ? ORDER BY id`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices changed since: %w", err)
	}
	defer rows.Close()
	out := []storage.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: devices changed since: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: devices changed since: %w", err)
	}
	return out, nil
}

// EnrolDevice registers d, or enrols a revoked d.ID again, in one upsert.
// A device is new when its token has never been replaced: enrolling again
// sets TokenRotatedAt, as ReenrollDevice does.
func (s *Store) EnrolDevice(ctx context.Context, d storage.Device, tokenHash []byte) (_ storage.Device, again bool, err error) {
	switch {
	case d.ID == "":
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device: empty id: %w", storage.ErrInvalid)
	case len(tokenHash) == 0:
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: empty token hash: %w", d.ID, storage.ErrInvalid)
	case !storage.ValidDeviceCRS(d.CRS):
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: crs %q: %w", d.ID, d.CRS, storage.ErrInvalid)
	}
	if d.CreatedAt == 0 {
		d.CreatedAt = nowMS()
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: %w", d.ID, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	got, err := scanDevice(tx.QueryRowContext(ctx, `INSERT INTO devices (id, name, grp, token_hash, created_at, crs)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, revoked_at = NULL,
			name = excluded.name, grp = excluded.grp, crs = excluded.crs,
			token_rotated_at = max(?7, coalesce(token_rotated_at, 0) + 1),
			changed_at = max(?7, coalesce(changed_at, 0) + 1)
		WHERE devices.revoked_at IS NOT NULL
		RETURNING `+deviceColumns, d.ID, d.Name, d.Group, tokenHash, d.CreatedAt, d.CRS, nowMS()))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: it is active: %w", d.ID, storage.ErrExists)
	case isConstraint(err):
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: token hash taken: %w", d.ID, storage.ErrExists)
	case err != nil:
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: %w", d.ID, err)
	}
	if _, err = tx.ExecContext(ctx, `DELETE FROM deleted_devices WHERE id = ?`, d.ID); err != nil {
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: %w", d.ID, err)
	}
	if err = tx.Commit(); err != nil {
		return storage.Device{}, false, fmt.Errorf("sqlite: enrol device %q: %w", d.ID, err)
	}
	return got, got.TokenRotatedAt != 0, nil
}

// DeleteDevice revokes the device, deletes its archive in chunks, then the
// device (its legacy key and shares go with it: ON DELETE CASCADE) and
// leaves a tombstone for RevokedSince.
func (s *Store) DeleteDevice(ctx context.Context, id string) (storage.DeletedDevice, error) {
	var out storage.DeletedDevice
	r, err := s.wdb.ExecContext(ctx, `UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nowMS(), id)
	if err != nil {
		return out, fmt.Errorf("sqlite: delete device %q: %w", id, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return out, fmt.Errorf("sqlite: delete device %q: %w", id, storage.ErrNotFound)
	}
	for _, k := range []struct {
		table string
		n     *int64
		chunk int
	}{{"locations", &out.Locations, deleteLocationsChunk}, {"logs", &out.Logs, deleteLogsChunk}} {
		for {
			// Each chunk its own transaction, so a worker's batches get in
			// between; logs fire their FTS delete trigger.
			n, err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
				return execCount(ctx, tx, `DELETE FROM `+k.table+` WHERE seq IN
					(SELECT seq FROM `+k.table+` WHERE device = ? LIMIT ?)`, id, k.chunk)
			})
			if err != nil {
				return out, fmt.Errorf("sqlite: delete device %q: %s: %w", id, k.table, err)
			}
			*k.n += n
			if n == 0 {
				break
			}
		}
	}
	now := nowMS()
	_, err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
		// Records a worker stored since the last chunk go too.
		n, err := execCount(ctx, tx, `DELETE FROM locations WHERE device = ?`, id)
		if err != nil {
			return 0, err
		}
		out.Locations += n
		if n, err = execCount(ctx, tx, `DELETE FROM logs WHERE device = ?`, id); err != nil {
			return 0, err
		}
		out.Logs += n
		if _, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE id = ?`, id); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM deleted_devices WHERE deleted_at < ?`, now-tombstoneTTL); err != nil {
			return 0, err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deleted_devices (id, deleted_at) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at`, id, now)
		return 0, err
	})
	if err != nil {
		return out, fmt.Errorf("sqlite: delete device %q: %w", id, err)
	}
	return out, nil
}
