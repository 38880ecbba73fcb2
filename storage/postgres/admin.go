package postgres

// What an admin changes in users and devices (storage.AccountAdmin), as in
// the SQLite store (storage/sqlite/admin.go).

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
func (s *Store) UpdateUser(ctx context.Context, name string, ch storage.UserChange) (storage.User, error) {
	if validText("name", name) != nil {
		return storage.User{}, fmt.Errorf("postgres: update user %q: %w", name, storage.ErrNotFound)
	}
	var u storage.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, _, err := scanUser(tx.QueryRow(ctx, userSelect+` WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return notFound(err)
		}
		role, groups := cur.Role, cur.Groups
		if ch.Role != nil {
			role = *ch.Role
		}
		if ch.Groups != nil {
			groups = normGroups(*ch.Groups)
		}
		if err := storage.CheckAccount(role, groups); err != nil {
			return err
		}
		for _, g := range groups {
			if err := validText("group", g); err != nil {
				return fmt.Errorf("%w: %w", err, storage.ErrInvalid)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET role = $1 WHERE id = $2`, role, cur.ID); err != nil {
			return err
		}
		if ch.Groups != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM user_groups WHERE user_id = $1`, cur.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO user_groups (user_id, grp) SELECT $1, unnest($2::text[])`, cur.ID, groups); err != nil {
				return err
			}
		}
		u, _, err = scanUser(tx.QueryRow(ctx, userSelect+` WHERE id = $1`, cur.ID))
		return err
	})
	if err != nil {
		return storage.User{}, fmt.Errorf("postgres: update user %q: %w", name, classify(err))
	}
	return u, nil
}

