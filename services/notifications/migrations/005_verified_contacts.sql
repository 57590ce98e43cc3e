-- Contacts that proved themselves with a one-time code (by keyed hash only). A message a
-- submission causes (anyone can name any phone number or address when filing) reaches a
-- contact not listed here at most a few times an hour (NOTIFICATIONS_UNSOLICITED_PER_HOUR).
CREATE TABLE verified_contacts (
    contact_ref        text        PRIMARY KEY,
    first_verified_at  timestamptz NOT NULL
);

-- The keyed hash of the address of a message a submission caused (rules marked
-- `unsolicited`), so how many such messages a contact got this hour is one query.
ALTER TABLE notifications ADD COLUMN contact_ref text;
CREATE INDEX notifications_unsolicited ON notifications (contact_ref, created_at)
    WHERE contact_ref IS NOT NULL;
