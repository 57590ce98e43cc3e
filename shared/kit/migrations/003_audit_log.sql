-- Who did what, when: one row per officer action, written in the same transaction as
-- the action itself (so an action without its audit row cannot commit).
CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    subject     text        NOT NULL,
    role        text        NOT NULL,
    opd         text,
    method      text        NOT NULL,
    route       text        NOT NULL,
    path        text        NOT NULL,
    aggregates  text[]      NOT NULL DEFAULT '{}',
    events      text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject ON audit_log (subject, at DESC);
CREATE INDEX audit_log_at ON audit_log (at DESC);
