-- 00007: tombstones of deleted devices, as in the SQLite store (its
-- 0010_deleted_devices.sql): RevokedSince reports a deleted device's id for
-- an hour after DeleteDevice, so that gateways close its connections and
-- drop its cached token. IF NOT EXISTS: the newest step may run again
-- (TestMigrateCommand).

-- +goose Up
CREATE TABLE IF NOT EXISTS deleted_devices (
    id         text   PRIMARY KEY,
    deleted_at bigint NOT NULL
);

CREATE INDEX IF NOT EXISTS deleted_devices_deleted_at ON deleted_devices (deleted_at);

-- +goose Down
DROP TABLE IF EXISTS deleted_devices;
