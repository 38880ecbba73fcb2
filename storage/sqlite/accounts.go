package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/devtrack/devtrack/storage"
)

const deviceColumns = `id, name, grp, created_at, revoked_at, token_rotated_at, crs`

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanDevice(r scanner) (storage.Device, error) {
	var d storage.Device
	var revoked, rotated sql.NullInt64
	if err := r.Scan(&d.ID, &d.Name, &d.Group, &d.CreatedAt, &revoked, &rotated, &d.CRS); err != nil {
		return storage.Device{}, err
	}
	d.RevokedAt, d.TokenRotatedAt = revoked.Int64, rotated.Int64
	return d, nil
}

// notFound turns sql.ErrNoRows into storage.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// AddDevice registers d. CreatedAt defaults to now; a non-zero RevokedAt is
// kept, so a revoked device can be imported as such.
func (s *Store) AddDevice(ctx context.Context, d storage.Device, tokenHash []byte) error {
	if d.ID == "" {
		return fmt.Errorf("sqlite: add device: empty id: %w", storage.ErrInvalid)
	}
	if len(tokenHash) == 0 {
		return fmt.Errorf("sqlite: add device %q: empty token hash: %w", d.ID, storage.ErrInvalid)
	}
	if !storage.ValidDeviceCRS(d.CRS) {
		return fmt.Errorf("sqlite: add device %q: crs %q: %w", d.ID, d.CRS, storage.ErrInvalid)
	}
	if d.CreatedAt == 0 {
		d.CreatedAt = nowMS()
	}
	var revoked any
	if d.RevokedAt != 0 {
		revoked = d.RevokedAt
	}
	_, err := s.wdb.ExecContext(ctx,
		`INSERT INTO devices (id, name, grp, token_hash, created_at, revoked_at, crs) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Name, d.Group, tokenHash, d.CreatedAt, revoked, d.CRS)
	if isConstraint(err) {
		// The id, or (astronomically unlikely) the token hash, is taken.
		return fmt.Errorf("sqlite: add device %q: %w", d.ID, storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: add device %q: %w", d.ID, err)
	}
	// A deleted id registered again is no longer reported as revoked.
	if _, err := s.wdb.ExecContext(ctx, `DELETE FROM deleted_devices WHERE id = ?`, d.ID); err != nil {
		return fmt.Errorf("sqlite: add device %q: forget its tombstone: %w", d.ID, err)
	}
	return nil
}

// DeviceByTokenHash returns the device holding the token.
func (s *Store) DeviceByTokenHash(ctx context.Context, tokenHash []byte) (storage.Device, error) {
	d, err := scanDevice(s.queryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return storage.Device{}, fmt.Errorf("sqlite: device by token: %w", notFound(err))
	}
	if d.RevokedAt != 0 {
		return storage.Device{}, fmt.Errorf("sqlite: device by token: device %q: %w", d.ID, storage.ErrRevoked)
	}
	return d, nil
}

// Device returns a device by id, revoked or not.
func (s *Store) Device(ctx context.Context, id string) (storage.Device, error) {
	d, err := scanDevice(s.queryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ?`, id))
	if err != nil {
		return storage.Device{}, fmt.Errorf("sqlite: device %q: %w", id, notFound(err))
	}
	return d, nil
}

// Devices lists devices ordered by id, all of them when groups is nil, else
// those in one of groups.
func (s *Store) Devices(ctx context.Context, groups []string) ([]storage.Device, error) {
	out := []storage.Device{}
	if groups != nil && len(groups) == 0 {
		return out, nil
	}
	var rows *sql.Rows
	var err error
	if groups == nil {
		rows, err = s.rdb.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY id`)
	} else {
		list, merr := json.Marshal(groups)
		if merr != nil {
			return nil, fmt.Errorf("sqlite: devices: %w", merr)
		}
		rows, err = s.rdb.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
			WHERE grp IN (SELECT value FROM json_each(?)) ORDER BY id`, string(list))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	return out, nil
}

