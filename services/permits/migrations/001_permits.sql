CREATE TABLE applications (
    id                    uuid PRIMARY KEY,
    tracking_code         text        NOT NULL UNIQUE,
    permit_type           text        NOT NULL,
    number_code           text        NOT NULL,
    opd                   text        NOT NULL,
    dimension             text        NOT NULL,
    -- The applicant's identity stays in this database; events carry citizen_ref only.
    applicant_kind        text        NOT NULL CHECK (applicant_kind IN ('person', 'business')),
    applicant_name        text        NOT NULL,
    applicant_nik         text,
    applicant_nib         text,
    applicant_phone       text,
    applicant_email       text,
    citizen_ref           text        NOT NULL,
    locale                text        NOT NULL DEFAULT 'id',
    desa_code             text        NOT NULL,
    kecamatan_code        text        NOT NULL,
    details               jsonb       NOT NULL DEFAULT '{}',
    documents             jsonb       NOT NULL DEFAULT '[]',
    missing_documents     jsonb       NOT NULL DEFAULT '[]',
    renewal_of            text,
    -- Terms fixed at submission.
    inspection_required   boolean     NOT NULL,
    deemed_approval       boolean     NOT NULL,
    validity_years        integer,
    reminder_days         integer     NOT NULL DEFAULT 0,
    status                text        NOT NULL,
    submitted_at          timestamptz NOT NULL,
    -- The SLA clock (working days, pausable).
    sla_days              integer     NOT NULL,
    sla_started_at        timestamptz NOT NULL,
    sla_resumed_at        timestamptz NOT NULL,
    sla_due_at            timestamptz NOT NULL,
    sla_warn_at           timestamptz NOT NULL,
    sla_consumed_days     integer     NOT NULL DEFAULT 0,
    sla_paused_at         timestamptz,
    sla_stopped_at        timestamptz,
    sla_warned_at         timestamptz,
    sla_breached_at       timestamptz,
    -- Inspection.
    inspection_scheduled_for timestamptz,
    inspector             text,
    inspection_result     text,
    inspection_findings   text,
    inspected_at          timestamptz,
    -- Decision.
    decision              text,
    decided_at            timestamptz,
    decided_by            text,
    decision_note         text,
    rejection_reasons     jsonb       NOT NULL DEFAULT '[]',
    processing_days       integer,
    -- Issued permit.
    permit_number         text UNIQUE,
    issued_at             timestamptz,
    valid_until           timestamptz,
    remind_at             timestamptz,
    expiry_reminded_at    timestamptz,
    revoked_at            timestamptz,
    revocation_reason     text,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               integer     NOT NULL DEFAULT 0
);
CREATE INDEX applications_status ON applications (status, submitted_at DESC);
CREATE INDEX applications_type ON applications (permit_type, status);
CREATE INDEX applications_kecamatan ON applications (kecamatan_code);
CREATE INDEX applications_submitted_at ON applications (submitted_at DESC);
-- The SLA watcher scans running clocks that still owe a warning or a breach.
CREATE INDEX applications_sla_running ON applications (sla_warn_at)
    WHERE sla_stopped_at IS NULL AND sla_paused_at IS NULL AND sla_breached_at IS NULL;
-- The expiry watcher scans issued permits with an end of validity.
CREATE INDEX applications_expiry ON applications (remind_at)
    WHERE status = 'issued' AND valid_until IS NOT NULL;

CREATE TABLE application_history (
    id              bigserial PRIMARY KEY,
    application_id  uuid        NOT NULL REFERENCES applications (id),
    at              timestamptz NOT NULL,
    action          text        NOT NULL,
    status          text        NOT NULL,
    actor           text        NOT NULL,
    note            text
);
CREATE INDEX application_history_application ON application_history (application_id, id);

-- Permit numbers 503/<TYPE>/<seq:05d>/<YYYY>: the last sequence per type and year,
-- incremented by the issuing transaction (the row lock serialises concurrent issues).
CREATE TABLE permit_sequences (
    number_code  text    NOT NULL,
    year         integer NOT NULL,
    last         integer NOT NULL,
    PRIMARY KEY (number_code, year)
);
