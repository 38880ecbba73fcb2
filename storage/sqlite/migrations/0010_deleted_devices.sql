-- +goose Up
-- 0010: tombstones of deleted devices (DeleteDevice). A deleted device's
-- row is gone, so revoked_at can no longer tell the gateways' revocation
-- poll (RevokedSince) to close its connections and drop its cached token:
-- deleted_devices keeps its id and the time it went, for an hour, and
-- RevokedSince reports it as revoked then. Registering the id again removes
-- its tombstone. IF NOT EXISTS: the newest step may run again
-- (TestMigrateCommand).

CREATE TABLE IF NOT EXISTS deleted_devices (
    id         TEXT    PRIMARY KEY,
    deleted_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS deleted_devices_deleted_at ON deleted_devices (deleted_at);
