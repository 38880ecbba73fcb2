-- +goose Up
-- 0003: replacing tokens. users.revoked_at is when the user's API token was
-- last replaced (devtrack user revoke), devices.token_rotated_at when the
-- device's was (devtrack device rotate); NULL when never. The gateway
-- compares them with the values it saw at a connection's handshake to close
-- connections opened with a token that has since been replaced.

ALTER TABLE users ADD COLUMN revoked_at INTEGER;
ALTER TABLE devices ADD COLUMN token_rotated_at INTEGER;

CREATE INDEX devices_token_rotated_at ON devices (token_rotated_at) WHERE token_rotated_at IS NOT NULL;