// SetUserPassword replaces the user's password hash (nil: none) and
// stamps password_changed_at, which ends the user's web sessions.
func (s *Store) SetUserPassword(ctx context.Context, name string, passwordHash []byte) error {
	if validText("name", name) != nil {
		return fmt.Errorf("postgres: set password of user %q: %w", name, storage.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $1,
		password_changed_at = `+fmt.Sprintf(nextStamp, "password_changed_at")+` WHERE name = $3`, passwordHash, nowMS(), name)
	if err != nil {
		return fmt.Errorf("postgres: set password of user %q: %w", name, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: set password of user %q: %w", name, storage.ErrNotFound)
	}
	return nil
}

// UpdateDevice changes the device's name and group and stamps changed_at.
func (s *Store) UpdateDevice(ctx context.Context, id string, ch storage.DeviceChange) (storage.Device, error) {
	if err := storage.CheckDeviceChange(ch); err != nil {
		return storage.Device{}, fmt.Errorf("postgres: update device %q: %w", id, err)
	}
	if ch.Name != nil {
		if err := validText("name", *ch.Name); err != nil {
			return storage.Device{}, fmt.Errorf("postgres: update device %q: %w: %w", id, err, storage.ErrInvalid)
		}
	}
	if validText("id", id) != nil {
		return storage.Device{}, fmt.Errorf("postgres: update device %q: %w", id, storage.ErrNotFound)
	}
	d, err := scanDevice(s.pool.QueryRow(ctx, `UPDATE devices SET name = coalesce($1, name), grp = coalesce($3, grp),
		changed_at = `+fmt.Sprintf(nextStamp, "changed_at")+`
		WHERE id = $4 RETURNING `+deviceColumns, ch.Name, nowMS(), ch.Group, id))
	if err != nil {
		return storage.Device{}, fmt.Errorf("postgres: update device %q: %w", id, notFound(err))
	}
	return d, nil
}

// DevicesChangedSince lists the devices whose name or group changed at or
// after sinceMS.
func (s *Store) DevicesChangedSince(ctx context.Context, sinceMS int64) ([]storage.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE changed_at >= $1 ORDER BY id`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("postgres: devices changed since: %w", classify(err))
	}
	return collectDevices(rows, "devices changed since")
}

// EnrolDevice registers d, or enrols a revoked d.ID again, in one upsert;
// see the SQLite store.
func (s *Store) EnrolDevice(ctx context.Context, d storage.Device, tokenHash []byte) (storage.Device, bool, error) {
	switch {
	case d.ID == "":
		return storage.Device{}, false, fmt.Errorf("postgres: enrol device: empty id: %w", storage.ErrInvalid)
	case len(tokenHash) == 0:
		return storage.Device{}, false, fmt.Errorf("postgres: enrol device %q: empty token hash: %w", d.ID, storage.ErrInvalid)
	case !storage.ValidDeviceCRS(d.CRS):
		return storage.Device{}, false, fmt.Errorf("postgres: enrol device %q: crs %q: %w", d.ID, d.CRS, storage.ErrInvalid)
	}
	for _, f := range [][2]string{{"id", d.ID}, {"name", d.Name}, {"group", d.Group}} {
		if err := validText(f[0], f[1]); err != nil {
			return storage.Device{}, false, fmt.Errorf("postgres: enrol device %q: %w: %w", d.ID, err, storage.ErrInvalid)
		}
	}
	if d.CreatedAt == 0 {
		d.CreatedAt = nowMS()
	}
	var got storage.Device
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		got, err = scanDevice(tx.QueryRow(ctx, `INSERT INTO devices (id, name, grp, token_hash, created_at, crs)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, revoked_at = NULL,
				name = excluded.name, grp = excluded.grp, crs = excluded.crs,
				token_rotated_at = greatest($7::bigint, coalesce(devices.token_rotated_at, 0) + 1),
				changed_at = greatest($7::bigint, coalesce(devices.changed_at, 0) + 1)
			WHERE devices.revoked_at IS NOT NULL
			RETURNING `+deviceColumns, d.ID, d.Name, d.Group, tokenHash, d.CreatedAt, d.CRS, nowMS()))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM deleted_devices WHERE id = $1`, d.ID)
		return err
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.Device{}, false, fmt.Errorf("postgres: enrol device %q: it is active: %w", d.ID, storage.ErrExists)
	case pgCode(err) == codeUniqueViolation:
		return storage.Device{}, false, fmt.Errorf("postgres: enrol device %q: token hash taken: %w", d.ID, storage.ErrExists)
	case err != nil:
		return storage.Device{}, false, fmt.Errorf("postgres: enrol device %q: %w", d.ID, classify(err))
	}
	return got, got.TokenRotatedAt != 0, nil
}

// DeleteDevice revokes the device, deletes its archive in chunks (data rows
// with their ledger rows), then the device (its legacy key and shares go
// with it: ON DELETE CASCADE) and leaves a tombstone for RevokedSince.
func (s *Store) DeleteDevice(ctx context.Context, id string) (storage.DeletedDevice, error) {
	var out storage.DeletedDevice
	if validText("id", id) != nil {
		return out, fmt.Errorf("postgres: delete device %q: %w", id, storage.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, nowMS(), id)
	if err != nil {
		return out, fmt.Errorf("postgres: delete device %q: %w", id, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return out, fmt.Errorf("postgres: delete device %q: %w", id, storage.ErrNotFound)
	}
	for _, k := range []struct {
		kind  storage.Kind
		n     *int64
		chunk int
	}{{storage.KindLocations, &out.Locations, deleteLocationsChunk}, {storage.KindLogs, &out.Logs, deleteLogsChunk}} {
		data, ids, err := tables(k.kind)
		if err != nil {
			return out, fmt.Errorf("postgres: delete device %q: %w", id, err)
		}
		for {
			// The ledger's (device, id) key finds the chunk; its (ts, seq)
			// name the data rows.
			tag, err := s.pool.Exec(ctx, `WITH gone AS (
				DELETE FROM `+ids+` WHERE device = $1 AND id IN (SELECT id FROM `+ids+` WHERE device = $1 LIMIT $2)
				RETURNING ts, seq)
				DELETE FROM `+data+` WHERE (ts, seq) IN (SELECT ts, seq FROM gone)`, id, k.chunk)
			if err != nil {
				return out, fmt.Errorf("postgres: delete device %q: %s: %w", id, k.kind, classify(err))
			}
			*k.n += tag.RowsAffected()
			if tag.RowsAffected() == 0 {
				break
			}
		}
	}
	now := nowMS()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Records a worker stored since the last chunk go too.
		for _, k := range []struct {
			kind storage.Kind
			n    *int64
		}{{storage.KindLocations, &out.Locations}, {storage.KindLogs, &out.Logs}} {
			data, ids, _ := tables(k.kind)
			if _, err := tx.Exec(ctx, `DELETE FROM `+ids+` WHERE device = $1`, id); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `DELETE FROM `+data+` WHERE device = $1`, id)
			if err != nil {
				return err
			}
			*k.n += tag.RowsAffected()
		}
		if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM deleted_devices WHERE deleted_at < $1`, now-tombstoneTTL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO deleted_devices (id, deleted_at) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at`, id, now)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("postgres: delete device %q: %w", id, classify(err))
	}
	return out, nil
}
