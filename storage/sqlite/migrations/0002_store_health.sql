-- +goose Up
-- One row that CheckWrite rewrites to prove that the database can still
-- commit a write (disk not full, not read-only, no I/O error).
CREATE TABLE store_health (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
);
INSERT INTO store_health (id, checked_at) VALUES (1, 0);
