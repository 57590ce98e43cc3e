-- Open311 GeoReport v2 (services/complaints/open311_api.py): the client applications'
-- API keys and which client filed which complaint.
--
-- A key is shown once, when issued; only its SHA-256 is kept (the key is 256 random bits,
-- so a plain hash cannot be reversed by guessing). `prefix` lets an administrator tell
-- keys apart in lists without holding them.
CREATE TABLE open311_keys (
    id          uuid        PRIMARY KEY,
    client      text        NOT NULL,
    prefix      text        NOT NULL,
    key_hash    text        NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL,
    issued_by   text        NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text
);

-- One row per complaint filed through Open311: the token the client may follow it by
-- (GET tokens/{token}) and the key that filed it (who sent what, for abuse and audit).
CREATE TABLE open311_requests (
    token           uuid        PRIMARY KEY,
    tracking_code   text        NOT NULL UNIQUE REFERENCES complaints (tracking_code),
    key_id          uuid        NOT NULL REFERENCES open311_keys (id),
    filed_at        timestamptz NOT NULL
);
