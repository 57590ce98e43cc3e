-- Per-citizen data keys (shared/kit/data_keys.py): what a service puts on the bus about a
-- citizen (a contact) is encrypted with the citizen's data key, kept here wrapped under
-- the service's master key. Erasure deletes the row: every copy of those events, on any
-- topic, dead-letter topic, backup or outbox, can no longer be opened.
-- `subject` is the citizen reference (or a contact reference when no NIK was given);
-- `key_id` is random and is what events carry, so it leads to no one.
CREATE TABLE citizen_keys (
    subject     text        PRIMARY KEY,
    key_id      text        NOT NULL UNIQUE,
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
