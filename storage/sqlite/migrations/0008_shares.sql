-- +goose Up
-- 0008: share links (POST /api/v1/devices/{id}/shares). A share lets whoever
-- holds its URL watch one device's live position until it expires or is
-- revoked. The secret in the URL is stored only as its SHA-256 hash, like
-- device tokens. created_by names the user who made it (users can be
-- deleted; the share then stays until it expires). expires_at and
-- revoked_at are Unix ms; revoked_at is NULL while the share is not
-- revoked. IF NOT EXISTS: the newest step may run again (TestMigrateCommand).

CREATE TABLE IF NOT EXISTS shares (
    id         TEXT    PRIMARY KEY,
    token_hash BLOB    NOT NULL UNIQUE,
    device     TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX IF NOT EXISTS shares_device ON shares (device, expires_at);
