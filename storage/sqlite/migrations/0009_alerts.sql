-- +goose Up
-- 0009: geofences and alerts (storage.Alerting). Geofences and alert rules
-- belong to a group; a webhook to a group or to every group (grp ''). A
-- geofence's ring is its polygon as JSON [[lng, lat], ...], NULL for a
-- circle. device_states holds, per device and key (geofence:ID, speed:RULE,
-- offline:RULE), whether the condition is on and as of which time (Unix ms):
-- a transition applies only when later. geofence_events and alerts are the
-- archive, each row once by its deterministic id; seq orders pages.
-- deliveries is the outbox of the webhook senders: due_at is NULL once
-- delivered or given up; a claim sets lease_until and leased_by. Times are
-- Unix ms. IF NOT EXISTS: the newest step may run again (TestMigrateCommand).

CREATE TABLE IF NOT EXISTS geofences (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL DEFAULT '',
    grp        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    lat        REAL    NOT NULL DEFAULT 0,
    lng        REAL    NOT NULL DEFAULT 0,
    radius_m   REAL    NOT NULL DEFAULT 0,
    ring       TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS geofences_grp ON geofences (grp, id);

CREATE TABLE IF NOT EXISTS alert_rules (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL DEFAULT '',
    grp             TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    geofence        TEXT    REFERENCES geofences (id) ON DELETE CASCADE,
    offline_minutes INTEGER NOT NULL DEFAULT 0,
    speed_kmh       REAL    NOT NULL DEFAULT 0,
    level           TEXT    NOT NULL DEFAULT '',
    text            TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_rules_grp ON alert_rules (grp, id);
CREATE INDEX IF NOT EXISTS alert_rules_geofence ON alert_rules (geofence);

CREATE TABLE IF NOT EXISTS webhooks (
    id         TEXT    PRIMARY KEY,
    url        TEXT    NOT NULL,
    grp        TEXT    NOT NULL,
    secret     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_grp ON webhooks (grp, id);

CREATE TABLE IF NOT EXISTS device_states (
    device TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    is_on  INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    PRIMARY KEY (device, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_states_key ON device_states (key);

CREATE TABLE IF NOT EXISTS geofence_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT    NOT NULL UNIQUE,
    device   TEXT    NOT NULL,
    geofence TEXT    NOT NULL,
    type     TEXT    NOT NULL,
    ts       INTEGER NOT NULL,
    location TEXT    NOT NULL DEFAULT '',
    lat      REAL    NOT NULL DEFAULT 0,
    lng      REAL    NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS geofence_events_ts ON geofence_events (ts, seq);
CREATE INDEX IF NOT EXISTS geofence_events_device ON geofence_events (device, ts, seq);

CREATE TABLE IF NOT EXISTS alerts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    rule       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    device     TEXT    NOT NULL,
    grp        TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    cause      TEXT    NOT NULL DEFAULT '',
    message    TEXT    NOT NULL DEFAULT '',
    lat        REAL    NOT NULL DEFAULT 0,
    lng        REAL    NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts, seq);
CREATE INDEX IF NOT EXISTS alerts_device ON alerts (device, ts, seq);

CREATE TABLE IF NOT EXISTS deliveries (
    id           TEXT    PRIMARY KEY,
    alert        TEXT    NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    webhook      TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    due_at       INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    leased_by    TEXT    NOT NULL DEFAULT '',
    delivered_at INTEGER,
    last_error   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries (webhook);
