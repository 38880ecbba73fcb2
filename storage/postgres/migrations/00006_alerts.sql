-- 00006: geofences and alerts, as in the SQLite store (its 0009_alerts.sql):
-- geofences, alert rules and webhooks per group (a webhook of grp '' serves
-- every group); device_states, per device and key, whether a condition is on
-- as of ts; geofence_events and alerts, each stored once by its
-- deterministic id, seq ordering pages; deliveries, the webhook outbox
-- (due_at NULL once delivered or given up; a claim sets lease_until and
-- leased_by, under FOR UPDATE SKIP LOCKED). Times are Unix ms. IF NOT
-- EXISTS: the newest step may run again (TestMigrateCommand).

-- +goose Up
CREATE TABLE IF NOT EXISTS geofences (
    id         text             PRIMARY KEY,
    name       text             NOT NULL DEFAULT '',
    grp        text             NOT NULL,
    kind       text             NOT NULL,
    lat        double precision NOT NULL DEFAULT 0,
    lng        double precision NOT NULL DEFAULT 0,
    radius_m   double precision NOT NULL DEFAULT 0,
    ring       jsonb,
    created_at bigint           NOT NULL,
    updated_at bigint           NOT NULL
);
CREATE INDEX IF NOT EXISTS geofences_grp ON geofences (grp, id);

CREATE TABLE IF NOT EXISTS alert_rules (
    id              text             PRIMARY KEY,
    name            text             NOT NULL DEFAULT '',
    grp             text             NOT NULL,
    kind            text             NOT NULL,
    geofence        text             REFERENCES geofences (id) ON DELETE CASCADE,
    offline_minutes integer          NOT NULL DEFAULT 0,
    speed_kmh       double precision NOT NULL DEFAULT 0,
    level           text             NOT NULL DEFAULT '',
    text            text             NOT NULL DEFAULT '',
    created_at      bigint           NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_rules_grp ON alert_rules (grp, id);
CREATE INDEX IF NOT EXISTS alert_rules_geofence ON alert_rules (geofence);

CREATE TABLE IF NOT EXISTS webhooks (
    id         text   PRIMARY KEY,
    url        text   NOT NULL,
    grp        text   NOT NULL,
    secret     text   NOT NULL DEFAULT '',
    created_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_grp ON webhooks (grp, id);

CREATE TABLE IF NOT EXISTS device_states (
    device text    NOT NULL,
    key    text    NOT NULL,
    is_on  boolean NOT NULL,
    ts     bigint  NOT NULL,
    PRIMARY KEY (device, key)
);
CREATE INDEX IF NOT EXISTS device_states_key ON device_states (key);

CREATE TABLE IF NOT EXISTS geofence_events (
    seq      bigserial        PRIMARY KEY,
    id       text             NOT NULL UNIQUE,
    device   text             NOT NULL,
    geofence text             NOT NULL,
    type     text             NOT NULL,
    ts       bigint           NOT NULL,
    location text             NOT NULL DEFAULT '',
    lat      double precision NOT NULL DEFAULT 0,
    lng      double precision NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS geofence_events_ts ON geofence_events (ts, seq);
CREATE INDEX IF NOT EXISTS geofence_events_device ON geofence_events (device, ts, seq);

CREATE TABLE IF NOT EXISTS alerts (
    seq        bigserial        PRIMARY KEY,
    id         text             NOT NULL UNIQUE,
    rule       text             NOT NULL,
    kind       text             NOT NULL,
    device     text             NOT NULL,
    grp        text             NOT NULL,
    ts         bigint           NOT NULL,
    cause      text             NOT NULL DEFAULT '',
    message    text             NOT NULL DEFAULT '',
    lat        double precision NOT NULL DEFAULT 0,
    lng        double precision NOT NULL DEFAULT 0,
    created_at bigint           NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts, seq);
CREATE INDEX IF NOT EXISTS alerts_device ON alerts (device, ts, seq);

CREATE TABLE IF NOT EXISTS deliveries (
    id           text   PRIMARY KEY,
    alert        text   NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    webhook      text   NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    due_at       bigint,
    attempts     integer NOT NULL DEFAULT 0,
    lease_until  bigint NOT NULL DEFAULT 0,
    leased_by    text   NOT NULL DEFAULT '',
    delivered_at bigint,
    last_error   text   NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries (webhook);

-- +goose Down
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS alerts;
DROP TABLE IF EXISTS geofence_events;
DROP TABLE IF EXISTS device_states;
DROP TABLE IF EXISTS webhooks;
DROP TABLE IF EXISTS alert_rules;
DROP TABLE IF EXISTS geofences;
