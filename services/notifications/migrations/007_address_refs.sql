-- The keyed hash of every citizen message's address (privacy.contact_ref), so a citizen
-- who proves that contact can be given their messages (their data export) without
-- opening every sealed address. Messages stored before this have none: they are found
-- by the citizen reference only (the data protection officer's export by NIK).
ALTER TABLE notifications ADD COLUMN address_ref text;
CREATE INDEX notifications_address_ref ON notifications (address_ref) WHERE address_ref IS NOT NULL;
