-- The one-time code last sent to each contact (POST /citizen/codes). The contact is kept
-- only as its keyed hash (the address itself is sealed in the code's notification), the
-- code only as a keyed hash bound to that contact. One row per contact: a new code
-- replaces the last. How often a contact may ask is the kit's rate_limit table's.
CREATE TABLE citizen_codes (
    contact_ref     text        PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('phone', 'email')),
    code_hash       text        NOT NULL,
    issued_at       timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    used_at         timestamptz
);
-- Housekeeping forgets rows whose code is over.
CREATE INDEX citizen_codes_expiry ON citizen_codes (expires_at);
