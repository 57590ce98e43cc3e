CREATE TABLE complaints (
    id              uuid PRIMARY KEY,
    tracking_code   text        NOT NULL UNIQUE,
    kind            text        NOT NULL,
    category        text        NOT NULL,
    dimension       text        NOT NULL,
    opd             text,
    title           text        NOT NULL,
    description     text        NOT NULL,
    desa_code       text        NOT NULL,
    kecamatan_code  text        NOT NULL,
    lat             double precision,
    lon             double precision,
    anonymous       boolean     NOT NULL,
    confidential    boolean     NOT NULL,
    -- The reporter's identity stays in this database; events carry citizen_ref only.
    reporter_nik    text,
    reporter_name   text,
    reporter_phone  text,
    reporter_email  text,
    citizen_ref     text,
    locale          text        NOT NULL DEFAULT 'id',
    channel         text        NOT NULL DEFAULT 'web',
    status          text        NOT NULL,
    rating          smallint,
    rating_comment  text,
    duplicate_of    text,
    resolved_at     timestamptz,
    closed_at       timestamptz,
    reopen_count    integer     NOT NULL DEFAULT 0,
    filed_at        timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer     NOT NULL DEFAULT 0
);
CREATE INDEX complaints_status ON complaints (status, filed_at DESC);
CREATE INDEX complaints_opd ON complaints (opd, status);
CREATE INDEX complaints_kecamatan ON complaints (kecamatan_code);
CREATE INDEX complaints_filed_at ON complaints (filed_at DESC);

CREATE TABLE complaint_history (
    id            bigserial PRIMARY KEY,
    complaint_id  uuid        NOT NULL REFERENCES complaints (id),
    at            timestamptz NOT NULL,
    action        text        NOT NULL,
    status        text        NOT NULL,
    actor         text        NOT NULL,
    note          text
);
CREATE INDEX complaint_history_complaint ON complaint_history (complaint_id, id);

CREATE TABLE sla_clocks (
    complaint_id  uuid        NOT NULL REFERENCES complaints (id),
    name          text        NOT NULL,
    started_at    timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    warn_at       timestamptz NOT NULL,
    stopped_at    timestamptz,
    warned_at     timestamptz,
    breached_at   timestamptz,
    PRIMARY KEY (complaint_id, name)
);
-- The SLA watcher scans running clocks that still owe a warning or a breach.
CREATE INDEX sla_clocks_running ON sla_clocks (warn_at)
    WHERE stopped_at IS NULL AND breached_at IS NULL;
