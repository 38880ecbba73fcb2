-- 00003: legacy firmware keys, as in the SQLite store (its 0006): firmware
-- that cannot send a token connects to the gateway's legacy listener with
-- ?key=KEY, stored only as its SHA-256 hash in a table of its own (most
-- devices have none; the device's token is not touched by it). issued_at
-- changes at every new key of a device, so that a gateway can close the
-- connections opened with the key before; it is indexed for that poll.

-- +goose Up
CREATE TABLE legacy_keys (
    device    text   PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    key_hash  bytea  NOT NULL UNIQUE,
    issued_at bigint NOT NULL
);
CREATE INDEX legacy_keys_issued_at ON legacy_keys (issued_at);

-- +goose Down
DROP TABLE legacy_keys;
