package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
)

// Accounts behave exactly as in the SQLite store (storage/sqlite/accounts.go).

const deviceColumns = `id, name, grp, created_at, revoked_at, token_rotated_at, crs`

func scanDevice(r pgx.Row) (storage.Device, error) {
	var d storage.Device
	var revoked, rotated *int64
	if err := r.Scan(&d.ID, &d.Name, &d.Group, &d.CreatedAt, &revoked, &rotated, &d.CRS); err != nil {
		return storage.Device{}, err
	}
	if revoked != nil {
		d.RevokedAt = *revoked
	}
	if rotated != nil {
		d.TokenRotatedAt = *rotated
	}
	return d, nil
}

// notFound turns pgx.ErrNoRows into storage.ErrNotFound and classifies the rest.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return classify(err)
}

// AddDevice registers d. CreatedAt defaults to now; a non-zero RevokedAt is
// kept, so a revoked device can be imported as such.
func (s *Store) AddDevice(ctx context.Context, d storage.Device, tokenHash []byte) error {
	if d.ID == "" {
		return fmt.Errorf("postgres: add device: empty id: %w", storage.ErrInvalid)
	}
	if len(tokenHash) == 0 {
		return fmt.Errorf("postgres: add device %q: empty token hash: %w", d.ID, storage.ErrInvalid)
	}
	for _, f := range [][2]string{{"id", d.ID}, {"name", d.Name}, {"group", d.Group}} {
		if err := validText(f[0], f[1]); err != nil {
			return fmt.Errorf("postgres: add device %q: %w: %w", d.ID, err, storage.ErrInvalid)
		}
	}
	if !storage.ValidDeviceCRS(d.CRS) {
		return fmt.Errorf("postgres: add device %q: crs %q: %w", d.ID, d.CRS, storage.ErrInvalid)
	}
	if d.CreatedAt == 0 {
		d.CreatedAt = nowMS()
	}
	var revoked *int64
	if d.RevokedAt != 0 {
		revoked = &d.RevokedAt
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO devices (id, name, grp, token_hash, created_at, revoked_at, crs) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		d.ID, d.Name, d.Group, tokenHash, d.CreatedAt, revoked, d.CRS)
	if pgCode(err) == codeUniqueViolation {
		// The id, or (astronomically unlikely) the token hash, is taken.
		return fmt.Errorf("postgres: add device %q: %w", d.ID, storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: add device %q: %w", d.ID, classify(err))
	}
	// A deleted id registered again is no longer reported as revoked.
	if _, err := s.pool.Exec(ctx, `DELETE FROM deleted_devices WHERE id = $1`, d.ID); err != nil {
		return fmt.Errorf("postgres: add device %q: forget its tombstone: %w", d.ID, classify(err))
	}
	return nil
}

// DeviceByTokenHash returns the device holding the token.
func (s *Store) DeviceByTokenHash(ctx context.Context, tokenHash []byte) (storage.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return storage.Device{}, fmt.Errorf("postgres: device by token: %w", notFound(err))
	}
	if d.RevokedAt != 0 {
		return storage.Device{}, fmt.Errorf("postgres: device by token: device %q: %w", d.ID, storage.ErrRevoked)
	}
	return d, nil
}

