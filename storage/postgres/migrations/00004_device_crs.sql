-- 00004: a device's default coordinate system, as in the SQLite store (its
-- 0007): the crs of its locations that name none, such as the GCJ-02 object
-- a WeChat or uni-app mini-program posts. '' is WGS-84.

-- +goose Up
ALTER TABLE devices ADD COLUMN crs text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE devices DROP COLUMN crs;
