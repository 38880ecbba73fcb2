-- 00008: when a device's name or group last changed and when a user's
-- password was last set or removed, as in the SQLite store (its step 11,
-- migrate_go.go). devices.changed_at is indexed for the gateways' poll
-- (DevicesChangedSince) that drops a moved device from the live sockets of
-- users who may no longer see it; users.password_changed_at ends the
-- user's web sessions. Both are NULL until the first change. IF NOT EXISTS:
-- the newest step may run again (TestMigrateCommand).

-- +goose Up
ALTER TABLE devices ADD COLUMN IF NOT EXISTS changed_at bigint;
ALTER TABLE users ADD COLUMN IF NOT EXISTS password_changed_at bigint;
CREATE INDEX IF NOT EXISTS devices_changed_at ON devices (changed_at);

-- +goose Down
DROP INDEX IF EXISTS devices_changed_at;
ALTER TABLE users DROP COLUMN IF EXISTS password_changed_at;
ALTER TABLE devices DROP COLUMN IF EXISTS changed_at;