// Device returns a device by id, revoked or not. An id that no device can
// have (a NUL byte: the gateway's readiness probe asks for one) is not
// found, after a round trip that tells whether the server answers.
func (s *Store) Device(ctx context.Context, id string) (storage.Device, error) {
	if validText("id", id) != nil {
		if err := s.probe(ctx, "device"); err != nil {
			return storage.Device{}, err
		}
		return storage.Device{}, fmt.Errorf("postgres: device %q: %w", id, storage.ErrNotFound)
	}
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1`, id))
	if err != nil {
		return storage.Device{}, fmt.Errorf("postgres: device %q: %w", id, notFound(err))
	}
	return d, nil
}

// Devices lists devices ordered by id, all of them when groups is nil, else
// those in one of groups.
func (s *Store) Devices(ctx context.Context, groups []string) ([]storage.Device, error) {
	if groups != nil && len(groups) == 0 {
		return []storage.Device{}, nil
	}
	var rows pgx.Rows
	var err error
	if groups == nil {
		rows, err = s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices ORDER BY id`)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE grp = ANY($1) ORDER BY id`, validOnly(groups))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: devices: %w", classify(err))
	}
	return collectDevices(rows, "devices")
}

// validOnly drops the strings that no text column can hold (they match nothing).
func validOnly(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if validText("", s) == nil {
			out = append(out, s)
		}
	}
	return out
}

func collectDevices(rows pgx.Rows, op string) ([]storage.Device, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Device, error) { return scanDevice(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, classify(err))
	}
	if out == nil {
		out = []storage.Device{}
	}
	return out, nil
}

// RevokeDevice marks the device revoked now. Revoking it again keeps the
// first time, so RevokedSince does not report it twice.
func (s *Store) RevokeDevice(ctx context.Context, id string) error {
	if validText("id", id) != nil {
		return fmt.Errorf("postgres: revoke device %q: %w", id, storage.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, nowMS(), id)
	if err != nil {
		return fmt.Errorf("postgres: revoke device %q: %w", id, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: revoke device %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// RevokedSince lists the ids of devices revoked, or deleted (their
// tombstones, DeleteDevice), at or after sinceMS, ordered by id.
func (s *Store) RevokedSince(ctx context.Context, sinceMS int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM devices WHERE revoked_at >= $1
		UNION SELECT id FROM deleted_devices WHERE deleted_at >= $1 ORDER BY id`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("postgres: revoked since: %w", classify(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: revoked since: %w", classify(err))
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// AddUser creates u with its groups in one transaction. The returned user
// has its id, its creation time (now if zero) and its groups sorted and
// without repeats, as the lookups return them.
func (s *Store) AddUser(ctx context.Context, u storage.User, tokenHash, passwordHash []byte) (storage.User, error) {
	switch {
	case u.Name == "":
		return storage.User{}, fmt.Errorf("postgres: add user: empty name: %w", storage.ErrInvalid)
	case u.Role != storage.RoleAdmin && u.Role != storage.RoleOperator:
		return storage.User{}, fmt.Errorf("postgres: add user %q: unknown role %q: %w", u.Name, u.Role, storage.ErrInvalid)
	case len(tokenHash) == 0:
		return storage.User{}, fmt.Errorf("postgres: add user %q: empty token hash: %w", u.Name, storage.ErrInvalid)
	}
	u.Groups = normGroups(u.Groups)
	for _, t := range append([]string{u.Name}, u.Groups...) {
		if err := validText("name or group", t); err != nil {
			return storage.User{}, fmt.Errorf("postgres: add user %q: %w: %w", u.Name, err, storage.ErrInvalid)
		}
	}
	if u.CreatedAt == 0 {
		u.CreatedAt = nowMS()
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`INSERT INTO users (name, role, token_hash, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			u.Name, u.Role, tokenHash, passwordHash, u.CreatedAt).Scan(&u.ID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO user_groups (user_id, grp) SELECT $1, unnest($2::text[])`, u.ID, u.Groups)
		return err
	})
	if pgCode(err) == codeUniqueViolation {
		return storage.User{}, fmt.Errorf("postgres: add user %q: %w", u.Name, storage.ErrExists)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("postgres: add user %q: %w", u.Name, classify(err))
	}
	return u, nil
}

// normGroups sorts and deduplicates groups into a new, non-nil slice.
func normGroups(groups []string) []string {
	out := append([]string{}, groups...)
	slices.Sort(out)
	return slices.Compact(out)
}

// userSelect reads a user with its groups (sorted, never nil) in one query.
const userSelect = `SELECT id, name, role, created_at, revoked_at, password_hash, password_changed_at,
	coalesce((SELECT array_agg(grp ORDER BY grp) FROM user_groups WHERE user_id = users.id), '{}')
	FROM users`