// RevokeDevice marks the device revoked now. Revoking it again keeps the
// first time, so RevokedSince does not report it twice.
func (s *Store) RevokeDevice(ctx context.Context, id string) error {
	r, err := s.wdb.ExecContext(ctx,
		`UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, nowMS(), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke device %q: %w", id, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: revoke device %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// RevokedSince lists the ids of devices revoked, or deleted (their
// tombstones, DeleteDevice), at or after sinceMS, ordered by id.
func (s *Store) RevokedSince(ctx context.Context, sinceMS int64) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT id FROM devices WHERE revoked_at IS NOT NULL AND revoked_at >= ?1
		UNION SELECT id FROM deleted_devices WHERE deleted_at >= ?1 ORDER BY id`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoked since: %w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: revoked since: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: revoked since: %w", err)
	}
	return ids, nil
}

// AddUser creates u with its groups in one transaction. The returned user
// has its id, its creation time (now if zero) and its groups sorted and
// without repeats, as the lookups return them.
func (s *Store) AddUser(ctx context.Context, u storage.User, tokenHash, passwordHash []byte) (_ storage.User, err error) {
	switch {
	case u.Name == "":
		return storage.User{}, fmt.Errorf("sqlite: add user: empty name: %w", storage.ErrInvalid)
	case u.Role != storage.RoleAdmin && u.Role != storage.RoleOperator:
		return storage.User{}, fmt.Errorf("sqlite: add user %q: unknown role %q: %w", u.Name, u.Role, storage.ErrInvalid)
	case len(tokenHash) == 0:
		return storage.User{}, fmt.Errorf("sqlite: add user %q: empty token hash: %w", u.Name, storage.ErrInvalid)
	}
	if u.CreatedAt == 0 {
		u.CreatedAt = nowMS()
	}
	u.Groups = normGroups(u.Groups)
	var pw any
	if passwordHash != nil {
		pw = passwordHash
	}

	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return storage.User{}, fmt.Errorf("sqlite: add user %q: %w", u.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	err = tx.QueryRowContext(ctx,
		`INSERT INTO users (name, role, token_hash, password_hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		u.Name, u.Role, tokenHash, pw, u.CreatedAt).Scan(&u.ID)
	if isConstraint(err) {
		return storage.User{}, fmt.Errorf("sqlite: add user %q: %w", u.Name, storage.ErrExists)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("sqlite: add user %q: %w", u.Name, err)
	}
	for _, g := range u.Groups {
		if _, err = tx.ExecContext(ctx, `INSERT INTO user_groups (user_id, grp) VALUES (?, ?)`, u.ID, g); err != nil {
			return storage.User{}, fmt.Errorf("sqlite: add user %q: group %q: %w", u.Name, g, err)
		}
	}
	if err = tx.Commit(); err != nil {
		return storage.User{}, fmt.Errorf("sqlite: add user %q: %w", u.Name, err)
	}
	return u, nil
}

// normGroups sorts and deduplicates groups into a new, non-nil slice.
func normGroups(groups []string) []string {
	out := append([]string{}, groups...)
	slices.Sort(out)
	return slices.Compact(out)
}

const userColumns = `id, name, role, created_at, revoked_at, password_hash, password_changed_at`

// userGroupsColumn is the user's groups as a JSON array, sorted, selected
// with the user's row: one read of the store, not two. Every viewer's
// handshake and every API call authenticates (UserByTokenHash), and each
// read of the SQLite file is a transaction of its own with its WAL locks
// (fcntl); the second read for the groups was a third of the
// authentication's cost in the connect scenario's profile.
const userGroupsColumn = `(SELECT json_group_array(grp ORDER BY grp) FROM user_groups WHERE user_id = users.id)`

// UserByTokenHash returns the user holding the API token.
func (s *Store) UserByTokenHash(ctx context.Context, tokenHash []byte) (storage.User, error) {
	u, _, err := s.user(ctx, `SELECT `+userColumns+`, `+userGroupsColumn+` FROM users WHERE token_hash = ?`, tokenHash)
	if err != nil {
		return storage.User{}, fmt.Errorf("sqlite: user by token: %w", err)
	}
	return u, nil
}

// UserByName returns the user and its password hash (nil if none).
func (s *Store) UserByName(ctx context.Context, name string) (storage.User, []byte, error) {
	u, pw, err := s.user(ctx, `SELECT `+userColumns+`, `+userGroupsColumn+` FROM users WHERE name = ?`, name)
	if err != nil {
		return storage.User{}, nil, fmt.Errorf("sqlite: user %q: %w", name, err)
	}
	return u, pw, nil
}

// user runs a one-user query selecting userColumns and userGroupsColumn.
func (s *Store) user(ctx context.Context, query string, arg any) (storage.User, []byte, error) {
	var u storage.User
	var pw []byte
	var revoked, pwChanged sql.NullInt64
	var groups string
	err := s.queryRow(ctx, query, arg).Scan(&u.ID, &u.Name, &u.Role, &u.CreatedAt, &revoked, &pw, &pwChanged, &groups)
	if err != nil {
		return storage.User{}, nil, notFound(err)
	}
	u.RevokedAt, u.PasswordChangedAt = revoked.Int64, pwChanged.Int64
	u.Groups = []string{}
	if err := json.Unmarshal([]byte(groups), &u.Groups); err != nil {
		return storage.User{}, nil, fmt.Errorf("groups of user %d: %w", u.ID, err)
	}
	return u, pw, nil
}

// nextStamp is the SQL of a "last replaced" time: now, or one more than the
// previous value when that is not earlier (two rotations in one millisecond,
// or a clock that stepped back), so that every rotation changes it.
const nextStamp = `max(?, coalesce(%s, 0) + 1)`

// RotateDeviceToken replaces the token hash of an active device.
func (s *Store) RotateDeviceToken(ctx context.Context, id string, tokenHash []byte) (storage.Device, error) {
	if len(tokenHash) == 0 {
		return storage.Device{}, fmt.Errorf("sqlite: rotate device token %q: empty token hash: %w", id, storage.ErrInvalid)
	}
	d, err := scanDevice(s.wdb.QueryRowContext(ctx, `UPDATE devices
		SET token_hash = ?, token_rotated_at = `+fmt.Sprintf(nextStamp, "token_rotated_at")+`
		WHERE id = ? AND revoked_at IS NULL RETURNING `+deviceColumns, tokenHash, nowMS(), id))
	if isConstraint(err) {
		return storage.Device{}, fmt.Errorf("sqlite: rotate device token %q: token hash taken: %w", id, storage.ErrExists)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Unknown, or revoked: tell which.
		if d, derr := s.Device(ctx, id); derr == nil && d.RevokedAt != 0 {
			return storage.Device{}, fmt.Errorf("sqlite: rotate device token %q: %w", id, storage.ErrRevoked)
		}
		return storage.Device{}, fmt.Errorf("sqlite: rotate device token %q: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Device{}, fmt.Errorf("sqlite: rotate device token %q: %w", id, err)
	}
	return d, nil
}

// DevicesRotatedSince lists the devices whose token was replaced at or after sinceMS.
func (s *Store) DevicesRotatedSince(ctx context.Context, sinceMS int64) ([]storage.Device, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE token_rotated_at IS NOT NULL AND token_rotated_at >= ? ORDER BY id`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices rotated since: %w", err)
	}
	defer rows.Close()
	out := []storage.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: devices rotated since: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: devices rotated since: %w", err)
	}
	return out, nil
}

