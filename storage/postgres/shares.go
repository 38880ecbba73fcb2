package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
)

// Share links behave exactly as in the SQLite store
// (storage/sqlite/shares.go): one row per share (00005).

const shareColumns = `id, device, created_by, created_at, expires_at, revoked_at`

// CreateShare stores a share link of an active device; see storage.Store.
func (s *Store) CreateShare(ctx context.Context, sh storage.Share, tokenHash []byte) (storage.Share, error) {
	if sh.ID == "" || len(tokenHash) == 0 {
		return storage.Share{}, fmt.Errorf("postgres: create share: empty id or token hash: %w", storage.ErrInvalid)
	}
	for _, f := range [][2]string{{"id", sh.ID}, {"created_by", sh.CreatedBy}} {
		if err := validText(f[0], f[1]); err != nil {
			return storage.Share{}, fmt.Errorf("postgres: create share: %v: %w", err, storage.ErrInvalid)
		}
	}
	if validText("device", sh.Device) != nil {
		return storage.Share{}, fmt.Errorf("postgres: create share of %q: %w", sh.Device, storage.ErrNotFound)
	}
	if sh.CreatedAt == 0 {
		sh.CreatedAt = nowMS()
	}
	if sh.ExpiresAt <= sh.CreatedAt {
		return storage.Share{}, fmt.Errorf("postgres: create share %q: expires at %d, not after %d: %w",
			sh.ID, sh.ExpiresAt, sh.CreatedAt, storage.ErrInvalid)
	}
	sh.RevokedAt = 0
	// One statement: the device must exist and be active.
	tag, err := s.pool.Exec(ctx, `INSERT INTO shares (id, token_hash, device, created_by, created_at, expires_at)
		SELECT $1, $2, id, $3, $4::bigint, $5::bigint FROM devices WHERE id = $6 AND revoked_at IS NULL`,
		sh.ID, tokenHash, sh.CreatedBy, sh.CreatedAt, sh.ExpiresAt, sh.Device)
	if pgCode(err) == codeUniqueViolation {
		return storage.Share{}, fmt.Errorf("postgres: create share %q: id or token hash taken: %w", sh.ID, storage.ErrExists)
	}
	if err != nil {
		return storage.Share{}, fmt.Errorf("postgres: create share %q: %w", sh.ID, classify(err))
	}
	if tag.RowsAffected() == 0 {
		// Unknown, or revoked: tell which.
		if d, derr := s.Device(ctx, sh.Device); derr == nil && d.RevokedAt != 0 {
			return storage.Share{}, fmt.Errorf("postgres: create share of %q: %w", sh.Device, storage.ErrRevoked)
		}
		return storage.Share{}, fmt.Errorf("postgres: create share of %q: %w", sh.Device, storage.ErrNotFound)
	}
	return sh, nil
}

// ShareByTokenHash returns the share holding the secret, whatever its state.
func (s *Store) ShareByTokenHash(ctx context.Context, tokenHash []byte) (storage.Share, error) {
	sh, err := scanShare(s.pool.QueryRow(ctx, `SELECT `+shareColumns+` FROM shares WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return storage.Share{}, fmt.Errorf("postgres: share by token hash: %w", notFound(err))
	}
	return sh, nil
}

// Share returns a share by id, whatever its state.
func (s *Store) Share(ctx context.Context, id string) (storage.Share, error) {
	if validText("id", id) != nil {
		return storage.Share{}, fmt.Errorf("postgres: share %q: %w", id, storage.ErrNotFound)
	}
	sh, err := scanShare(s.pool.QueryRow(ctx, `SELECT `+shareColumns+` FROM shares WHERE id = $1`, id))
	if err != nil {
		return storage.Share{}, fmt.Errorf("postgres: share %q: %w", id, notFound(err))
	}
	return sh, nil
}

// RevokeShare marks the share revoked now, keeping an earlier revocation.
func (s *Store) RevokeShare(ctx context.Context, id string) (storage.Share, error) {
	if validText("id", id) != nil {
		return storage.Share{}, fmt.Errorf("postgres: revoke share %q: %w", id, storage.ErrNotFound)
	}
	sh, err := scanShare(s.pool.QueryRow(ctx, `UPDATE shares SET revoked_at = coalesce(revoked_at, $1::bigint)
		WHERE id = $2 RETURNING `+shareColumns, nowMS(), id))
	if err != nil {
		return storage.Share{}, fmt.Errorf("postgres: revoke share %q: %w", id, notFound(err))
	}
	return sh, nil
}

// SharesOf lists the device's shares active at nowMS, oldest first.
func (s *Store) SharesOf(ctx context.Context, device string, nowMS int64) ([]storage.Share, error) {
	out := []storage.Share{}
	if validText("device", device) != nil {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+shareColumns+` FROM shares
		WHERE device = $1 AND expires_at > $2 AND revoked_at IS NULL ORDER BY created_at, id`, device, nowMS)
	if err != nil {
		return nil, fmt.Errorf("postgres: shares of %q: %w", device, classify(err))
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Share, error) { return scanShare(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: shares of %q: %w", device, classify(err))
	}
	return append(out, got...), nil
}

func scanShare(r pgx.Row) (storage.Share, error) {
	var sh storage.Share
	var revoked *int64
	if err := r.Scan(&sh.ID, &sh.Device, &sh.CreatedBy, &sh.CreatedAt, &sh.ExpiresAt, &revoked); err != nil {
		return storage.Share{}, err
	}
	if revoked != nil {
		sh.RevokedAt = *revoked
	}
	return sh, nil
}