func scanUser(r pgx.Row) (storage.User, []byte, error) {
	var u storage.User
	var revoked, pwChanged *int64
	var pw []byte
	if err := r.Scan(&u.ID, &u.Name, &u.Role, &u.CreatedAt, &revoked, &pw, &pwChanged, &u.Groups); err != nil {
		return storage.User{}, nil, err
	}
	if revoked != nil {
		u.RevokedAt = *revoked
	}
	if pwChanged != nil {
		u.PasswordChangedAt = *pwChanged
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	return u, pw, nil
}

// UserByTokenHash returns the user holding the API token.
func (s *Store) UserByTokenHash(ctx context.Context, tokenHash []byte) (storage.User, error) {
	u, _, err := scanUser(s.pool.QueryRow(ctx, userSelect+` WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return storage.User{}, fmt.Errorf("postgres: user by token: %w", notFound(err))
	}
	return u, nil
}

// UserByName returns the user and its password hash (nil if none).
func (s *Store) UserByName(ctx context.Context, name string) (storage.User, []byte, error) {
	if validText("name", name) != nil {
		return storage.User{}, nil, fmt.Errorf("postgres: user %q: %w", name, storage.ErrNotFound)
	}
	u, pw, err := scanUser(s.pool.QueryRow(ctx, userSelect+` WHERE name = $1`, name))
	if err != nil {
		return storage.User{}, nil, fmt.Errorf("postgres: user %q: %w", name, notFound(err))
	}
	return u, pw, nil
}

// Users lists every user with its groups, ordered by name.
func (s *Store) Users(ctx context.Context) ([]storage.User, error) {
	rows, err := s.pool.Query(ctx, userSelect+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: users: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.User, error) {
		u, _, err := scanUser(r)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: users: %w", classify(err))
	}
	if out == nil {
		out = []storage.User{}
	}
	return out, nil
}

// nextStamp is the SQL of a "last replaced" time: now, or one more than the
// previous value when that is not earlier (two rotations in one millisecond,
// or a clock that stepped back), so that every rotation changes it.
const nextStamp = `greatest($2::bigint, coalesce(%s, 0) + 1)`

// RotateDeviceToken replaces the token hash of an active device.
func (s *Store) RotateDeviceToken(ctx context.Context, id string, tokenHash []byte) (storage.Device, error) {
	if len(tokenHash) == 0 {
		return storage.Device{}, fmt.Errorf("postgres: rotate device token %q: empty token hash: %w", id, storage.ErrInvalid)
	}
	if validText("id", id) != nil {
		return storage.Device{}, fmt.Errorf("postgres: rotate device token %q: %w", id, storage.ErrNotFound)
	}
	d, err := scanDevice(s.pool.QueryRow(ctx, `UPDATE devices
		SET token_hash = $1, token_rotated_at = `+fmt.Sprintf(nextStamp, "token_rotated_at")+`
		WHERE id = $3 AND revoked_at IS NULL RETURNING `+deviceColumns, tokenHash, nowMS(), id))
	if pgCode(err) == codeUniqueViolation {
		return storage.Device{}, fmt.Errorf("postgres: rotate device token %q: token hash taken: %w", id, storage.ErrExists)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		// Unknown, or revoked: tell which.
		if d, derr := s.Device(ctx, id); derr == nil && d.RevokedAt != 0 {
			return storage.Device{}, fmt.Errorf("postgres: rotate device token %q: %w", id, storage.ErrRevoked)
		}
		return storage.Device{}, fmt.Errorf("postgres: rotate device token %q: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Device{}, fmt.Errorf("postgres: rotate device token %q: %w", id, classify(err))
	}
	return d, nil
}

// DevicesRotatedSince lists the devices whose token was replaced at or after sinceMS.
func (s *Store) DevicesRotatedSince(ctx context.Context, sinceMS int64) ([]storage.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE token_rotated_at >= $1 ORDER BY id`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("postgres: devices rotated since: %w", classify(err))
	}
	return collectDevices(rows, "devices rotated since")
}

// RevokeUser replaces the user's API token hash.
func (s *Store) RevokeUser(ctx context.Context, name string, tokenHash []byte) (storage.User, error) {
	if len(tokenHash) == 0 {
		return storage.User{}, fmt.Errorf("postgres: revoke user %q: empty token hash: %w", name, storage.ErrInvalid)
	}
	if validText("name", name) != nil {
		return storage.User{}, fmt.Errorf("postgres: revoke user %q: %w", name, storage.ErrNotFound)
	}
	u, _, err := scanUser(s.pool.QueryRow(ctx, `WITH users AS (
		UPDATE users SET token_hash = $1, revoked_at = `+fmt.Sprintf(nextStamp, "revoked_at")+`
		WHERE name = $3 RETURNING *) `+userSelect, tokenHash, nowMS(), name))
	if pgCode(err) == codeUniqueViolation {
		return storage.User{}, fmt.Errorf("postgres: revoke user %q: token hash taken: %w", name, storage.ErrExists)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("postgres: revoke user %q: %w", name, notFound(err))
	}
	return u, nil
}

// DeleteUser removes the user; its groups go with it (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if validText("name", name) != nil {
		return fmt.Errorf("postgres: delete user %q: %w", name, storage.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("postgres: delete user %q: %w", name, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete user %q: %w", name, storage.ErrNotFound)
	}
	return nil
}

// SetDeviceCRS sets the crs of the device's locations that name none.
func (s *Store) SetDeviceCRS(ctx context.Context, id, crs string) (storage.Device, error) {
	if !storage.ValidDeviceCRS(crs) {
		return storage.Device{}, fmt.Errorf("postgres: set crs of device %q: crs %q: %w", id, crs, storage.ErrInvalid)
	}
	if validText("id", id) != nil {
		return storage.Device{}, fmt.Errorf("postgres: set crs of device %q: %w", id, storage.ErrNotFound)
	}
	d, err := scanDevice(s.pool.QueryRow(ctx,
		`UPDATE devices SET crs = $1 WHERE id = $2 RETURNING `+deviceColumns, crs, id))
	if err != nil {
		return storage.Device{}, fmt.Errorf("postgres: set crs of device %q: %w", id, notFound(err))
	}
	return d, nil
}

// ReenrollDevice makes a revoked device active again with a new token.
func (s *Store) ReenrollDevice(ctx context.Context, d storage.Device, tokenHash []byte) (storage.Device, error) {
	if len(tokenHash) == 0 || !storage.ValidDeviceCRS(d.CRS) {
		return storage.Device{}, fmt.Errorf("postgres: enrol device %q again: empty token hash or bad crs: %w", d.ID, storage.ErrInvalid)
	}
	for _, f := range [][2]string{{"id", d.ID}, {"name", d.Name}, {"group", d.Group}} {
		if err := validText(f[0], f[1]); err != nil {
			return storage.Device{}, fmt.Errorf("postgres: enrol device %q again: %w: %w", d.ID, err, storage.ErrInvalid)
		}
	}
	got, err := scanDevice(s.pool.QueryRow(ctx, `UPDATE devices
		SET token_hash = $1, revoked_at = NULL, name = $2, grp = $3, crs = $4,
			token_rotated_at = greatest($5::bigint, coalesce(token_rotated_at, 0) + 1),
			changed_at = greatest($5::bigint, coalesce(changed_at, 0) + 1)
		WHERE id = $6 AND revoked_at IS NOT NULL RETURNING `+deviceColumns,
		tokenHash, d.Name, d.Group, d.CRS, nowMS(), d.ID))
	if pgCode(err) == codeUniqueViolation {
		return storage.Device{}, fmt.Errorf("postgres: enrol device %q again: token hash taken: %w", d.ID, storage.ErrExists)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if _, derr := s.Device(ctx, d.ID); derr == nil {
			return storage.Device{}, fmt.Errorf("postgres: enrol device %q again: it is active: %w", d.ID, storage.ErrExists)
		}
		return storage.Device{}, fmt.Errorf("postgres: enrol device %q again: %w", d.ID, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Device{}, fmt.Errorf("postgres: enrol device %q again: %w", d.ID, classify(err))
	}
	return got, nil
}
