-- The contact a citizen gave when they started an item (complaint filed, application
-- submitted, appointment booked), as its keyed hash (shared/kit/privacy.contact_ref):
-- a citizen session proving that contact lists the item under GET /citizen/services.
-- Read from the events like every other column, so a rebuild restores it; dropped with
-- the citizen reference when the citizen's data is erased.
ALTER TABLE items ADD COLUMN contact_ref text;
CREATE INDEX items_contact ON items (contact_ref, opened_at DESC) WHERE contact_ref IS NOT NULL;
