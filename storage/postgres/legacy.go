package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
)

// Legacy firmware keys behave exactly as in the SQLite store
// (storage/sqlite/legacy.go): one row per device that has one (00003).

// SetLegacyKey gives an active device a new legacy key hash, replacing its
// previous one; see storage.Store.
func (s *Store) SetLegacyKey(ctx context.Context, device string, keyHash []byte) (storage.LegacyKey, error) {
	if len(keyHash) == 0 {
		return storage.LegacyKey{}, fmt.Errorf("postgres: set legacy key %q: empty key hash: %w", device, storage.ErrInvalid)
	}
	if validText("id", device) != nil {
		return storage.LegacyKey{}, fmt.Errorf("postgres: set legacy key %q: %w", device, storage.ErrNotFound)
	}
	// One statement: the device must exist and be active, and issued_at
	// moves forward even within one millisecond (as nextStamp does).
	var k storage.LegacyKey
	err := s.pool.QueryRow(ctx, `INSERT INTO legacy_keys (device, key_hash, issued_at)
		SELECT id, $1, $2::bigint FROM devices WHERE id = $3 AND revoked_at IS NULL
		ON CONFLICT (device) DO UPDATE SET key_hash = excluded.key_hash,
			issued_at = greatest(excluded.issued_at, legacy_keys.issued_at + 1)
		RETURNING device, issued_at`, keyHash, nowMS(), device).Scan(&k.Device, &k.IssuedAt)
	if pgCode(err) == codeUniqueViolation {
		return storage.LegacyKey{}, fmt.Errorf("postgres: set legacy key %q: key hash taken: %w", device, storage.ErrExists)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		// Unknown, or revoked: tell which.
		if d, derr := s.Device(ctx, device); derr == nil && d.RevokedAt != 0 {
			return storage.LegacyKey{}, fmt.Errorf("postgres: set legacy key %q: %w", device, storage.ErrRevoked)
		}
		return storage.LegacyKey{}, fmt.Errorf("postgres: set legacy key %q: %w", device, storage.ErrNotFound)
	}
	if err != nil {
		return storage.LegacyKey{}, fmt.Errorf("postgres: set legacy key %q: %w", device, classify(err))
	}
	return k, nil
}

// DeviceByLegacyKey returns the device holding the legacy key.
func (s *Store) DeviceByLegacyKey(ctx context.Context, keyHash []byte) (storage.Device, storage.LegacyKey, error) {
	k := storage.LegacyKey{}
	// legacy_keys' columns share no name with devices', so deviceColumns
	// need no table prefix.
	d, err := scanDevice(scanAlso{s.pool.QueryRow(ctx, `SELECT `+deviceColumns+`, k.issued_at
		FROM legacy_keys k JOIN devices d ON d.id = k.device WHERE k.key_hash = $1`, keyHash), []any{&k.IssuedAt}})
	if err != nil {
		return storage.Device{}, storage.LegacyKey{}, fmt.Errorf("postgres: device by legacy key: %w", notFound(err))
	}
	if d.RevokedAt != 0 {
		return storage.Device{}, storage.LegacyKey{}, fmt.Errorf("postgres: device by legacy key: device %q: %w", d.ID, storage.ErrRevoked)
	}
	k.Device = d.ID
	return d, k, nil
}

// LegacyKeysIssuedSince lists the legacy keys issued at or after sinceMS.
func (s *Store) LegacyKeysIssuedSince(ctx context.Context, sinceMS int64) ([]storage.LegacyKey, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT device, issued_at FROM legacy_keys WHERE issued_at >= $1 ORDER BY device`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("postgres: legacy keys issued since: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.LegacyKey, error) {
		var k storage.LegacyKey
		err := r.Scan(&k.Device, &k.IssuedAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: legacy keys issued since: %w", classify(err))
	}
	if out == nil {
		out = []storage.LegacyKey{}
	}
	return out, nil
}

// scanAlso scans a row whose columns after the device's are extra: scanDevice
// fills the device, extra the rest.
type scanAlso struct {
	pgx.Row
	extra []any
}

func (s scanAlso) Scan(dest ...any) error { return s.Row.Scan(append(dest, s.extra...)...) }
