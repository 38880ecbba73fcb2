-- +goose Up
-- 0006: legacy firmware keys (devtrack device add --legacy-key, devtrack
-- device legacy-key). Firmware that cannot send a token connects to the
-- gateway's legacy listener with ?key=KEY; the key is stored only as its
-- SHA-256 hash, like device tokens, in a table of its own: most devices have
-- none, and the device's token (devices.token_hash) is not touched by it.
-- issued_at changes at every new key of a device, so that a gateway can
-- close the connections opened with the key before; it is indexed for that
-- poll. A device is never deleted (only revoked), but its key would go with
-- it.

CREATE TABLE legacy_keys (
    device    TEXT    PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    key_hash  BLOB    NOT NULL UNIQUE,
    issued_at INTEGER NOT NULL
);

CREATE INDEX legacy_keys_issued_at ON legacy_keys (issued_at);
