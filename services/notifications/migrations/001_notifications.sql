-- One row per message to one recipient on one channel. The address is kept sealed
-- (Fernet, SINERGI_CONTACT_KEY) and opened only while sending; the body and the
-- template context are kept for resending and purged with the address after the
-- retention period (NOTIFICATIONS_RETENTION_DAYS) once the notification is final.
CREATE TABLE notifications (
    id                 uuid PRIMARY KEY,
    source_event_id    text        NOT NULL,
    source_event_type  text        NOT NULL,
    event_time         timestamptz NOT NULL,
    rule_id            text        NOT NULL,
    recipient_kind     text        NOT NULL,   -- citizen | opd | role
    recipient_key      text        NOT NULL,   -- citizen_ref, OPD code or role name
    tracking_code      text,
    citizen_ref        text,
    opd                text,
    channel            text        NOT NULL,
    locale             text        NOT NULL,
    template_name      text        NOT NULL,   -- the rule's template, e.g. complaints/filed
    template           text        NOT NULL,   -- the file used, e.g. id/complaints/filed.email.j2
    template_fallback  boolean     NOT NULL DEFAULT false,
    urgent             boolean     NOT NULL DEFAULT false,
    required           boolean     NOT NULL DEFAULT false,
    status             text        NOT NULL,
    attempt            integer     NOT NULL DEFAULT 0,
    max_attempts       integer     NOT NULL,
    due_at             timestamptz NOT NULL,
    lease_until        timestamptz,
    address_sealed     text,
    address_masked     text,
    subject            text,
    body               text,
    context            jsonb,
    provider_ref       text,
    correlation_id     text,
    last_error         text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    delivered_at       timestamptz,
    -- Belt and braces beside the inbox: one event notifies one recipient once per channel.
    UNIQUE (source_event_id, rule_id, recipient_key, channel)
);
-- The worker claims due notifications per channel, oldest due first.
CREATE INDEX notifications_due ON notifications (channel, due_at)
    WHERE status IN ('created', 'temporary-failure');
CREATE INDEX notifications_sending ON notifications (lease_until) WHERE status = 'sending';
CREATE INDEX notifications_status ON notifications (status, created_at DESC);
CREATE INDEX notifications_tracking ON notifications (tracking_code);
CREATE INDEX notifications_event_type ON notifications (source_event_type, created_at DESC);
CREATE INDEX notifications_created ON notifications (created_at DESC);

CREATE TABLE notification_history (
    id               bigserial PRIMARY KEY,
    notification_id  uuid        NOT NULL REFERENCES notifications (id),
    at               timestamptz NOT NULL,
    status           text        NOT NULL,
    attempt          integer     NOT NULL,
    error            text,
    actor            text        NOT NULL,
    next_attempt_at  timestamptz
);
CREATE INDEX notification_history_notification ON notification_history (notification_id, id);

-- A citizen's choices, under their pseudonymous reference (never the NIK).
CREATE TABLE preferences (
    citizen_ref  text PRIMARY KEY,
    channels     text[]      NOT NULL DEFAULT '{}',
    locale       text,
    quiet_start  time,
    quiet_end    time,
    opted_out    boolean     NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
