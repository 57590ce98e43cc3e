-- An officer's change of one session (a doctor's schedule on one date): the doctor on
-- leave (nothing bookable; the bookings of that date are cancelled and their patients
-- told) or other quotas than the weekly schedule's (NULL: the schedule's).
ALTER TABLE sessions
    ADD COLUMN cancelled boolean NOT NULL DEFAULT false,
    ADD COLUMN day_quota_jkn integer CHECK (day_quota_jkn >= 0),
    ADD COLUMN day_quota_non_jkn integer CHECK (day_quota_non_jkn >= 0),
    ADD COLUMN note text;
CREATE INDEX sessions_changed ON sessions (date) WHERE cancelled OR day_quota_jkn IS NOT NULL
    OR day_quota_non_jkn IS NOT NULL;
