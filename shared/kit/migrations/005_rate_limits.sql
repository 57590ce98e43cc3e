-- Abuse limits shared by every instance of a service (shared/kit/limits.py): one row per
-- rule and key (a keyed hash of a client address or contact, never the value itself),
-- holding the rule's theoretical arrival time (GCRA). A row whose time has passed means
-- the same as no row; the kit's prune job deletes those.
CREATE TABLE rate_limit (
    name    text        NOT NULL,
    key     text        NOT NULL,
    tat     timestamptz NOT NULL,
    granted boolean     NOT NULL,
    PRIMARY KEY (name, key)
);