// Users lists every user with its groups, ordered by name.
func (s *Store) Users(ctx context.Context) ([]storage.User, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT u.id, u.name, u.role, u.created_at, u.revoked_at, u.password_changed_at, g.grp
		FROM users u LEFT JOIN user_groups g ON g.user_id = u.id ORDER BY u.name, g.grp`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: users: %w", err)
	}
	defer rows.Close()
	out := []storage.User{}
	for rows.Next() {
		var u storage.User
		var revoked, pwChanged sql.NullInt64
		var grp sql.NullString
		if err := rows.Scan(&u.ID, &u.Name, &u.Role, &u.CreatedAt, &revoked, &pwChanged, &grp); err != nil {
			return nil, fmt.Errorf("sqlite: users: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != u.ID {
			u.RevokedAt, u.PasswordChangedAt = revoked.Int64, pwChanged.Int64
			u.Groups = []string{}
			out = append(out, u)
		}
		if grp.Valid {
			last := &out[len(out)-1]
			last.Groups = append(last.Groups, grp.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: users: %w", err)
	}
	return out, nil
}

// RevokeUser replaces the user's API token hash.
func (s *Store) RevokeUser(ctx context.Context, name string, tokenHash []byte) (storage.User, error) {
	if len(tokenHash) == 0 {
		return storage.User{}, fmt.Errorf("sqlite: revoke user %q: empty token hash: %w", name, storage.ErrInvalid)
	}
	r, err := s.wdb.ExecContext(ctx, `UPDATE users SET token_hash = ?, revoked_at = `+fmt.Sprintf(nextStamp, "revoked_at")+`
		WHERE name = ?`, tokenHash, nowMS(), name)
	if isConstraint(err) {
		return storage.User{}, fmt.Errorf("sqlite: revoke user %q: token hash taken: %w", name, storage.ErrExists)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("sqlite: revoke user %q: %w", name, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return storage.User{}, fmt.Errorf("sqlite: revoke user %q: %w", name, storage.ErrNotFound)
	}
	u, _, err := s.UserByName(ctx, name)
	if err != nil {
		return storage.User{}, fmt.Errorf("sqlite: revoke user %q: %w", name, err)
	}
	return u, nil
}

// DeleteUser removes the user; its groups go with it (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	r, err := s.wdb.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("sqlite: delete user %q: %w", name, err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: delete user %q: %w", name, storage.ErrNotFound)
	}
	return nil
}

// SetDeviceCRS sets the crs of the device's locations that name none.
func (s *Store) SetDeviceCRS(ctx context.Context, id, crs string) (storage.Device, error) {
	if !storage.ValidDeviceCRS(crs) {
		return storage.Device{}, fmt.Errorf("sqlite: set crs of device %q: crs %q: %w", id, crs, storage.ErrInvalid)
	}
	d, err := scanDevice(s.wdb.QueryRowContext(ctx,
		`UPDATE devices SET crs = ? WHERE id = ? RETURNING `+deviceColumns, crs, id))
	if err != nil {
		return storage.Device{}, fmt.Errorf("sqlite: set crs of device %q: %w", id, notFound(err))
	}
	return d, nil
}

// ReenrollDevice makes a revoked device active again with a new token.
func (s *Store) ReenrollDevice(ctx context.Context, d storage.Device, tokenHash []byte) (storage.Device, error) {
	if len(tokenHash) == 0 || !storage.ValidDeviceCRS(d.CRS) {
		return storage.Device{}, fmt.Errorf("sqlite: enrol device %q again: empty token hash or bad crs: %w", d.ID, storage.ErrInvalid)
	}
	got, err := scanDevice(s.wdb.QueryRowContext(ctx, `UPDATE devices
		SET token_hash = ?, revoked_at = NULL, name = ?, grp = ?, crs = ?,
			token_rotated_at = max(?5, coalesce(token_rotated_at, 0) + 1),
			changed_at = max(?5, coalesce(changed_at, 0) + 1)
		WHERE id = ? AND revoked_at IS NOT NULL RETURNING `+deviceColumns,
		tokenHash, d.Name, d.Group, d.CRS, nowMS(), d.ID))
	if isConstraint(err) {
		return storage.Device{}, fmt.Errorf("sqlite: enrol device %q again: token hash taken: %w", d.ID, storage.ErrExists)
	}
	if errors.Is(err, sql.ErrNoRows) {
		if _, derr := s.Device(ctx, d.ID); derr == nil {
			return storage.Device{}, fmt.Errorf("sqlite: enrol device %q again: it is active: %w", d.ID, storage.ErrExists)
		}
		return storage.Device{}, fmt.Errorf("sqlite: enrol device %q again: %w", d.ID, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Device{}, fmt.Errorf("sqlite: enrol device %q again: %w", d.ID, err)
	}
	return got, nil
}
