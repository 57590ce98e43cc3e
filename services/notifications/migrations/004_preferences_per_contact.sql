-- A citizen's preferences hold for the contact that proved itself when they were set
-- (the verified phone number or email address of the session): stating a NIK proves
-- nothing, so what someone sets for a NIK from their own contact never changes or
-- reveals what reaches anyone else's. Rows set before sessions existed keep
-- contact_ref '' and hold for any contact until the citizen sets their own.
ALTER TABLE preferences ADD COLUMN contact_ref text NOT NULL DEFAULT '';
ALTER TABLE preferences DROP CONSTRAINT preferences_pkey;
ALTER TABLE preferences ADD PRIMARY KEY (citizen_ref, contact_ref);
