package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/devtrack/devtrack/storage"
)

// Share links (migration 0008): one row per share, its secret stored only
// as a hash.

const shareColumns = `id, device, created_by, created_at, expires_at, revoked_at`

// CreateShare stores a share link of an active device; see storage.Store.
func (s *Store) CreateShare(ctx context.Context, sh storage.Share, tokenHash []byte) (storage.Share, error) {
	if sh.ID == "" || len(tokenHash) == 0 {
		return storage.Share{}, fmt.Errorf("sqlite: create share: empty id or token hash: %w", storage.ErrInvalid)
	}
	if sh.CreatedAt == 0 {
		sh.CreatedAt = nowMS()
	}
	if sh.ExpiresAt <= sh.CreatedAt {
		return storage.Share{}, fmt.Errorf("sqlite: create share %q: expires at %d, not after %d: %w",
			sh.ID, sh.ExpiresAt, sh.CreatedAt, storage.ErrInvalid)
	}
	sh.RevokedAt = 0
	// One statement: the device must exist and be active.
	res, err := s.wdb.ExecContext(ctx, `INSERT INTO shares (id, token_hash, device, created_by, created_at, expires_at)
		SELECT ?, ?, id, ?, ?, ? FROM devices WHERE id = ? AND revoked_at IS NULL`,
		sh.ID, tokenHash, sh.CreatedBy, sh.CreatedAt, sh.ExpiresAt, sh.Device)
	if isConstraint(err) {
		return storage.Share{}, fmt.Errorf("sqlite: create share %q: id or token hash taken: %w", sh.ID, storage.ErrExists)
	}
	if err != nil {
		return storage.Share{}, fmt.Errorf("sqlite: create share %q: %w", sh.ID, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		// Unknown, or revoked: tell which.
		if d, derr := s.Device(ctx, sh.Device); derr == nil && d.RevokedAt != 0 {
			return storage.Share{}, fmt.Errorf("sqlite: create share of %q: %w", sh.Device, storage.ErrRevoked)
		}
		return storage.Share{}, fmt.Errorf("sqlite: create share of %q: %w", sh.Device, storage.ErrNotFound)
	}
	return sh, nil
}

// ShareByTokenHash returns the share holding the secret, whatever its state.
func (s *Store) ShareByTokenHash(ctx context.Context, tokenHash []byte) (storage.Share, error) {
	sh, err := scanShare(s.rdb.QueryRowContext(ctx, `SELECT `+shareColumns+` FROM shares WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return storage.Share{}, fmt.Errorf("sqlite: share by token hash: %w", notFound(err))
	}
	return sh, nil
}

// Share returns a share by id, whatever its state.
func (s *Store) Share(ctx context.Context, id string) (storage.Share, error) {
	sh, err := scanShare(s.rdb.QueryRowContext(ctx, `SELECT `+shareColumns+` FROM shares WHERE id = ?`, id))
	if err != nil {
		return storage.Share{}, fmt.Errorf("sqlite: share %q: %w", id, notFound(err))
	}
	return sh, nil
}

// RevokeShare marks the share revoked now, keeping an earlier revocation.
func (s *Store) RevokeShare(ctx context.Context, id string) (storage.Share, error) {
	sh, err := scanShare(s.wdb.QueryRowContext(ctx, `UPDATE shares SET revoked_at = coalesce(revoked_at, ?)
		WHERE id = ? RETURNING `+shareColumns, nowMS(), id))
	if err != nil {
		return storage.Share{}, fmt.Errorf("sqlite: revoke share %q: %w", id, notFound(err))
	}
	return sh, nil
}

// SharesOf lists the device's shares active at nowMS, oldest first.
func (s *Store) SharesOf(ctx context.Context, device string, nowMS int64) ([]storage.Share, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+shareColumns+` FROM shares
		WHERE device = ? AND expires_at > ? AND revoked_at IS NULL ORDER BY created_at, id`, device, nowMS)
	if err != nil {
		return nil, fmt.Errorf("sqlite: shares of %q: %w", device, err)
	}
	defer rows.Close()
	out := []storage.Share{}
	for rows.Next() {
		sh, err := scanShare(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: shares of %q: %w", device, err)
		}
		out = append(out, sh)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: shares of %q: %w", device, err)
	}
	return out, nil
}

func scanShare(row scanner) (storage.Share, error) {
	var sh storage.Share
	var revoked sql.NullInt64
	if err := row.Scan(&sh.ID, &sh.Device, &sh.CreatedBy, &sh.CreatedAt, &sh.ExpiresAt, &revoked); err != nil {
		return storage.Share{}, err
	}
	sh.RevokedAt = revoked.Int64
	return sh, nil
}
