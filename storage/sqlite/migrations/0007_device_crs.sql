-- +goose Up
-- 0007: a device's default coordinate system (devtrack device add --crs,
-- devtrack device set-crs): the crs of its locations that name none, such as
-- the GCJ-02 object a WeChat or uni-app mini-program posts. '' is WGS-84.

ALTER TABLE devices ADD COLUMN crs TEXT NOT NULL DEFAULT '';
