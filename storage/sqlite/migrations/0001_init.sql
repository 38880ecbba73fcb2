-- +goose Up
-- 0001: the initial schema.
-- Times are Unix milliseconds. Locations and logs get an INTEGER PRIMARY KEY
-- (seq) so that their rowid is stable: the FTS index and the pagination
-- cursors refer to it.

CREATE TABLE devices (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    grp        TEXT    NOT NULL DEFAULT '',
    token_hash BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;

CREATE INDEX devices_grp ON devices (grp, id);
CREATE INDEX devices_revoked_at ON devices (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    token_hash    BLOB    NOT NULL UNIQUE,
    password_hash BLOB,
    created_at    INTEGER NOT NULL
);

CREATE TABLE user_groups (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grp     TEXT    NOT NULL,
    PRIMARY KEY (user_id, grp)
) WITHOUT ROWID;

CREATE TABLE locations (
    seq         INTEGER PRIMARY KEY,
    device      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    lat         REAL    NOT NULL,
    lng         REAL    NOT NULL,
    accuracy    REAL,
    speed       REAL,
    heading     REAL,
    altitude    REAL,
    crs         TEXT    NOT NULL DEFAULT '',
    orig_lat    REAL,
    orig_lng    REAL,
    UNIQUE (device, id)
);

-- Pages are read newest first by (ts DESC, seq DESC). SQLite appends the
-- rowid (seq) to every index entry in ascending order, so an ascending index
-- read backwards yields exactly that order without a sort step; a
-- (device, ts DESC) index would need a temp B-tree to order ties by seq.
CREATE INDEX locations_device_ts ON locations (device, ts);

CREATE TABLE logs (
    seq         INTEGER PRIMARY KEY,
    device      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    level       TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL DEFAULT '',
    fields      TEXT,   -- JSON, NULL when the entry has none
    UNIQUE (device, id)
);

CREATE INDEX logs_device_ts ON logs (device, ts);
CREATE INDEX logs_ts ON logs (ts);
CREATE INDEX logs_level_ts ON logs (level, ts);

-- Full-text index of log messages. It is an external-content table over logs,
-- so the text is stored once. New rows are indexed by SaveBatch with one
-- INSERT ... SELECT per batch rather than by an AFTER INSERT trigger: FTS5
-- flushes its pending terms to disk at every statement savepoint, so a
-- per-row trigger makes each insert several times slower. Deletes and
-- updates (retention, repairs) are kept in step by the triggers below.
CREATE VIRTUAL TABLE logs_fts USING fts5 (
    message,
    content = 'logs',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER logs_fts_update AFTER UPDATE OF message ON logs BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
    INSERT INTO logs_fts (rowid, message) VALUES (new.seq, new.message);
END;
-- +goose StatementEnd
