-- 00005: share links, as in the SQLite store (its 0008_shares.sql): one row
-- per share, the URL's secret stored only as its SHA-256 hash. IF NOT
-- EXISTS: the newest step may run again (TestMigrateCommand).

-- +goose Up
CREATE TABLE IF NOT EXISTS shares (
    id         text   PRIMARY KEY,
    token_hash bytea  NOT NULL UNIQUE,
    device     text   NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_by text   NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    revoked_at bigint
);

CREATE INDEX IF NOT EXISTS shares_device ON shares (device, expires_at);

-- +goose Down
DROP TABLE IF EXISTS shares;
