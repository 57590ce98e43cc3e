-- Citizen messages stored before 007 have an address but no keyed hash of it. SQL cannot
-- compute it (the address is sealed with the contact key, the hash keyed with the
-- platform's reference key): the service does at start-up (handlers.backfill_address_refs).
-- This index holds only what is left, so that start-up finds nothing cheaply once done.
CREATE INDEX notifications_address_ref_missing ON notifications (id)
    WHERE recipient_kind = 'citizen' AND address_ref IS NULL AND address_sealed IS NOT NULL;
