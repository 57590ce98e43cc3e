-- Read models of the integration view. Everything here is derived from the events on
-- the domain topics and can be rebuilt from them (POST /admin/rebuild): the kit's
-- inbox rows of the integration consumer are truncated together with these tables.

-- One row per tracked item (complaint, permit application, appointment), keyed by the
-- code a citizen follows it by. Fields named "latest" come from the newest event
-- (event time, then event id); the others merge commutatively (min, max, or, sum), so
-- the row does not depend on the order events arrive in.
CREATE TABLE items (
    code             text PRIMARY KEY,          -- tracking code / booking code
    domain           text        NOT NULL,      -- complaints | permits | health
    aggregate        text        NOT NULL,      -- complaint | application | appointment
    aggregate_id     text        NOT NULL,
    status           text        NOT NULL,      -- latest
    phase            text        NOT NULL,      -- latest: open | done | ended
    opd              text,                      -- latest
    category         text,                      -- latest: complaint category, permit type, polyclinic
    kind             text,                      -- latest: complaint kind, applicant kind, payment
    dimension        text,                      -- latest (as the producer labelled it)
    facility         text,                      -- latest (health)
    desa_code        text,                      -- latest
    kecamatan_code   text,                      -- latest
    citizen_ref      text,                      -- pseudonymous; never a NIK
    confidential     boolean     NOT NULL DEFAULT false,   -- or
    title            text,                      -- public title, never of a confidential item
    opened_at        timestamptz NOT NULL,      -- min
    done_at          timestamptz,               -- max of resolution / decision / completion
    wait_started_at  timestamptz,               -- min (health: check-in)
    wait_ended_at    timestamptz,               -- min (health: called into the polyclinic)
    sla_breaches     integer     NOT NULL DEFAULT 0,      -- sum of sla_breached events
    last_event_at    timestamptz NOT NULL,
    last_event_id    text        NOT NULL,
    last_event_type  text        NOT NULL
);
CREATE INDEX items_citizen ON items (citizen_ref) WHERE citizen_ref IS NOT NULL;
CREATE INDEX items_domain_phase ON items (domain, phase);
CREATE INDEX items_opd ON items (opd) WHERE opd IS NOT NULL;
CREATE INDEX items_kecamatan ON items (kecamatan_code);
CREATE INDEX items_done_at ON items (done_at) WHERE done_at IS NOT NULL;

-- Every applied event, with public fields only: item histories, citizen timelines,
-- event counts for indicators, bed availability over time, and the live feed.
CREATE TABLE history (
    event_id         text PRIMARY KEY,
    seq              bigserial   NOT NULL UNIQUE,  -- arrival order, for the live feed only
    at               timestamptz NOT NULL,         -- event time
    domain           text        NOT NULL,
    event_type       text        NOT NULL,
    aggregate        text        NOT NULL,
    action           text        NOT NULL,
    code             text,          -- the item the event is about (notifications: the item notified)
    status           text,
    citizen_ref      text,
    opd              text,
    category         text,
    kecamatan_code   text,
    desa_code        text,
    dimension        text,
    confidential     boolean     NOT NULL DEFAULT false,
    detail           jsonb       NOT NULL DEFAULT '{}'  -- small public details (clock, channel, beds)
);
CREATE INDEX history_code ON history (code, at);
CREATE INDEX history_citizen ON history (citizen_ref, at) WHERE citizen_ref IS NOT NULL;
CREATE INDEX history_type_at ON history (event_type, at);
CREATE INDEX history_action_at ON history (action, at);
CREATE INDEX history_at ON history (at);

-- One row per notification (notifications.events): latest status and channel.
CREATE TABLE notifications (
    notification_id  text PRIMARY KEY,
    code             text,          -- the item the notification is about
    recipient_kind   text,          -- citizen | opd | role
    citizen_ref      text,
    opd              text,
    channel          text,
    status           text        NOT NULL,   -- latest
    template         text,
    first_at         timestamptz NOT NULL,   -- min
    delivered_at     timestamptz,            -- min of delivered events
    last_event_at    timestamptz NOT NULL,
    last_event_id    text        NOT NULL
);
CREATE INDEX notifications_first_at ON notifications (first_at);
