package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/devtrack/devtrack/storage"
)

// Legacy firmware keys (migration 0006): one row per device that has one.

// SetLegacyKey gives an active device a new legacy key hash, replacing its
// previous one; see storage.Store.
func (s *Store) SetLegacyKey(ctx context.Context, device string, keyHash []byte) (storage.LegacyKey, error) {
	if len(keyHash) == 0 {
		return storage.LegacyKey{}, fmt.Errorf("sqlite: set legacy key %q: empty key hash: %w", device, storage.ErrInvalid)
	}
	// One statement: the device must exist and be active, and issued_at
	// moves forward even within one millisecond (as nextStamp does).
	// The WHERE keeps SQLite from reading ON CONFLICT as a join clause.
	var k storage.LegacyKey
	err := s.wdb.QueryRowContext(ctx, `INSERT INTO legacy_keys (device, key_hash, issued_at)
		SELECT id, ?, ? FROM devices WHERE id = ? AND revoked_at IS NULL
		ON CONFLICT (device) DO UPDATE SET key_hash = excluded.key_hash,
			issued_at = max(excluded.issued_at, legacy_keys.issued_at + 1)
		RETURNING device, issued_at`, keyHash, nowMS(), device).Scan(&k.Device, &k.IssuedAt)
	if isConstraint(err) {
		return storage.LegacyKey{}, fmt.Errorf("sqlite: set legacy key %q: key hash taken: %w", device, storage.ErrExists)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Unknown, or revoked: tell which.
		if d, derr := s.Device(ctx, device); derr == nil && d.RevokedAt != 0 {
			return storage.LegacyKey{}, fmt.Errorf("sqlite: set legacy key %q: %w", device, storage.ErrRevoked)
		}
		return storage.LegacyKey{}, fmt.Errorf("sqlite: set legacy key %q: %w", device, storage.ErrNotFound)
	}
	if err != nil {
		return storage.LegacyKey{}, fmt.Errorf("sqlite: set legacy key %q: %w", device, err)
	}
	return k, nil
}

// DeviceByLegacyKey returns the device holding the legacy key.
func (s *Store) DeviceByLegacyKey(ctx context.Context, keyHash []byte) (storage.Device, storage.LegacyKey, error) {
	k := storage.LegacyKey{}
	// legacy_keys' columns share no name with devices', so deviceColumns
	// need no table prefix.
	d, err := scanDevice(scanAlso{s.rdb.QueryRowContext(ctx, `SELECT `+deviceColumns+`, k.issued_at
		FROM legacy_keys k JOIN devices d ON d.id = k.device WHERE k.key_hash = ?`, keyHash), []any{&k.IssuedAt}})
	if err != nil {
		return storage.Device{}, storage.LegacyKey{}, fmt.Errorf("sqlite: device by legacy key: %w", notFound(err))
	}
	if d.RevokedAt != 0 {
		return storage.Device{}, storage.LegacyKey{}, fmt.Errorf("sqlite: device by legacy key: device %q: %w", d.ID, storage.ErrRevoked)
	}
	k.Device = d.ID
	return d, k, nil
}

// LegacyKeysIssuedSince lists the legacy keys issued at or after sinceMS.
func (s *Store) LegacyKeysIssuedSince(ctx context.Context, sinceMS int64) ([]storage.LegacyKey, error) {
	rows, err := s.rdb.QueryContext(ctx,
		`SELECT device, issued_at FROM legacy_keys WHERE issued_at >= ? ORDER BY device`, sinceMS)
	if err != nil {
		return nil, fmt.Errorf("sqlite: legacy keys issued since: %w", err)
	}
	defer rows.Close()
	out := []storage.LegacyKey{}
	for rows.Next() {
		var k storage.LegacyKey
		if err := rows.Scan(&k.Device, &k.IssuedAt); err != nil {
			return nil, fmt.Errorf("sqlite: legacy keys issued since: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: legacy keys issued since: %w", err)
	}
	return out, nil
}

// scanAlso scans a row whose columns after the device's are extra: scanDevice
// fills the device, extra the rest.
type scanAlso struct {
	scanner
	extra []any
}

func (s scanAlso) Scan(dest ...any) error { return s.scanner.Scan(append(dest, s.extra...)...) }
