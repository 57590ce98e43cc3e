-- Reference data: managed by officers through the API, seeded from seed.yaml when empty.
CREATE TABLE facilities (
    code            text PRIMARY KEY,
    name            text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('rsud', 'puskesmas', 'klinik')),
    kecamatan_code  text        NOT NULL,
    address         text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE polyclinics (
    facility_code   text        NOT NULL REFERENCES facilities (code),
    code            text        NOT NULL,
    name            text        NOT NULL,
    queue_prefix    text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility_code, code)
);

CREATE TABLE doctors (
    code            text PRIMARY KEY,
    name            text        NOT NULL,
    facility_code   text        NOT NULL,
    polyclinic_code text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (facility_code, polyclinic_code) REFERENCES polyclinics (facility_code, code)
);
CREATE INDEX doctors_polyclinic ON doctors (facility_code, polyclinic_code);

-- One session per doctor per weekday (0 = Monday).
CREATE TABLE schedules (
    id                  bigserial PRIMARY KEY,
    doctor_code         text     NOT NULL REFERENCES doctors (code),
    weekday             smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_time          time     NOT NULL,
    end_time            time     NOT NULL CHECK (end_time > start_time),
    minutes_per_patient smallint NOT NULL CHECK (minutes_per_patient > 0),
    quota_jkn           integer  NOT NULL CHECK (quota_jkn >= 0),
    quota_non_jkn       integer  NOT NULL CHECK (quota_non_jkn >= 0),
    active              boolean  NOT NULL DEFAULT true,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (doctor_code, weekday)
);

-- A schedule on one date: the quota counters. Booking and cancelling hold this row
-- locked (SELECT ... FOR UPDATE), so the counts are exact under concurrency.
CREATE TABLE sessions (
    schedule_id     bigint   NOT NULL REFERENCES schedules (id),
    date            date     NOT NULL,
    used_jkn        integer  NOT NULL DEFAULT 0 CHECK (used_jkn >= 0),
    used_non_jkn    integer  NOT NULL DEFAULT 0 CHECK (used_non_jkn >= 0),
    last_position   integer  NOT NULL DEFAULT 0,
    PRIMARY KEY (schedule_id, date)
);

-- Queue numbers per polyclinic per day (shared by the polyclinic's doctors).
CREATE TABLE queue_counters (
    facility_code   text    NOT NULL,
    polyclinic_code text    NOT NULL,
    date            date    NOT NULL,
    last_number     integer NOT NULL,
    PRIMARY KEY (facility_code, polyclinic_code, date)
);

CREATE TABLE appointments (
    id                  uuid PRIMARY KEY,
    booking_code        text        NOT NULL UNIQUE,
    facility_code       text        NOT NULL,
    kecamatan_code      text        NOT NULL,
    polyclinic_code     text        NOT NULL,
    doctor_code         text        NOT NULL,
    schedule_id         bigint REFERENCES schedules (id),
    date                date        NOT NULL,
    session_start       timestamptz NOT NULL,
    session_end         timestamptz NOT NULL,
    minutes_per_patient smallint    NOT NULL,
    queue_number        integer     NOT NULL,
    queue_code          text        NOT NULL,
    position            integer     NOT NULL,
    estimated_at        timestamptz NOT NULL,
    payment             text        NOT NULL CHECK (payment IN ('jkn', 'non_jkn')),
    new_patient         boolean     NOT NULL,
    -- The patient's identity stays in this database (UU PDP); events carry citizen_ref.
    patient_nik         text        NOT NULL,
    patient_name        text,
    patient_phone       text,
    jkn_card            text,
    citizen_ref         text        NOT NULL,
    locale              text        NOT NULL DEFAULT 'id',
    status              text        NOT NULL,
    task_id             smallint,
    task_at             timestamptz,
    booked_at           timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer     NOT NULL DEFAULT 0,
    UNIQUE (facility_code, polyclinic_code, date, queue_number)
);
-- One live booking per patient, polyclinic and day (a cancelled one may be rebooked).
CREATE UNIQUE INDEX appointments_one_per_patient_day
    ON appointments (patient_nik, facility_code, polyclinic_code, date)
    WHERE status <> 'cancelled';
-- The queue board and "call next".
CREATE INDEX appointments_queue ON appointments (facility_code, polyclinic_code, date, task_id, queue_number);
-- The no-show job scans booked appointments whose session has ended.
CREATE INDEX appointments_no_show ON appointments (session_end) WHERE status = 'booked';

CREATE TABLE appointment_tasks (
    appointment_id  uuid        NOT NULL REFERENCES appointments (id),
    task_id         smallint    NOT NULL,
    at              timestamptz NOT NULL,
    actor           text        NOT NULL,
    PRIMARY KEY (appointment_id, task_id)
);

CREATE TABLE wards (
    id              uuid        NOT NULL UNIQUE,
    facility_code   text        NOT NULL REFERENCES facilities (code),
    code            text        NOT NULL,
    name            text        NOT NULL,
    bed_class       text,
    total           integer     NOT NULL CHECK (total >= 0),
    occupied        integer     NOT NULL CHECK (occupied >= 0 AND occupied <= total),
    updated_at      timestamptz,
    version         integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (facility_code, code)
);
