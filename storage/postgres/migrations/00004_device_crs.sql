-- 00004: a device's default coordinate system, as in the SQLite store (its
-- step 7, migrate_go.go): the crs of its locations that name none, such as the GCJ-02 object
-- a WeChat or uni-app mini-program posts. '' is WGS-84.

-- +goose Up
ALTER TABLE devices ADD COLUMN IF NOT EXISTS crs text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE devices DROP COLUMN IF EXISTS crs;
